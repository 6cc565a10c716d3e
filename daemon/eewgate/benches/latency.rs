//! Receive-to-decision latency of the real daemon through a real loopback socket.
//!
//! The benchmark is the upstream: it listens on 127.0.0.1, starts `eewgate run
//! --events-stdout` with one plain JMA TCP link to itself, and writes code telegrams to
//! the socket one at a time, so it knows the instant the last byte (the `=` of `9999=`,
//! which completes the frame) was written. Each telegram is the real 2011 Tohoku
//! warning, renumbered (distinct event id / serial, so every one is accepted) and moved to
//! the current time (so it is fresh and the engine acts on it — a building in 宮城県南部,
//! the default outputs: relays, audio, LED, MQTT). It also starts a real Mosquitto on a
//! free loopback port (`tests/support/mosquitto.rs`), points the daemon's `[mqtt]` at it
//! and subscribes to it itself (rumqttc, MQTT 5 like the daemon, QoS 1). Four latencies
//! per telegram:
//!
//! - **daemon**: the `decision_us` the daemon reports — from the return of the read that
//!   completed the telegram to the engine's decision (parse, merge, engine step);
//! - **external**: from just before the socket write (one `write(2)` of the whole
//!   telegram; on loopback the daemon can read it before the call returns) to this
//!   process reading the `telegram` line on the daemon's stdout — adds the kernel's
//!   loopback delivery, the link task, the queue to the core loop and the stdout writer;
//! - **relay**: from just before the write to the sim relay's pin edge (the `switched_at`
//!   of the relay's `switched` line: wall clock, same machine);
//! - **mqtt**: from just before the write to this process's MQTT subscriber receiving the
//!   daemon's non-retained `P/event` message with `type = "alert"` (`state = "started"`)
//!   for that event id and serial — through the MQTT output's queue, rumqttc, the broker
//!   and back over loopback. That message is the one to measure because it is the
//!   per-alert, per-serial edge a BMS acts on (docs/mqtt.md, "For BMS integrators":
//!   `P/event` for edge-triggered notifications, deduplicated by `event_id` + `serial`) and
//!   the first `P/event` of a telegram: the core loop hands the output the engine's
//!   actions before the decisions and the report, so the `decision` and `report` events
//!   follow it. The retained `P/state/…` topics (`alert_active` among them) can precede
//!   it — they are pushed just before the event, but only when the alert on display
//!   changes — and carry no event id or serial (`alert_active` is just `true`): here the
//!   alarms of successive telegrams overlap, so `alert_active` is already `true` after the
//!   first one and most later telegrams publish no state at all (their alerts are not
//!   `driving`). Per telegram, the alert event is the first message a BMS can act on.
//!
//! Telegrams are sent one after another with a short gap (latency, not throughput: each
//! one meets an idle daemon); the first few after start are a warm-up and are reported
//! separately (the first one pays for lazy initialisation). Every telegram must produce
//! its stdout lines, its relay edge and its MQTT alert within `TIMEOUT`, or the benchmark
//! stops with the telegram's index.
//!
//! `cargo bench -p eewgate --bench latency` runs 500 telegrams (`LATENCY_N` to change);
//! run without `--bench` (`cargo test --benches`) it runs 20, as a smoke test.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark: any failure should stop it loudly"
)]

#[path = "../tests/support/mosquitto.rs"]
mod mosquitto;
#[path = "../tests/support/synth.rs"]
mod synth;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, SubscribeReasonCode};
use rumqttc::v5::{Client, Event, MqttOptions};
use serde_json::Value;

/// Unmeasured telegrams sent first.
const WARM_UP: u32 = 5;
/// Pause between telegrams (lets the outputs, history and stdout settle, and the relay's
/// 100 ms pulse end, so every telegram makes a fresh edge).
const GAP: Duration = Duration::from_millis(150);
/// How long one telegram may take before the benchmark gives up.
const TIMEOUT: Duration = Duration::from_secs(20);
/// The daemon's MQTT device id; its topics are under `eewgate/<it>`.
const DEVICE_ID: &str = "latency-bench";

