//! The real `eewgate run --events-stdout` for system tests: its JSON event lines read on
//! a thread, waited for with a timeout, a clean SIGTERM stop, and a kill when a test
//! fails half-way (no daemon is left behind).
#![allow(dead_code, reason = "each test file uses part of the support module")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// A running daemon and the event lines seen so far.
pub struct Daemon {
    pub child: Child,
    rx: mpsc::Receiver<Value>,
    pub seen: Vec<Value>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Starts the daemon on `config`, its log (at `info`) on the test's stderr.
    pub fn start(config: &Path) -> Self {
        Self::start_logging_to(config, Stdio::inherit())
    }

    /// Starts the daemon on `config` with its log (at `info`) going to `stderr`.
    pub fn start_logging_to(config: &Path, stderr: impl Into<Stdio>) -> Self {
        Self::spawn(config, stderr.into(), &[])
    }

    /// Starts the daemon on `config` with extra environment variables (the test hooks,
    /// e.g. `EEWGATE_TEST_SIM_STUCK_INPUTS`).
    #[allow(dead_code, reason = "not every system test uses the hooks")]
    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Self {
        Self::spawn(config, Stdio::inherit(), env)
    }

    fn spawn(config: &Path, stderr: Stdio, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_eewgate"))
            .args(["run", "--events-stdout", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .env("EEWGATE_LOG", "info")
            .envs(env.iter().copied())
            .spawn()
            .expect("the daemon starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout is JSON Lines ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Daemon {
            child,
            rx,
            seen: Vec::new(),
        }
    }

    /// Reads event lines until `done` holds or `timeout` passes.
    pub fn until(&mut self, timeout: Duration, done: impl Fn(&[Value]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while !done(&self.seen) {
            match self
                .rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(v) => self.seen.push(v),
                Err(_) => return false,
            }
        }
        true
    }

    /// The first event line for which `f` holds, waiting up to `timeout` (panics with
    /// every line seen when none comes).
    pub fn first(&mut self, timeout: Duration, f: impl Fn(&Value) -> bool) -> Value {
        let found = self.until(timeout, |l| l.iter().any(&f));
        assert!(
            found,
            "no such event line within {timeout:?}: {:#?}",
            self.seen
        );
        self.seen
            .iter()
            .find(|v| f(v))
            .cloned()
            .expect("until() saw it")
    }

    /// SIGTERM, then a clean exit within 10 s.
    pub fn stop(mut self) {
        let pid = i32::try_from(self.child.id()).expect("a pid fits an i32");
        kill(Pid::from_raw(pid), Signal::SIGTERM).expect("the daemon can be signalled");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("the daemon can be waited for") {
                assert!(status.success(), "clean exit, got {status}");
                return;
            }
            assert!(Instant::now() < deadline, "the daemon stops within 10 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
