//! System tests of the relay contacts on the sim backend: the real daemon, a replay link,
//! the sim board's pin changes on standard output (`type = "pin"`).
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use std::io::{BufRead, BufReader};
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
        .join("system_outputs")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A building in 大分県中部 (area 751) fed by the Bungo series, with three contacts:
/// 1 latched (released by the cancel) with a read-back input, 2 a 300 ms pulse on an
/// active-low pin, 3 latched until reset (still closed when the daemon is stopped).
fn config(dir: &Path) -> PathBuf {
    config_with(dir, "")
}

/// [`config`] with extra keys in `[hardware]`.
fn config_with(dir: &Path, hardware_keys: &str) -> PathBuf {
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
         [[outputs.relay]]\nid = 1\nname = \"elevators\"\nmin_class = \"4\"\n\
         [[outputs.relay]]\nid = 2\nname = \"pulse\"\nmin_class = \"4\"\nmode = \"pulse\"\npulse_ms = 300\n\
         [[outputs.relay]]\nid = 3\nname = \"gas\"\nmin_class = \"4\"\nrelease_on = [\"reset\"]\n\
         [storage]\npath = {:?}\n\
         [time]\nrequire_sync = false\n\
         [hardware]\nbackend = \"sim\"\n{}\
         [[hardware.relay]]\nid = 1\npin = 5\nreadback_pin = 24\nreadback_timeout_ms = 50\nprobe = \"none\"\n\
         [[hardware.relay]]\nid = 2\npin = 6\nactive_low = true\n\
         [[hardware.relay]]\nid = 3\npin = 13\n\
         [[links.replay]]\nname = \"drill\"\ninterval_ms = 20\nfiles = [{}]\n",
        dir.join("history.db").to_string_lossy(),
        hardware_keys,
        files.join(", ")
    );
    let path = dir.join("eewgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start(config: &Path) -> (Child, mpsc::Receiver<Value>) {
    start_with(config, &[])
}

fn start_with(config: &Path, env: &[(&str, &str)]) -> (Child, mpsc::Receiver<Value>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .args(["run", "--events-stdout", "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .env("EEWGATE_LOG", "info")
        .spawn()
        .expect("the daemon starts");
    let stdout = child.stdout.take().unwrap();
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
    (child, rx)
}

/// The daemon is killed when a test fails half-way.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn until(
    rx: &mpsc::Receiver<Value>,
    seen: &mut Vec<Value>,
    timeout: Duration,
    done: impl Fn(&[Value]) -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !done(seen) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(v) => seen.push(v),
            Err(_) => break,
        }
    }
}

fn pin_levels(lines: &[Value], pin: u64) -> Vec<(usize, bool)> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, v)| v["type"] == "pin" && v["pin"] == pin)
        .map(|(i, v)| (i, v["level"].as_bool().unwrap()))
        .collect()
}

fn position(lines: &[Value], f: impl Fn(&Value) -> bool) -> usize {
    lines
        .iter()
        .position(f)
        .unwrap_or_else(|| panic!("line not found in {lines:#?}"))
}

fn at(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v["at"].as_str().unwrap()).unwrap()
}

