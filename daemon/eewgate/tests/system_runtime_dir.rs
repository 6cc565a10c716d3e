//! System test of what the daemon leaves in its runtime directory for the programs
//! beside it (systemd's `RUNTIME_DIRECTORY`): `health.json` read by `eewgate
//! health-gate` (an update's mark-good), and the first-boot `setup-code` shown on the
//! console by `eewgate setup-code` and withdrawn once setup is done.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/webui_http.rs"]
mod webui_http;
use daemon::Daemon;
use serde_json::{Value, json};
use webui_http::{PASSWORD, free_port, http, wait_listening};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("system_runtime_dir")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("run")).unwrap();
    dir
}

/// Settings with the web UI on `port` and `links` (TOML).
fn config(dir: &Path, port: u16, links: &str) -> PathBuf {
    let text = format!(
        "[site]\nlat = 33.24\nlon = 131.61\narv400 = 1.2\narea_code = \"751\"\n\
         [[outputs.relay]]\nid = 1\nname = \"elevators\"\nmin_class = \"4\"\n\
         [storage]\npath = \"history.db\"\n\
         [time]\nrequire_sync = false\n\
         [hardware]\nbackend = \"sim\"\n\
         [[hardware.relay]]\nid = 1\npin = 5\n\
         [webui]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\n{links}"
    );
    let path = dir.join("eewgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn replay_link() -> String {
    let f = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../core/tests/fixtures/telegrams/jmaxml_vxse44_20240417_bungo_36_01_01_serial1_forecast.xml");
    assert!(f.exists(), "{}", f.display());
    format!(
        "[[links.replay]]\nname = \"drill\"\ninterval_ms = 20\nfiles = [{:?}]\n",
        f.to_string_lossy()
    )
}

fn eewgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Waits for `path` to hold JSON for which `ok` holds: that JSON.
fn json_file_when(path: &Path, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            && ok(&v)
        {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{} as expected within 20 s",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_gone(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} removed within 10 s",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn health_gate_and_setup_code_follow_the_running_daemon() {
    let dir = scratch("healthy");
    let run = dir.join("run");
    let run_s = run.to_str().unwrap();
    let port = free_port();
    let cfg = config(&dir, port, &replay_link());
    let mut d = Daemon::start_with_env(&cfg, &[("RUNTIME_DIRECTORY", run_s)]);

    // health.json: the MQTT health document, with this daemon's pid.
    let health = json_file_when(&run.join("health.json"), |v| v["ready"] == true);
    assert_eq!(health["pid"], d.child.id(), "{health}");
    assert_eq!(health["faults"], json!([]), "{health}");
    assert!(health["updated_at"].is_string(), "{health}");
    let gate = eewgate(&["health-gate", "--runtime-dir", run_s]);
    assert!(gate.status.success(), "{}", text(&gate));

    // The setup code the console shows is the one the daemon printed.
    let printed = d.first(Duration::from_secs(20), |v| v["type"] == "webui")["setup_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("setup-code")).unwrap()).unwrap();
    assert_eq!(file["code"], printed.as_str());
    assert_eq!(file["listen"], format!("127.0.0.1:{port}"));
    let issue = dir.join("issue.d/50-eewgate.issue");
    std::fs::create_dir_all(issue.parent().unwrap()).unwrap();
    let shown = eewgate(&[
        "setup-code",
        "--runtime-dir",
        run_s,
        "--issue-file",
        issue.to_str().unwrap(),
    ]);
    assert!(shown.status.success(), "{}", text(&shown));
    let stdout = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(stdout.contains(&printed), "{stdout}");
    assert!(
        stdout.contains(&format!("http://127.0.0.1:{port}/")),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&issue).unwrap(), stdout);

    // Setup done: the code is withdrawn from the runtime directory and the login prompt.
    wait_listening(([127, 0, 0, 1], port).into());
    let body = json!({"setup_code": printed, "password": PASSWORD});
    let r = http(
        ([127, 0, 0, 1], port).into(),
        "POST",
        "/api/setup",
        &[],
        Some(&body),
    );
    assert_eq!(r.status, 200, "{r:?}");
    wait_gone(&run.join("setup-code"));
    let shown = eewgate(&[
        "setup-code",
        "--runtime-dir",
        run_s,
        "--issue-file",
        issue.to_str().unwrap(),
    ]);
    assert!(shown.status.success(), "{}", text(&shown));
    assert!(shown.stdout.is_empty(), "{}", text(&shown));
    assert!(
        !issue.exists(),
        "the login prompt no longer shows a spent code"
    );

    // A stopped daemon leaves no health behind, and the gate says so.
    d.stop();
    assert!(!run.join("health.json").exists());
    let gate = eewgate(&["health-gate", "--runtime-dir", run_s]);
    assert_eq!(gate.status.code(), Some(1), "{}", text(&gate));
    assert!(text(&gate).contains("not running"), "{}", text(&gate));
}

#[test]
fn health_gate_refuses_a_faulty_or_killed_daemon() {
    let dir = scratch("faulty");
    let run = dir.join("run");
    let run_s = run.to_str().unwrap();
    // A link to a port where nothing listens: the link is down, a fault.
    let dead = free_port();
    let link = format!(
        "[[links.jma_tcp]]\nname = \"primary\"\nhost = \"127.0.0.1\"\nport = {dead}\n\
         framing = \"jma_socket\"\n"
    );
    let cfg = config(&dir, free_port(), &link);
    let mut d = Daemon::start_with_env(&cfg, &[("RUNTIME_DIRECTORY", run_s)]);
    let health = json_file_when(&run.join("health.json"), |v| {
        v["ready"] == true && v["faults"].as_array().is_some_and(|f| !f.is_empty())
    });
    assert!(
        health["faults"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "link:primary"),
        "{health}"
    );
    let gate = eewgate(&["health-gate", "--runtime-dir", run_s, "--wait-s", "1"]);
    assert_eq!(gate.status.code(), Some(1), "{}", text(&gate));
    assert!(
        text(&gate).contains("fault: link:primary"),
        "{}",
        text(&gate)
    );

    // kill -9 leaves the file behind; the gate sees that its writer is gone.
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    assert!(
        run.join("health.json").exists(),
        "nothing cleaned up after kill -9"
    );
    let gate = eewgate(&["health-gate", "--runtime-dir", run_s]);
    assert_eq!(gate.status.code(), Some(1), "{}", text(&gate));
    assert!(text(&gate).contains("not running"), "{}", text(&gate));
}
