//! System tests of delivery assurance (issue 7): the real daemon, a real Mosquitto, the
//! sim board. A BMS that acknowledges probes on the right prefix proves the MQTT channel;
//! one listening on a wrong prefix fails the very next probe; a broker ACL that denies the
//! alert topics fails the round trip; a contact whose read-back does not follow is
//! faulted by its scheduled probe; evidence older than its limit raises
//! `verification_overdue` — on the status model's event lines, the LED and the retained
//! MQTT `health`.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/mosquitto.rs"]
mod mosquitto;
use daemon::Daemon;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::{Value, json};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("system_assurance")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A daemon with one contact, the LED, MQTT to `broker_port`, and `extra` settings text;
/// its one link replays JMA's delivery test (no alarm: these tests are about the outputs,
/// and a link that stays up keeps the LED free to show verification).
fn config(dir: &Path, broker_port: u16, extra: &str) -> PathBuf {
    let feed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../core/tests/fixtures/telegrams/jmaxml_vxse42_20090811_delivery_test.xml");
    let text = format!(
        "[site]\nlat = 35.68\nlon = 139.76\narv400 = 1.0\narea_code = \"350\"\n\
         [[outputs.relay]]\nid = 1\nname = \"elevators\"\nmin_class = \"4\"\n\
         [storage]\npath = \"history.db\"\n[time]\nrequire_sync = false\n\
         [hardware]\nbackend = \"sim\"\n\
         [[hardware.relay]]\nid = 1\npin = 5\nreadback_pin = 24\nreadback_timeout_ms = 100\nprobe = \"pulse\"\n\
         [hardware.led]\nred_pin = 17\ngreen_pin = 27\n\
         [mqtt]\nhost = \"127.0.0.1\"\nport = {broker_port}\ndevice_id = \"tower\"\n\
         [[links.replay]]\nname = \"feed\"\nfiles = [{feed:?}]\n\
         {extra}"
    );
    let path = dir.join("eewgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn mqtt_evidence(v: &Value) -> bool {
    v["type"] == "evidence" && v["output"] == "mqtt"
}

/// A building management system: subscribes to `listen` (`<prefix>/event`) and answers
/// every probe it sees on the `ack_topic` the probe names.
async fn bms(port: u16, listen: &str) -> tokio::task::JoinHandle<()> {
    let mut o = MqttOptions::new(format!("bms-{port}-{}", listen.len()), "127.0.0.1", port);
    o.set_max_packet_size(Some(1024 * 1024));
    let (client, mut el) = AsyncClient::new(o, 16);
    client.subscribe(listen, QoS::AtLeastOnce).await.unwrap();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let Ok(v) = serde_json::from_slice::<Value>(&p.payload) else {
                        continue;
                    };
                    if v["type"] == "probe"
                        && let Some(topic) = v["ack_topic"].as_str()
                    {
                        let ack = json!({"probe_id": v["probe_id"], "bms": "test-bms"});
                        client
                            .publish(topic, QoS::AtLeastOnce, false, ack.to_string())
                            .await
                            .unwrap();
                    }
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
    task
}

/// The retained `health` document, read by a fresh subscriber.
fn retained_health(port: u16, prefix: &str) -> Value {
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t"])
        .arg(format!("{prefix}/health"))
        .args(["-C", "1", "-W", "5"])
        .output()
        .expect("mosquitto_sub runs (apt-get install mosquitto-clients)");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "health is JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bms_on_a_wrong_prefix_fails_the_next_probe_and_faults_the_channel() {
    let dir = scratch("bms_ack");
    let broker = mosquitto::Mosquitto::start(&dir.join("broker"));
    let cfg = config(&dir, broker.port(), "[assurance]\nmqtt_probe_every_s = 4\n");
    // bms_ack and a short timeout belong to [mqtt].
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "device_id = \"tower\"\n",
        "device_id = \"tower\"\nbms_ack = true\nprobe_timeout_s = 2\n",
    );
    std::fs::write(&cfg, text).unwrap();

    // The BMS on the right prefix: its acknowledgement proves the channel.
    let good = bms(broker.port(), "eewgate/tower/event").await;
    let mut daemon = Daemon::start(&cfg);
    let proof = daemon.first(Duration::from_secs(30), mqtt_evidence);
    assert_eq!(proof["ok"], true, "{proof:#}");
    assert_eq!(proof["method"], "bms_ack", "{proof:#}");
    assert_eq!(proof["source"], "probe", "{proof:#}");
    assert!(
        proof["detail"].as_str().unwrap().contains("acknowledged"),
        "{proof:#}"
    );

    // The BMS now listens on a wrong prefix: the broker still routes the probe back to
    // the daemon, but nobody answers — the next probe fails.
    good.abort();
    let _wrong = bms(broker.port(), "eewgate/tower-b/event").await;
    let mark = daemon.seen.len();
    let found = daemon.until(Duration::from_secs(30), |l| {
        l[mark..]
            .iter()
            .any(|v| mqtt_evidence(v) && v["ok"] == false)
    });
    assert!(found, "a failed probe: {:#?}", &daemon.seen[mark..]);
    let tail = &daemon.seen[mark..];
    let failed_at = tail
        .iter()
        .position(|v| mqtt_evidence(v) && v["ok"] == false)
        .unwrap();
    // At most the probe already under way when the BMS changed came back ok before it:
    // the failure is the next probe, i.e. within one probe interval.
    let ok_before = tail[..failed_at]
        .iter()
        .filter(|v| mqtt_evidence(v) && v["ok"] == true)
        .count();
    assert!(ok_before <= 1, "{:#?}", &tail[..=failed_at]);
    let failed = &tail[failed_at];
    assert_eq!(failed["method"], "bms_ack");
    let detail = failed["detail"].as_str().unwrap();
    assert!(
        detail.contains("came back through the broker") && detail.contains("did not acknowledge"),
        "the reason names what failed: {detail}"
    );
    // The channel is faulted: the LED shows it and the retained health says so.
    daemon.first(Duration::from_secs(10), |v| {
        v["type"] == "led" && v["pattern"] == "verification_overdue"
    });
    let health = retained_health(broker.port(), "eewgate/tower");
    let faults: Vec<&str> = health["faults"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(faults.contains(&"verification_failed:mqtt"), "{health:#}");
    daemon.stop();
}

#[test]
fn a_broker_acl_that_denies_the_alert_topics_fails_the_round_trip() {
    let dir = scratch("acl");
    // Anonymous clients may use the status and command topics only: the alert topics
    // (`event`, `state/…`) are denied — a broker set up for a different topic layout.
    let acl = "topic readwrite eewgate/tower/status\n\
               topic readwrite eewgate/tower/health\n\
               topic readwrite eewgate/tower/cmd/#\n";
    let broker = mosquitto::Mosquitto::start_with(
        &dir.join("broker"),
        &mosquitto::Options {
            acl: Some(acl.to_owned()),
            ..Default::default()
        },
    );
    let cfg = config(&dir, broker.port(), "[assurance]\nmqtt_probe_every_s = 4\n");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "device_id = \"tower\"\n",
        "device_id = \"tower\"\nprobe_timeout_s = 2\n",
    );
    std::fs::write(&cfg, text).unwrap();
    let mut daemon = Daemon::start(&cfg);
    // The connection itself is fine: no output fault hides the problem.
    daemon.first(Duration::from_secs(20), |v| {
        v["type"] == "mqtt" && v["event"] == "connected"
    });
    let e = daemon.first(Duration::from_secs(30), mqtt_evidence);
    assert_eq!(e["ok"], false, "{e:#}");
    assert_eq!(e["method"], "roundtrip");
    let detail = e["detail"].as_str().unwrap();
    assert!(
        detail.contains("eewgate/tower/event"),
        "the reason names the topic: {detail}"
    );
    daemon.first(Duration::from_secs(10), |v| {
        v["type"] == "led" && v["pattern"] == "verification_overdue"
    });
    daemon.stop();
}

