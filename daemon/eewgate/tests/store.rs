//! The history store on real SQLite files: round trips, ordering, retention, reopening,
//! corrupt and unwritable files, a full disk, queue overflow, evidence (summary, paging,
//! query plans), and `kill -9` durability.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use eew_core::engine::{
    Action, ActionKind, AlertFlags, AlertState, Cause, Decision, Label, LedPattern, OutputId,
};
use eew_core::{Intensity, JstTime};
use eewgate::store::{
    DegradedReason, EvidenceRecord, EvidenceRow, FaultRecord, HealthState, HistoryWriter,
    LinkRecord, LinkState, NotQueued, Record, Store, StoreError, StoreHealth, StoreOptions,
    TelegramRecord, Verdict, WriterOptions,
};
use tokio_util::sync::CancellationToken;

/// A fresh directory for one test; the database path inside it.
fn db_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("store")
        .join(name);
    if dir.exists() {
        make_writable(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("history.db")
}

fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walk(dir) {
        let _ = std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o755));
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_owned()];
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&e.path()));
            }
        }
    }
    out
}

/// 2026-11-02T14:46:45.123+09:00 plus `offset_ms`.
fn utc(offset_ms: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-02T05:46:45.123Z")
        .unwrap()
        .to_utc()
        + chrono::Duration::milliseconds(offset_ms)
}

fn jst(offset_ms: i64) -> JstTime {
    JstTime::from_datetime(utc(offset_ms).fixed_offset())
}

const DAY_MS: i64 = 24 * 3600 * 1000;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../core/tests/fixtures/telegrams")
            .join(name),
    )
    .unwrap()
}

fn accepted(offset_ms: i64, link: &str) -> TelegramRecord {
    let raw = fixture("20110311_tohoku_ncn001_first.txt");
    let report = eew_core::parse(&raw).unwrap();
    TelegramRecord::report(link, utc(offset_ms), raw, &report, false, Some(412))
}

fn garbage(offset_ms: i64, n: usize) -> TelegramRecord {
    TelegramRecord::garbage("primary", utc(offset_ms), vec![0xA5; n], "garbage")
}

fn action(
    offset_ms: i64,
    output: OutputId,
    kind: ActionKind,
    cause: Cause,
    event: Option<&str>,
    serial: Option<u32>,
    class: Option<Intensity>,
) -> Action {
    Action {
        at: jst(offset_ms),
        output,
        kind,
        cause,
        event_id: event.map(str::to_owned),
        serial,
        label: Label::Real,
        training: false,
        intensity_class: class,
        long_period_class: None,
        warning: false,
        arrival: None,
        remaining_s: None,
        flags: AlertFlags::default(),
    }
}

fn relay_on(offset_ms: i64, event: &str, serial: u32, class: Intensity) -> Action {
    action(
        offset_ms,
        OutputId::Relay(1),
        ActionKind::On {
            pulse_ms: Some(3000),
        },
        if serial == 1 {
            Cause::Start
        } else {
            Cause::Update
        },
        Some(event),
        Some(serial),
        Some(class),
    )
}

fn decision(event: &str, serial: u32, outcome: &'static str) -> Decision {
    Decision {
        event_id: Some(event.to_owned()),
        serial: Some(serial),
        label: Label::Real,
        outcome,
        detail: None,
    }
}

fn link(offset_ms: i64, state: LinkState) -> LinkRecord {
    LinkRecord {
        at: utc(offset_ms),
        link: "primary".to_owned(),
        state,
        detail: Some("192.0.2.1:9000".to_owned()),
    }
}

fn fault(offset_ms: i64, kind: &str, active: bool) -> FaultRecord {
    FaultRecord {
        at: utc(offset_ms),
        kind: kind.to_owned(),
        active,
        detail: Some("offset 1.4 s".to_owned()),
    }
}

async fn wait_health(
    health: &mut tokio::sync::watch::Receiver<StoreHealth>,
    what: &str,
    pred: impl FnMut(&StoreHealth) -> bool,
) -> StoreHealth {
    let waited = tokio::time::timeout(Duration::from_secs(10), health.wait_for(pred))
        .await
        .map(|r| r.map(|h| h.clone()));
    match waited {
        Ok(Ok(h)) => h,
        _ => panic!("health never became {what}: {:?}", *health.borrow()),
    }
}

