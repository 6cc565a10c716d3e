//! `eewgate history` through the real binary, on a database the test filled through
//! `eewgate::store`: aligned tables and JSON Lines, newest first, every table, limits,
//! reading while the database is open for writing (WAL), and usage errors.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{DateTime, Utc};
use eew_core::engine::{Action, ActionKind, AlertFlags, Cause, Decision, Label, OutputId};
use eew_core::{Intensity, JstTime};
use eewgate::store::{FaultRecord, LinkRecord, LinkState, Store, TelegramRecord};
use serde_json::Value;

fn db_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("history_cli")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("history.db")
}

fn utc(offset_s: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-02T05:46:45Z")
        .unwrap()
        .to_utc()
        + chrono::Duration::seconds(offset_s)
}

fn jst(offset_s: i64) -> JstTime {
    JstTime::from_datetime(utc(offset_s).fixed_offset())
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../core/tests/fixtures/telegrams")
            .join(name),
    )
    .unwrap()
}

fn relay(offset_s: i64, cause: Cause, serial: u32, class: Option<Intensity>) -> Action {
    Action {
        at: jst(offset_s),
        output: OutputId::Relay(1),
        kind: ActionKind::On {
            pulse_ms: Some(3000),
        },
        cause,
        event_id: Some("20110311144640".to_owned()),
        serial: Some(serial),
        label: Label::Real,
        training: false,
        intensity_class: class,
        long_period_class: None,
        warning: true,
        arrival: None,
        remaining_s: None,
        flags: AlertFlags::default(),
    }
}

/// Five telegrams (accepted, duplicate, rejected, garbage, accepted), two actions, a
/// decision, link events, a fault and a configuration. Returns the open store: the
/// command must read it while it is open for writing, as while the daemon runs.
async fn fill(path: &Path) -> Store {
    let store = Store::open(path).await.unwrap();
    let raw = fixture("20110311_tohoku_ncn001_first.txt");
    let report = eew_core::parse(&raw).unwrap();
    store
        .record_telegram(&TelegramRecord::report(
            "primary",
            utc(0),
            raw.clone(),
            &report,
            false,
            Some(250),
        ))
        .await
        .unwrap();
    store
        .record_telegram(&TelegramRecord::report(
            "backup",
            utc(1),
            raw.clone(),
            &report,
            true,
            Some(300),
        ))
        .await
        .unwrap();
    let bad = b"37 03 00 110311144645 C11".to_vec();
    let rejection = eew_core::parse(&bad).unwrap_err();
    store
        .record_telegram(&TelegramRecord::rejected(
            "backup",
            utc(2),
            bad,
            &rejection,
            Some(5),
        ))
        .await
        .unwrap();
    store
        .record_telegram(&TelegramRecord::garbage(
            "primary",
            utc(3),
            b"\r\nNOISE\tNOISE\r\n".to_vec(),
            "garbage",
        ))
        .await
        .unwrap();
    let warning = fixture("20110311_tohoku_ncn009_warning.txt");
    let report9 = eew_core::parse(&warning).unwrap();
    store
        .record_telegram(&TelegramRecord::report(
            "primary",
            utc(4),
            warning,
            &report9,
            false,
            Some(410),
        ))
        .await
        .unwrap();
    store
        .record_action(&relay(0, Cause::Start, 1, Some(Intensity::Four)))
        .await
        .unwrap();
    store
        .record_action(&relay(4, Cause::Update, 9, Some(Intensity::SixLower)))
        .await
        .unwrap();
    store
        .record_decision(
            jst(4),
            &Decision {
                event_id: Some("20110311144640".to_owned()),
                serial: Some(9),
                label: Label::Real,
                outcome: "updated",
                detail: None,
            },
        )
        .await
        .unwrap();
    for (at, state, detail) in [
        (-60, LinkState::Up, "192.0.2.1:9000"),
        (10, LinkState::Down, "connection reset"),
    ] {
        store
            .record_link_event(&LinkRecord {
                at: utc(at),
                link: "primary".to_owned(),
                state,
                detail: Some(detail.to_owned()),
            })
            .await
            .unwrap();
    }
    store
        .record_fault(&FaultRecord {
            at: utc(11),
            kind: "link".to_owned(),
            active: true,
            detail: Some("primary silent for 12 s".to_owned()),
        })
        .await
        .unwrap();
    store
        .record_config(utc(-120), "[site]\narea = 350\n")
        .await
        .unwrap();
    store
}

fn eewgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .args(args)
        .output()
        .expect("the eewgate binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json_lines(out: &Output) -> Vec<Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
        .collect()
}

