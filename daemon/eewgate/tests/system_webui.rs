//! System test of the web UI: the real daemon with `[webui]`, a replay link of the Bungo
//! series, the first-boot setup code from the event line (`type = "webui"`), then setup,
//! login, status and history over plain HTTP/1.1, the audit trail in
//! `eewgate history --audit`, and the private password hash file.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/mosquitto.rs"]
mod mosquitto;
#[path = "support/synth.rs"]
mod synth;
#[path = "support/webui_http.rs"]
mod webui_http;
use daemon::Daemon;
use serde_json::{Value, json};
use webui_http::{
    PASSWORD, Response, dechunk, exchange, free_port, http, log_in, set_up_and_log_in,
    wait_listening,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/fixtures/telegrams")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("system_webui")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(dir: &Path, port: u16) -> PathBuf {
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
    assert!(!files.is_empty());
    let text = format!(
        "[site]\nlat = 33.24\nlon = 131.61\narv400 = 1.2\narea_code = \"751\"\n\
         [[outputs.relay]]\nid = 1\nname = \"elevators\"\nmin_class = \"4\"\n\
         [storage]\npath = \"history.db\"\n\
         [time]\nrequire_sync = false\n\
         [hardware]\nbackend = \"sim\"\n\
         [[hardware.relay]]\nid = 1\npin = 5\n\
         [webui]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\n\
         [[links.replay]]\nname = \"drill\"\ninterval_ms = 20\nfiles = [{}]\n",
        files.join(", ")
    );
    let path = dir.join("eewgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The same over TLS, trusting exactly the certificate in `cert_pem` (what an installer
/// does after comparing its fingerprint).
fn https(
    addr: SocketAddr,
    cert_pem: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Response {
    use rustls::pki_types::pem::PemObject;
    use std::sync::Arc;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    exchange(&mut tls, addr, method, path, headers, body)
}

fn history_audit(config: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .args(["history", "--audit", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn first_boot_setup_login_status_history_and_audit() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("first_boot");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = config(&dir, port);

    let mut daemon = Daemon::start(&cfg);
    let line = daemon.first(Duration::from_secs(20), |v| v["type"] == "webui");
    assert_eq!(line["listen"], addr.to_string());
    let code = line["setup_code"].as_str().unwrap().to_owned();
    assert_eq!(
        code.chars().filter(char::is_ascii_alphanumeric).count(),
        10,
        "{code}"
    );
    wait_listening(addr);
    // The replay has been recorded (the cancel is the last telegram).
    assert!(
        daemon.until(Duration::from_secs(20), |l| l
            .iter()
            .filter(|v| v["type"] == "telegram")
            .count()
            >= 2),
        "telegrams replayed: {:#?}",
        daemon.seen
    );

    // Setup mode: everything but setup answers 409.
    let r = http(addr, "GET", "/api/status", &[], None);
    assert_eq!(r.status, 409, "{r:?}");
    let r = http(
        addr,
        "POST",
        "/api/setup",
        &[],
        Some(&json!({"setup_code": code, "password": PASSWORD})),
    );
    assert_eq!(r.status, 200, "{r:?}");

    let (cookie, _) = log_in(addr);
    assert!(cookie.starts_with("eewgate_session="), "{cookie}");
    let auth = [("Cookie", cookie.as_str())];

    let r = http(addr, "GET", "/api/status", &auth, None);
    assert_eq!(r.status, 200, "{r:?}");
    let status = r.json();
    assert!(status["links"]["drill"].is_object(), "{status:#}");
    assert_eq!(status["outputs"]["webui"], "ok", "{status:#}");

    // The history database is written in batches: poll until the replay shows.
    let deadline = Instant::now() + Duration::from_secs(10);
    let items = loop {
        let r = http(addr, "GET", "/api/history/telegrams?limit=100", &auth, None);
        assert_eq!(r.status, 200, "{r:?}");
        let items = r.json()["items"].as_array().unwrap().clone();
        if items.len() >= 2 || Instant::now() > deadline {
            break items;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(items.len() >= 2, "{items:#?}");
    assert!(
        items
            .iter()
            .all(|t| t["id"].is_i64() && t["link"] == "drill")
    );
    assert!(
        items
            .windows(2)
            .all(|w| w[0]["id"].as_i64() > w[1]["id"].as_i64()),
        "newest first"
    );
    let r = http(addr, "GET", "/api/history/alerts", &auth, None);
    assert_eq!(r.status, 200, "{r:?}");
    let alerts = r.json()["items"].as_array().unwrap().clone();
    assert!(alerts.iter().all(|a| a["id"].is_i64()), "{alerts:#?}");

    // Audit entries are written in batches too.
    let deadline = Instant::now() + Duration::from_secs(10);
    let audit = loop {
        let audit = history_audit(&cfg);
        if (audit.contains("login") && audit.contains("setup")) || Instant::now() > deadline {
            break audit;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(audit.contains(" setup "), "{audit}");
    assert!(audit.contains(" login "), "{audit}");
    assert!(
        !audit.contains(PASSWORD) && !audit.contains(&code),
        "{audit}"
    );

    let hash_file = dir.join("state").join("webui-admin.hash");
    let hash = std::fs::read_to_string(&hash_file).unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
    let mode = std::fs::metadata(&hash_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    daemon.stop();

    // Second start: already set up, no code anywhere.
    let mut daemon = Daemon::start(&cfg);
    wait_listening(addr);
    daemon.until(Duration::from_secs(2), |_| false);
    assert!(
        !daemon.seen.iter().any(|v| v["type"] == "webui"),
        "{:#?}",
        daemon.seen
    );
    let r = http(
        addr,
        "POST",
        "/api/login",
        &[],
        Some(&json!({"password": PASSWORD})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    daemon.stop();
}

#[test]
fn a_port_in_use_is_a_webui_fault_and_the_daemon_keeps_running() {
    let dir = scratch("port_in_use");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = config(&dir, port);
    let mut daemon = Daemon::start(&cfg);
    assert!(
        daemon.until(Duration::from_secs(20), |l| l
            .iter()
            .any(|v| v["type"] == "fault" && v["fault"] == "webui")),
        "{:#?}",
        daemon.seen
    );
    // The alarms still run: the replay is decided and acted on.
    assert!(
        daemon.until(Duration::from_secs(20), |l| l
            .iter()
            .any(|v| v["type"] == "action")),
        "{:#?}",
        daemon.seen
    );
    assert!(daemon.child.try_wait().unwrap().is_none(), "still running");
    daemon.stop();
}

/// Saves `changes` against the settings' current revision (`headers`: cookie and CSRF).
fn save_changes(addr: SocketAddr, headers: &[(&str, &str)], changes: Value) -> Response {
    let settings = http(addr, "GET", "/api/settings", &headers[..1], None).json();
    let body = json!({"revision": settings["revision"], "changes": changes});
    http(addr, "PUT", "/api/settings", headers, Some(&body))
}

/// The status model once `ready` holds (or the last one seen after `within`): the model
/// is published a moment after the event that changes it, so a test reads it this way.
fn status_when(
    addr: SocketAddr,
    auth: &[(&str, &str)],
    within: Duration,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let status = http(addr, "GET", "/api/status", auth, None).json();
        if ready(&status) || Instant::now() > deadline {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A threshold changed in the web UI during an alert: bad values refused with their
/// paths and nothing written; a good value written atomically with the file's comments
/// kept, audited with its diff, and applied only once the alert is over (the contact's
/// hold time), by a restart of the daemon's tasks that keeps the UI session.
#[test]
fn a_saved_threshold_is_validated_audited_and_applied_after_the_alert() {
    let dir = scratch("settings");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = config(&dir, port);
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "name = \"elevators\"\n",
        "name = \"elevators\"  # lift bank A\nhold_s = 15\n",
    );
    // Paced so the alarm still runs while the test looks at it (the cancel comes ~10 s in).
    let text = text.replace("interval_ms = 20\n", "interval_ms = 300\n");
    std::fs::write(&cfg, &text).unwrap();

    let mut daemon = Daemon::start(&cfg);
    let (cookie, csrf) = set_up_and_log_in(&mut daemon, addr);
    let auth = [("Cookie", cookie.as_str())];
    let change = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];
    // The replay's alarm closes contact 1 and holds it for 15 s.
    assert!(
        daemon.until(Duration::from_secs(20), |l| l
            .iter()
            .any(|v| v["type"] == "action"
                && v["output"] == "relay:1"
                && v["action"] == "on")),
        "{:#?}",
        daemon.seen
    );

    let r = http(addr, "GET", "/api/settings", &auth, None);
    assert_eq!(r.status, 200, "{r:?}");
    let settings = r.json();
    assert_eq!(settings["editable"], true);
    assert_eq!(
        settings["document"]["outputs"]["relay"][0]["min_class"],
        "4"
    );
    let revision = settings["revision"].as_str().unwrap().to_owned();
    let status = status_when(addr, &auth, Duration::from_secs(5), |s| {
        !s["alert"]["current"].is_null()
    });
    assert_eq!(status["settings"]["revision"], revision.as_str());
    // The dashboard's current alert: the alarm the voice and the LED follow.
    let current = &status["alert"]["current"];
    assert_eq!(current["event_id"], "20240417231454", "{status:#}");
    assert_eq!(current["label"], "real");
    assert!(current["class"].is_string(), "{current:#}");
    assert!(current["serial"].as_u64().unwrap() >= 1, "{current:#}");

    // Two bad values: both reported with their paths, nothing written.
    let bad = json!({"revision": revision, "changes": [
        {"path": "outputs.relay[0].min_class", "value": "9"},
        {"path": "site.lat", "value": 99.0},
    ]});
    let r = http(addr, "PUT", "/api/settings", &change, Some(&bad));
    assert_eq!(r.status, 422, "{r:?}");
    let problems = r.json()["check"]["problems"].as_array().unwrap().clone();
    let paths: Vec<&str> = problems
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"outputs.relay[0].min_class") && paths.contains(&"site.lat"),
        "{problems:#?}"
    );
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        text,
        "nothing written"
    );

    // Without the CSRF token: refused.
    let good = json!({"revision": revision, "changes": [
        {"path": "outputs.relay[0].min_class", "value": "5-"},
    ]});
    assert_eq!(
        http(addr, "PUT", "/api/settings", &auth, Some(&good)).status,
        403
    );
    // A check first, then the save: during the alert it waits.
    let r = http(addr, "POST", "/api/settings/check", &change, Some(&good));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["valid"], true, "{r:?}");
    let r = http(addr, "PUT", "/api/settings", &change, Some(&good));
    assert_eq!(r.status, 200, "{r:?}");
    let saved = r.json();
    assert_eq!(saved["apply"], "after_alert", "{saved:#}");
    assert_eq!(saved["diff"][0]["path"], "outputs.relay[0].min_class");
    let new_revision = saved["revision"].as_str().unwrap().to_owned();
    let on_disk = std::fs::read_to_string(&cfg).unwrap();
    assert!(on_disk.contains("min_class = \"5-\""), "{on_disk}");
    assert!(
        on_disk.contains("# lift bank A"),
        "comments kept: {on_disk}"
    );
    assert!(!dir.join("eewgate.toml.tmp").exists());
    // The daemon notes the waiting change on its status (a moment after the save).
    let status = status_when(addr, &auth, Duration::from_secs(5), |s| {
        s["settings"]["pending"].is_string()
    });
    assert_eq!(status["settings"]["revision"], revision.as_str(), "not yet");
    assert_eq!(
        status["settings"]["pending"], "waiting_for_alert_end",
        "{status:#}"
    );
    let applying_before = daemon.seen.len();

    // Once contact 1's hold time is over, the daemon restarts its tasks with the file.
    assert!(
        daemon.until(Duration::from_secs(40), |l| l
            .iter()
            .any(|v| v["type"] == "settings" && v["state"] == "applying")),
        "{:#?}",
        &daemon.seen[applying_before..]
    );
    // The engine released the contact at its hold's end (the restart waited for that);
    // the relay task's own line may come just before or after the restart's.
    assert!(
        daemon.until(Duration::from_secs(5), |l| l
            .iter()
            .any(|v| v["type"] == "action"
                && v["output"] == "relay:1"
                && v["action"] == "off")),
        "the contact was released by the engine: {:#?}",
        daemon.seen
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        let r = http(addr, "GET", "/api/status", &auth, None);
        assert_eq!(r.status, 200, "the session survives the restart: {r:?}");
        let status = r.json();
        if status["settings"]["revision"] == new_revision.as_str() || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status["settings"]["revision"], new_revision.as_str());
    assert!(status["settings"]["pending"].is_null(), "{status:#}");

    // Audited with who and the diff; the new version is in history.
    let deadline = Instant::now() + Duration::from_secs(10);
    let audit = loop {
        let audit = history_audit(&cfg);
        if audit.contains("settings_saved") || Instant::now() > deadline {
            break audit;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(audit.contains("settings_refused"), "{audit}");
    let saved_line = audit
        .lines()
        .find(|l| l.contains("settings_saved"))
        .unwrap_or_else(|| panic!("{audit}"));
    assert!(saved_line.contains("admin"), "{saved_line}");
    assert!(
        saved_line.contains("outputs.relay[0].min_class: \"4\" → \"5-\""),
        "{saved_line}"
    );
    daemon.stop();
    let out = Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .args(["history", "--config-changes", "--json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let versions: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(versions.len(), 2, "{versions:#?}");
    assert_eq!(versions[0]["text"], on_disk.as_str(), "the newest first");
}

/// HTTPS with a certificate generated on first boot: its fingerprint on the console and
/// as an event, the key private, setup and login over TLS with a `Secure` cookie, plain
/// HTTP refused, and the same certificate again at the next start.
#[test]
fn https_with_a_self_signed_certificate_made_on_first_boot() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("https");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = config(&dir, port);
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "state_dir = \"state\"\n",
        "state_dir = \"state\"\nhttps = true\n",
    );
    std::fs::write(&cfg, text).unwrap();

    let mut daemon = Daemon::start(&cfg);
    assert!(
        daemon.until(Duration::from_secs(20), |l| l
            .iter()
            .any(|v| v["type"] == "webui")
            && l.iter().any(|v| v["type"] == "webui_certificate")),
        "{:#?}",
        daemon.seen
    );
    let cert_line = daemon
        .seen
        .iter()
        .find(|v| v["type"] == "webui_certificate")
        .unwrap()
        .clone();
    assert_eq!(cert_line["generated"], true);
    let fingerprint = cert_line["fingerprint"].as_str().unwrap().to_owned();
    let code = daemon.seen.iter().find(|v| v["type"] == "webui").unwrap()["setup_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let pem = std::fs::read_to_string(dir.join("state/webui-cert.pem")).unwrap();
    let key_mode = std::fs::metadata(dir.join("state/webui-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    wait_listening(addr);

    let r = https(addr, &pem, "GET", "/api/setup/state", &[], None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["setup_required"], true);
    let body = json!({"setup_code": code, "password": PASSWORD});
    assert_eq!(
        https(addr, &pem, "POST", "/api/setup", &[], Some(&body)).status,
        200
    );
    let r = https(
        addr,
        &pem,
        "POST",
        "/api/login",
        &[],
        Some(&json!({"password": PASSWORD})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let cookie = r.header("set-cookie").unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    let r = https(
        addr,
        &pem,
        "GET",
        "/api/status",
        &[("Cookie", &session)],
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");

    // Plain HTTP on the HTTPS port gets no page.
    let mut plain = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(format!("GET /api/setup/state HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .unwrap();
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(
        !String::from_utf8_lossy(&got).contains("setup_required"),
        "{got:?}"
    );
    daemon.stop();

    // The next start keeps the certificate.
    let mut daemon = Daemon::start(&cfg);
    let again = daemon.first(Duration::from_secs(20), |v| {
        v["type"] == "webui_certificate"
    });
    assert_eq!(again["generated"], false);
    assert_eq!(again["fingerprint"], fingerprint.as_str());
    daemon.stop();
}

/// Drills from the web UI through the real daemon: only with the confirmation, only the
/// contacts that include drills, labelled `drill` on every action; a reset ends it; a
/// recorded real event replays as a drill; every step audited.
#[test]
fn drills_and_reset_from_the_web_ui() {
    let dir = scratch("drills");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let closed = free_port(); // nothing listens: the link is down, which drills do not need
    let text = format!(
        "[site]\nlat = 33.24\nlon = 131.61\narv400 = 1.2\narea_code = \"751\"\n\
         [[outputs.relay]]\nid = 1\nname = \"PA\"\nmin_class = \"3\"\ninclude = {{ drill = true }}\n\
         [[outputs.relay]]\nid = 2\nname = \"gas\"\nmin_class = \"3\"\n\
         [storage]\npath = \"history.db\"\n[time]\nrequire_sync = false\n\
         [hardware]\nbackend = \"sim\"\n\
         [webui]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\n\
         [[links.jma_tcp]]\nname = \"primary\"\nhost = \"127.0.0.1\"\nport = {closed}\n"
    );
    let cfg = dir.join("eewgate.toml");
    std::fs::write(&cfg, text).unwrap();
    let mut daemon = Daemon::start(&cfg);
    let (cookie, csrf) = set_up_and_log_in(&mut daemon, addr);
    let auth = [("Cookie", cookie.as_str())];
    let change = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];

    let drills = http(addr, "GET", "/api/drills", &auth, None).json();
    assert_eq!(drills["allowed"], true, "{drills:#}");
    assert_eq!(drills["outputs"]["relay:1"], true);
    assert_eq!(drills["outputs"]["relay:2"], false);
    assert!(
        drills["recorded"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "bungo-2024")
    );

    let synthetic = json!({"class": "5-", "seconds": 20});
    let r = http(addr, "POST", "/api/drill", &change, Some(&synthetic));
    assert_eq!(r.status, 400, "no confirmation: {r:?}");
    let mut confirmed = synthetic.clone();
    confirmed["confirm"] = json!(true);
    let r = http(addr, "POST", "/api/drill", &change, Some(&confirmed));
    assert_eq!(r.status, 200, "{r:?}");
    let on = |seen: &[Value]| {
        seen.iter()
            .any(|v| v["type"] == "action" && v["output"] == "relay:1" && v["action"] == "on")
    };
    assert!(
        daemon.until(Duration::from_secs(10), on),
        "{:#?}",
        daemon.seen
    );
    // Every action of an event (the LED's fault pattern for the down link is not one).
    let actions: Vec<&Value> = daemon
        .seen
        .iter()
        .filter(|v| v["type"] == "action" && !v["event_id"].is_null())
        .collect();
    assert!(!actions.is_empty());
    assert!(
        actions.iter().all(|a| a["label"] == "drill"),
        "{actions:#?}"
    );
    assert!(
        !actions.iter().any(|a| a["output"] == "relay:2"),
        "the gas contact does not include drills: {actions:#?}"
    );
    let status = status_when(addr, &auth, Duration::from_secs(5), |s| {
        !s["alert"]["current"].is_null()
    });
    assert_eq!(status["alert"]["current"]["label"], "drill", "{status:#}");

    // Reset ends it and opens the contact.
    let r = http(addr, "POST", "/api/alert/reset", &change, Some(&json!({})));
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        daemon.until(Duration::from_secs(10), |l| l
            .iter()
            .any(|v| v["type"] == "action"
                && v["output"] == "relay:1"
                && v["action"] == "off")),
        "{:#?}",
        daemon.seen
    );

    // A recorded real event, replayed as a drill.
    let before = daemon.seen.len();
    let r = http(
        addr,
        "POST",
        "/api/drill",
        &change,
        Some(&json!({"confirm": true, "recorded": "bungo-2024"})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["reports"], 33);
    // Each run is an event of its own: the recorded id moved to the run's time.
    let run_id = r.json()["event_id"].as_str().unwrap().to_owned();
    assert_eq!(run_id.len(), 14, "{run_id}");
    assert_ne!(run_id, "20240417231454");
    assert!(
        daemon.until(Duration::from_secs(30), |l| l[before..].iter().any(
            |v| v["type"] == "action" && v["output"] == "relay:1" && v["action"] == "on"
        )),
        "{:#?}",
        &daemon.seen[before..]
    );
    let later = &daemon.seen[before..];
    assert!(
        later
            .iter()
            .any(|v| v["type"] == "telegram" && v["verdict"] == "drill"),
        "{later:#?}"
    );
    let event_actions: Vec<&Value> = later
        .iter()
        .filter(|v| v["type"] == "action" && !v["event_id"].is_null())
        .collect();
    assert!(
        event_actions.iter().all(|a| a["label"] == "drill"),
        "{later:#?}"
    );
    assert!(
        event_actions
            .iter()
            .any(|a| a["event_id"] == run_id.as_str() && a["output"] == "relay:1"),
        "{later:#?}"
    );
    daemon.stop();
    let audit = history_audit(&cfg);
    for action in ["drill_started", "alert_reset"] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
    assert!(audit.contains("bungo-2024"), "{audit}");
}

/// POST raw bytes (an upload), returning the status and the JSON body.
fn upload(addr: SocketAddr, path: &str, headers: &[(&str, &str)], bytes: &[u8]) -> (u16, Value) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nConnection: close\r\n\
         Content-Type: audio/wav\r\nContent-Length: {}\r\n",
        bytes.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    stream.write_all(bytes).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let body = if body.contains("\r\n") && !body.trim_start().starts_with('{') {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// An operator's chime uploaded in the UI: checked as a chime (a non-WAV refused), stored
/// in the state directory under its plain name (a path refused), and usable as
/// `audio.chime` in a validated save.
#[test]
fn a_chime_uploaded_in_the_ui_becomes_the_chime() {
    let dir = scratch("chime_upload");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = config(&dir, port);
    let mut daemon = Daemon::start(&cfg);
    let (cookie, csrf) = set_up_and_log_in(&mut daemon, addr);
    let change = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];

    // Half a second of a 660 Hz tone, 16 kHz mono.
    let samples: Vec<i16> = (0..8000)
        .map(|i| ((f64::from(i) * 660.0 * std::f64::consts::TAU / 16000.0).sin() * 8000.0) as i16)
        .collect();
    let wav = eewgate::audio::wav::encode(16000, &samples);
    let (status, body) = upload(
        addr,
        "/api/uploads/chime?name=..%2F..%2Fescape.wav",
        &change,
        &wav,
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_name");
    assert!(!dir.join("escape.wav").exists() && !dir.parent().unwrap().join("escape.wav").exists());
    let (status, body) = upload(
        addr,
        "/api/uploads/chime?name=fake.wav",
        &change,
        b"not a wav at all",
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = upload(addr, "/api/uploads/chime?name=lobby.wav", &change, &wav);
    assert_eq!(status, 200, "{body}");
    let path = body["path"].as_str().unwrap().to_owned();
    assert_eq!(Path::new(&path), dir.join("state/chimes/lobby.wav"));
    assert_eq!(std::fs::read(&path).unwrap(), wav);
    assert!(
        (body["seconds"].as_f64().unwrap() - 0.5).abs() < 0.01,
        "{body}"
    );

    let r = save_changes(
        addr,
        &change,
        json!([
            {"path": "audio.chime", "value": path},
        ]),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(std::fs::read_to_string(&cfg).unwrap().contains("lobby.wav"));
    daemon.stop();
    let audit = history_audit(&cfg);
    assert!(audit.contains("chime_uploaded"), "{audit}");
    assert!(audit.contains("chime_upload_refused"), "{audit}");
}

/// An operator's certificate uploaded in the UI: a key that is not the certificate's own
/// refused, the pair stored privately, then switched on by a settings save — the UI comes
/// back over HTTPS with exactly that certificate, and the same password.
#[test]
fn an_uploaded_certificate_switches_the_ui_to_https() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("cert_upload");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = config(&dir, port);
    let mut daemon = Daemon::start(&cfg);
    let (cookie, csrf) = set_up_and_log_in(&mut daemon, addr);
    let change = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];
    let mine = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (mine.cert.pem(), mine.signing_key.serialize_pem());

    let wrong = json!({"certificate": cert, "key": other.signing_key.serialize_pem()});
    let r = http(
        addr,
        "POST",
        "/api/uploads/certificate",
        &change,
        Some(&wrong),
    );
    assert_eq!(r.status, 400, "{r:?}");
    let r = http(
        addr,
        "POST",
        "/api/uploads/certificate",
        &change,
        Some(&json!({"certificate": cert, "key": key})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let stored = r.json();
    let key_file = stored["key_file"].as_str().unwrap().to_owned();
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !r.body.contains("PRIVATE KEY"),
        "the key is never sent back"
    );

    let r = save_changes(
        addr,
        &change,
        json!([
            {"path": "webui.https", "value": true},
            {"path": "webui.cert_file", "value": stored["cert_file"]},
            {"path": "webui.key_file", "value": key_file},
        ]),
    );
    assert_eq!(r.status, 200, "{r:?}");
    // The UI is built again on the same port, over HTTPS with the uploaded certificate.
    assert!(
        daemon.until(Duration::from_secs(20), |l| l
            .iter()
            .any(|v| v["type"] == "webui_certificate" && v["generated"] == false)),
        "{:#?}",
        daemon.seen
    );
    let line = daemon
        .seen
        .iter()
        .find(|v| v["type"] == "webui_certificate")
        .unwrap()
        .clone();
    assert_eq!(line["fingerprint"], stored["fingerprint"]);
    wait_listening(addr);
    let r = https(
        addr,
        &cert,
        "POST",
        "/api/login",
        &[],
        Some(&json!({"password": PASSWORD})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.header("set-cookie").unwrap().contains("; Secure"));
    daemon.stop();
    let audit = history_audit(&cfg);
    assert!(audit.contains("certificate_upload_refused"), "{audit}");
    assert!(audit.contains("certificate_uploaded"), "{audit}");
    assert!(!audit.contains("PRIVATE KEY"), "{audit}");
}

/// The dashboard's per-link latency: a live TCP link (served by the test) delivers a fresh
/// telegram, and the link's `latency_ms` (receipt minus issue time) appears on the status.
#[test]
fn a_live_link_shows_its_issue_to_receipt_latency() {
    use std::net::TcpListener;
    let dir = scratch("link_latency");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_port = upstream.local_addr().unwrap().port();
    let text = format!(
        "[site]\nlat = 38.26\nlon = 140.87\narv400 = 1.2\narea_code = \"221\"\n\
         [[outputs.relay]]\nid = 1\nmin_class = \"4\"\n\
         [storage]\npath = \"history.db\"\n[time]\nrequire_sync = false\n\
         [hardware]\nbackend = \"sim\"\n\
         [webui]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\n\
         [[links.jma_tcp]]\nname = \"primary\"\nhost = \"127.0.0.1\"\nport = {up_port}\n"
    );
    let cfg = dir.join("eewgate.toml");
    std::fs::write(&cfg, text).unwrap();
    let mut daemon = Daemon::start(&cfg);
    let (cookie, _) = set_up_and_log_in(&mut daemon, addr);
    upstream.set_nonblocking(false).unwrap();
    let (mut conn, _) = upstream.accept().unwrap();
    let issued = eewgate::system::clock::now_jst().0.naive_local();
    conn.write_all(&synth::telegram(&synth::base(), 1, 1, Some(issued)))
        .unwrap();
    let status = status_when(
        addr,
        &[("Cookie", cookie.as_str())],
        Duration::from_secs(10),
        |s| s["links"]["primary"]["latency_ms"].is_i64(),
    );
    let latency = status["links"]["primary"]["latency_ms"].clone();
    // Whole seconds on the wire: up to a second early, and loopback adds next to nothing.
    let ms = latency
        .as_i64()
        .unwrap_or_else(|| panic!("no latency: {latency}"));
    assert!((-1000..3000).contains(&ms), "{ms} ms");
    daemon.stop();
}

/// The Tests page's self-tests through the real daemon, a real Mosquitto and the sim
/// board: a contact with a read-back proves itself (the pulse on its pin, both edges
/// followed); one without needs the operator, whose "did not work" faults it; the lamp
/// test, the PA test phrase and the MQTT round trip each leave their evidence on the
/// status model, and history keeps it across a restart. A relay test needs the
/// confirmation; every step is audited.
#[test]
fn self_tests_prove_each_output_and_the_operator_confirms_what_it_cannot_see() {
    let dir = scratch("selftest");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let broker = mosquitto::Mosquitto::start(&dir.join("broker"));
    let closed = free_port();
    let text = format!(
        "[site]\nlat = 33.24\nlon = 131.61\narv400 = 1.2\narea_code = \"751\"\n\
         [[outputs.relay]]\nid = 1\nname = \"elevators\"\nmin_class = \"4\"\n\
         [[outputs.relay]]\nid = 2\nname = \"doors\"\nmin_class = \"4\"\n\
         [storage]\npath = \"history.db\"\n[time]\nrequire_sync = false\n\
         [hardware]\nbackend = \"sim\"\n\
         [[hardware.relay]]\nid = 1\npin = 5\nreadback_pin = 24\nreadback_timeout_ms = 200\nprobe = \"none\"\n\
         [[hardware.relay]]\nid = 2\npin = 6\n\
         [hardware.led]\nred_pin = 17\ngreen_pin = 27\nblue_pin = 22\n\
         [audio]\nwav_dir = \"audio\"\n\
         [mqtt]\nhost = \"127.0.0.1\"\nport = {}\ndevice_id = \"st-tower\"\n\
         [webui]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\n\
         [[links.jma_tcp]]\nname = \"primary\"\nhost = \"127.0.0.1\"\nport = {closed}\n",
        broker.port()
    );
    let cfg = dir.join("eewgate.toml");
    std::fs::write(&cfg, text).unwrap();
    let mut daemon = Daemon::start(&cfg);
    let (cookie, csrf) = set_up_and_log_in(&mut daemon, addr);
    let auth = [("Cookie", cookie.as_str())];
    let change = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];

    let offered = http(addr, "GET", "/api/selftests", &auth, None).json();
    assert_eq!(offered["allowed"], true, "{offered:#}");
    let entry = |o: &str| {
        offered["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["output"] == o)
            .cloned()
            .unwrap_or_else(|| panic!("{o} offered: {offered:#}"))
    };
    assert_eq!(entry("relay:1")["readback"], true);
    assert_eq!(entry("relay:1")["needs_confirmation"], false);
    assert_eq!(entry("relay:2")["needs_confirmation"], true);
    assert_eq!(entry("relay:2")["name"], "doors");
    for o in ["led", "audio", "mqtt"] {
        assert_eq!(entry(o)["enabled"], true, "{o}");
    }

    // A relay's test needs the confirmation that it may operate real equipment.
    let r = http(
        addr,
        "POST",
        "/api/selftest",
        &change,
        Some(&json!({"output": "relay:1"})),
    );
    assert_eq!(r.status, 400, "{r:?}");
    // The next evidence line for `output` after line `from`.
    let evidence = |daemon: &mut Daemon, from: usize, output: &str| {
        let is = |v: &Value| v["type"] == "evidence" && v["output"] == output;
        let found = daemon.until(Duration::from_secs(20), |l| l[from..].iter().any(is));
        assert!(found, "evidence for {output}: {:#?}", &daemon.seen[from..]);
        daemon.seen[from..].iter().find(|v| is(v)).cloned().unwrap()
    };
    let test = |output: &str| {
        let r = http(
            addr,
            "POST",
            "/api/selftest",
            &change,
            Some(&json!({"output": output, "confirm": true})),
        );
        assert_eq!(r.status, 200, "{output}: {r:?}");
        r.json()
    };

    // relay:1 with its read-back: a pulse on pin 5, proved by both edges.
    let before = daemon.seen.len();
    let answer = test("relay:1");
    assert_eq!(answer["needs_confirmation"], false);
    let e = evidence(&mut daemon, before, "relay:1");
    assert_eq!(e["ok"], true, "{e:#}");
    assert_eq!(
        (&e["source"], &e["method"]),
        (&json!("self_test"), &json!("readback"))
    );
    assert!(e["measurement_ms"].as_f64().unwrap() < 200.0, "{e:#}");
    let pin5: Vec<&Value> = daemon.seen[before..]
        .iter()
        .filter(|v| v["type"] == "pin" && v["pin"] == 5)
        .collect();
    assert_eq!(pin5.len(), 2, "closed then opened: {pin5:#?}");
    let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v["at"].as_str().unwrap()).unwrap();
    let held = (at(pin5[1]) - at(pin5[0])).num_milliseconds();
    assert!(
        (450..1500).contains(&held),
        "a 500 ms pulse, held {held} ms"
    );

    // relay:2 without read-back: the pin moved, and only the operator can say more.
    let mark = daemon.seen.len();
    let answer = test("relay:2");
    assert_eq!(answer["needs_confirmation"], true);
    let e = evidence(&mut daemon, mark, "relay:2");
    assert_eq!((&e["ok"], &e["method"]), (&json!(true), &json!("pin")));
    let mark = daemon.seen.len();
    let r = http(
        addr,
        "POST",
        "/api/selftest/confirm",
        &change,
        Some(&json!({"output": "relay:2", "ok": false, "note": "door release did not click"})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let e = evidence(&mut daemon, mark, "relay:2");
    assert_eq!(
        (&e["ok"], &e["source"]),
        (&json!(false), &json!("operator"))
    );
    let status = status_when(addr, &auth, Duration::from_secs(5), |s| {
        s["verification"]["relay:2"]["last"]["ok"] == false
    });
    let shown = status["verification"]["relay:2"].to_string();
    assert!(shown.contains("door release did not click"), "{status:#}");
    // (The LED shows the link fault here, which outranks a failed proof: hw::led's tests.)

    // The lamp test, the PA's test phrase and the MQTT round trip.
    let mark = daemon.seen.len();
    test("led");
    daemon.first(Duration::from_secs(5), |v| {
        v["type"] == "led" && v["pattern"] == "lamp_test"
    });
    let e = evidence(&mut daemon, mark, "led");
    assert_eq!((&e["ok"], &e["method"]), (&json!(true), &json!("pin")));
    let mark = daemon.seen.len();
    test("audio");
    let e = evidence(&mut daemon, mark, "audio");
    assert_eq!((&e["ok"], &e["method"]), (&json!(true), &json!("playback")));
    let played = e["measurement_ms"].as_f64().unwrap();
    assert!(played > 2000.0, "chime and phrase: {played} ms");
    let mark = daemon.seen.len();
    test("mqtt");
    let e = evidence(&mut daemon, mark, "mqtt");
    assert_eq!(e["ok"], true, "{e:#}\n{}", broker.log());
    assert_eq!(e["method"], "roundtrip");
    // The operator confirms what was heard; it becomes the latest proof.
    let r = http(
        addr,
        "POST",
        "/api/selftest/confirm",
        &change,
        Some(&json!({"output": "audio", "ok": true})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let status = status_when(addr, &auth, Duration::from_secs(5), |s| {
        s["verification"]["audio"]["last"]["method"] == "operator"
    });
    assert_eq!(
        status["verification"]["audio"]["last_ok_method"],
        "operator"
    );
    assert_eq!(
        status["verification"]["mqtt"]["last_ok_method"],
        "roundtrip"
    );
    daemon.stop();

    // History keeps the evidence: after a restart the ages are still known.
    let daemon = Daemon::start(&cfg);
    wait_listening(addr);
    let (cookie, _) = log_in(addr);
    let status = status_when(
        addr,
        &[("Cookie", cookie.as_str())],
        Duration::from_secs(5),
        |s| s["verification"]["relay:1"]["last_ok_at"].is_string(),
    );
    for o in ["relay:1", "led", "audio", "mqtt"] {
        assert!(
            status["verification"][o]["last_ok_at"].is_string(),
            "{o}: {status:#}"
        );
    }
    assert_eq!(status["verification"]["relay:2"]["last"]["ok"], false);
    daemon.stop();
    let audit = history_audit(&cfg);
    for action in ["self_test", "self_test_confirmed"] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
}

/// A saved change is proved at once (issue 7): the channels whose keys it changed are
/// on the status model, and each that the appliance can probe by itself is probed as
/// soon as the change is in effect — the contact's idle read-back, the MQTT round trip.
#[test]
fn a_saved_change_probes_the_channels_it_touched() {
    let dir = scratch("change_probes");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let broker = mosquitto::Mosquitto::start(&dir.join("broker"));
    let feed = fixtures().join("jmaxml_vxse42_20090811_delivery_test.xml");
    let text = format!(
        "[site]\nlat = 33.24\nlon = 131.61\narv400 = 1.2\narea_code = \"751\"\n\
         [[outputs.relay]]\nid = 1\nname = \"elevators\"\nmin_class = \"4\"\n\
         [[outputs.relay]]\nid = 2\nname = \"doors\"\nmin_class = \"4\"\n\
         [storage]\npath = \"history.db\"\n[time]\nrequire_sync = false\n\
         [hardware]\nbackend = \"sim\"\n\
         [[hardware.relay]]\nid = 1\npin = 5\nreadback_pin = 24\n\
         [[hardware.relay]]\nid = 2\npin = 6\n\
         [mqtt]\nhost = \"127.0.0.1\"\nport = {}\ndevice_id = \"cp-tower\"\n\
         [webui]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\n\
         [[links.replay]]\nname = \"feed\"\nfiles = [{feed:?}]\n",
        broker.port()
    );
    let cfg = dir.join("eewgate.toml");
    std::fs::write(&cfg, text).unwrap();
    let mut daemon = Daemon::start(&cfg);
    let (cookie, csrf) = set_up_and_log_in(&mut daemon, addr);
    let auth = [("Cookie", cookie.as_str())];
    let change = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];
    let before = http(addr, "GET", "/api/status", &auth, None).json();
    assert_eq!(before["settings"]["changed_channels"], json!([]));

    // Contact 1's threshold and MQTT's keep-alive change; contact 2 does not.
    let mark = daemon.seen.len();
    let r = save_changes(
        addr,
        &change,
        json!([
            {"path": "outputs.relay[0].min_class", "value": "5-"},
            {"path": "mqtt.keep_alive_s", "value": 20},
        ]),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let applied = status_when(addr, &auth, Duration::from_secs(30), |s| {
        s["settings"]["changed_channels"] == json!(["mqtt", "relay:1"])
    });
    assert_eq!(
        applied["settings"]["changed_channels"],
        json!(["mqtt", "relay:1"]),
        "{:#}",
        applied["settings"]
    );
    // Both are probed after the change, without waiting for their schedule (contact 1's
    // window is 03:00–04:00; MQTT's interval five minutes).
    let proved = |d: &mut Daemon, output: &str| {
        let is =
            |v: &Value| v["type"] == "evidence" && v["output"] == output && v["source"] == "probe";
        let found = d.until(Duration::from_secs(30), |l| l[mark..].iter().any(is));
        assert!(
            found,
            "a probe of {output} after the save: {:#?}",
            &d.seen[mark..]
        );
        d.seen[mark..].iter().find(|v| is(v)).cloned().unwrap()
    };
    let relay = proved(&mut daemon, "relay:1");
    assert_eq!(relay["method"], "readback_idle", "{relay:#}");
    assert_eq!(relay["ok"], true, "{relay:#}");
    let mqtt = proved(&mut daemon, "mqtt");
    assert_eq!(mqtt["method"], "roundtrip", "{mqtt:#}");
    assert_eq!(mqtt["ok"], true, "{mqtt:#}");
    assert!(
        !daemon.seen[mark..]
            .iter()
            .any(|v| v["type"] == "evidence" && v["output"] == "relay:2"),
        "the untouched contact is not probed"
    );
    // The status model carries the results the settings page shows.
    let status = status_when(addr, &auth, Duration::from_secs(10), |s| {
        s["verification"]["relay:1"]["last"]["method"] == "readback_idle"
            && s["verification"]["mqtt"]["last"]["ok"] == true
    });
    assert_eq!(
        status["verification"]["relay:1"]["last"]["ok"], true,
        "{:#}",
        status["verification"]
    );
    assert!(
        status["verification"]["relay:1"]["due_at"].is_string(),
        "{:#}",
        status["verification"]
    );
    daemon.stop();
}