#[tokio::test]
async fn every_record_type_round_trips() {
    let store = Store::open(&db_path("round_trip")).await.unwrap();

    let ok = accepted(0, "primary");
    let dup = TelegramRecord {
        verdict: Verdict::Duplicate,
        link: "backup".to_owned(),
        received_at: utc(35),
        ..ok.clone()
    };
    let raw = b"37 03 00 110311144645 C11".to_vec();
    let rejection = eew_core::parse(&raw).unwrap_err();
    let bad = TelegramRecord::rejected("backup", utc(40), raw.clone(), &rejection, Some(7));
    let junk = garbage(50, 3);
    let mut ids = Vec::new();
    for t in [&ok, &dup, &bad, &junk] {
        ids.push(store.record_telegram(t).await.unwrap());
    }
    let rows = store.recent_telegrams(10).await.unwrap();
    assert_eq!(rows.len(), 4);
    // Newest first.
    for (row, (record, id)) in rows
        .iter()
        .rev()
        .zip([&ok, &dup, &bad, &junk].iter().zip(&ids))
    {
        assert_eq!(row.id, *id);
        assert_eq!(row.received_at.0, record.received_at);
        assert_eq!(row.link, record.link);
        assert_eq!(row.verdict, record.verdict.as_str());
        assert_eq!(row.reason, record.reason);
        assert_eq!(row.message, record.message);
        assert_eq!(row.event_id, record.event_id);
        assert_eq!(row.serial, record.serial);
        assert_eq!(row.status, record.status);
        assert_eq!(row.kind, record.kind);
        assert_eq!(row.format, record.format);
        assert_eq!(row.product, record.product);
        assert_eq!(row.actionable, record.actionable);
        assert_eq!(row.decode_us, record.decode_us);
        assert_eq!(row.raw, record.raw);
        assert_eq!(row.size, record.raw.len() as u64);
    }
    let first = &rows[3];
    assert_eq!(first.verdict, "accepted");
    assert_eq!(first.event_id.as_deref(), Some("20110311144640"));
    assert_eq!(first.serial, Some(1));
    assert_eq!(first.status.as_deref(), Some("normal"));
    assert_eq!(first.format.as_deref(), Some("jma_code"));
    assert_eq!(first.product.as_deref(), Some("code37"));
    assert_eq!(rows[1].reason.as_deref(), Some("truncated"));
    assert_eq!(store.telegram(ids[2]).await.unwrap().unwrap().raw, raw);
    assert!(store.telegram(9999).await.unwrap().is_none());

    let d = Decision {
        detail: Some("below_threshold"),
        ..decision("20110311144640", 1, "not_acted")
    };
    let did = store.record_decision(jst(1), &d).await.unwrap();
    let drow = &store.recent_decisions(5).await.unwrap()[0];
    assert_eq!(drow.id, did);
    assert_eq!(drow.at, jst(1));
    assert_eq!(drow.event_id.as_deref(), Some("20110311144640"));
    assert_eq!(drow.serial, Some(1));
    assert_eq!(drow.label, "real");
    assert_eq!(drow.outcome, "not_acted");
    assert_eq!(drow.detail.as_deref(), Some("below_threshold"));

    let mut a = relay_on(2, "20110311144640", 1, Intensity::FiveLower);
    a.long_period_class = Some(2);
    a.warning = true;
    a.arrival = Some(jst(20_000));
    a.remaining_s = Some(19.998);
    let aid = store.record_action(&a).await.unwrap();
    let arow = &store.recent_actions(5).await.unwrap()[0];
    assert_eq!(arow.id, aid);
    assert_eq!(arow.at, a.at);
    assert_eq!(arow.output, "relay:1");
    assert_eq!(arow.action, "on");
    assert_eq!(arow.cause, "start");
    assert_eq!(arow.event_id, a.event_id);
    assert_eq!(arow.serial, Some(1));
    assert_eq!(arow.label, "real");
    assert!(!arow.training);
    assert_eq!(arow.intensity_class.as_deref(), Some("5-"));
    assert_eq!(arow.long_period_class, Some(2));
    assert!(arow.warning);
    // The full action, exactly as `eewgate replay` prints it.
    assert_eq!(arow.json, serde_json::to_value(&a).unwrap());

    let l = link(3, LinkState::Up);
    let lid = store.record_link_event(&l).await.unwrap();
    let lrow = &store.recent_link_events(5).await.unwrap()[0];
    assert_eq!(
        (
            lrow.id,
            lrow.at.0.to_utc(),
            &lrow.link,
            lrow.state.as_str(),
            &lrow.detail
        ),
        (lid, l.at, &l.link, "up", &l.detail)
    );

    let f = fault(4, "time_sync", true);
    let fid = store.record_fault(&f).await.unwrap();
    let frow = &store.recent_faults(5).await.unwrap()[0];
    assert_eq!(
        (
            frow.id,
            frow.at.0.to_utc(),
            frow.kind.as_str(),
            frow.active,
            &frow.detail
        ),
        (fid, f.at, "time_sync", true, &f.detail)
    );

    let text = "[site]\narea = 350\n";
    let cid = store.record_config(utc(5), text).await.unwrap();
    assert!(cid.is_some(), "the first version is stored");
    assert_eq!(
        store.record_config(utc(6), text).await.unwrap(),
        None,
        "unchanged text is not stored again"
    );
    let changed = store
        .record_config(utc(7), "[site]\narea = 351\n")
        .await
        .unwrap();
    assert!(changed > cid);
    let configs = store.recent_configs(5).await.unwrap();
    assert_eq!(configs.len(), 2);
    assert_eq!(configs[1].text, text);
    assert_eq!(configs[1].sha256, eewgate::store::sha256_hex(text));
    assert_eq!(configs[1].sha256.len(), 64);
    assert_eq!(configs[0].at.0, utc(7));

    let counts = store.counts().await.unwrap();
    assert_eq!(
        (
            counts.telegrams,
            counts.decisions,
            counts.actions,
            counts.alerts,
            counts.link_events,
            counts.faults,
            counts.config_changes
        ),
        (4, 1, 1, 1, 1, 1, 2)
    );
    assert!(counts.size_bytes > 0);
    store.close().await;
}

