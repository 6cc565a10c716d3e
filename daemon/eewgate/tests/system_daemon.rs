//! System tests of `eewgate run`: the real binary, a real settings file, systemd's
//! notification protocol on a real socket, signals.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/fixtures/telegrams")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("system_daemon")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Settings for a building in 大分県中部 fed by a replay link of the Bungo series.
fn config(dir: &Path, extra: &str) -> PathBuf {
    let mut files: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("jmaxml_vxse44_20240417_bungo_") && n.ends_with(".xml")
        })
        .map(|p| format!("{:?}", p.to_string_lossy()))
        .collect();
    files.sort();
    let text = format!(
        "[site]\nlat = 33.24\nlon = 131.61\narv400 = 1.2\narea_code = \"751\"\n\
         [storage]\npath = {:?}\n\
         [time]\nrequire_sync = false\n\
         [[links.replay]]\nname = \"drill\"\ninterval_ms = 5\nfiles = [{}]\n{extra}",
        dir.join("history.db").to_string_lossy(),
        files.join(", ")
    );
    let path = dir.join("eewgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

struct Daemon {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Daemon {
    fn start(config: &Path, env: &[(&str, String)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_eewgate"));
        cmd.args(["run", "--events-stdout", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env("EEWGATE_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the daemon starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
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
        Self { child, lines }
    }

    /// Collects lines until `done` says so (or the timeout passes).
    fn until(&self, timeout: Duration, mut done: impl FnMut(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while !done(&seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => seen.push(v),
                Err(_) => break,
            }
        }
        seen
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        kill(pid, Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not stop within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn notify_socket(dir: &Path) -> (UnixDatagram, String) {
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    (socket, path.to_string_lossy().into_owned())
}

/// Every notification received within `window`, with its arrival time.
fn notifications(socket: &UnixDatagram, window: Duration) -> Vec<(Instant, String)> {
    let deadline = Instant::now() + window;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            got.push((
                Instant::now(),
                String::from_utf8_lossy(buf.get(..n).unwrap()).into_owned(),
            ));
        }
    }
    got
}

#[test]
fn the_daemon_acts_on_a_replayed_sequence_tells_systemd_and_stops_cleanly() {
    let dir = scratch("replay");
    let cfg = config(
        &dir,
        "[[outputs.relay]]\nid = 1\nname = \"elevators\"\nmin_class = \"4\"\n",
    );
    let (socket, path) = notify_socket(&dir);
    let daemon = Daemon::start(
        &cfg,
        &[
            ("NOTIFY_SOCKET", path),
            ("WATCHDOG_USEC", "900000".to_owned()),
        ],
    );
    let lines = daemon.until(Duration::from_secs(20), |seen| {
        seen.iter()
            .any(|v| v["type"] == "action" && v["cause"] == "cancel" && v["output"] == "relay:1")
    });
    let telegrams: Vec<&Value> = lines.iter().filter(|v| v["type"] == "telegram").collect();
    assert_eq!(telegrams.len(), 33, "every file of the series arrived once");
    assert!(telegrams.iter().all(|t| t["verdict"] == "accepted"));
    let relay1: Vec<(&str, u64)> = lines
        .iter()
        .filter(|v| v["type"] == "action" && v["output"] == "relay:1")
        .map(|v| (v["action"].as_str().unwrap(), v["serial"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        relay1,
        vec![("on", 4), ("off", 32)],
        "elevators: on at serial 4, off at the cancel"
    );

    let notes = notifications(&socket, Duration::from_millis(1500));
    let text: Vec<&str> = notes.iter().map(|(_, s)| s.as_str()).collect();
    assert!(text.iter().any(|s| s.contains("WATCHDOG=1")), "{text:?}");
    let status = daemon.terminate();
    assert!(status.success(), "clean stop on SIGTERM: {status:?}");
}

#[test]
fn ready_is_sent_once_and_a_stuck_core_loop_stops_the_watchdog_pings() {
    let dir = scratch("stall");
    let cfg = config(&dir, "");
    let (socket, path) = notify_socket(&dir);
    let started = Instant::now();
    let daemon = Daemon::start(
        &cfg,
        &[
            ("NOTIFY_SOCKET", path),
            ("WATCHDOG_USEC", "3000000".to_owned()),
            ("EEWGATE_TEST_STALL_CORE_AFTER_MS", "1500".to_owned()),
        ],
    );
    let notes = notifications(&socket, Duration::from_secs(7));
    let ready: Vec<&(Instant, String)> = notes
        .iter()
        .filter(|(_, s)| s.contains("READY=1"))
        .collect();
    assert_eq!(ready.len(), 1, "READY=1 exactly once");
    let pings: Vec<Duration> = notes
        .iter()
        .filter(|(_, s)| s.contains("WATCHDOG=1"))
        .map(|(t, _)| t.duration_since(started))
        .collect();
    assert!(
        pings.iter().any(|t| *t < Duration::from_millis(1500)),
        "pinged while the loop ran: {pings:?}"
    );
    // The loop stalls at 1.5 s; with a 3 s budget the pinger gives up once the last beat
    // is 1.5 s old (at 3 s) and pings every 1 s: nothing after 4.5 s.
    let late: Vec<&Duration> = pings
        .iter()
        .filter(|t| **t > Duration::from_millis(4500))
        .collect();
    assert!(
        late.is_empty(),
        "no WATCHDOG=1 after the loop stalled: {pings:?}"
    );
    drop(daemon);
}

#[test]
fn invalid_settings_exit_78_with_every_problem_and_check_config_agrees() {
    let dir = scratch("invalid");
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[site]\nlat = 33.24\nlon = 131.61\narv400 = 1.2\narea_code = \"751\"\n\
         [storage]\nretention_days = 0\n\
         [[links.jma_tcp]]\nname = \"primary\"\nport = 70000\nframing = \"jmasocket\"\n\
         [deamon]\n",
    )
    .unwrap();
    for args in [vec!["check-config"], vec!["run", "--config"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_eewgate"))
            .args(&args)
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(78), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        for key in [
            "storage.retention_days",
            "links.jma_tcp[0].host",
            "links.jma_tcp[0].port",
            "links.jma_tcp[0].framing",
            "deamon",
        ] {
            assert!(err.contains(key), "{args:?}: {key} missing in\n{err}");
        }
        assert!(err.contains("5 problem(s)"), "{err}");
    }
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/eewgate.example.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .arg("check-config")
        .arg(&example)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the shipped example is valid: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let good = config(&dir, "");
    let out = Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .arg("check-config")
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
}

#[test]
fn broken_storage_degrades_history_but_the_alarms_still_fire() {
    let dir = scratch("broken-storage");
    // A regular file where the database's directory should be: the store cannot open.
    let blocker = dir.join("not-a-directory");
    std::fs::write(&blocker, b"").unwrap();
    let cfg = config(
        &dir,
        "[[outputs.relay]]\nid = 1\nname = \"elevators\"\nmin_class = \"4\"\n",
    );
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        &format!("{:?}", dir.join("history.db").to_string_lossy()),
        &format!("{:?}", blocker.join("history.db").to_string_lossy()),
    );
    std::fs::write(&cfg, text).unwrap();
    let daemon = Daemon::start(&cfg, &[]);
    let lines = daemon.until(Duration::from_secs(20), |seen| {
        seen.iter()
            .any(|v| v["type"] == "action" && v["output"] == "relay:1" && v["action"] == "on")
    });
    assert!(
        lines
            .iter()
            .any(|v| v["type"] == "fault" && v["fault"] == "storage" && v["active"] == true),
        "the storage fault is raised: {lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|v| v["type"] == "action" && v["output"] == "relay:1" && v["action"] == "on"),
        "the elevators still stop"
    );
    assert!(daemon.terminate().success());
}
