//! `eewgate whatif` through the real binary, checked against `eewgate replay`: the
//! preview of each reference earthquake (issue 7) says exactly what a replay of the
//! telegram it writes does — the same outputs operate with the same actions, at the same
//! times — under the default settings and under a changed threshold, which changes both.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A building in 大分県中部 with the four default contacts.
const OITA: &str = "[site]\nlat = 33.24\nlon = 131.61\narv400 = 1.2\narea_code = \"751\"\n";

/// The same building with one contact, the elevators, from 5- instead of 4.
const OITA_ELEVATORS_5: &str = "[site]\nlat = 33.24\nlon = 131.61\narv400 = 1.2\narea_code = \"751\"\n\
     [[outputs.relay]]\nid = 1\nname = \"elevators\"\nmin_class = \"5-\"\nhold_s = 60\n";

const CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5-", "5+", "6-", "6+", "7"];

fn dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("whatif_cli")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn eewgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .args(args)
        .output()
        .expect("the eewgate binary runs")
}

fn lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stdout line is one JSON object"))
        .collect()
}

/// What an action is, for comparing: the replay's JSON line as it is, the preview's
/// without its offset.
fn key(a: &Value) -> String {
    let mut a = a.clone();
    if let Value::Object(m) = &mut a {
        m.remove("offset_ms");
    }
    a.to_string()
}

/// The outputs that operate in a list of actions (a contact closes, the voice speaks,
/// the LED shows an alert or exercise, an alert is published).
fn operating(actions: &[Value]) -> BTreeSet<String> {
    actions
        .iter()
        .filter(|a| match a["action"].as_str().unwrap() {
            "on" | "announce" | "countdown" | "publish" => true,
            "led" => matches!(a["pattern"].as_str(), Some("alert" | "exercise")),
            _ => false,
        })
        .map(|a| a["output"].as_str().unwrap().to_owned())
        .collect()
}

struct Compared {
    /// Per scenario: its class at the site and the outputs that operate.
    scenarios: Vec<(String, Option<String>, BTreeSet<String>)>,
}

/// Runs `whatif --json --write-telegrams`, then `replay` on each telegram, and checks
/// they agree action by action.
fn compare(name: &str, settings: &str) -> Compared {
    let d = dir(name);
    let config = d.join("eewgate.toml");
    std::fs::write(&config, settings).unwrap();
    let telegrams = d.join("telegrams");
    let previews = lines(&eewgate(&[
        "whatif",
        "--config",
        config.to_str().unwrap(),
        "--json",
        "--write-telegrams",
        telegrams.to_str().unwrap(),
    ]));
    assert_eq!(previews.len(), 5, "five reference earthquakes");
    let mut scenarios = Vec::new();
    for p in &previews {
        let id = p["scenario"].as_str().unwrap().to_owned();
        let telegram = p["telegram"].as_str().unwrap();
        assert!(Path::new(telegram).starts_with(&telegrams), "{telegram}");
        let replayed = lines(&eewgate(&[
            "replay",
            "--config",
            config.to_str().unwrap(),
            telegram,
        ]));
        let previewed: Vec<Value> = p["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|o| o["actions"].as_array().unwrap().iter().cloned())
            .collect();
        // The same actions, to the millisecond and the spoken word.
        let mut a: Vec<String> = previewed.iter().map(key).collect();
        let mut b: Vec<String> = replayed.iter().map(key).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{name}: {id}: the preview and the replay differ");
        // The same outputs operate, and the preview says so output by output.
        let fires: BTreeSet<String> = p["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["fires"] == true)
            .map(|o| o["output"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(fires, operating(&replayed), "{name}: {id}");
        // Every offset is the action's time after the receipt.
        let received =
            chrono::DateTime::parse_from_rfc3339(p["received_at"].as_str().unwrap()).unwrap();
        for a in &previewed {
            let at = chrono::DateTime::parse_from_rfc3339(a["at"].as_str().unwrap()).unwrap();
            assert_eq!(
                a["offset_ms"].as_i64().unwrap(),
                (at - received).num_milliseconds(),
                "{id}"
            );
        }
        let class = p["prediction"]["class"].as_str().map(str::to_owned);
        scenarios.push((id, class, fires));
    }
    Compared { scenarios }
}

fn reaches(class: Option<&str>, threshold: &str) -> bool {
    let rank = |c: &str| CLASSES.iter().position(|x| *x == c).unwrap();
    class.is_some_and(|c| rank(c) >= rank(threshold))
}

#[test]
fn the_preview_matches_replay_for_every_reference_report() {
    let c = compare("default", OITA);
    let ids: Vec<&str> = c.scenarios.iter().map(|(id, ..)| id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "nearby_m7_inland",
            "distant_m8_offshore",
            "deep_m6",
            "plum_only",
            "training_nearby_m7"
        ]
    );
    // Not vacuous: something operates, and the training report (training reception is
    // off by default) operates nothing.
    assert!(c.scenarios.iter().any(|(_, _, f)| f.contains("relay:1")));
    let training = c
        .scenarios
        .iter()
        .find(|(id, ..)| id == "training_nearby_m7")
        .unwrap();
    assert!(training.2.is_empty(), "{:?}", training.2);
    // The elevators (default from 4) operate exactly where the site reaches 4.
    for (id, class, fires) in &c.scenarios {
        if id != "training_nearby_m7" {
            assert_eq!(
                fires.contains("relay:1"),
                reaches(class.as_deref(), "4"),
                "{id}"
            );
        }
    }
}

#[test]
fn a_changed_threshold_changes_the_preview_and_the_replay_alike() {
    let before = compare("elevators-4", OITA);
    let after = compare("elevators-5", OITA_ELEVATORS_5);
    let with_elevators = |c: &Compared| -> Vec<String> {
        c.scenarios
            .iter()
            .filter(|(_, _, f)| f.contains("relay:1"))
            .map(|(id, ..)| id.clone())
            .collect()
    };
    // Under both settings each agreed with replay (checked in `compare`); the threshold
    // moved at least one reference earthquake out of the elevators' reach.
    assert_ne!(with_elevators(&before), with_elevators(&after));
    for (id, class, fires) in &after.scenarios {
        if id != "training_nearby_m7" {
            assert_eq!(
                fires.contains("relay:1"),
                reaches(class.as_deref(), "5-"),
                "{id}"
            );
        }
        // Only contact 1 is configured now.
        assert!(
            !fires.contains("relay:2") && !fires.contains("relay:3"),
            "{id}"
        );
    }
}

#[test]
fn the_table_names_every_output_and_invalid_settings_exit_78() {
    let d = dir("table");
    let config = d.join("eewgate.toml");
    std::fs::write(&config, OITA).unwrap();
    let out = eewgate(&[
        "whatif",
        "--config",
        config.to_str().unwrap(),
        "--at",
        "2026-05-01T03:00:00+09:00",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "nearby_m7_inland",
        "training_nearby_m7",
        "relay:1 elevators",
        "relay:3 gas / doors",
        "does not act: training_disabled",
        "received    2026-05-01T03:00:00+09:00",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }

    std::fs::write(&config, "[site]\nlat = 99\nlon = 131.61\narv400 = 1.2\n").unwrap();
    let out = eewgate(&["whatif", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("site.lat"));
    assert!(out.stdout.is_empty());

    std::fs::write(&config, OITA).unwrap();
    let out = eewgate(&[
        "whatif",
        "--config",
        config.to_str().unwrap(),
        "--at",
        "noon",
    ]);
    assert_eq!(out.status.code(), Some(2));
}
