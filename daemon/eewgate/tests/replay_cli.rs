//! `eewgate replay` through the real binary: settings file, real telegram sequences,
//! JSON Lines of actions, exit codes 78 (settings) and 1 (rejected telegram).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../core/tests/fixtures/telegrams")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// The JMA sample series modelled on the 2024-04-17 Bungo-channel event: VXSE44
/// serials 1–32 and the closing 取消.
fn bungo_series() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/fixtures/telegrams");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("jmaxml_vxse44_20240417_bungo_") && n.ends_with(".xml"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 33, "32 forecasts and the cancel");
    names.iter().map(|n| fixture(n)).collect()
}

fn write_config(name: &str, text: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("replay_cli");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A site in 大分県中部 (area 751), listed from serial 4 of the Bungo series.
const OITA: &str = "[site]\nlat = 33.24\nlon = 131.61\narv400 = 1.2\narea_code = \"751\"\n";

fn replay(config: &Path, extra: &[&str], telegrams: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .arg("replay")
        .arg("--config")
        .arg(config)
        .args(extra)
        .args(telegrams)
        .output()
        .expect("the eewgate binary runs")
}

fn actions(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stdout line is one JSON object"))
        .collect()
}

fn summary(actions: &[Value]) -> Vec<String> {
    actions
        .iter()
        .map(|a| {
            format!(
                "{} {} {} {}",
                a["at"].as_str().unwrap(),
                a["output"].as_str().unwrap(),
                a["action"].as_str().unwrap(),
                a["serial"]
            )
        })
        .collect()
}

#[test]
fn the_bungo_series_starts_updates_and_cancels_at_the_original_times() {
    let config = write_config("oita.toml", OITA);
    let out = replay(&config, &["--at-original-times"], &bungo_series());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let acts = actions(&out);
    // MQTT publishes from the first report (any class); the rest start at serial 4.
    let mqtt_first = &acts[0];
    assert_eq!(
        (mqtt_first["output"].as_str(), mqtt_first["serial"].as_u64()),
        (Some("mqtt"), Some(1))
    );
    let local: Vec<Value> = acts
        .iter()
        .filter(|a| a["output"] != "mqtt")
        .cloned()
        .collect();
    let s = summary(&local);

    // Every line has the contract's keys.
    for a in &acts {
        for key in ["at", "output", "action", "event_id", "serial", "training"] {
            assert!(a.get(key).is_some(), "missing {key} in {a}");
        }
        assert_eq!(a["event_id"], "20240417231454");
        assert_eq!(a["training"], false);
    }
    // Serial 4 lists 大分県中部 at 4 with the S wave due 23:15:04: elevators and PA
    // close at once; the voice waits 1.5 s for the PA, then counts down.
    assert_eq!(s[0], "2024-04-17T23:14:59+09:00 relay:1 on 4");
    assert_eq!(s[1], "2024-04-17T23:14:59+09:00 relay:2 on 4");
    assert!(
        s.contains(&"2024-04-17T23:15:00.500+09:00 audio announce 4".to_owned()),
        "{s:#?}"
    );
    let first = acts.iter().find(|a| a["action"] == "announce").unwrap();
    assert_eq!(
        first["text_ja"],
        "緊急地震速報、警報です。震度４。あと３秒。"
    );
    // Serial 11 raises the area to 4〜5弱 (5弱 drives): gas/doors close, the voice updates.
    assert!(
        s.contains(&"2024-04-17T23:15:03+09:00 relay:3 on 11".to_owned()),
        "{s:#?}"
    );
    // The cancel at 23:17:00 opens what it may and says so; gas/doors wait for a person.
    let cancel: Vec<&String> = s
        .iter()
        .filter(|l| l.starts_with("2024-04-17T23:17:00"))
        .collect();
    assert!(
        cancel.contains(&&"2024-04-17T23:17:00+09:00 relay:1 off 32".to_owned()),
        "{cancel:#?}"
    );
    assert!(
        cancel.contains(&&"2024-04-17T23:17:00+09:00 audio announce 32".to_owned()),
        "{cancel:#?}"
    );
    assert!(
        !s.iter().any(|l| l.contains("relay:3 off")),
        "gas/doors open only on reset"
    );
    let said = acts
        .iter()
        .rev()
        .find(|a| a["action"] == "announce")
        .unwrap();
    assert_eq!(said["text_ja"], "緊急地震速報を解除します。");
    assert_eq!(said["cause"], "cancel");
}

#[test]
fn duplicates_and_late_older_serials_change_nothing() {
    let config = write_config("oita-dup.toml", OITA);
    let series = bungo_series();
    let clean = replay(&config, &[], &series[..12]);
    let mut noisy: Vec<String> = Vec::new();
    for (i, t) in series[..12].iter().enumerate() {
        noisy.push(t.clone());
        noisy.push(t.clone());
        if i >= 2 {
            noisy.push(series[i - 2].clone());
        }
    }
    let noisy = replay(&config, &[], &noisy);
    assert!(clean.status.success() && noisy.status.success());
    assert!(!actions(&clean).is_empty());
    assert_eq!(actions(&clean), actions(&noisy));
}

#[test]
fn invalid_settings_list_every_problem_and_exit_78() {
    let config = write_config(
        "bad.toml",
        "[site]\nlat = 95\nlon = 139.7\narv400 = -1\narea_code = \"350\"\n\
         [alert]\ntrainig = true\n",
    );
    let out = replay(&config, &[], &bungo_series()[..1]);
    assert_eq!(out.status.code(), Some(78));
    assert!(out.stdout.is_empty(), "nothing replayed with bad settings");
    let err = String::from_utf8_lossy(&out.stderr);
    for path in ["site.lat", "site.arv400", "alert.trainig"] {
        assert!(err.contains(path), "{path} not reported in:\n{err}");
    }
    assert!(
        err.contains("training"),
        "a did-you-mean for the typo:\n{err}"
    );

    let missing = replay(
        Path::new("/nonexistent/eewgate.toml"),
        &[],
        &bungo_series()[..1],
    );
    assert_eq!(missing.status.code(), Some(78));
}

#[test]
fn a_rejected_telegram_is_reported_and_the_rest_still_replayed() {
    let config = write_config("oita-rej.toml", OITA);
    let garbage = write_config("garbage.txt", "37 03 00 240417231459 C11");
    let mut inputs = vec![garbage.to_string_lossy().into_owned()];
    inputs.extend(bungo_series()[..5].iter().cloned());
    let out = replay(&config, &[], &inputs);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
    assert!(!actions(&out).is_empty(), "serial 4 still acted");
}

#[test]
fn training_is_silent_unless_enabled_and_always_labelled() {
    // 2012-04-20 JMA training telegram: 東京都23区 (350) at 3 or more.
    let tokyo = "[site]\nlat = 35.68\nlon = 139.76\narv400 = 1.5\narea_code = \"350\"\n";
    let training = vec![fixture("20120420_training_ncn004.txt")];
    let off = write_config("training-off.toml", tokyo);
    let out = replay(&off, &["--decisions"], &training);
    assert!(out.status.success());
    let lines = actions(&out);
    assert!(
        lines.iter().all(|l| l.get("output").is_none()),
        "no action: {lines:?}"
    );
    assert!(lines.iter().any(|l| l["detail"] == "training_disabled"));

    let on = write_config(
        "training-on.toml",
        &format!(
            "{tokyo}[alert]\ntraining = true\n[[outputs.relay]]\nid = 1\nmin_class = \"3\"\n\
             include = {{ training = true }}\nrelease_on = [\"expiry\"]\n"
        ),
    );
    let out = replay(&on, &[], &training);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let acts = actions(&out);
    assert!(
        acts.iter()
            .any(|a| a["output"] == "relay:1" && a["action"] == "on")
    );
    assert!(
        acts.iter()
            .all(|a| a["training"] == true && a["label"] == "training"),
        "{acts:?}"
    );
}
