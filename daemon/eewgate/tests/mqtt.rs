//! System tests of the MQTT output: the real `eewgate run` with a replay link of the
//! 2024-04-17 Bungo channel series (JMA's official sample set, ending with a cancel) and
//! `[mqtt]` pointing at a real Mosquitto (tests/support/mosquitto.rs); a rumqttc client
//! plays the building management system.
//!
//! The output's own behaviour (every topic, reconnects, stale alerts, faults, TLS) is
//! tested in process by `src/mqtt/tests.rs`; these check the daemon wires it in.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

#[path = "support/mosquitto.rs"]
mod mosquitto;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mosquitto::Mosquitto;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

const PREFIX: &str = "eewgate/it-tower";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/fixtures/telegrams")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("mqtt")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The Bungo series, in order (32 reports and the cancel).
fn bungo() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("jmaxml_vxse44_20240417_bungo_") && n.ends_with(".xml")
        })
        .collect();
    files.sort();
    files
}

/// A building in 大分県中部 (area 751) fed by the Bungo series, with `mqtt` (the
/// `[mqtt]` section) appended.
fn config(dir: &Path, mqtt: &str) -> PathBuf {
    let files: Vec<String> = bungo()
        .iter()
        .map(|p| format!("{:?}", p.to_string_lossy()))
        .collect();
    let text = format!(
        "[site]\nlat = 33.24\nlon = 131.61\narv400 = 1.2\narea_code = \"751\"\n\
         [storage]\npath = {:?}\n\
         [time]\nrequire_sync = false\n\
         {mqtt}\n\
         [[links.replay]]\nname = \"drill\"\ninterval_ms = 20\nfiles = [{}]\n",
        dir.join("history.db").to_string_lossy(),
        files.join(", ")
    );
    let path = dir.join("eewgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The daemon is killed when a test fails half-way.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(config: &Path) -> (KillOnDrop, std::sync::mpsc::Receiver<Value>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .args(["run", "--events-stdout", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .env("EEWGATE_LOG", "info")
        .spawn()
        .expect("the daemon starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
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
    (KillOnDrop(child), rx)
}

/// A subscriber (the BMS): every message under `filter`, as (topic, payload, retained).
struct Bms {
    rx: mpsc::UnboundedReceiver<(String, String, bool)>,
    seen: Vec<(String, String, bool)>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Bms {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Bms {
    async fn subscribe(port: u16, filter: &str) -> Self {
        let mut o = MqttOptions::new(
            format!("bms-{}-{}", std::process::id(), port),
            "127.0.0.1",
            port,
        );
        o.set_max_packet_size(Some(1024 * 1024));
        let (client, mut el) = AsyncClient::new(o, 16);
        client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let _client = client;
            let mut ready = Some(ready_tx);
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send((
                            String::from_utf8_lossy(&p.topic).into_owned(),
                            String::from_utf8_lossy(&p.payload).into_owned(),
                            p.retain,
                        ));
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(5), ready_rx)
            .await
            .unwrap()
            .unwrap();
        Self {
            rx,
            seen: Vec::new(),
            task,
        }
    }

    async fn until(
        &mut self,
        timeout: Duration,
        done: impl Fn(&[(String, String, bool)]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        while !done(&self.seen) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) => self.seen.push(m),
                Ok(None) | Err(_) => return false,
            }
        }
        true
    }

    async fn settle(&mut self, quiet: Duration) {
        while let Ok(Some(m)) = tokio::time::timeout(quiet, self.rx.recv()).await {
            self.seen.push(m);
        }
    }

    fn events(&self) -> Vec<Value> {
        self.seen
            .iter()
            .filter(|(t, _, _)| *t == format!("{PREFIX}/event"))
            .map(|(_, p, _)| serde_json::from_str(p).unwrap())
            .collect()
    }
}

fn saw(seen: &[(String, String, bool)], topic: &str, payload: &str) -> bool {
    seen.iter()
        .any(|(t, p, _)| *t == format!("{PREFIX}/{topic}") && p == payload)
}

async fn retained(port: u16, filter: &str) -> BTreeMap<String, String> {
    let mut b = Bms::subscribe(port, filter).await;
    b.settle(Duration::from_millis(300)).await;
    b.seen
        .iter()
        .filter(|(_, _, r)| *r)
        .map(|(t, p, _)| (t.clone(), p.clone()))
        .collect()
}

fn lines_until(
    rx: &std::sync::mpsc::Receiver<Value>,
    seen: &mut Vec<Value>,
    timeout: Duration,
    done: impl Fn(&[Value]) -> bool,
) {
    let deadline = std::time::Instant::now() + timeout;
    while !done(seen) {
        match rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            Ok(v) => seen.push(v),
            Err(_) => break,
        }
    }
}