#[tokio::test]
async fn config_fingerprint_is_sha256() {
    // `printf 'abc' | sha256sum`
    assert_eq!(
        eewgate::store::sha256_hex("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[tokio::test]
async fn recent_rows_are_newest_first_and_limited() {
    let store = Store::open(&db_path("recent")).await.unwrap();
    // Inserted out of time order: the order is by time, not by insertion.
    for offset in [3, 1, 4, 1, 5, 9, 2, 6] {
        store
            .record_telegram(&garbage(offset * 1000, 1))
            .await
            .unwrap();
        store
            .record_decision(jst(offset * 1000), &decision("e", 1, "accepted"))
            .await
            .unwrap();
        store
            .record_link_event(&link(offset * 1000, LinkState::Alive))
            .await
            .unwrap();
        store
            .record_fault(&fault(offset * 1000, "link", offset % 2 == 0))
            .await
            .unwrap();
    }
    let times: Vec<DateTime<Utc>> = store
        .recent_telegrams(5)
        .await
        .unwrap()
        .iter()
        .map(|r| r.received_at.0.to_utc())
        .collect();
    let expected: Vec<DateTime<Utc>> = [9, 6, 5, 4, 3].iter().map(|s| utc(s * 1000)).collect();
    assert_eq!(times, expected);
    let decisions = store.recent_decisions(3).await.unwrap();
    assert_eq!(
        decisions.iter().map(|d| d.at).collect::<Vec<_>>(),
        vec![jst(9000), jst(6000), jst(5000)]
    );
    // Equal times: the later insert first.
    let links = store.recent_link_events(8).await.unwrap();
    assert_eq!(links.len(), 8);
    assert_eq!(links[6].at, links[7].at);
    assert!(links[6].id > links[7].id);
    assert_eq!(store.recent_faults(1).await.unwrap().len(), 1);
    assert_eq!(store.recent_faults(100).await.unwrap().len(), 8);
}

#[tokio::test]
async fn alerts_summarise_each_event() {
    let store = Store::open(&db_path("alerts")).await.unwrap();
    let a = "20240417231450";
    let b = "20240418100000";
    store
        .record_action(&relay_on(0, a, 1, Intensity::Four))
        .await
        .unwrap();
    let mut strongest = relay_on(1000, a, 3, Intensity::SixLower);
    strongest.warning = true;
    store.record_action(&strongest).await.unwrap();
    // A weaker update never lowers the summary.
    store
        .record_action(&relay_on(2000, a, 5, Intensity::FiveLower))
        .await
        .unwrap();
    store
        .record_action(&action(
            3000,
            OutputId::Mqtt,
            ActionKind::Publish {
                state: AlertState::Cancelled,
                driving: true,
            },
            Cause::Cancel,
            Some(a),
            Some(6),
            None,
        ))
        .await
        .unwrap();
    store
        .record_action(&action(
            4000,
            OutputId::Relay(1),
            ActionKind::Off,
            Cause::HoldEnd,
            Some(a),
            Some(6),
            None,
        ))
        .await
        .unwrap();
    // Fault changes have no event: not an alert.
    store
        .record_action(&action(
            4500,
            OutputId::Led,
            ActionKind::Led {
                pattern: LedPattern::Fault,
            },
            Cause::Fault,
            None,
            None,
            None,
        ))
        .await
        .unwrap();
    let mut drill = relay_on(60_000, b, 1, Intensity::Three);
    drill.label = Label::Drill;
    drill.training = true;
    store.record_action(&drill).await.unwrap();
    // The same id as a training event is another event (as in the engine).
    let mut training = relay_on(70_000, a, 1, Intensity::Two);
    training.label = Label::Training;
    training.training = true;
    store.record_action(&training).await.unwrap();

    let alerts = store.recent_alerts(10).await.unwrap();
    assert_eq!(alerts.len(), 3);
    assert_eq!(
        (alerts[0].event_id.as_str(), alerts[0].label.as_str()),
        (a, "training")
    );
    assert_eq!(alerts[0].max_class.as_deref(), Some("2"));
    assert_eq!(alerts[1].event_id, b);
    assert_eq!(alerts[1].label, "drill");
    assert_eq!(alerts[1].ended, None);
    assert!(!alerts[1].cancelled);
    let first = &alerts[2];
    assert_eq!(first.event_id, a);
    assert_eq!(first.label, "real");
    assert_eq!(first.first_at, jst(0));
    assert_eq!(first.last_at, jst(4000));
    assert_eq!((first.first_serial, first.last_serial), (Some(1), Some(6)));
    assert_eq!(first.max_class.as_deref(), Some("6-"));
    assert!(first.warning);
    assert!(first.cancelled);
    assert_eq!(first.ended.as_deref(), Some("cancel"));
    assert_eq!(first.actions, 5);
    assert_eq!(store.recent_alerts(1).await.unwrap()[0].label, "training");
}

#[tokio::test]
async fn purge_removes_exactly_the_old_rows() {
    let store = Store::open(&db_path("purge")).await.unwrap();
    let old = -400 * DAY_MS;
    let new = -10 * DAY_MS;
    // Enough old telegrams to take several chunks.
    for i in 0..1234 {
        store.record_telegram(&garbage(old + i, 100)).await.unwrap();
    }
    let keep_telegram = store.record_telegram(&garbage(new, 100)).await.unwrap();
    for at in [old, new] {
        store
            .record_decision(jst(at), &decision("e", 1, "accepted"))
            .await
            .unwrap();
        store
            .record_link_event(&link(at, LinkState::Down))
            .await
            .unwrap();
        store.record_fault(&fault(at, "link", true)).await.unwrap();
    }
    store
        .record_action(&relay_on(old, "old", 1, Intensity::Four))
        .await
        .unwrap();
    store
        .record_action(&relay_on(new, "new", 1, Intensity::Four))
        .await
        .unwrap();
    // An event whose last action is recent stays, with all its summary.
    store
        .record_action(&relay_on(old + 1, "long", 1, Intensity::Four))
        .await
        .unwrap();
    store
        .record_action(&relay_on(new + 1, "long", 2, Intensity::FiveLower))
        .await
        .unwrap();
    // Two old configuration versions: the newest is the one in force, kept.
    store.record_config(utc(old), "a = 1\n").await.unwrap();
    let current = store
        .record_config(utc(old + 1), "a = 2\n")
        .await
        .unwrap()
        .unwrap();

    let cutoff = utc(-365 * DAY_MS);
    let counts = store.purge_older_than(cutoff).await.unwrap();
    assert_eq!(counts.telegrams, 1234);
    assert_eq!(counts.decisions, 1);
    assert_eq!(counts.actions, 2);
    assert_eq!(counts.alerts, 1);
    assert_eq!(counts.link_events, 1);
    assert_eq!(counts.faults, 1);
    assert_eq!(counts.config_changes, 1);

    let telegrams = store.recent_telegrams(100).await.unwrap();
    assert_eq!(telegrams.len(), 1);
    assert_eq!(telegrams[0].id, keep_telegram);
    assert!(
        store
            .recent_decisions(10)
            .await
            .unwrap()
            .iter()
            .all(|d| d.at == jst(new))
    );
    assert_eq!(store.recent_link_events(10).await.unwrap().len(), 1);
    assert_eq!(store.recent_faults(10).await.unwrap().len(), 1);
    let alerts: Vec<String> = store
        .recent_alerts(10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.event_id)
        .collect();
    // By first action, newest first: "long" began before the cutoff but is kept whole
    // while its latest action is recent.
    assert_eq!(alerts, vec!["new".to_owned(), "long".to_owned()]);
    let configs = store.recent_configs(10).await.unwrap();
    assert_eq!(configs.len(), 1);
    assert_eq!(configs[0].id, current);

    // Nothing left to purge; purging again changes nothing.
    assert_eq!(store.purge_older_than(cutoff).await.unwrap().total(), 0);
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.telegrams, 1);
    assert!(
        counts.free_bytes < 64 * 1024,
        "freed pages went back to the file system: {counts:?}"
    );
    store.quick_check().await.unwrap();
}

#[tokio::test]
async fn reopening_reruns_migrations_idempotently() {
    let path = db_path("reopen");
    let store = Store::open(&path).await.unwrap();
    let id = store
        .record_telegram(&accepted(0, "primary"))
        .await
        .unwrap();
    store.close().await;
    for _ in 0..3 {
        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.recent_telegrams(10).await.unwrap()[0].id, id);
        store.close().await;
    }
    // One row per migration file, each applied once.
    let migrations = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".sql")
        })
        .count();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let (applied, mode): (i64, String) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM _sqlx_migrations WHERE success), \
         (SELECT journal_mode FROM pragma_journal_mode())",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(applied, migrations as i64);
    assert_eq!(mode, "wal");
    pool.close().await;
    // Ids are never reused, even when the newest rows are gone.
    let store = Store::open(&path).await.unwrap();
    store.purge_older_than(utc(DAY_MS)).await.unwrap();
    let next = store
        .record_telegram(&accepted(0, "primary"))
        .await
        .unwrap();
    assert!(next > id);
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_corrupt() {
    let path = db_path("garbage_file");
    let junk: Vec<u8> = (0..16384u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&path, &junk).unwrap();
    match Store::open(&path).await {
        Err(StoreError::Corrupt(why)) => assert!(!why.is_empty()),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(matches!(
        Store::open_read_only(&path).await,
        Err(StoreError::Corrupt(_))
    ));
    // The file was not touched.
    assert_eq!(std::fs::read(&path).unwrap(), junk);

    // open_or_quarantine moves it aside and starts afresh.
    let (store, aside) = Store::open_or_quarantine(&path, &StoreOptions::default(), utc(0))
        .await
        .unwrap();
    let aside = aside.expect("the corrupt file was moved aside");
    assert_eq!(std::fs::read(&aside).unwrap(), junk);
    let suffix = format!(".corrupt-{}", utc(0).timestamp());
    assert!(
        aside.to_string_lossy().ends_with(&suffix),
        "{}",
        aside.display()
    );
    store
        .record_telegram(&accepted(0, "primary"))
        .await
        .unwrap();
    assert_eq!(store.recent_telegrams(5).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_damaged_page_is_reported_as_corrupt() {
    let path = db_path("damaged_page");
    let store = Store::open(&path).await.unwrap();
    for i in 0..300 {
        store.record_telegram(&garbage(i, 2000)).await.unwrap();
    }
    // Closing checkpoints the WAL into the file.
    store.close().await;
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 40 * 4096);
    // Overwrite pages 20..30 (page 1, the header and schema, stays intact).
    for b in &mut bytes[19 * 4096..30 * 4096] {
        *b = 0x5A;
    }
    std::fs::write(&path, &bytes).unwrap();
    let result = match Store::open(&path).await {
        Err(e) => Err(e),
        Ok(store) => match store.recent_telegrams(1000).await {
            Err(e) => Err(e),
            Ok(_) => store.quick_check().await,
        },
    };
    match result {
        Err(StoreError::Corrupt(_)) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unwritable_location_is_an_io_error() {
    // A directory that is a file: fails for every user, root included.
    let path = db_path("unwritable");
    let file = path.with_file_name("not-a-directory");
    std::fs::write(&file, b"x").unwrap();
    match Store::open(&file.join("history.db")).await {
        Err(StoreError::Io(why)) => assert!(why.contains("not-a-directory"), "{why}"),
        other => panic!("expected Io, got {other:?}"),
    }
    // A read-only directory (meaningless for root, who may write anyway).
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap().join("readonly");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let root = std::fs::write(dir.join("probe"), b"x").is_ok();
    if !root {
        for p in [dir.join("history.db"), dir.join("sub/history.db")] {
            match Store::open(&p).await {
                Err(StoreError::Io(_)) => {}
                other => panic!("expected Io for {}, got {other:?}", p.display()),
            }
        }
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_degrades_history_but_never_blocks_the_sender() {
    let path = db_path("full");
    let options = StoreOptions {
        max_size_bytes: Some(64 * 4096),
        ..StoreOptions::default()
    };
    let store = Store::open_with(&path, &options).await.unwrap();
    // Directly: fill it until SQLite refuses.
    let mut error = None;
    for i in 0..200 {
        if let Err(e) = store.record_telegram(&garbage(i, 8192)).await {
            error = Some(e);
            break;
        }
    }
    match error {
        Some(StoreError::Full(_)) => {}
        other => panic!("expected Full, got {other:?}"),
    }

    // Through the writer.
    let (writer, task) = HistoryWriter::new(
        store.clone(),
        WriterOptions {
            capacity: 64,
            max_batch: 4,
        },
    );
    let cancel = CancellationToken::new();
    let running = tokio::spawn(task.run(cancel.clone()));
    let mut health = writer.health();
    let lost = writer
        .try_send_acked(Record::Telegram(garbage(1000, 8192)))
        .unwrap();
    assert!(
        lost.stored().await.is_err(),
        "the record could not be stored"
    );
    let degraded = wait_health(&mut health, "degraded (full)", |h| {
        matches!(
            h.state,
            HealthState::Degraded {
                reason: DegradedReason::Full,
                ..
            }
        )
    })
    .await;
    assert!(degraded.dropped >= 1);
    assert!(degraded.detail().unwrap().contains("(full)"));

    // The engine side keeps going at full speed: every send returns at once.
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..20_000 {
        let t = Instant::now();
        let _ = writer.try_send(Record::Telegram(garbage(2000 + i, 8192)));
        slowest = slowest.max(t.elapsed());
    }
    // Generous bounds for a loaded CI machine; waiting on the disk would take the busy
    // timeout (5 s) per batch.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(slowest < Duration::from_secs(1), "slowest send {slowest:?}");
    // Everything was either lost to the full disk or to the full queue; none waited.
    let until = Instant::now() + Duration::from_secs(20);
    while writer.queued() > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let h = health.borrow().clone();
    assert!(h.dropped > 19_000, "{h:?}");
    assert!(
        matches!(
            h.state,
            HealthState::Degraded {
                reason: DegradedReason::Full,
                ..
            }
        ),
        "the disk is the reason, not the queue it backed up: {h:?}"
    );

    // Space comes back: history recovers by itself and records the episode.
    store.purge_older_than(utc(DAY_MS)).await.unwrap();
    let ack = writer
        .try_send_acked(Record::Link(link(5000, LinkState::Up)))
        .unwrap();
    let id = ack.stored().await;
    assert!(
        id.is_ok(),
        "{:?} {:?}",
        store.counts().await,
        *health.borrow()
    );
    wait_health(&mut health, "ok", StoreHealth::is_ok).await;
    let faults = store.recent_faults(10).await.unwrap();
    let storage: Vec<_> = faults.iter().filter(|f| f.kind == "storage").collect();
    assert_eq!(storage.len(), 2, "{faults:?}");
    assert!(!storage[0].active);
    assert!(
        storage[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("record(s) lost")
    );
    assert!(storage[1].active);
    assert!(storage[1].detail.as_deref().unwrap().starts_with("full:"));
    cancel.cancel();
    running.await.unwrap();
}

#[tokio::test]
async fn queue_overflow_counts_drops_and_recovers() {
    let store = Store::open(&db_path("overflow")).await.unwrap();
    let (writer, task) = HistoryWriter::new(
        store.clone(),
        WriterOptions {
            capacity: 4,
            max_batch: 16,
        },
    );
    let mut health = writer.health();
    // The task is not running yet: the queue fills.
    for i in 0..4 {
        writer.try_send(Record::Telegram(garbage(i, 10))).unwrap();
    }
    for i in 4..10 {
        assert_eq!(
            writer.try_send(Record::Telegram(garbage(i, 10))),
            Err(NotQueued::Full)
        );
    }
    writer.record(Record::Telegram(garbage(10, 10)));
    {
        let h = health.borrow_and_update();
        assert_eq!(h.dropped, 7);
        assert!(matches!(
            h.state,
            HealthState::Degraded {
                reason: DegradedReason::QueueFull,
                ..
            }
        ));
    }
    assert_eq!(writer.queued(), 4);
    let cancel = CancellationToken::new();
    let running = tokio::spawn(task.run(cancel.clone()));
    let h = wait_health(&mut health, "ok", StoreHealth::is_ok).await;
    assert_eq!(h.dropped, 7, "the count of lost records stays");
    assert_eq!(writer.written(), 4);
    assert_eq!(store.recent_telegrams(100).await.unwrap().len(), 4);
    let faults = store.recent_faults(10).await.unwrap();
    assert_eq!(faults.len(), 2);
    assert_eq!(
        faults[0].detail.as_deref(),
        Some("recovered; 7 record(s) lost")
    );
    assert!(
        faults[1]
            .detail
            .as_deref()
            .unwrap()
            .starts_with("queue_full")
    );

    // Stopped: later sends are refused and counted.
    cancel.cancel();
    running.await.unwrap();
    assert_eq!(
        writer.try_send(Record::Telegram(garbage(11, 10))),
        Err(NotQueued::Closed)
    );
    let h = health.borrow().clone();
    assert_eq!(h.dropped, 8);
    assert!(matches!(
        h.state,
        HealthState::Degraded {
            reason: DegradedReason::Stopped,
            ..
        }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_acknowledges_after_commit_and_drains_on_shutdown() {
    let store = Store::open(&db_path("writer")).await.unwrap();
    let (writer, task) = HistoryWriter::new(store.clone(), WriterOptions::default());
    let cancel = CancellationToken::new();
    let running = tokio::spawn(task.run(cancel.clone()));

    let started = Instant::now();
    let ack = writer
        .try_send_acked(Record::Telegram(accepted(0, "primary")))
        .unwrap();
    let id = ack.stored().await.unwrap();
    let latency = started.elapsed();
    assert!(
        latency < Duration::from_secs(2),
        "acknowledged after {latency:?}"
    );
    assert_eq!(store.telegram(id).await.unwrap().unwrap().link, "primary");

    // Every kind of record through the queue.
    let records = vec![
        Record::Decision {
            at: jst(1),
            decision: decision("20110311144640", 1, "started"),
        },
        Record::Action(relay_on(2, "20110311144640", 1, Intensity::Four)),
        Record::Link(link(3, LinkState::Silent)),
        Record::Fault(fault(4, "all_links", true)),
        Record::Config {
            at: utc(5),
            text: "x = 1\n".to_owned(),
        },
    ];
    for r in records {
        writer.try_send(r).unwrap();
    }
    // A burst, then shutdown: what was queued before the cancel is written.
    for i in 0..500 {
        writer
            .try_send(Record::Telegram(garbage(10 + i, 64)))
            .unwrap();
    }
    cancel.cancel();
    running.await.unwrap();
    assert_eq!(writer.written(), 1 + 5 + 500);
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.telegrams, 501);
    assert_eq!(
        (
            counts.decisions,
            counts.actions,
            counts.alerts,
            counts.link_events,
            counts.faults,
            counts.config_changes
        ),
        (1, 1, 1, 1, 1, 1)
    );
    assert!(writer.health().borrow().is_ok());
    assert_eq!(
        store.recent_link_events(1).await.unwrap()[0].state,
        "silent"
    );
}

// ---- evidence ----

/// A relay self-test's read-back (or its failure) on `channel`.
fn evidence(offset_ms: i64, channel: &str, ok: bool) -> EvidenceRecord {
    EvidenceRecord {
        at: utc(offset_ms),
        channel: channel.to_owned(),
        source: "self_test".to_owned(),
        method: "readback".to_owned(),
        ok,
        measurement_ms: ok.then_some(12.5),
        detail: Some(
            if ok {
                "contact followed"
            } else {
                "contact did not follow"
            }
            .to_owned(),
        ),
    }
}

fn evidence_ids(rows: &[EvidenceRow]) -> Vec<i64> {
    rows.iter().map(|r| r.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_round_trips_through_the_writer() {
    let store = Store::open(&db_path("evidence_round_trip")).await.unwrap();
    let (writer, task) = HistoryWriter::new(store.clone(), WriterOptions::default());
    let cancel = CancellationToken::new();
    let running = tokio::spawn(task.run(cancel.clone()));

    let full = EvidenceRecord {
        at: utc(0),
        channel: "relay:1".to_owned(),
        source: "self_test".to_owned(),
        method: "readback".to_owned(),
        ok: true,
        measurement_ms: Some(3.25),
        detail: Some("closed; read back after 3.25 ms".to_owned()),
    };
    let bare = EvidenceRecord {
        at: utc(1),
        channel: "mqtt".to_owned(),
        source: "probe".to_owned(),
        method: "puback".to_owned(),
        ok: false,
        measurement_ms: None,
        detail: None,
    };
    // A measurement that is not a number is stored as none.
    let odd = EvidenceRecord {
        at: utc(2),
        channel: "audio".to_owned(),
        source: "operator".to_owned(),
        method: "operator".to_owned(),
        measurement_ms: Some(f64::NAN),
        ..full.clone()
    };
    assert_eq!(Record::Evidence(full.clone()).table(), "evidence");
    let mut ids = Vec::new();
    for e in [&full, &bare, &odd] {
        let ack = writer.try_send_acked(Record::Evidence(e.clone())).unwrap();
        ids.push(ack.stored().await.unwrap());
    }
    cancel.cancel();
    running.await.unwrap();
    assert_eq!(writer.written(), 3);
    assert!(writer.health().borrow().is_ok());

    let rows = store.evidence(None, None, 10).await.unwrap();
    assert_eq!(
        evidence_ids(&rows),
        [ids[2], ids[1], ids[0]],
        "newest first"
    );
    let stored = |id: i64, e: &EvidenceRecord| EvidenceRow {
        id,
        at: e.at,
        channel: e.channel.clone(),
        source: e.source.clone(),
        method: e.method.clone(),
        ok: e.ok,
        measurement_ms: e.measurement_ms,
        detail: e.detail.clone(),
    };
    assert_eq!(rows[2], stored(ids[0], &full));
    assert_eq!(rows[1], stored(ids[1], &bare));
    assert_eq!(
        rows[0],
        EvidenceRow {
            measurement_ms: None,
            ..stored(ids[2], &odd)
        }
    );
    // The JSON a page is served as.
    assert_eq!(
        serde_json::to_value(&rows[2]).unwrap(),
        serde_json::json!({
            "id": ids[0], "at": "2026-11-02T05:46:45.123Z", "channel": "relay:1",
            "source": "self_test", "method": "readback", "ok": true,
            "measurement_ms": 3.25, "detail": "closed; read back after 3.25 ms",
        })
    );

    // The same after a restart.
    store.close().await;
    let store = Store::open(&db_path_keep("evidence_round_trip"))
        .await
        .unwrap();
    assert_eq!(store.evidence(None, None, 10).await.unwrap(), rows);
    store.close().await;
}

/// The database path of [`db_path`]'s directory, without clearing it.
fn db_path_keep(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("store")
        .join(name)
        .join("history.db")
}

#[tokio::test]
async fn evidence_summary_gives_newest_and_newest_ok_per_channel() {
    let store = Store::open(&db_path("evidence_summary")).await.unwrap();
    assert!(store.evidence_summary().await.unwrap().is_empty());

    let records = [
        evidence(0, "relay:1", true),  // 1
        evidence(1, "mqtt", false),    // 2
        evidence(2, "relay:1", true),  // 3: relay:1's newest ok
        evidence(3, "audio", true),    // 4: audio's newest, and ok
        evidence(4, "mqtt", false),    // 5: mqtt's newest; never ok
        evidence(5, "relay:1", false), // 6: relay:1's newest, a failure
        evidence(9000, "led", true),   // 7: led's newest ok
        // The clock stepped back: still the last recorded, so the newest.
        evidence(8000, "led", false), // 8
    ]
    .map(Record::Evidence);
    let ids = store.record_batch(&records).await.unwrap();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6, 7, 8]);

    let summary = store.evidence_summary().await.unwrap();
    assert_eq!(
        summary.keys().map(String::as_str).collect::<Vec<_>>(),
        ["audio", "led", "mqtt", "relay:1"]
    );
    let ids_of = |channel: &str| {
        let s = &summary[channel];
        (s.last.id, s.last_ok.as_ref().map(|r| r.id))
    };
    assert_eq!(ids_of("relay:1"), (6, Some(3)));
    assert_eq!(ids_of("mqtt"), (5, None));
    assert_eq!(ids_of("audio"), (4, Some(4)));
    assert_eq!(ids_of("led"), (8, Some(7)));
    // Whole rows.
    let relay = &summary["relay:1"];
    assert!(!relay.last.ok);
    assert_eq!(relay.last.at, utc(5));
    assert_eq!(relay.last.detail.as_deref(), Some("contact did not follow"));
    let ok = relay.last_ok.as_ref().unwrap();
    assert_eq!(
        (ok.at, ok.channel.as_str(), ok.ok, ok.measurement_ms),
        (utc(2), "relay:1", true, Some(12.5))
    );
    assert_eq!(
        summary["audio"].last_ok.as_ref(),
        Some(&summary["audio"].last)
    );
    assert_eq!(
        serde_json::to_value(&summary["mqtt"]).unwrap()["last_ok"],
        serde_json::Value::Null
    );

    // A new proof moves only its channel.
    store
        .record(&Record::Evidence(evidence(10, "mqtt", true)))
        .await
        .unwrap();
    let after = store.evidence_summary().await.unwrap();
    assert_eq!(after["mqtt"].last.id, 9);
    assert_eq!(after["mqtt"].last_ok.as_ref().map(|r| r.id), Some(9));
    for channel in ["audio", "led", "relay:1"] {
        assert_eq!(after[channel], summary[channel]);
    }
}

#[tokio::test]
async fn evidence_pages_newest_first_by_channel_and_before_id() {
    let store = Store::open(&db_path("evidence_pages")).await.unwrap();
    let channels = ["relay:1", "audio", "led"];
    let records: Vec<Record> = (0..30i64)
        .map(|i| Record::Evidence(evidence(i, channels[(i % 3) as usize], i % 2 == 0)))
        .collect();
    store.record_batch(&records).await.unwrap();

    // All channels: ids 30 down.
    let page = store.evidence(None, None, 10).await.unwrap();
    assert_eq!(evidence_ids(&page), (21..=30).rev().collect::<Vec<_>>());
    let next = store.evidence(None, Some(21), 10).await.unwrap();
    assert_eq!(evidence_ids(&next), (11..=20).rev().collect::<Vec<_>>());
    assert!(store.evidence(None, Some(1), 10).await.unwrap().is_empty());

    // One channel: `audio` is i % 3 == 1, id i + 1 = 2, 5, 8, ..., 29.
    let audio: Vec<i64> = (0..10).map(|k| 29 - 3 * k).collect();
    let page = store.evidence(Some("audio"), None, 4).await.unwrap();
    assert_eq!(evidence_ids(&page), audio[..4]);
    assert!(page.iter().all(|r| r.channel == "audio"));
    let next = store
        .evidence(Some("audio"), Some(page[3].id), 4)
        .await
        .unwrap();
    assert_eq!(evidence_ids(&next), audio[4..8]);
    // `before_id` need not be a row of the channel.
    let from_18 = store.evidence(Some("audio"), Some(18), 100).await.unwrap();
    assert_eq!(evidence_ids(&from_18), [17, 14, 11, 8, 5, 2]);
    // Walking the pages gives every row of the channel once.
    let mut walked = Vec::new();
    let mut before = None;
    loop {
        let page = store.evidence(Some("audio"), before, 3).await.unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        walked.extend(evidence_ids(&page));
    }
    assert_eq!(walked, audio);
    assert!(
        store
            .evidence(Some("mqtt"), None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // The limit is clamped to 1..=1000.
    assert_eq!(
        evidence_ids(&store.evidence(None, None, 0).await.unwrap()),
        [30]
    );
    assert_eq!(
        evidence_ids(&store.evidence(Some("led"), None, 0).await.unwrap()),
        [30]
    );
    let more: Vec<Record> = (0..1000i64)
        .map(|i| Record::Evidence(evidence(100 + i, "time", true)))
        .collect();
    store.record_batch(&more).await.unwrap();
    let page = store.evidence(None, None, u32::MAX).await.unwrap();
    assert_eq!(page.len(), 1000);
    assert_eq!((page[0].id, page[999].id), (1030, 31));
    assert_eq!(
        store
            .evidence(Some("relay:1"), None, u32::MAX)
            .await
            .unwrap()
            .len(),
        10
    );
}

#[tokio::test]
async fn evidence_queries_walk_the_indexes() {
    let store = Store::open(&db_path("evidence_plans")).await.unwrap();
    // A year of evidence, roughly: continuous proofs on a few channels, every minute or so,
    // and a relay whose last ok is far back.
    let channels = [
        "link:primary",
        "link:backup",
        "time",
        "mqtt",
        "led",
        "audio",
    ];
    let mut records: Vec<Record> = (0..60_000i64)
        .map(|i| {
            Record::Evidence(EvidenceRecord {
                source: "continuous".to_owned(),
                ..evidence(i * 60_000, channels[(i % 6) as usize], i % 50 != 0)
            })
        })
        .collect();
    records.insert(10, Record::Evidence(evidence(600_000, "relay:1", true)));
    records.push(Record::Evidence(evidence(
        60_000 * 60_001,
        "relay:1",
        false,
    )));
    for chunk in records.chunks(5000) {
        store.record_batch(chunk).await.unwrap();
    }

    // (How fast it is belongs to a benchmark; here, that the plan never scans.)
    let summary = store.evidence_summary().await.unwrap();
    assert_eq!(summary.len(), 7);
    assert_eq!(summary["relay:1"].last.id, 60_002);
    assert_eq!(summary["relay:1"].last_ok.as_ref().map(|r| r.id), Some(11));

    // The summary: a few seeks per channel, never a scan of the table or of an index,
    // nothing sorted but the handful of ids it found.
    let plan = store.evidence_summary_plan().await.unwrap();
    for step in &plan {
        assert!(
            !step.starts_with("SCAN evidence") && !step.starts_with("SCAN e "),
            "{step:?} in {plan:#?}"
        );
        assert!(
            !step.contains("TEMP B-TREE FOR ORDER BY"),
            "{step:?} in {plan:#?}"
        );
    }
    for seek in [
        "SEARCH evidence USING COVERING INDEX evidence_channel",
        "SEARCH e USING COVERING INDEX evidence_channel (channel>?)",
        "SEARCH e USING COVERING INDEX evidence_channel (channel=?)",
        "SEARCH e USING COVERING INDEX evidence_channel_ok (channel=? AND ok=?)",
        "SEARCH evidence USING INTEGER PRIMARY KEY (rowid=?)",
    ] {
        assert!(plan.iter().any(|s| s == seek), "{seek:?} not in {plan:#?}");
    }

    // A page: one walk down the ids, or down the channel's (channel, id) index, that
    // stops after `limit` rows; never a sort.
    for (channel, before, walk) in [
        (None, None, "SCAN evidence"),
        (
            None,
            Some(30_000),
            "SEARCH evidence USING INTEGER PRIMARY KEY (rowid<?)",
        ),
        (
            Some("relay:1"),
            None,
            "SEARCH evidence USING INDEX evidence_channel (channel=?)",
        ),
        (
            Some("time"),
            Some(30_000),
            "SEARCH evidence USING INDEX evidence_channel (channel=? AND rowid<?)",
        ),
    ] {
        let plan = store.evidence_plan(channel, before).await.unwrap();
        assert_eq!(plan, [walk], "{channel:?} before {before:?}");
    }
}

#[tokio::test]
async fn purge_removes_old_evidence_and_keeps_recent() {
    let store = Store::open(&db_path("evidence_purge")).await.unwrap();
    let old = -400 * DAY_MS;
    let new = -10 * DAY_MS;
    // Enough old rows to take two chunks.
    let records: Vec<Record> = (0..700i64)
        .map(|i| Record::Evidence(evidence(old + i, "link:primary", true)))
        .collect();
    store.record_batch(&records).await.unwrap();
    // relay:1 was last seen working long ago, and has failed since.
    store
        .record(&Record::Evidence(evidence(old, "relay:1", true)))
        .await
        .unwrap();
    let kept = store
        .record_batch(&[
            Record::Evidence(evidence(new, "relay:1", false)),
            Record::Evidence(evidence(new + 1, "link:primary", true)),
        ])
        .await
        .unwrap();

    let counts = store.purge_older_than(utc(-365 * DAY_MS)).await.unwrap();
    assert_eq!(counts.evidence, 701);
    assert_eq!(counts.total(), 701);
    let rows = store.evidence(None, None, 1000).await.unwrap();
    assert_eq!(evidence_ids(&rows), [kept[1], kept[0]]);
    let summary = store.evidence_summary().await.unwrap();
    assert_eq!(summary["relay:1"].last.id, kept[0]);
    assert_eq!(
        summary["relay:1"].last_ok, None,
        "its only ok went with the year"
    );
    assert_eq!(
        summary["link:primary"].last_ok.as_ref().map(|r| r.id),
        Some(kept[1])
    );
    // Nothing left to purge.
    assert_eq!(
        store
            .purge_older_than(utc(-365 * DAY_MS))
            .await
            .unwrap()
            .total(),
        0
    );
    store.quick_check().await.unwrap();
}

// ---- kill -9 ----

const KILL9_ENV: &str = "EEWGATE_STORE_KILL9_DB";

fn kill9_raw(round: u32, i: u64) -> Vec<u8> {
    format!("kill9 round {round} telegram {i} 9999=").into_bytes()
}

/// The child of `kill9_loses_nothing_acknowledged`: writes telegrams through the
/// history writer as fast as it can and prints `ACK <round> <i> <id>` for each one
/// acknowledged. Does nothing when run as an ordinary test.
#[test]
fn kill9_child_writer() {
    let Ok(path) = std::env::var(KILL9_ENV) else {
        return;
    };
    let round: u32 = std::env::var("EEWGATE_STORE_KILL9_ROUND")
        .unwrap()
        .parse()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = Store::open(Path::new(&path)).await.unwrap();
        let (writer, task) = HistoryWriter::new(store, WriterOptions::default());
        tokio::spawn(task.run(CancellationToken::new()));
        for i in 0u64.. {
            let record = TelegramRecord::garbage(
                "kill9",
                utc(i64::try_from(i).unwrap()),
                kill9_raw(round, i),
                "test",
            );
            if let Ok(ack) = writer.try_send_acked(Record::Telegram(record)) {
                tokio::spawn(async move {
                    if let Ok(id) = ack.stored().await {
                        println!("ACK {round} {i} {id}");
                    }
                });
            }
            writer.record(Record::Decision {
                at: jst(i64::try_from(i).unwrap()),
                decision: decision("kill9", 1, "accepted"),
            });
            if i % 16 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
}

#[test]
fn kill9_loses_nothing_acknowledged() {
    let path = db_path("kill9");
    let mut acked: Vec<(u32, u64, i64)> = Vec::new();
    // Three crashes in a row: each restart resumes cleanly on the same file.
    for (round, wanted) in [(1u32, 300usize), (2, 1500), (3, 700)] {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "kill9_child_writer",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(KILL9_ENV, &path)
            .env("EEWGATE_STORE_KILL9_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let parse = |line: &str| -> Option<(u32, u64, i64)> {
            let mut w = line.strip_prefix("ACK ")?.split(' ');
            Some((
                w.next()?.parse().ok()?,
                w.next()?.parse().ok()?,
                w.next()?.parse().ok()?,
            ))
        };
        let mut seen = 0;
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(a) = parse(&line) {
                acked.push(a);
                seen += 1;
                if seen >= wanted {
                    break;
                }
            }
        }
        // SIGKILL, mid-stream.
        child.kill().unwrap();
        child.wait().unwrap();
        // Acknowledgements printed before the kill but not read yet count too.
        for line in lines.map_while(Result::ok) {
            if let Some(a) = parse(&line) {
                acked.push(a);
                seen += 1;
            }
        }
        assert!(
            seen >= wanted,
            "round {round}: the child acknowledged only {seen}"
        );
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open(&path).await.unwrap();
        store.quick_check().await.unwrap();
        for &(round, i, id) in &acked {
            let row = store
                .telegram(id)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("acknowledged telegram {round}/{i} (id {id}) lost"));
            assert_eq!(row.raw, kill9_raw(round, i), "id {id}");
        }
        let counts = store.counts().await.unwrap();
        assert!(counts.telegrams >= acked.len() as u64);
    });
}

/// What the other tasks record on their own way out, just after the shutdown began, is
/// still written (they stop at the same cancel as the writer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_sent_as_the_daemon_stops_are_kept() {
    let store = Store::open(&db_path("writer-linger")).await.unwrap();
    let (writer, task) = HistoryWriter::new(store.clone(), WriterOptions::default());
    let cancel = CancellationToken::new();
    let running = tokio::spawn(task.run(cancel.clone()));
    cancel.cancel();
    // The writer has seen the cancel by now and waits for the last records.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ack = writer
        .try_send_acked(Record::Telegram(accepted(0, "last-words")))
        .expect("still accepted while the writer lingers");
    let id = ack.stored().await.unwrap();
    running.await.unwrap();
    assert_eq!(
        store.telegram(id).await.unwrap().unwrap().link,
        "last-words"
    );
    // Once it has stopped, sends are refused (and counted).
    assert_eq!(
        writer.try_send(Record::Telegram(accepted(1, "too-late"))),
        Err(NotQueued::Closed)
    );
}
