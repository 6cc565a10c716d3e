//! A wrong clock, end to end, through the real daemon: a live link's reports stamped
//! well ahead of the local clock (the local clock is behind JST) raise the time fault —
//! on the event lines, in the health file and in history — while the alarm still fires;
//! a report stamped now clears it. (The kernel's own synchronisation flag is assessed by
//! `system::timesync`'s unit tests; the host's NTP state cannot be set from a test.)
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/synth.rs"]
mod synth;
use daemon::Daemon;
use serde_json::Value;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("system_time_fault")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("run")).unwrap();
    dir
}

fn is_time_fault(v: &Value, active: bool) -> bool {
    v["type"] == "fault" && v["fault"] == "time" && v["active"] == active
}

#[test]
fn reports_stamped_ahead_of_the_local_clock_raise_the_time_fault_and_alarms_still_fire() {
    let dir = scratch("ahead");
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = upstream.local_addr().unwrap().port();
    // Near the 2011 Tohoku telegram's areas (宮城県南部): it operates the contact.
    let cfg = dir.join("eewgate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[site]\nlat = 38.05\nlon = 140.75\narv400 = 1.2\narea_code = \"221\"\n\
             [[outputs.relay]]\nid = 1\nname = \"elevators\"\nmin_class = \"1\"\n\
             mode = \"pulse\"\npulse_ms = 100\n\
             [storage]\npath = \"history.db\"\n\
             [time]\nrequire_sync = false\ncheck_interval_s = 1\nmax_offset_ms = 1000\n\
             [hardware]\nbackend = \"sim\"\n[[hardware.relay]]\nid = 1\npin = 5\n\
             [[links.jma_tcp]]\nname = \"primary\"\nhost = \"127.0.0.1\"\nport = {port}\n\
             framing = \"plain\"\nsilence_limit_s = 3600\n"
        ),
    )
    .unwrap();
    let run = dir.join("run");
    let mut d = Daemon::start_with_env(&cfg, &[("RUNTIME_DIRECTORY", run.to_str().unwrap())]);
    let (mut link, _) = upstream.accept().unwrap();
    let base = synth::base();
    let send = |link: &mut std::net::TcpStream, event: u32, ahead_s: i64| {
        let issued =
            eewgate::system::clock::now_jst().0.naive_local() + chrono::TimeDelta::seconds(ahead_s);
        let telegram = synth::telegram(&base, event, 1, Some(issued));
        let mut wire = b"\r\n".to_vec();
        wire.extend_from_slice(telegram.trim_ascii_end());
        link.write_all(&wire).unwrap();
    };

    // Issued 30 s "in the future": this clock is 30 s behind the upstream's.
    send(&mut link, 1, 30);
    let fault = d.first(Duration::from_secs(20), |v| is_time_fault(v, true));
    let detail = fault["detail"].as_str().unwrap();
    assert!(detail.contains("behind"), "{fault}");
    // The alarm is not held back by the fault.
    d.first(Duration::from_secs(20), |v| {
        v["type"] == "switched" && v["output"] == "relay:1"
    });
    let health: Value = loop {
        let h: Option<Value> = std::fs::read_to_string(run.join("health.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        if let Some(h) = h.filter(|h| h["time"]["fault"] == true) {
            break h;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        health["faults"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "time"),
        "{health}"
    );

    // A report stamped now: the clock agrees again, the fault clears.
    send(&mut link, 2, 0);
    d.first(Duration::from_secs(20), |v| is_time_fault(v, false));
    d.stop();

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .args(["history", "--faults", "--json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let rows: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let time: Vec<&Value> = rows.iter().filter(|r| r["kind"] == "time_sync").collect();
    assert_eq!(time.len(), 2, "raised and cleared in history: {rows:#?}");
}