#[test]
fn a_contact_whose_read_back_does_not_follow_its_probe_pulse_is_faulted() {
    let dir = scratch("readback");
    let broker = mosquitto::Mosquitto::start(&dir.join("broker"));
    let cfg = config(
        &dir,
        broker.port(),
        "[assurance]\nrelay_probe_window = \"any\"\nstart_delay_s = 0\n",
    );
    // The feedback wire is broken: the read-back input stays low whatever the relay does.
    let mut daemon = Daemon::start_with_env(&cfg, &[("EEWGATE_TEST_SIM_STUCK_INPUTS", "24=0")]);
    let e = daemon.first(Duration::from_secs(20), |v| {
        v["type"] == "evidence" && v["output"] == "relay:1"
    });
    assert_eq!(e["source"], "probe", "{e:#}");
    assert_eq!(e["method"], "readback", "{e:#}");
    assert_eq!(e["ok"], false, "{e:#}");
    assert!(
        e["detail"].as_str().unwrap().contains("did not follow"),
        "{e:#}"
    );
    // The contact is released again (the engine's test pulse ended) and faulted.
    daemon.first(Duration::from_secs(10), |v| {
        v["type"] == "fault" && v["fault"] == "relay:1" && v["active"] == true
    });
    let levels = |lines: &[Value]| -> Vec<bool> {
        lines
            .iter()
            .filter(|v| v["type"] == "pin" && v["pin"] == 5)
            .map(|v| v["level"].as_bool().unwrap())
            .collect()
    };
    let released = daemon.until(Duration::from_secs(10), |l| {
        levels(l).windows(2).any(|w| w == [true, false])
    });
    assert!(
        released,
        "the probe pulsed the contact and released it: {:?}",
        levels(&daemon.seen)
    );
    daemon.stop();
}

