//! System test of the web UI in a real browser: the daemon with `[webui]` and a replay
//! link of the Bungo series, then `webui/browser-tests/ui.test.mjs` in headless Chromium
//! (Debian's `chromium`, driven by playwright-core) through first-boot setup, login, the
//! dashboard, the language toggle and logout. Screenshots and the daemon's log go to
//! `target/browser-artifacts/`.
//!
//! The dashboard must change over the status stream without a reload, at a moment the
//! script chooses rather than in a race with the replay's clock: the replay's first file
//! is a named pipe, and the replay reads a file only when its turn comes, so the series
//! waits until the script says it is watching and this test writes the first telegram
//! into the pipe.
//!
//! Without Chromium, Node.js ≥ 18 or `webui/browser-tests/node_modules` the test says
//! "skipped" — unless `EEWGATE_REQUIRE_BROWSER=1` (set by `scripts/test-all`, which
//! installs them), when it fails.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::unistd::{Pid, mkfifo};
#[path = "support/daemon.rs"]
mod daemon;
use daemon::Daemon;
use serde_json::Value;

const PASSWORD: &str = "correct horse battery staple";
/// The whole browser run; it normally takes well under a minute.
const NODE_TIMEOUT: Duration = Duration::from_secs(300);
/// The line the script prints when it waits for the dashboard to change by itself.
const AWAITING_LIVE: &str = "awaiting_live_update";

fn workspace() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn browser_tests() -> PathBuf {
    workspace().join("webui/browser-tests")
}

fn chromium() -> PathBuf {
    std::env::var_os("EEWGATE_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/fixtures/telegrams")
}

/// What the browser run needs and is not there.
fn missing_prerequisites() -> Vec<String> {
    let mut missing = Vec::new();
    let browser = chromium();
    if !browser.is_file() {
        missing.push(format!("no Chromium at {}", browser.display()));
    }
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {
            let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            let major: u32 = version
                .trim_start_matches('v')
                .split('.')
                .next()
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            if major < 18 {
                missing.push(format!(
                    "Node.js {version} is older than 18 (playwright-core 1.61 needs 18)"
                ));
            }
        }
        _ => missing.push("no `node` on PATH".to_owned()),
    }
    let module = browser_tests().join("node_modules/playwright-core/package.json");
    if !module.is_file() {
        missing.push(format!("{} is missing (npm ci)", module.display()));
    }
    missing
}

fn scratch() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("system_browser");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `target/browser-artifacts/`, emptied: only this run's pictures in it.
fn artifacts() -> PathBuf {
    let dir = workspace().join("target/browser-artifacts");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Bungo series in order, the first file replaced by a named pipe in `dir` that the
/// test fills when the script is watching; returns the settings file, the pipe and what
/// goes into it.
fn config(dir: &Path, port: u16) -> (PathBuf, PathBuf, Vec<u8>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("jmaxml_vxse44_20240417_bungo_") && n.ends_with(".xml")
        })
        .collect();
    files.sort();
    assert!(files.len() > 2, "{files:?}");
    let first = std::fs::read(&files[0]).unwrap();
    let pipe = dir.join("first-telegram.pipe");
    mkfifo(&pipe, Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
    files[0] = pipe.clone();
    let list: Vec<String> = files
        .iter()
        .map(|p| format!("{:?}", p.to_string_lossy()))
        .collect();
    // Half a second apart once started: the alert runs for the rest of the script.
    let text = format!(
        "[site]\nlat = 33.24\nlon = 131.61\narv400 = 1.2\narea_code = \"751\"\n\
         [[outputs.relay]]\nid = 1\nname = \"elevators\"\nmin_class = \"4\"\n\
         [[outputs.relay]]\nid = 2\nname = \"PA pre-start\"\nmin_class = \"3\"\n\
         include = {{ drill = true }}\n\
         [storage]\npath = \"history.db\"\n\
         [time]\nrequire_sync = false\n\
         [hardware]\nbackend = \"sim\"\n\
         [[hardware.relay]]\nid = 1\npin = 5\n\
         [webui]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\n\
         [[links.replay]]\nname = \"drill\"\ninterval_ms = 500\nfiles = [{}]\n",
        list.join(", ")
    );
    let path = dir.join("eewgate.toml");
    std::fs::write(&path, text).unwrap();
    (path, pipe, first)
}