#[test]
fn history_prints_tables_and_json_while_the_database_is_open() {
    let path = db_path("filled");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = runtime.block_on(fill(&path));
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    assert!(
        Path::new(&wal).exists(),
        "the rows are still in the WAL of an open database"
    );
    let db = path.to_str().unwrap();

    // Default: telegrams, newest first, aligned.
    let out = eewgate(&["history", "--db", db]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert!(lines[0].starts_with("ID  RECEIVED"), "{text}");
    let verdict_col = lines[0].find("VERDICT").unwrap();
    let verdicts: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l[verdict_col..].split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        verdicts,
        ["accepted", "garbage", "rejected", "duplicate", "accepted"]
    );
    // Times in JST.
    assert!(lines[5].contains("2026-11-02 14:46:45.000"), "{text}");
    // Control characters in a cell do not break the table.
    assert!(lines.iter().all(|l| !l.contains('\t')));
    assert!(lines[3].contains("truncated"), "{text}");

    // --limit.
    let out = eewgate(&["history", "--db", db, "--limit", "2"]);
    assert_eq!(stdout(&out).lines().count(), 3);

    // JSON Lines.
    let out = eewgate(&["history", "--db", db, "--telegrams", "--json"]);
    assert!(out.status.success());
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["verdict"], "accepted");
    assert_eq!(rows[0]["serial"], 9);
    assert_eq!(rows[0]["received_at"], "2026-11-02T14:46:49+09:00");
    assert_eq!(rows[3]["verdict"], "duplicate");
    assert_eq!(rows[3]["link"], "backup");
    assert_eq!(rows[3]["decode_us"], 300);
    assert_eq!(rows[2]["reason"], "truncated");
    assert!(rows[0].get("raw").is_none(), "raw only on request");
    let out = eewgate(&["history", "--db", db, "--json", "--raw", "--limit", "2"]);
    let rows = json_lines(&out);
    assert_eq!(rows[1]["raw"], "\r\nNOISE\tNOISE\r\n");
    assert_eq!(rows[1]["size"], 15);

    // Alerts.
    let out = eewgate(&["history", "--db", db, "--alerts"]);
    let text = stdout(&out);
    assert!(text.starts_with("EVENT"), "{text}");
    assert!(text.contains("20110311144640"), "{text}");
    assert!(text.contains("6-"), "{text}");
    assert!(text.contains("1-9"), "{text}");
    let alerts = json_lines(&eewgate(&["history", "--db", db, "--alerts", "--json"]));
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["max_class"], "6-");
    assert_eq!(alerts[0]["actions"], 2);
    assert_eq!(alerts[0]["ended"], Value::Null);

    // The other tables.
    let actions = json_lines(&eewgate(&["history", "--db", db, "--actions", "--json"]));
    assert_eq!(actions.len(), 2);
    assert_eq!(actions[0]["json"]["pulse_ms"], 3000);
    assert_eq!(actions[0]["cause"], "update");
    let text = stdout(&eewgate(&["history", "--db", db, "--actions"]));
    assert!(text.contains("pulse_ms=3000"), "{text}");
    let text = stdout(&eewgate(&["history", "--db", db, "--decisions"]));
    assert!(text.contains("updated"), "{text}");
    let links = json_lines(&eewgate(&["history", "--db", db, "--links", "--json"]));
    assert_eq!(
        links.iter().map(|l| l["state"].clone()).collect::<Vec<_>>(),
        ["down", "up"]
    );
    let text = stdout(&eewgate(&["history", "--db", db, "--faults"]));
    assert!(text.contains("raised"), "{text}");
    assert!(text.contains("primary silent for 12 s"), "{text}");
    let configs = json_lines(&eewgate(&[
        "history",
        "--db",
        db,
        "--config-changes",
        "--json",
    ]));
    assert_eq!(configs[0]["text"], "[site]\narea = 350\n");

    // After the "daemon" closed the database (no WAL left), it still reads.
    runtime.block_on(store.close());
    assert!(!Path::new(&wal).exists());
    let out = eewgate(&["history", "--db", db, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_lines(&out).len(), 5);
}

#[test]
fn history_reports_a_missing_database_and_bad_usage() {
    let path = db_path("missing");
    let db = path.to_str().unwrap();
    let out = eewgate(&["history", "--db", db]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no history database"), "{err}");
    assert!(!path.exists(), "reading never creates a database");

    // One table at a time; --raw needs --json; --limit at least 1.
    for args in [
        vec!["history", "--db", db, "--alerts", "--faults"],
        vec!["history", "--db", db, "--raw"],
        vec!["history", "--db", db, "--limit", "0"],
    ] {
        let out = eewgate(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn history_of_an_empty_database_prints_the_header_only() {
    let path = db_path("empty");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        Store::open(&path).await.unwrap().close().await;
    });
    let out = eewgate(&["history", "--db", path.to_str().unwrap(), "--alerts"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out).lines().count(), 1);
    let out = eewgate(&["history", "--db", path.to_str().unwrap(), "--json"]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
}
