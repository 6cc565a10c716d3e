//! System test of the drill report (issue 7): the real daemon with every kind of output —
//! a contact with a read-back, one without, one left out of drills, one whose threshold
//! the drill does not reach, the PA into WAV files, the LED and MQTT to a real Mosquitto
//! — runs a drill from the web UI, and `GET /api/drills/reports/{event_id}` lists every
//! channel with what it was ordered to do and what was observed; a read-back stuck by
//! the sim board (`EEWGATE_TEST_SIM_STUCK_INPUTS`) fails its channel and the drill, and
//! two runs of one recorded event are two reports.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/mosquitto.rs"]
mod mosquitto;
#[path = "support/webui_http.rs"]
mod webui_http;
use daemon::Daemon;
use serde_json::{Value, json};
use webui_http::{free_port, http, json_when, set_up_and_log_in};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("system_drill_report")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A report is final once the drill has ended and every result is in.
fn settled(report: &Value) -> bool {
    matches!(report["result"].as_str(), Some(r) if r != "in_progress" && r != "pending")
}

fn channel<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == name)
        .unwrap_or_else(|| panic!("{name} in the report: {report:#}"))
}

/// Every order of a channel has its observed result, and it is ok.
fn all_observed_ok(c: &Value) {
    let expected = c["expected"].as_array().unwrap();
    assert!(!expected.is_empty(), "{c:#}");
    for e in expected {
        assert_eq!(e["observed"]["ok"], true, "{}: {e:#}", c["channel"]);
        assert!(
            e["observed"]["latency_us"].is_i64(),
            "{}: decision to effect: {e:#}",
            c["channel"]
        );
        assert!(
            !e["at"].as_str().unwrap().is_empty(),
            "the decision time: {e:#}"
        );
    }
}