/// The daemon, killed when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config(dir: &Path, port: u16, mqtt_port: u16) -> PathBuf {
    let text = format!(
        "# eewgate latency benchmark\n\
         [site]\nlat = 38.05\nlon = 140.75\narv400 = 1.2\narea_code = \"221\"\n\
         [storage]\npath = {:?}\n\
         [time]\nrequire_sync = false\n\
         [mqtt]\nhost = \"127.0.0.1\"\nport = {mqtt_port}\ndevice_id = \"{DEVICE_ID}\"\n\
         [[outputs.relay]]\nid = 1\nname = \"bench pulse\"\nmin_class = \"1\"\nmode = \"pulse\"\npulse_ms = 100\n\
         [[links.jma_tcp]]\nname = \"bench\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         framing = \"plain\"\nsilence_limit_s = 3600\n",
        dir.join("history.db").to_string_lossy()
    );
    let path = dir.join("eewgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Accepts the daemon's connection, giving up after `TIMEOUT`.
fn accept(listener: &TcpListener, daemon: &mut Daemon) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                stream.set_nodelay(true).unwrap();
                return stream;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Some(status) = daemon.0.try_wait().unwrap() {
                    panic!("the daemon exited ({status}) before connecting");
                }
                assert!(Instant::now() < deadline, "the daemon did not connect");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// The next stdout line satisfying `pred` (others are passed to `other`).
fn next_line(
    lines: &mpsc::Receiver<(Instant, Value)>,
    what: &str,
    pred: impl Fn(&Value) -> bool,
    mut other: impl FnMut(&Value),
) -> (Instant, Value) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok((at, v)) if pred(&v) => return (at, v),
            Ok((_, v)) => other(&v),
            Err(e) => panic!("no {what} from the daemon ({e})"),
        }
    }
}

/// What the benchmark's MQTT subscriber hears.
enum Heard {
    /// The broker granted every subscription (QoS 1).
    Subscribed,
    /// A message: when the client handed it over, its topic and payload.
    Message(Instant, String, Vec<u8>),
    /// The connection failed or a subscription was refused; the subscriber has stopped
    /// (a reconnect could silently miss messages).
    Failed(String),
}

/// Connects an MQTT 5 client to the broker on `port`, subscribes to `topics` with QoS 1
/// and runs its event loop on a thread of its own, which stamps every message with
/// `Instant::now()` as soon as the client returns it.
fn subscriber(port: u16, topics: &[String]) -> mpsc::Receiver<Heard> {
    let mut options = MqttOptions::new(
        format!("latency-bench-sub-{}", std::process::id()),
        "127.0.0.1",
        port,
    );
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_start(true);
    let (client, mut connection) = Client::new(options, 16);
    for t in topics {
        client.subscribe(t.as_str(), QoS::AtLeastOnce).unwrap();
    }
    let wanted = topics.len();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Dropping the client would end the event loop.
        let _client = client;
        let mut granted = 0;
        for event in connection.iter() {
            let at = Instant::now();
            let heard = match event {
                Ok(Event::Incoming(Packet::Publish(p))) => Heard::Message(
                    at,
                    String::from_utf8_lossy(&p.topic).into_owned(),
                    p.payload.to_vec(),
                ),
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    if let Some(code) = ack
                        .return_codes
                        .iter()
                        .find(|c| !matches!(c, SubscribeReasonCode::Success(QoS::AtLeastOnce)))
                    {
                        Heard::Failed(format!("subscription refused: {code:?}"))
                    } else {
                        granted += ack.return_codes.len();
                        if granted < wanted {
                            continue;
                        }
                        Heard::Subscribed
                    }
                }
                Ok(_) => continue,
                Err(e) => Heard::Failed(e.to_string()),
            };
            let failed = matches!(heard, Heard::Failed(_));
            if tx.send(heard).is_err() || failed {
                break;
            }
        }
    });
    rx
}