/// The operator's webhook: every POST's JSON body, answered 204.
fn webhook() -> (u16, std::sync::mpsc::Receiver<(String, Value)>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = Vec::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                head.push(line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let auth = head
                .iter()
                .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                .cloned()
                .unwrap_or_default();
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
            if tx
                .send((auth, serde_json::from_slice(&body).unwrap()))
                .is_err()
            {
                break;
            }
        }
    });
    (port, rx)
}

#[test]
fn evidence_older_than_its_limit_raises_verification_overdue() {
    let dir = scratch("ageing");
    let broker = mosquitto::Mosquitto::start(&dir.join("broker"));
    let (hook, posts) = webhook();
    let token = dir.join("webhook.token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    // The contact is proved by its idle read-back at start, and trusted for 3 s only; the
    // operator is told of every fault change on a webhook.
    let cfg = config(
        &dir,
        broker.port(),
        &format!(
            "[assurance]\nrelay_probe_window = \"any\"\nstart_delay_s = 0\n[assurance.max_age_s]\n\"relay:1\" = 3\n\
             [assurance.webhook]\nurl = \"http://127.0.0.1:{hook}/hooks/eewgate\"\ntoken_file = {token:?}\n"
        ),
    );
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("probe = \"pulse\"\n", "probe = \"idle\"\n");
    std::fs::write(&cfg, text).unwrap();
    let mut daemon = Daemon::start(&cfg);
    let proof = daemon.first(Duration::from_secs(20), |v| {
        v["type"] == "evidence" && v["output"] == "relay:1"
    });
    assert_eq!(proof["ok"], true, "{proof:#}");
    assert_eq!(proof["method"], "readback_idle", "{proof:#}");
    let overdue = daemon.first(Duration::from_secs(20), |v| {
        v["type"] == "fault" && v["fault"] == "verification_overdue:relay:1"
    });
    assert_eq!(overdue["active"], true, "{overdue:#}");
    // Raised when the limit passed, not before: 3 s after the proof.
    let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v["at"].as_str().unwrap()).unwrap();
    let age = at(&overdue) - at(&proof);
    assert!(
        age >= chrono::TimeDelta::seconds(3),
        "overdue only after the limit: {age}"
    );
    assert!(
        overdue["detail"]
            .as_str()
            .unwrap()
            .contains("readback_idle"),
        "the line says how it was last proved: {overdue:#}"
    );
    daemon.first(Duration::from_secs(10), |v| {
        v["type"] == "led" && v["pattern"] == "verification_overdue"
    });
    let health = retained_health(broker.port(), "eewgate/tower");
    assert_eq!(
        health["verification_overdue"],
        json!(["relay:1"]),
        "{health:#}"
    );
    // The operator was told, with the token.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let told = loop {
        let Ok((auth, body)) =
            posts.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        else {
            break None;
        };
        let raised = body["raised"].as_array().cloned().unwrap_or_default();
        if raised.contains(&json!("verification_overdue:relay:1")) {
            break Some((auth, body));
        }
        seen.push(body);
    };
    let (auth, body) =
        told.unwrap_or_else(|| panic!("a notification of the overdue contact: {seen:#?}"));
    // Header names are case-insensitive (hyper writes them lower-case).
    assert_eq!(
        auth.trim().to_ascii_lowercase(),
        "authorization: bearer s3cret-token"
    );
    assert_eq!(body["device_id"], "tower");
    assert_eq!(body["ok"], false);
    assert!(
        body["faults"]
            .as_array()
            .unwrap()
            .contains(&json!("verification_overdue:relay:1")),
        "{body:#}"
    );
    daemon.first(Duration::from_secs(5), |v| {
        v["type"] == "notification" && v["ok"] == true
    });
    daemon.stop();
}