#[test]
fn a_drill_report_lists_every_channel_with_its_observed_result() {
    let dir = scratch("all_outputs");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let broker = mosquitto::Mosquitto::start(&dir.join("broker"));
    let closed = free_port(); // nothing listens: drills need no link
    let text = format!(
        "[site]\nlat = 33.24\nlon = 131.61\narv400 = 1.2\narea_code = \"751\"\n\
         [[outputs.relay]]\nid = 1\nname = \"elevators\"\nmin_class = \"3\"\ninclude = {{ drill = true }}\n\
         [[outputs.relay]]\nid = 2\nname = \"PA pre-start\"\nmin_class = \"3\"\ninclude = {{ drill = true }}\n\
         [[outputs.relay]]\nid = 3\nname = \"gas\"\nmin_class = \"3\"\n\
         [[outputs.relay]]\nid = 4\nname = \"doors\"\nmin_class = \"6+\"\ninclude = {{ drill = true }}\n\
         [outputs.audio]\nmin_class = \"3\"\ninclude = {{ drill = true }}\n\
         [storage]\npath = \"history.db\"\n[time]\nrequire_sync = false\n\
         [hardware]\nbackend = \"sim\"\n\
         [[hardware.relay]]\nid = 1\npin = 5\nreadback_pin = 24\nreadback_timeout_ms = 200\nprobe = \"none\"\n\
         [[hardware.relay]]\nid = 2\npin = 6\n\
         [[hardware.relay]]\nid = 3\npin = 13\n\
         [[hardware.relay]]\nid = 4\npin = 19\n\
         [hardware.led]\nred_pin = 17\ngreen_pin = 27\nblue_pin = 22\n\
         [audio]\nwav_dir = \"audio\"\n\
         [mqtt]\nhost = \"127.0.0.1\"\nport = {}\ndevice_id = \"drill-tower\"\n\
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
    // A publish made before the broker connection is up would be superseded, not sent.
    daemon.first(Duration::from_secs(20), |v| {
        v["type"] == "mqtt" && v["event"] == "connected"
    });

    let r = http(
        addr,
        "POST",
        "/api/drill",
        &change,
        Some(&json!({"confirm": true, "class": "5-", "seconds": 60})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let event_id = r.json()["event_id"].as_str().unwrap().to_owned();
    assert!(event_id.starts_with("drill-"), "{event_id}");
    let report_path = format!("/api/drills/reports/{event_id}");

    // While it runs, the report says so.
    let running = json_when(addr, &report_path, &auth, Duration::from_secs(10), |v| {
        v["result"] == "in_progress"
    });
    assert_eq!(running["result"], "in_progress", "{running:#}");
    assert_eq!(running["running"], true);

    // The announcement plays to its end (the WAV sink is paced like a sound card), then
    // the operator resets the drill.
    daemon.first(Duration::from_secs(60), |v| {
        v["type"] == "evidence" && v["output"] == "audio" && v["source"] == "alarm"
    });
    let r = http(addr, "POST", "/api/alert/reset", &change, Some(&json!({})));
    assert_eq!(r.status, 200, "{r:?}");

    let report = json_when(addr, &report_path, &auth, Duration::from_secs(30), settled);
    assert_eq!(report["result"], "ok", "{report:#}");
    assert_eq!(report["event_id"], event_id.as_str());
    assert_eq!(report["kind"], "synthetic");
    assert_eq!(report["end"], "reset");
    assert_eq!(report["running"], false);
    assert_eq!(report["max_class"], "5-");
    assert!(report["duration_ms"].as_i64().unwrap() > 0, "{report:#}");
    assert_eq!(report["operator"]["who"], "admin", "{report:#}");
    assert!(
        report["operator"]["detail"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1"),
        "{report:#}"
    );
    assert_eq!(report["appliance"]["site"]["area_code"], "751");
    assert_eq!(report["settings"]["source"], "at_drill", "{report:#}");

    // Every channel, in the settings' order.
    let names: Vec<&str> = report["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "relay:1", "relay:2", "relay:3", "relay:4", "audio", "led", "mqtt"
        ]
    );

    // The contact with a read-back: closed and opened, each seen to follow.
    let r1 = channel(&report, "relay:1");
    assert_eq!(r1["result"], "ok", "{r1:#}");
    assert_eq!(r1["readback"], true);
    all_observed_ok(r1);
    let actions: Vec<&str> = r1["expected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["on", "off"], "{r1:#}");
    for e in r1["expected"].as_array().unwrap() {
        let detail = e["observed"]["detail"].as_str().unwrap();
        assert!(detail.contains("read-back followed in"), "{detail}");
    }
    assert!(
        r1["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["method"] == "readback" && e["ok"] == true),
        "{r1:#}"
    );
    assert!(r1["timings"]["closed_ms"].as_i64().unwrap() > 0, "{r1:#}");
    assert!(r1["timings"]["first_latency_us"].is_i64(), "{r1:#}");

    // Without a read-back: the pin was set, and the report says that is all it saw.
    let r2 = channel(&report, "relay:2");
    assert_eq!(r2["result"], "ok", "{r2:#}");
    assert_eq!(r2["readback"], false);
    all_observed_ok(r2);
    assert!(
        r2["expected"][0]["observed"]["detail"]
            .as_str()
            .unwrap()
            .contains("no read-back"),
        "{r2:#}"
    );

    // Left out of drills, and not reached by the drill's class: listed, never ok.
    let r3 = channel(&report, "relay:3");
    assert_eq!(
        (&r3["result"], &r3["excluded"]),
        (&json!("not_included"), &json!("not_in_drills"))
    );
    assert!(r3["expected"].as_array().unwrap().is_empty());
    let r4 = channel(&report, "relay:4");
    assert_eq!(r4["result"], "not_triggered", "{r4:#}");
    assert!(r4["expected"].as_array().unwrap().is_empty());

    // The PA: the announcement as ordered, played to its end into a WAV file.
    let audio = channel(&report, "audio");
    assert_eq!(audio["result"], "ok", "{audio:#}");
    all_observed_ok(audio);
    let announce = audio["expected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "announce")
        .unwrap_or_else(|| panic!("an announcement: {audio:#}"));
    assert!(
        announce["what"]["text_ja"]
            .as_str()
            .unwrap()
            .contains("訓練"),
        "{announce:#}"
    );
    assert!(
        audio["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["method"] == "playback" && e["ok"] == true),
        "{audio:#}"
    );
    assert!(
        audio["timings"]["played_ms"].as_f64().unwrap() > 1000.0,
        "{audio:#}"
    );

    // The LED: the exercise pattern and back, the pins set.
    let led = channel(&report, "led");
    assert_eq!(led["result"], "ok", "{led:#}");
    all_observed_ok(led);
    assert_eq!(led["expected"][0]["what"]["pattern"], "exercise");
    assert!(
        led["expected"][0]["observed"]["detail"]
            .as_str()
            .unwrap()
            .contains("pattern exercise"),
        "{led:#}"
    );

    // MQTT: each state published and acknowledged by the broker.
    let mqtt = channel(&report, "mqtt");
    assert_eq!(mqtt["result"], "ok", "{mqtt:#}\n{}", broker.log());
    all_observed_ok(mqtt);
    let states: Vec<&str> = mqtt["expected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["what"]["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.first(), Some(&"started"), "{mqtt:#}");
    assert_eq!(states.last(), Some(&"reset"), "{mqtt:#}");

    // The counts add up, and the list of past drills has it with its result.
    assert_eq!(report["counts"]["ok"], 5, "{report:#}");
    assert_eq!(report["counts"]["not_included"], 1);
    assert_eq!(report["counts"]["not_triggered"], 1);
    let list = http(addr, "GET", "/api/drills/reports", &auth, None).json();
    let item = &list["items"][0];
    assert_eq!(item["event_id"], event_id.as_str(), "{list:#}");
    assert_eq!(item["result"], "ok");
    assert!(item.get("channels").is_none());
    daemon.stop();
}

#[test]
fn a_stuck_read_back_fails_its_channel_and_each_run_has_its_own_report() {
    let dir = scratch("stuck");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let closed = free_port();
    // Osaka (大阪府北部), where the recorded 2018-06-18 warning predicts strong shaking.
    let text = format!(
        "[site]\nlat = 34.69\nlon = 135.50\narv400 = 1.5\narea_code = \"600\"\n\
         [[outputs.relay]]\nid = 1\nname = \"elevators\"\nmin_class = \"3\"\ninclude = {{ drill = true }}\n\
         [[outputs.relay]]\nid = 2\nname = \"PA pre-start\"\nmin_class = \"3\"\ninclude = {{ drill = true }}\n\
         [storage]\npath = \"history.db\"\n[time]\nrequire_sync = false\n\
         [hardware]\nbackend = \"sim\"\n\
         [[hardware.relay]]\nid = 1\npin = 5\nreadback_pin = 24\nreadback_timeout_ms = 200\nprobe = \"none\"\n\
         [[hardware.relay]]\nid = 2\npin = 6\n\
         [webui]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\n\
         [[links.jma_tcp]]\nname = \"primary\"\nhost = \"127.0.0.1\"\nport = {closed}\n"
    );
    let cfg = dir.join("eewgate.toml");
    std::fs::write(&cfg, text).unwrap();
    // The feedback wire of contact 1 is cut: its read-back always reads open.
    let mut daemon = Daemon::start_with_env(&cfg, &[("EEWGATE_TEST_SIM_STUCK_INPUTS", "24=0")]);
    let (cookie, csrf) = set_up_and_log_in(&mut daemon, addr);
    let auth = [("Cookie", cookie.as_str())];
    let change = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];

    let mut runs = Vec::new();
    for _ in 0..2 {
        let before = daemon.seen.len();
        let r = http(
            addr,
            "POST",
            "/api/drill",
            &change,
            Some(&json!({"confirm": true, "recorded": "osaka-2018"})),
        );
        assert_eq!(r.status, 200, "{r:?}");
        let event_id = r.json()["event_id"].as_str().unwrap().to_owned();
        // Contact 1 closes, and its read-back does not follow.
        assert!(
            daemon.until(Duration::from_secs(20), |l| l[before..].iter().any(|v| {
                v["type"] == "evidence" && v["output"] == "relay:1" && v["ok"] == false
            })),
            "{:#?}",
            &daemon.seen[before..]
        );
        let r = http(addr, "POST", "/api/alert/reset", &change, Some(&json!({})));
        assert_eq!(r.status, 200, "{r:?}");
        let path = format!("/api/drills/reports/{event_id}");
        let report = json_when(addr, &path, &auth, Duration::from_secs(30), |v| {
            settled(v) && v["end"] == "reset"
        });
        assert_eq!(report["result"], "failed", "{report:#}");
        assert_eq!(report["kind"], "recorded");
        assert_eq!(report["recorded"], "osaka-2018");
        assert!(
            report["recorded_title"]["ja"]
                .as_str()
                .unwrap()
                .contains("大阪府北部"),
            "{report:#}"
        );
        assert_eq!(report["reports"], 1);
        let r1 = channel(&report, "relay:1");
        assert_eq!(r1["result"], "failed", "{r1:#}");
        assert!(
            r1["problem"]
                .as_str()
                .unwrap()
                .contains("read-back did not follow"),
            "{r1:#}"
        );
        let on = &r1["expected"][0];
        assert_eq!(on["action"], "on");
        assert_eq!(on["observed"]["ok"], false, "{r1:#}");
        // The other contact worked, and says it has no read-back.
        let r2 = channel(&report, "relay:2");
        assert_eq!(r2["result"], "ok", "{r2:#}");
        // No broker configured: MQTT had nowhere to go, so it is not included (never ok).
        let mqtt = channel(&report, "mqtt");
        assert_eq!(
            (&mqtt["result"], &mqtt["excluded"]),
            (&json!("not_included"), &json!("not_configured")),
            "{mqtt:#}"
        );
        // The PA leaves drills out by default.
        assert_eq!(channel(&report, "audio")["result"], "not_included");
        runs.push(event_id);
        // The next run starts in another second: its own event id.
        std::thread::sleep(Duration::from_millis(1100));
    }
    assert_ne!(
        runs[0], runs[1],
        "each run of a recorded event is its own event"
    );
    let list = http(addr, "GET", "/api/drills/reports", &auth, None).json();
    let listed: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [runs[1].as_str(), runs[0].as_str()], "{list:#}");
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["result"] == "failed")
    );
    daemon.stop();
}

/// A drill scheduled in the settings (`[[assurance.drill]]`) runs by itself at its time,
/// through every output that includes drills, and its report names the schedule as the
/// one who started it.
#[test]
fn a_scheduled_drill_runs_by_itself_and_has_its_report() {
    let dir = scratch("scheduled");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let closed = free_port();
    // A few seconds after the daemon is up (RFC 3339: a one-time drill).
    let at = (eewgate::system::clock::now_utc() + chrono::TimeDelta::seconds(6))
        .with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).unwrap())
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string();
    let text = format!(
        "[site]\nlat = 33.24\nlon = 131.61\narv400 = 1.2\narea_code = \"751\"\n\
         [[outputs.relay]]\nid = 1\nname = \"elevators\"\nmin_class = \"3\"\ninclude = {{ drill = true }}\n\
         [storage]\npath = \"history.db\"\n[time]\nrequire_sync = false\n\
         [hardware]\nbackend = \"sim\"\n[[hardware.relay]]\nid = 1\npin = 5\n\
         [webui]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\n\
         [assurance]\n[[assurance.drill]]\nat = \"{at}\"\nclass = \"5+\"\nseconds = 10\n\
         [[links.jma_tcp]]\nname = \"primary\"\nhost = \"127.0.0.1\"\nport = {closed}\n"
    );
    let cfg = dir.join("eewgate.toml");
    std::fs::write(&cfg, text).unwrap();
    let mut daemon = Daemon::start(&cfg);
    let (cookie, _csrf) = set_up_and_log_in(&mut daemon, addr);
    let auth = [("Cookie", cookie.as_str())];
    // Nobody presses anything: the contact closes for the drill at its time.
    let closing = daemon.first(Duration::from_secs(30), |v| {
        v["type"] == "action" && v["output"] == "relay:1" && v["action"] == "on"
    });
    assert_eq!(closing["label"], "drill", "{closing:#}");
    let event_id = closing["event_id"].as_str().unwrap().to_owned();
    assert!(event_id.starts_with("drill-"), "{event_id}");
    let started = chrono::DateTime::parse_from_rfc3339(closing["at"].as_str().unwrap()).unwrap();
    let due = chrono::DateTime::parse_from_rfc3339(&at).unwrap();
    assert!(started >= due, "not before its time: {started} < {due}");
    let list = json_when(
        addr,
        "/api/drills/reports",
        &auth,
        Duration::from_secs(10),
        |v| v["items"][0]["event_id"] == event_id.as_str(),
    );
    assert_eq!(list["items"][0]["event_id"], event_id.as_str(), "{list:#}");
    let report = json_when(
        addr,
        &format!("/api/drills/reports/{event_id}"),
        &auth,
        Duration::from_secs(10),
        |v| v["operator"]["who"] == "schedule",
    );
    assert_eq!(report["operator"]["who"], "schedule", "{report:#}");
    assert!(
        report["operator"]["detail"]
            .as_str()
            .unwrap()
            .contains("scheduled drill, class 5+"),
        "{report:#}"
    );
    let relay = channel(&report, "relay:1");
    assert_eq!(relay["expected"][0]["action"], "on", "{report:#}");
    assert_eq!(relay["expected"][0]["observed"]["ok"], true, "{report:#}");
    daemon.stop();
}