/// The first message on `topic` satisfying `pred` (others are skipped), before
/// `deadline`; panics with `what` when there is none.
fn next_message(
    heard: &mpsc::Receiver<Heard>,
    what: &str,
    topic: &str,
    deadline: Instant,
    pred: impl Fn(&[u8]) -> bool,
) -> (Instant, Vec<u8>) {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match heard.recv_timeout(left) {
            Ok(Heard::Message(at, t, payload)) if t == topic && pred(&payload) => {
                return (at, payload);
            }
            Ok(Heard::Message(..) | Heard::Subscribed) => {}
            Ok(Heard::Failed(e)) => panic!("{what}: the MQTT subscriber failed: {e}"),
            Err(e) => panic!("{what}: nothing on {topic} ({e})"),
        }
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil().max(1.0) as usize;
    sorted[rank.min(n) - 1]
}

fn summary(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    println!(
        "{name:<48} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
        percentile(&ms, 50.0),
        percentile(&ms, 99.0),
        ms[ms.len() - 1],
        ms[0],
        mean
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: u32 = std::env::var("LATENCY_N")
        .ok()
        .map(|v| v.parse().expect("LATENCY_N is a number of telegrams"))
        .unwrap_or(if full { 500 } else { 20 });
    assert!(n + WARM_UP <= synth::MAX_EVENT + 1, "LATENCY_N too large");

    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("latency-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // The building's broker, and this process as its BMS, subscribed before the daemon
    // starts (it connects on its own, and every `P/event` must reach us).
    let mut broker = mosquitto::Mosquitto::start(&dir.join("mosquitto"));
    println!(
        "broker log: {}",
        dir.join("mosquitto/mosquitto.log").display()
    );
    let prefix = format!("eewgate/{DEVICE_ID}");
    let (event_topic, status_topic) = (format!("{prefix}/event"), format!("{prefix}/status"));
    let heard = subscriber(broker.port(), &[event_topic.clone(), status_topic.clone()]);
    match heard.recv_timeout(TIMEOUT) {
        Ok(Heard::Subscribed) => {}
        Ok(Heard::Failed(e)) => panic!("the MQTT subscriber failed: {e}"),
        Ok(Heard::Message(_, t, _)) => panic!("a message on {t} before the subscription"),
        Err(e) => panic!("the MQTT subscription was not granted ({e})"),
    }
    let cfg = config(&dir, listener.local_addr().unwrap().port(), broker.port());

    // The daemon's log (default level: warnings) goes to a file, kept when the benchmark
    // fails.
    let log = dir.join("daemon.log");
    println!("daemon log: {}", log.display());
    let mut daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_eewgate"))
            .args(["run", "--events-stdout", "--config"])
            .arg(&cfg)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the daemon starts"),
    );
    let stdout = daemon.0.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let at = Instant::now();
            let v: Value = serde_json::from_str(&line).unwrap();
            if tx.send((at, v)).is_err() {
                break;
            }
        }
    });
    let mut upstream = accept(&listener, &mut daemon);
    next_line(
        &lines,
        "link up",
        |v| v["type"] == "link" && v["state"] == "up",
        |_| {},
    );
    // The daemon's MQTT session is up (`online` is published after every CONNACK).
    next_message(
        &heard,
        "daemon online",
        &status_topic,
        Instant::now() + TIMEOUT,
        |p| p == b"online",
    );

    let base = synth::base();
    let mut daemon_ms = Vec::with_capacity(n as usize);
    let mut external_ms = Vec::with_capacity(n as usize);
    let mut relay_ms = Vec::with_capacity(n as usize);
    let mut mqtt_ms = Vec::with_capacity(n as usize);
    let mut warm_up = Vec::new();
    let mut actions = 0u64;
    for i in 0..(WARM_UP + n) {
        // Every time in the telegram moves with the issue time (whole seconds on the wire).
        let issued = eewgate::system::clock::now_jst().0.naive_local();
        // A new event each time: every telegram starts an alarm, the path that matters.
        let telegram = synth::telegram(&base, i, 1, Some(issued));
        let report = eew_core::parse(&telegram).unwrap();
        let (event_id, serial) = (report.event_id.as_str().to_owned(), report.serial);
        let mut wire = b"\r\n".to_vec();
        wire.extend_from_slice(telegram.trim_ascii_end());
        // On loopback the bytes reach the daemon during the write call (its read can
        // return before ours does), so the clock starts just before it: a small
        // overestimate rather than a preemption after the call hiding latency.
        let written = Instant::now();
        let written_wall = eewgate::system::clock::now_utc();
        upstream.write_all(&wire).unwrap();
        // The telegram line and the relay's `switched` line (its `switched_at` is the
        // wall-clock instant the sim pin changed; same machine, same clock), in either
        // order.
        let mut telegram_line = None;
        let mut switched_line = None;
        let deadline = Instant::now() + TIMEOUT;
        while telegram_line.is_none() || switched_line.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, v) = lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("telegram {i}: no telegram/switched line ({e})"));
            let ours = v["event_id"] == event_id && v["serial"] == serial;
            if ours && v["type"] == "telegram" {
                telegram_line = Some((at, v));
            } else if ours && v["type"] == "switched" && v["closed"] == true {
                switched_line = Some(v);
            } else {
                actions += u64::from(v["type"] == "action");
            }
        }
        // The alert's `P/event` message (it may have arrived before the stdout lines;
        // the subscriber stamped it when it did).
        let (heard_at, _) = next_message(
            &heard,
            &format!("telegram {i}: MQTT alert event for {event_id} serial {serial}"),
            &event_topic,
            deadline,
            |p| {
                let v: Value = serde_json::from_slice(p).unwrap();
                let ours =
                    v["type"] == "alert" && v["event_id"] == event_id && v["serial"] == serial;
                assert!(!ours || v["state"] == "started", "telegram {i}: {v}");
                ours
            },
        );
        let mqtt = heard_at.duration_since(written).as_secs_f64() * 1000.0;
        let (seen, line) = telegram_line.unwrap();
        let edge = switched_line.unwrap();
        let edge_at =
            chrono::DateTime::parse_from_rfc3339(edge["switched_at"].as_str().unwrap()).unwrap();
        let relay = (edge_at.with_timezone(&chrono::Utc) - written_wall)
            .num_microseconds()
            .unwrap() as f64
            / 1000.0;
        assert_eq!(line["verdict"], "accepted", "{line}");
        let daemon_us = line["decision_us"].as_u64().unwrap() as f64;
        let external = seen.duration_since(written).as_secs_f64() * 1000.0;
        if i < WARM_UP {
            warm_up.push((daemon_us / 1000.0, external, relay, mqtt));
        } else {
            daemon_ms.push(daemon_us / 1000.0);
            external_ms.push(external);
            relay_ms.push(relay);
            mqtt_ms.push(mqtt);
        }
        std::thread::sleep(GAP);
        while let Ok((_, v)) = lines.try_recv() {
            actions += u64::from(v["type"] == "action");
        }
    }

    println!();
    println!(
        "eewgate receive-to-decision latency: {n} fresh code telegrams (+{WARM_UP} warm-up) over loopback TCP, one at a time"
    );
    println!(
        "{:<48} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "ms", "p50", "p99", "max", "min", "mean"
    );
    summary("daemon decision_us (read → decided)", daemon_ms);
    summary("external (write → stdout line read)", external_ms);
    summary("relay (last byte written → sim pin edge)", relay_ms);
    summary("mqtt (last byte written → subscriber received)", mqtt_ms);
    let (cold_daemon, cold_external, cold_relay, cold_mqtt) = warm_up[0];
    println!(
        "first telegram after start: daemon {cold_daemon:.3} ms, external {cold_external:.3} ms, relay {cold_relay:.3} ms, mqtt {cold_mqtt:.3} ms; {actions} output actions emitted"
    );

    let pid = nix::unistd::Pid::from_raw(i32::try_from(daemon.0.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while daemon.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the daemon did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(upstream);
    broker.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