#[test]
fn relays_switch_in_the_engines_order_pulse_and_are_released_on_sigterm() {
    let dir = scratch("relays");
    let cfg = config(&dir);
    let (child, rx) = start(&cfg);
    let mut child = KillOnDrop(child);
    let mut lines = Vec::new();
    // Until the cancel released relay 1 and the pulse of relay 2 ended.
    until(&rx, &mut lines, Duration::from_secs(20), |seen| {
        seen.iter().any(|v| {
            v["type"] == "pin" && v["pin"] == 5 && v["level"] == false && v["output"] == "relay:1"
        }) && pin_levels(seen, 5).len() >= 3
            && pin_levels(seen, 6).len() >= 3
            && seen
                .iter()
                .filter(|v| v["type"] == "switched" && v["output"] == "relay:1")
                .count()
                >= 2
    });

    // Start-up: every contact claimed at its released level before the first telegram.
    let first_telegram = position(&lines, |v| v["type"] == "telegram");
    for (pin, released) in [(5, false), (6, true), (13, false)] {
        let levels = pin_levels(&lines, pin);
        assert_eq!(levels[0].1, released, "pin {pin} starts released");
        assert!(
            levels[0].0 < first_telegram,
            "pin {pin} released before any telegram"
        );
    }

    // Relay 1: on at serial 4, off at the cancel, the pin following each decision.
    let on = position(&lines, |v| {
        v["type"] == "action" && v["output"] == "relay:1" && v["action"] == "on"
    });
    assert_eq!(lines[on]["serial"], 4);
    let off = position(&lines, |v| {
        v["type"] == "action" && v["output"] == "relay:1" && v["action"] == "off"
    });
    assert_eq!(lines[off]["cause"], "cancel");
    let relay1 = pin_levels(&lines, 5);
    assert_eq!(
        relay1.iter().map(|(_, l)| *l).collect::<Vec<_>>(),
        vec![false, true, false]
    );
    assert!(on < relay1[1].0 && relay1[1].0 < off && off < relay1[2].0);
    let switched: Vec<&Value> = lines
        .iter()
        .filter(|v| v["type"] == "switched" && v["output"] == "relay:1")
        .collect();
    assert_eq!(switched.len(), 2);
    assert_eq!(switched[0]["serial"], 4);
    assert!(
        switched
            .iter()
            .all(|s| s["ok"] == true && s["latency_us"].as_i64().unwrap() >= 0)
    );
    // The read-back followed: no fault.
    assert!(
        !lines
            .iter()
            .any(|v| v["type"] == "fault" && v["fault"] == "relay:1"),
        "{lines:#?}"
    );

    // Relay 2: a pulse on an active-low pin, low then high again ~300 ms later.
    let relay2 = pin_levels(&lines, 6);
    assert_eq!(
        relay2.iter().map(|(_, l)| *l).collect::<Vec<_>>()[..3],
        [true, false, true]
    );
    let pulse_end = position(&lines, |v| {
        v["type"] == "action" && v["output"] == "relay:2" && v["action"] == "off"
    });
    assert_eq!(lines[pulse_end]["cause"], "pulse_end");
    assert!(pulse_end < relay2[2].0);
    let width = at(&lines[relay2[2].0]) - at(&lines[relay2[1].0]);
    let ms = width.num_milliseconds();
    assert!((250..1500).contains(&ms), "pulse of {ms} ms");

    // Relay 3 is still closed; SIGTERM releases it.
    assert!(
        pin_levels(&lines, 13).last().unwrap().1,
        "relay 3 still closed"
    );
    kill(
        Pid::from_raw(i32::try_from(child.0.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not stop within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    while let Ok(v) = rx.recv_timeout(Duration::from_secs(2)) {
        lines.push(v);
    }
    for (pin, released) in [(5, false), (6, true), (13, false)] {
        assert_eq!(
            pin_levels(&lines, pin).last().unwrap().1,
            released,
            "pin {pin} ends released"
        );
    }
}

#[test]
fn failsafe_releases_every_configured_contact() {
    let dir = scratch("failsafe");
    let cfg = config(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .args(["failsafe", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(String, u64, bool)> = lines
        .iter()
        .map(|v| {
            (
                v["output"].as_str().unwrap().to_owned(),
                v["pin"].as_u64().unwrap(),
                v["level"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("relay:1".to_owned(), 5, false),
            ("relay:2".to_owned(), 6, true),
            ("relay:3".to_owned(), 13, false)
        ]
    );
}

fn sim_levels(file: &Path) -> Vec<(u64, bool)> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    v["pins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["pin"].as_u64().unwrap(), p["level"].as_bool().unwrap()))
        .collect()
}

/// The board keeps its levels when the daemon is killed outright (no exit path runs);
/// `eewgate failsafe` (systemd's ExecStopPost) then releases every contact.
#[test]
fn kill_9_leaves_contacts_as_they_were_and_failsafe_releases_them() {
    let dir = scratch("kill9");
    let pins = dir.join("pins.json");
    let cfg = config_with(
        &dir,
        &format!("sim_state_file = {:?}\n", pins.to_string_lossy()),
    );
    let (child, rx) = start(&cfg);
    let mut child = KillOnDrop(child);
    let mut lines = Vec::new();
    // Until contact 3 (latched until reset) has closed.
    until(&rx, &mut lines, Duration::from_secs(20), |seen| {
        pin_levels(seen, 13).last().is_some_and(|(_, l)| *l)
    });
    assert!(
        pin_levels(&lines, 13).last().unwrap().1,
        "contact 3 closed: {lines:#?}"
    );
    child.0.kill().unwrap(); // SIGKILL: no drop, no signal handler.
    child.0.wait().unwrap();
    let left = sim_levels(&pins);
    assert!(
        left.contains(&(13, true)),
        "killed with contact 3 closed: {left:?}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .args(["failsafe", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let released: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let relay3 = released.iter().find(|v| v["output"] == "relay:3").unwrap();
    assert_eq!(relay3["was"], true, "{released:?}");
    assert_eq!(relay3["level"], false);
    let after = sim_levels(&pins);
    for (pin, level) in [(5, false), (6, true), (13, false)] {
        assert!(
            after.contains(&(pin, level)),
            "pin {pin} released: {after:?}"
        );
    }
}

/// A settings file edited by hand after the daemon started (now invalid) cannot leave a
/// contact closed after a crash: the daemon remembered its pins in the state directory,
/// and `eewgate failsafe` releases those.
#[test]
fn failsafe_releases_the_remembered_pins_when_the_settings_became_invalid() {
    let dir = scratch("kill9-invalid");
    let pins = dir.join("pins.json");
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let state_s = state.to_str().unwrap();
    let cfg = config_with(
        &dir,
        &format!("sim_state_file = {:?}\n", pins.to_string_lossy()),
    );
    let (child, rx) = start_with(&cfg, &[("STATE_DIRECTORY", state_s)]);
    let mut child = KillOnDrop(child);
    let mut lines = Vec::new();
    until(&rx, &mut lines, Duration::from_secs(20), |seen| {
        pin_levels(seen, 13).last().is_some_and(|(_, l)| *l)
    });
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert!(
        sim_levels(&pins).contains(&(13, true)),
        "killed with contact 3 closed"
    );

    std::fs::write(&cfg, "[site]\nlat = \"north\"\n").unwrap();
    let failsafe = |env: &[(&str, &str)]| {
        Command::new(env!("CARGO_BIN_EXE_eewgate"))
            .args(["failsafe", "--config"])
            .arg(&cfg)
            .env_remove("STATE_DIRECTORY")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    // Without the remembered pins it can only refuse (and the contact stays closed).
    let out = failsafe(&[]);
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    assert!(sim_levels(&pins).contains(&(13, true)));
    // With them (systemd sets STATE_DIRECTORY for ExecStopPost too), all are released.
    let out = failsafe(&[("STATE_DIRECTORY", state_s)]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("site.lat"),
        "the problem is named: {stderr}"
    );
    let released: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let relay3 = released.iter().find(|v| v["output"] == "relay:3").unwrap();
    assert_eq!(relay3["from"], "remembered", "{released:?}");
    assert_eq!(relay3["was"], true, "{released:?}");
    let after = sim_levels(&pins);
    for (pin, level) in [(5, false), (6, true), (13, false)] {
        assert!(
            after.contains(&(pin, level)),
            "pin {pin} released: {after:?}"
        );
    }
}

/// A feedback contact that does not follow faults its relay: a fault line, the LED's
/// internal-fault pattern once the alert is over, and `ok = false` in history.
#[test]
fn a_readback_that_does_not_follow_faults_the_contact_visibly() {
    let dir = scratch("readback");
    let cfg = config(&dir);
    // Contact 1's feedback input (pin 24) stuck closed (a welded contact): closing is
    // confirmed, the release at the cancel is not.
    let (child, rx) = start_with(&cfg, &[("EEWGATE_TEST_SIM_STUCK_INPUTS", "24=1")]);
    let mut child = KillOnDrop(child);
    let mut lines = Vec::new();
    // The LED task and the fault's event line follow the same status change in either
    // order: wait for both.
    until(&rx, &mut lines, Duration::from_secs(20), |seen| {
        seen.iter()
            .any(|v| v["type"] == "led" && v["pattern"] == "internal_fault")
            && seen
                .iter()
                .any(|v| v["type"] == "fault" && v["fault"] == "relay:1" && v["active"] == true)
    });
    let fault = position(&lines, |v| {
        v["type"] == "fault" && v["fault"] == "relay:1" && v["active"] == true
    });
    assert!(
        lines[fault]["detail"]
            .as_str()
            .unwrap()
            .contains("read-back did not follow"),
        "{:?}",
        lines[fault]
    );
    let leds: Vec<&str> = lines
        .iter()
        .filter(|v| v["type"] == "led")
        .map(|v| v["pattern"].as_str().unwrap())
        .collect();
    assert_eq!(leds.first(), Some(&"normal"), "normal before the event");
    assert!(leds.contains(&"alert"), "{leds:?}");
    // Once the alert is over the LED shows the fault.
    assert_eq!(leds.last(), Some(&"internal_fault"), "{leds:?}");
    let off = position(&lines, |v| {
        v["type"] == "action" && v["output"] == "relay:1" && v["action"] == "off"
    });
    assert!(off < fault, "the release is what failed");
    kill(
        Pid::from_raw(i32::try_from(child.0.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    let _ = child.0.wait();

    let out = Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .args([
            "history",
            "--outputs",
            "--json",
            "--limit",
            "100",
            "--config",
        ])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rows: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let relay1: Vec<&Value> = rows.iter().filter(|r| r["output"] == "relay:1").collect();
    assert!(
        relay1.iter().any(|r| r["action"] == "off"
            && r["ok"] == false
            && r["detail"].as_str().unwrap().contains("read-back")),
        "{rows:#?}"
    );
    // Every recorded switch carries its latency.
    let relay2_on = rows
        .iter()
        .find(|r| r["output"] == "relay:2" && r["action"] == "on")
        .unwrap();
    assert_eq!(relay2_on["ok"], true);
    assert!(relay2_on["latency_us"].as_i64().unwrap() >= 0);
}

/// Timing on the sim board: a latched contact released by the cancel still holds its
/// minimum time, and the voice waits for the PA pre-start contact's delay.
#[test]
fn hold_time_and_pa_prestart_delay_are_kept_on_the_pins() {
    let dir = scratch("timing");
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
         [[outputs.relay]]\nid = 1\nname = \"elevators\"\nmin_class = \"4\"\nhold_s = 5\n\
         [[outputs.relay]]\nid = 2\nname = \"PA\"\nmin_class = \"4\"\nprestart_ms = 700\n\
         release_on = [\"expiry\", \"reset\"]\n\
         [outputs.audio]\nmin_class = \"4\"\n\
         [storage]\npath = {:?}\n[time]\nrequire_sync = false\n\
         [[links.replay]]\nname = \"drill\"\ninterval_ms = 100\nfiles = [{}]\n",
        dir.join("history.db").to_string_lossy(),
        files.join(", ")
    );
    let cfg = dir.join("eewgate.toml");
    std::fs::write(&cfg, text).unwrap();
    let (child, rx) = start(&cfg);
    let _child = KillOnDrop(child);
    let mut lines = Vec::new();
    until(&rx, &mut lines, Duration::from_secs(30), |seen| {
        pin_levels(seen, 5).len() >= 3
            && seen.iter().any(|v| {
                v["type"] == "action" && v["output"] == "audio" && v["action"] == "announce"
            })
    });
    // Contact 1: closed at serial 4, the cancel comes ~2.8 s later, the pin opens only
    // when the 5 s hold has passed.
    let relay1 = pin_levels(&lines, 5);
    assert_eq!(
        relay1.iter().map(|(_, l)| *l).collect::<Vec<_>>(),
        vec![false, true, false],
        "{lines:#?}"
    );
    let held = at(&lines[relay1[2].0]) - at(&lines[relay1[1].0]);
    assert!(
        (4900..8000).contains(&held.num_milliseconds()),
        "held {} ms",
        held.num_milliseconds()
    );
    let cancel = position(&lines, |v| {
        v["type"] == "telegram" && v["serial"] == 32 && v["verdict"] == "accepted"
    });
    assert!(cancel < relay1[2].0, "released after the cancel");
    // Contact 2 closes at the start; the first announcement comes 0.7 s later.
    let relay2 = pin_levels(&lines, 6);
    assert!(relay2[1].1, "PA contact closed");
    let announce = position(&lines, |v| {
        v["type"] == "action" && v["output"] == "audio" && v["action"] == "announce"
    });
    assert_eq!(lines[announce]["cause"], "prestart");
    let waited = at(&lines[announce]) - at(&lines[relay2[1].0]);
    assert!(
        (650..2000).contains(&waited.num_milliseconds()),
        "announced {} ms after the PA contact closed",
        waited.num_milliseconds()
    );
}