/// Writes `bytes` into the replay's pipe once triggered (opening blocks until the
/// replay reads, which it does when the pipe's turn comes). Nothing is written when the
/// trigger's sender goes without a trigger.
fn pipe_writer(pipe: PathBuf, bytes: Vec<u8>) -> (mpsc::Sender<()>, std::thread::JoinHandle<bool>) {
    let (tx, rx) = mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        use std::os::unix::fs::OpenOptionsExt;
        if rx.recv().is_err() {
            return false;
        }
        let mut f = std::fs::OpenOptions::new().write(true).open(&pipe).unwrap();
        f.write_all(&bytes).unwrap();
        drop(f);
        // A saved setting restarts the daemon's tasks and the replay starts again at the
        // pipe: serve it again whenever a reader opens it (a non-blocking open fails while
        // there is none), until the test is done.
        while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(1)) {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(nix::libc::O_NONBLOCK)
                .open(&pipe)
            {
                let _ = f.write_all(&bytes);
            }
        }
        true
    });
    (tx, writer)
}

/// Node.js and its Chromium, stopped when the test fails half-way. SIGTERM first:
/// Playwright then closes the browser it launched (SIGKILL would orphan it).
struct Node {
    child: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Output of the browser run.
struct Run {
    status: Option<ExitStatus>,
    stdout: Vec<String>,
    stderr: String,
}

impl Run {
    fn report(&self) -> String {
        format!(
            "node: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.status
                .map_or_else(|| "killed after the timeout".to_owned(), |s| s.to_string()),
            self.stdout.join("\n"),
            self.stderr
        )
    }
}

/// Runs the script; a line saying it waits for a live update pulls `trigger`.
fn run_script(env: &[(&str, String)], trigger: &mpsc::Sender<()>) -> Run {
    let mut command = Command::new("node");
    command
        .arg("ui.test.mjs")
        .current_dir(browser_tests())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut node = Node {
        child: command.spawn().expect("node starts"),
    };
    let stdout = node.child.stdout.take().unwrap();
    let mut stderr = node.child.stderr.take().unwrap();
    let (out_tx, out_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if out_tx.send(line).is_err() {
                break;
            }
        }
    });
    let (err_tx, err_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = err_tx.send(text);
    });

    let deadline = Instant::now() + NODE_TIMEOUT;
    let mut lines = Vec::new();
    let status = loop {
        while let Ok(line) = out_rx.try_recv() {
            if serde_json::from_str::<Value>(&line).is_ok_and(|v| v["event"] == AWAITING_LIVE) {
                trigger.send(()).unwrap();
            }
            lines.push(line);
        }
        if let Some(status) = node.child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(node);
    // What is left in the pipes; a pipe still held open must not hang the test.
    while let Ok(line) = out_rx.recv_timeout(Duration::from_secs(5)) {
        lines.push(line);
    }
    let stderr = err_rx
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_default();
    Run {
        status,
        stdout: lines,
        stderr,
    }
}