/// The audio probe: the sound device takes a short low-level tone (a file of its own on
/// the WAV sink). That proves the device, not that anyone heard it: the channel still
/// ages out without a person's confirmation.
#[test]
fn the_audio_probe_proves_the_device_but_not_that_it_was_heard() {
    let dir = scratch("audio_probe");
    let broker = mosquitto::Mosquitto::start(&dir.join("broker"));
    let cfg = config(
        &dir,
        broker.port(),
        "[audio]\nwav_dir = \"audio\"\nprobe_level_db = -40\n\
         [assurance]\nrelay_probe_window = \"any\"\nstart_delay_s = 0\n\
         [assurance.max_age_s]\naudio = 2\n",
    );
    let mut daemon = Daemon::start(&cfg);
    let e = daemon.first(Duration::from_secs(20), |v| {
        v["type"] == "evidence" && v["output"] == "audio"
    });
    assert_eq!(e["source"], "probe", "{e:#}");
    assert_eq!(e["method"], "device", "{e:#}");
    assert_eq!(e["ok"], true, "{e:#}");
    assert_eq!(e["measurement_ms"], 400.0, "{e:#}");
    let tone: Vec<_> = std::fs::read_dir(dir.join("audio"))
        .unwrap()
        .map(|f| f.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("_probe.wav"))
        .collect();
    assert_eq!(tone.len(), 1, "{tone:?}");
    // Nobody heard it: two seconds on, the audio is overdue all the same.
    let overdue = daemon.first(Duration::from_secs(20), |v| {
        v["type"] == "fault" && v["fault"] == "verification_overdue:audio"
    });
    assert_eq!(overdue["active"], true);
    assert!(
        overdue["detail"]
            .as_str()
            .unwrap()
            .contains("never seen working"),
        "{overdue:#}"
    );
    daemon.stop();
}

/// With a loopback capture (`[audio] capture_device`), the probe tone heard back proves
/// the audio path (`capture`), and one not heard fails it. ALSA's `file` plugin stands in
/// for the sound card both ways: playback into a WAV file, capture from a raw file whose
/// content is what the loopback "hears" (a tone after a silence, or silence only).
#[cfg(feature = "alsa")]
#[test]
fn a_loopback_capture_hears_the_probe_tone_back_or_faults_the_audio() {
    let dir = scratch("capture");
    let rate = 48_000usize;
    let raw = |name: &str, with_tone: bool| {
        let mut s: Vec<i16> = vec![0; rate * 3 / 10];
        if with_tone {
            s.extend((0..rate * 4 / 10).map(|i| {
                (1000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / rate as f64).sin())
                    as i16
            }));
        }
        s.resize(rate * 2, 0);
        let path = dir.join(name);
        std::fs::write(
            &path,
            s.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
        )
        .unwrap();
        path
    };
    let heard = raw("heard.raw", true);
    let silent = raw("silent.raw", false);
    let conf = dir.join("asound.conf");
    std::fs::write(
        &conf,
        format!(
            "</usr/share/alsa/alsa.conf>\n\
             pcm.loop_heard {{ type file slave.pcm \"null\" file \"/dev/null\" infile {heard:?} format \"raw\" }}\n\
             pcm.loop_silent {{ type file slave.pcm \"null\" file \"/dev/null\" infile {silent:?} format \"raw\" }}\n"
        ),
    )
    .unwrap();
    let broker = mosquitto::Mosquitto::start(&dir.join("broker"));
    for (capture, expect_ok) in [("loop_heard", true), ("loop_silent", false)] {
        let out = dir.join(format!("{capture}.wav"));
        let cfg = config(
            &dir,
            broker.port(),
            &format!(
                "[audio]\nbackend = \"alsa\"\ndevice = \"file:FILE={},FORMAT=wav\"\ncapture_device = \"{capture}\"\n\
                 [assurance]\nrelay_probe_window = \"any\"\nstart_delay_s = 0\n",
                out.display()
            ),
        );
        let mut daemon =
            Daemon::start_with_env(&cfg, &[("ALSA_CONFIG_PATH", conf.to_str().unwrap())]);
        let e = daemon.first(Duration::from_secs(20), |v| {
            v["type"] == "evidence" && v["output"] == "audio" && v["method"] == "capture"
        });
        assert_eq!(e["source"], "probe", "{e:#}");
        assert_eq!(e["ok"], expect_ok, "{capture}: {e:#}");
        let detail = e["detail"].as_str().unwrap();
        assert!(
            detail.contains(if expect_ok {
                "heard back"
            } else {
                "NOT heard back"
            }),
            "{detail}"
        );
        if !expect_ok {
            // Not heard: the audio is faulted at once, as any failed proof.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let faulted = loop {
                let health = retained_health(broker.port(), "eewgate/tower");
                let f = health["faults"].as_array().cloned().unwrap_or_default();
                if f.contains(&json!("verification_failed:audio")) {
                    break true;
                }
                if std::time::Instant::now() > deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(200));
            };
            assert!(faulted, "verification_failed:audio in the retained health");
        }
        daemon.stop();
        std::fs::remove_file(dir.join("history.db")).ok();
    }
}
