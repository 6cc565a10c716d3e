//! `eewgate demo`, the README's first command, run as a user would (with `--fast` and
//! `--json` so the test is quick and can read the events): it must start its own broker,
//! drive every output, record everything and stop by itself with every contact released.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn json_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn the_demo_drives_every_output_records_it_and_stops_with_contacts_released() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo");
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .args(["demo", "--fast", "--json", "--mqtt-port"])
        .arg(port.to_string())
        .arg("--dir")
        .arg(&dir)
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It stops by itself: 33 telegrams 200 ms apart plus the tail.
    assert!(took < Duration::from_secs(90), "ran {took:?}");
    let lines = json_lines(&out.stdout);
    let of = |t: &'static str| lines.iter().filter(move |v| v["type"] == t);

    // Relays: the four default contacts closed (contact 4 is a pulse and reopened).
    for relay in ["relay:1", "relay:2", "relay:3", "relay:4"] {
        assert!(
            of("switched").any(|v| v["output"] == relay && v["closed"] == true && v["ok"] == true),
            "{relay} closed"
        );
    }
    // The LED showed the alert.
    assert!(of("led").any(|v| v["pattern"] == "alert"));
    // Audio: announcements written to WAV files, and the cancel announced.
    let audio: Vec<&Value> = of("audio").collect();
    assert!(
        audio
            .iter()
            .any(|v| v["action"] == "announce" && v["ok"] == true),
        "{audio:#?}"
    );
    let cancel = lines
        .iter()
        .find(|v| v["type"] == "action" && v["output"] == "audio" && v["cause"] == "cancel")
        .unwrap();
    assert_eq!(cancel["text_ja"], "緊急地震速報を解除します。");
    let wavs: Vec<_> = std::fs::read_dir(dir.join("audio"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!wavs.is_empty());
    for w in &wavs {
        // More than a header: sound was written.
        assert!(std::fs::metadata(w).unwrap().len() > 10_000, "{w:?}");
    }
    // MQTT: the demo's own broker accepted the connection and acknowledged publishes.
    assert!(of("mqtt").any(|v| v["event"] == "connected"), "{lines:#?}");
    assert!(of("mqtt").any(|v| v["event"] == "published"));
    assert!(
        !of("fault").any(|v| v["fault"] == "mqtt" && v["active"] == true),
        "no MQTT fault with the demo's broker"
    );

    // History: every output's results, read back with the command the demo suggests.
    let hist = Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .args([
            "history",
            "--outputs",
            "--json",
            "--limit",
            "1000",
            "--config",
        ])
        .arg(dir.join("eewgate.toml"))
        .output()
        .unwrap();
    assert!(hist.status.success(), "{hist:?}");
    let rows = json_lines(&hist.stdout);
    for output in ["relay:1", "audio", "mqtt"] {
        assert!(
            rows.iter()
                .any(|r| r["output"] == output && r["ok"] == true),
            "{output} in history: {rows:#?}"
        );
    }

    // Stopped: every relay pin back at its released level on the sim board.
    let pins: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pins.json")).unwrap()).unwrap();
    for p in pins["pins"].as_array().unwrap() {
        if p["output"].as_str().unwrap().starts_with("relay:") {
            assert_eq!(p["level"], false, "{p}");
        }
    }
}