#[test]
fn the_web_ui_in_headless_chromium() {
    let missing = missing_prerequisites();
    if !missing.is_empty() {
        let what = missing.join("; ");
        assert!(
            std::env::var("EEWGATE_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "the browser test cannot run: {what}. Run ./scripts/test-all: it installs \
             chromium and runs `npm ci` in webui/browser-tests."
        );
        // Straight to stderr, past the test harness's capture: a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "skipped: system_browser: {what} (./scripts/test-all installs what it needs)"
        );
        return;
    }

    let dir = scratch();
    let out = artifacts();
    let port = free_port();
    let (cfg, pipe, first_telegram) = config(&dir, port);
    let (trigger, writer) = pipe_writer(pipe, first_telegram);
    let mut daemon =
        Daemon::start_logging_to(&cfg, std::fs::File::create(out.join("daemon.log")).unwrap());
    assert!(
        daemon.until(Duration::from_secs(30), |l| {
            l.iter().any(|v| v["type"] == "webui")
                && l.iter()
                    .any(|v| v["type"] == "link" && v["link"] == "drill" && v["state"] == "up")
        }),
        "a webui event line and the replay link up: {:#?}",
        daemon.seen
    );
    let code = daemon.seen.iter().find(|v| v["type"] == "webui").unwrap()["setup_code"]
        .as_str()
        .unwrap()
        .to_owned();

    let started = Instant::now();
    let run = run_script(
        &[
            ("EEWGATE_URL", format!("http://127.0.0.1:{port}")),
            ("EEWGATE_SETUP_CODE", code),
            ("EEWGATE_PASSWORD", PASSWORD.to_owned()),
            ("EEWGATE_ARTIFACTS", out.display().to_string()),
            ("EEWGATE_CHROMIUM", chromium().display().to_string()),
            ("EEWGATE_LINKS", "drill".to_owned()),
            ("EEWGATE_LIVE_TIMEOUT_MS", "60000".to_owned()),
            // Intensity 5- is predicted here from serial 4 on: the elevators' contact closes.
            ("EEWGATE_EXPECT_CLOSED_RELAYS", "1".to_owned()),
            ("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1".to_owned()),
        ],
        &trigger,
    );
    eprintln!(
        "browser run: {:.1} s; artifacts in {}\n{}",
        started.elapsed().as_secs_f64(),
        out.display(),
        run.stderr
    );
    let help = format!(
        "{}\n--- screenshots and the daemon's log: {}",
        run.report(),
        out.display()
    );
    assert!(run.status.is_some_and(|s| s.success()), "{help}");
    let report: Value = run
        .stdout
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("the last line is the JSON report\n{help}"));
    assert_eq!(report["ok"], true, "{help}");
    assert!(
        run.stdout.iter().any(|l| l.contains(AWAITING_LIVE)),
        "the script waited for a live update\n{help}"
    );
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "first-boot",
            "login",
            "dashboard",
            "drill",
            "self-test",
            "settings",
            "history",
            "system",
            "language",
            "logout"
        ],
        "{help}"
    );
    let shots = report["screenshots"].as_array().unwrap();
    assert!(shots.len() >= steps.len(), "{help}");
    for name in shots {
        let png = std::fs::read(out.join(name.as_str().unwrap())).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
    }
    // The live update came from the replay, which waited for the pipe.
    drop(trigger);
    assert!(
        writer.join().unwrap(),
        "the first telegram went into the pipe"
    );
    assert!(
        daemon.until(Duration::from_secs(10), |l| l
            .iter()
            .any(|v| v["type"] == "action" && v["cause"] == "start")),
        "the replayed series started an alert: {:#?}",
        daemon.seen
    );
    // The contact tested in the browser pulsed on its pin, and the operator's answer is
    // the evidence.
    assert!(
        daemon.until(Duration::from_secs(5), |l| l.iter().any(|v| v["type"]
            == "evidence"
            && v["output"] == "relay:1"
            && v["source"] == "operator"
            && v["ok"] == true)),
        "the operator's confirmation became evidence: {:#?}",
        daemon.seen
    );
    assert!(
        daemon.seen.iter().any(|v| v["type"] == "action"
            && v["output"] == "relay:1"
            && v["cause"] == "self_test"),
        "the test went through the engine"
    );
    // The threshold saved in the browser: audited with who and the diff, applied.
    assert!(
        daemon.until(Duration::from_secs(5), |l| l
            .iter()
            .any(|v| v["type"] == "settings" && v["state"] == "applying")),
        "the saved settings were applied: {:#?}",
        daemon.seen
    );
    daemon.stop();
    let audit = Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .args(["history", "--audit", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let audit = String::from_utf8(audit.stdout).unwrap();
    assert!(audit.contains("settings_refused"), "{audit}");
    assert!(
        audit.contains("self_test_confirmed") && audit.contains("elevator hall lamp lit"),
        "{audit}"
    );
    let saved = audit
        .lines()
        .find(|l| l.contains("settings_saved"))
        .unwrap_or_else(|| panic!("{audit}"));
    assert!(
        saved.contains("admin") && saved.contains("outputs.relay[0].min_class: \"4\" → \"5-\""),
        "{saved}"
    );
    assert!(
        std::fs::read_to_string(&cfg)
            .unwrap()
            .contains("min_class = \"5-\""),
        "the file holds the change"
    );
}