/// The replayed Bungo series: the alert appears on the flat state topics and as events,
/// every report and decision is an event, the cancel clears the state; each Publish is
/// acknowledged (`type = "mqtt"` lines); SIGTERM leaves `offline` retained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_publishes_a_replayed_event_and_clears_it_after_the_cancel() {
    let dir = scratch("replay");
    let broker = Mosquitto::start(&dir.join("broker"));
    let mut bms = Bms::subscribe(broker.port(), &format!("{PREFIX}/#")).await;
    let cfg = config(
        &dir,
        &format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = {}\ndevice_id = \"it-tower\"\ncap = true\n",
            broker.port()
        ),
    );
    let (mut child, rx) = start(&cfg);
    assert!(
        bms.until(Duration::from_secs(30), |s| saw(
            s,
            "state/alert_active",
            "true"
        ) && s.iter().any(
            |(t, p, _)| t.ends_with("/event") && p.contains("\"cancelled\"")
        ))
        .await,
        "{:#?}",
        bms.seen
    );
    bms.settle(Duration::from_millis(500)).await;
    assert!(saw(&bms.seen, "status", "online"));
    let alerts: Vec<Value> = bms
        .events()
        .into_iter()
        .filter(|v| v["type"] == "alert")
        .collect();
    assert_eq!(alerts.first().unwrap()["state"], "started");
    assert_eq!(alerts.first().unwrap()["event_id"], "20240417231454");
    assert_eq!(alerts.last().unwrap()["state"], "cancelled");
    let reports = bms
        .events()
        .iter()
        .filter(|v| v["type"] == "report")
        .count();
    assert_eq!(reports, bungo().len(), "every accepted report is an event");
    assert!(bms.events().iter().any(|v| v["type"] == "decision"));
    let r = retained(broker.port(), &format!("{PREFIX}/#")).await;
    assert_eq!(r[&format!("{PREFIX}/state/alert_active")], "false");
    assert!(
        !r.contains_key(&format!("{PREFIX}/state/intensity_class")),
        "{r:?}"
    );
    assert!(!r.contains_key(&format!("{PREFIX}/cap")), "{r:?}");
    let health: Value = serde_json::from_str(&r[&format!("{PREFIX}/health")]).unwrap();
    assert_eq!(health["outputs"]["mqtt"], "ok");

    // The daemon's own account: connected, every Publish acknowledged with its latency.
    let mut lines = Vec::new();
    let n = alerts.len();
    lines_until(&rx, &mut lines, Duration::from_secs(5), |l| {
        l.iter()
            .filter(|v| v["type"] == "mqtt" && v["event"] == "published")
            .count()
            >= n
    });
    assert!(
        lines
            .iter()
            .any(|v| v["type"] == "mqtt" && v["event"] == "connected")
    );
    let published: Vec<&Value> = lines
        .iter()
        .filter(|v| v["type"] == "mqtt" && v["event"] == "published")
        .collect();
    assert_eq!(published.len(), n, "{lines:#?}");
    assert!(
        published
            .iter()
            .all(|v| v["ok"] == true && v["latency_us"].as_i64().unwrap() >= 0)
    );

    kill(
        Pid::from_raw(i32::try_from(child.0.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let r = retained(broker.port(), &format!("{PREFIX}/status")).await;
    assert_eq!(r[&format!("{PREFIX}/status")], "offline");
}

/// `check-config` reports `[mqtt]` problems with their paths, every one at once.
#[test]
fn check_config_reports_mqtt_problems_with_their_paths() {
    let dir = scratch("check");
    let cfg = config(
        &dir,
        "[mqtt]\nport = 0\ntopic_prefix = \"a/#\"\ncolour = \"red\"\n[mqtt.tls]\nca_file = \"missing.pem\"\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .arg("check-config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let err =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    for p in [
        "mqtt.port",
        "mqtt.topic_prefix",
        "mqtt.colour",
        "mqtt.tls.ca_file",
    ] {
        assert!(err.contains(p), "{p} in {err}");
    }
}

/// The broker is down when the daemon starts: the daemon runs anyway (MQTT is never on
/// the relays' path) and reports the output fault; once a broker listens it connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_broker_is_a_fault_line_and_the_daemon_runs_on() {
    let dir = scratch("missing");
    let port = mosquitto::free_port();
    let cfg = config(
        &dir,
        &format!("[mqtt]\nport = {port}\ndevice_id = \"it-tower\"\n"),
    );
    let (mut child, rx) = start(&cfg);
    let mut lines = Vec::new();
    lines_until(&rx, &mut lines, Duration::from_secs(10), |l| {
        l.iter()
            .any(|v| v["type"] == "fault" && v["fault"] == "mqtt" && v["active"] == true)
    });
    let fault = lines
        .iter()
        .find(|v| v["type"] == "fault" && v["fault"] == "mqtt")
        .unwrap_or_else(|| panic!("no mqtt fault in {lines:#?}"));
    assert!(
        fault["detail"].as_str().unwrap().contains("unreachable"),
        "{fault:?}"
    );
    assert!(child.0.try_wait().unwrap().is_none(), "the daemon runs on");
    let _broker = Mosquitto::start_on(&dir.join("broker"), port, &mosquitto::Options::default());
    lines_until(&rx, &mut lines, Duration::from_secs(10), |l| {
        l.iter()
            .any(|v| v["type"] == "fault" && v["fault"] == "mqtt" && v["active"] == false)
    });
    assert!(
        lines
            .iter()
            .any(|v| v["type"] == "mqtt" && v["event"] == "connected"),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|v| v["type"] == "fault" && v["fault"] == "mqtt" && v["active"] == false),
        "the fault cleared: {lines:#?}"
    );
    let _ = kill(
        Pid::from_raw(i32::try_from(child.0.id()).unwrap()),
        Signal::SIGTERM,
    );
    let _ = child.0.wait();
}
