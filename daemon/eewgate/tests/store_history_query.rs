//! The web UI's history queries on real SQLite files: the verdict, kind and label
//! filters, time ranges (exact even when the clock stepped back), keyset paging, raw
//! bytes, the query plans (every filter on an index, no sort), a year of telegrams
//! (50,000 rows) paged in milliseconds, and the daemon's `Appliance` over it all.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use eewgate::store::{PageQuery, Record, Store, TelegramRecord, TelegramRow, Verdict};
use eewgate::webui::{DaemonAppliance, SettingsFile};
use eewgate_webui::{Appliance, HistoryQuery};

fn db_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("store_history_query")
        .join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("history.db")
}

/// 2026-01-01T00:00:00Z plus `ms`.
fn at(ms: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc()
        + chrono::Duration::milliseconds(ms)
}

const HOUR_MS: i64 = 3600 * 1000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// [`at`]`(ms)` in unix ms, as page queries take times.
fn unix(ms: i64) -> i64 {
    at(ms).timestamp_millis()
}

fn telegram(ms: i64, verdict: Verdict, kind: Option<&str>, event: Option<&str>) -> TelegramRecord {
    let report = matches!(verdict, Verdict::Accepted | Verdict::Duplicate);
    TelegramRecord {
        received_at: at(ms),
        link: if verdict == Verdict::Duplicate {
            "backup"
        } else {
            "primary"
        }
        .to_owned(),
        verdict,
        reason: (!report).then(|| "bad_header".to_owned()),
        message: (!report).then(|| "the header is not a telegram header".to_owned()),
        event_id: event.map(str::to_owned),
        serial: report.then_some(1),
        status: report.then(|| "normal".to_owned()),
        kind: kind.map(str::to_owned),
        format: report.then(|| "jma_code".to_owned()),
        product: report.then(|| "code37".to_owned()),
        actionable: report.then_some(true),
        decode_us: Some(40),
        raw: format!("37 03 00 {ms} C11\n9999=\n").into_bytes(),
    }
}

/// A small history with every verdict and kind, two events, three days, and a clock
/// that stepped back an hour in the middle (ids then are not in time order).
fn small_history() -> Vec<TelegramRecord> {
    use Verdict::{Accepted, Duplicate, Garbage, Rejected};
    let mut out = Vec::new();
    for i in 0..30i64 {
        let ms = i * 2 * HOUR_MS
            + if (12..16).contains(&i) {
                -3 * HOUR_MS
            } else {
                0
            };
        let (verdict, kind, event) = match i % 6 {
            0 => (Accepted, Some("forecast"), Some("20260101000000")),
            1 => (Duplicate, Some("forecast"), Some("20260101000000")),
            2 => (Accepted, Some("warning"), Some("20260102000000")),
            3 => (Rejected, None, None),
            4 => (Garbage, None, None),
            _ => (
                Accepted,
                Some(if i == 29 { "cancel" } else { "delivery_test" }),
                None,
            ),
        };
        out.push(telegram(ms, verdict, kind, event));
    }
    out
}

async fn store_with(name: &str, records: &[TelegramRecord]) -> (Store, PathBuf) {
    let path = db_path(name);
    let store = Store::open(&path).await.unwrap();
    let batch: Vec<Record> = records.iter().cloned().map(Record::Telegram).collect();
    for chunk in batch.chunks(1000) {
        store.record_batch(chunk).await.unwrap();
    }
    (store, path)
}

fn page(limit: u32) -> PageQuery {
    PageQuery {
        limit,
        ..PageQuery::default()
    }
}

/// What a page must hold, computed by brute force over the records (ids are 1..).
fn expected(records: &[TelegramRecord], q: &PageQuery) -> Vec<i64> {
    let mut ids: Vec<i64> = records
        .iter()
        .zip(1i64..)
        .filter(|(r, id)| {
            let ms = r.received_at.timestamp_millis();
            q.before_id.is_none_or(|b| *id < b)
                && q.event_id
                    .as_ref()
                    .is_none_or(|e| r.event_id.as_ref() == Some(e))
                && q.verdict.as_deref().is_none_or(|v| r.verdict.as_str() == v)
                && q.kind.as_ref().is_none_or(|k| r.kind.as_ref() == Some(k))
                && q.from_ms.is_none_or(|f| ms >= f)
                && q.to_ms.is_none_or(|t| ms < t)
        })
        .map(|(_, id)| id)
        .collect();
    ids.reverse();
    ids.truncate(q.limit as usize);
    ids
}

fn ids(rows: &[TelegramRow]) -> Vec<i64> {
    rows.iter().map(|r| r.id).collect()
}

/// Every combination of the filters, on their own and together.
fn filter_combinations() -> Vec<PageQuery> {
    let mut out = Vec::new();
    for verdict in [None, Some("accepted"), Some("garbage")] {
        for kind in [None, Some("forecast"), Some("cancel")] {
            for event in [None, Some("20260101000000")] {
                for range in [
                    None,
                    Some((Some(unix(10 * HOUR_MS)), Some(unix(40 * HOUR_MS)))),
                    Some((Some(unix(DAY_MS)), None)),
                    Some((None, Some(unix(DAY_MS)))),
                ] {
                    out.push(PageQuery {
                        limit: 100,
                        verdict: verdict.map(str::to_owned),
                        kind: kind.map(str::to_owned),
                        event_id: event.map(str::to_owned),
                        from_ms: range.and_then(|r| r.0),
                        to_ms: range.and_then(|r| r.1),
                        ..PageQuery::default()
                    });
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn filters_pick_exactly_the_matching_telegrams() {
    let records = small_history();
    let (store, _) = store_with("filters", &records).await;
    for q in filter_combinations() {
        let got = ids(&store.telegrams_page(&q).await.unwrap());
        assert_eq!(got, expected(&records, &q), "{q:?}");
        // Keyset paging, three at a time, gives the same rows.
        let mut walked = Vec::new();
        let mut p = PageQuery {
            limit: 3,
            ..q.clone()
        };
        loop {
            let rows = store.telegrams_page(&p).await.unwrap();
            walked.extend(ids(&rows));
            match rows.last() {
                Some(last) if rows.len() == 3 => p.before_id = Some(last.id),
                _ => break,
            }
        }
        assert_eq!(walked, expected(&records, &q), "paged {q:?}");
    }
    // The clock stepped back three hours after id 12 (22:00): id 13 was received at
    // 21:00. A range that ends before 22:00 has ids 11 and 13, not 12 between them.
    let q = PageQuery {
        from_ms: Some(unix(20 * HOUR_MS)),
        to_ms: Some(unix(21 * HOUR_MS + 1)),
        ..page(50)
    };
    let got = ids(&store.telegrams_page(&q).await.unwrap());
    assert_eq!(got, [13, 11]);
    assert_eq!(got, expected(&records, &q));
    // Nothing in the range: no rows (not everything).
    let q = PageQuery {
        from_ms: Some(unix(-DAY_MS)),
        to_ms: Some(unix(-1)),
        ..page(50)
    };
    assert!(store.telegrams_page(&q).await.unwrap().is_empty());
    // An unknown verdict matches nothing (the web UI refuses it before it gets here).
    let q = PageQuery {
        verdict: Some("nonsense".to_owned()),
        ..page(50)
    };
    assert!(store.telegrams_page(&q).await.unwrap().is_empty());
}

#[tokio::test]
async fn raw_bytes_come_back_exactly_and_pages_leave_them_out() {
    let mut records = small_history();
    let odd = b"\x02ABC \xff\xfe \xe7\xb7\x8a\xe6\x80\xa5 \r\n9999=\x03".to_vec();
    records.push(TelegramRecord {
        raw: odd.clone(),
        ..telegram(100 * HOUR_MS, Verdict::Garbage, None, None)
    });
    let (store, _) = store_with("raw", &records).await;
    let id = records.len() as i64;
    assert_eq!(store.telegram_raw(id).await.unwrap(), Some(odd.clone()));
    assert_eq!(
        store.telegram_raw(1).await.unwrap(),
        Some(records[0].raw.clone())
    );
    assert_eq!(store.telegram_raw(id + 1).await.unwrap(), None);
    assert_eq!(store.telegram_raw(0).await.unwrap(), None);
    let rows = store.telegrams_page(&page(1)).await.unwrap();
    assert_eq!(rows[0].id, id);
    assert!(rows[0].raw.is_empty(), "a page does not read the blobs");
    assert_eq!(rows[0].size, odd.len() as u64);
    // The full row still has them.
    assert_eq!(store.telegram(id).await.unwrap().unwrap().raw, odd);
}

#[tokio::test]
async fn alerts_filter_by_label_event_and_time() {
    let path = db_path("alerts");
    let store = Store::open(&path).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let labels = ["real", "training", "test", "drill"];
    for i in 0..40i64 {
        sqlx::query(
            "INSERT INTO alerts (event_id, label, first_ms, last_ms, warning, cancelled, actions) \
             VALUES (?1, ?2, ?3, ?3, 0, 0, 1)",
        )
        .bind(format!("202601{i:02}000000"))
        .bind(labels[(i % 4) as usize])
        .bind(unix(i * HOUR_MS))
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
    let q = PageQuery {
        label: Some("drill".to_owned()),
        ..page(100)
    };
    let rows = store.alerts_page(&q).await.unwrap();
    assert_eq!(rows.len(), 10);
    assert!(rows.iter().all(|(_, a)| a.label == "drill"));
    assert!(rows.windows(2).all(|w| w[0].0 > w[1].0), "newest first");
    let alert_ids = |rows: Vec<(i64, eewgate::store::AlertRow)>| -> Vec<i64> {
        rows.iter().map(|(id, _)| *id).collect()
    };
    // Training is i % 4 == 1 (rowid i + 1): i = 13, 17, 21, 25, 29 in [10 h, 30 h).
    let q = PageQuery {
        label: Some("training".to_owned()),
        from_ms: Some(unix(10 * HOUR_MS)),
        to_ms: Some(unix(30 * HOUR_MS)),
        ..page(100)
    };
    assert_eq!(
        alert_ids(store.alerts_page(&q).await.unwrap()),
        [30, 26, 22, 18, 14]
    );
    let q = PageQuery {
        event_id: Some("20260113000000".to_owned()),
        ..q
    };
    assert_eq!(alert_ids(store.alerts_page(&q).await.unwrap()), [14]);
    // Paging by id.
    let q = PageQuery {
        label: Some("real".to_owned()),
        before_id: Some(20),
        ..page(2)
    };
    assert_eq!(alert_ids(store.alerts_page(&q).await.unwrap()), [17, 13]);
}

/// The plan walks an index or a range of ids (a scan only for the newest page without
/// filters, which stops after `limit` rows) and, but for one event's few telegrams, does
/// not sort.
fn assert_indexed(plan: &[String], q: &PageQuery) {
    let text = plan.join(" | ");
    let unfiltered = q.before_id.is_none()
        && q.event_id.is_none()
        && q.verdict.is_none()
        && q.kind.is_none()
        && q.from_ms.is_none()
        && q.to_ms.is_none();
    if unfiltered {
        assert_eq!(plan, ["SCAN telegrams"], "{q:?}");
    } else {
        // (`SCAN span` reads the one row of the time range's ids.)
        assert!(
            !plan.iter().any(|l| l.starts_with("SCAN telegrams")),
            "full scan for {q:?}: {text}"
        );
    }
    if q.event_id.is_none() {
        assert!(!text.contains("TEMP B-TREE"), "sort for {q:?}: {text}");
    }
    if q.verdict.is_some() || q.kind.is_some() {
        assert!(
            text.contains("telegrams_verdict")
                || text.contains("telegrams_kind")
                || text.contains("telegrams_event"),
            "{q:?}: {text}"
        );
    }
}

#[tokio::test]
async fn every_page_query_uses_an_index() {
    let (store, _) = store_with("plans", &small_history()).await;
    for mut q in filter_combinations() {
        for before in [None, Some(20)] {
            q.before_id = before;
            let plan = store.telegrams_page_plan(&q).await.unwrap();
            assert_indexed(&plan, &q);
        }
    }
    let plain = store
        .telegrams_page_plan(&PageQuery {
            before_id: Some(5),
            ..page(50)
        })
        .await
        .unwrap();
    assert_eq!(
        plain,
        ["SEARCH telegrams USING INTEGER PRIMARY KEY (rowid<?)"],
        "deep pages start at before_id"
    );
    let verdict = store
        .telegrams_page_plan(&PageQuery {
            verdict: Some("garbage".to_owned()),
            before_id: Some(5),
            ..page(50)
        })
        .await
        .unwrap();
    assert_eq!(
        verdict,
        ["SEARCH telegrams USING INDEX telegrams_verdict (verdict=? AND rowid<?)"]
    );
}

/// A year of telegrams: 50,000 rows, one every 10.5 minutes, a code telegram of 400 bytes
/// or (one in twenty) an XML one of 6 KiB, 45 % accepted, 45 % duplicates, 8 % rejected,
/// 2 % garbage; ten serials per event, one in ten a warning.
fn a_year() -> Vec<TelegramRecord> {
    const ROWS: i64 = 50_000;
    let step = 365 * DAY_MS / ROWS;
    (0..ROWS)
        .map(|i| {
            let event = format!("{:014}", 20_260_101_000_000 + i / 10);
            let (verdict, kind) = match i % 50 {
                0 => (Verdict::Garbage, None),
                1..=4 => (Verdict::Rejected, None),
                n => (
                    if n % 2 == 0 {
                        Verdict::Accepted
                    } else {
                        Verdict::Duplicate
                    },
                    Some(if i % 500 == 7 {
                        "delivery_test"
                    } else if i % 200 == 9 {
                        "cancel"
                    } else if i % 10 == 6 {
                        "warning"
                    } else {
                        "forecast"
                    }),
                ),
            };
            let mut t = telegram(
                i * step,
                verdict,
                kind,
                kind.is_some().then_some(event.as_str()),
            );
            t.raw = vec![b'7'; if i % 20 == 0 { 6144 } else { 400 }];
            t
        })
        .collect()
}

/// The median of five runs of a page query, after one to warm the cache.
async fn time_page(store: &Store, q: &PageQuery) -> (Duration, usize) {
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..6 {
        let t = Instant::now();
        n = store.telegrams_page(q).await.unwrap().len();
        times.push(t.elapsed());
    }
    times.remove(0);
    times.sort();
    (times[2], n)
}

#[tokio::test]
async fn a_year_of_telegrams_pages_in_milliseconds() {
    let records = a_year();
    let t = Instant::now();
    let (store, path) = store_with("year", &records).await;
    let size = std::fs::metadata(&path).unwrap().len();
    eprintln!(
        "inserted {} telegrams ({} MB) in {:?}",
        records.len(),
        size / 1_000_000,
        t.elapsed()
    );
    let half = Some(records.len() as i64 / 2);
    let june = unix(151 * DAY_MS);
    let cases: Vec<(&str, PageQuery)> = vec![
        ("newest 50", page(50)),
        (
            "500 from the middle",
            PageQuery {
                before_id: half,
                ..page(500)
            },
        ),
        (
            "50 oldest (before_id 60)",
            PageQuery {
                before_id: Some(60),
                ..page(50)
            },
        ),
        (
            "garbage (2 %), 50 from the middle",
            PageQuery {
                verdict: Some("garbage".into()),
                before_id: half,
                ..page(50)
            },
        ),
        (
            "delivery_test (0.2 %), 50",
            PageQuery {
                kind: Some("delivery_test".into()),
                ..page(50)
            },
        ),
        (
            "accepted warnings, 50",
            PageQuery {
                verdict: Some("accepted".into()),
                kind: Some("warning".into()),
                ..page(50)
            },
        ),
        (
            "one day in June, 50",
            PageQuery {
                from_ms: Some(june),
                to_ms: Some(june + DAY_MS),
                ..page(50)
            },
        ),
        (
            "the whole year as a range, 50 from the middle",
            PageQuery {
                from_ms: Some(unix(0)),
                to_ms: Some(unix(366 * DAY_MS)),
                before_id: half,
                ..page(50)
            },
        ),
        (
            "the whole year as a range, the 50 oldest",
            PageQuery {
                from_ms: Some(unix(0)),
                to_ms: Some(unix(366 * DAY_MS)),
                before_id: Some(60),
                ..page(50)
            },
        ),
        (
            "accepted in the whole year, 50 oldest",
            PageQuery {
                verdict: Some("accepted".into()),
                from_ms: Some(unix(0)),
                to_ms: Some(unix(366 * DAY_MS)),
                before_id: Some(150),
                ..page(50)
            },
        ),
        (
            "rejected in June, 50",
            PageQuery {
                verdict: Some("rejected".into()),
                from_ms: Some(june),
                to_ms: Some(june + 30 * DAY_MS),
                ..page(50)
            },
        ),
        (
            "one event",
            PageQuery {
                event_id: Some("20260101002500".into()),
                ..page(50)
            },
        ),
    ];
    let mut worst = Duration::ZERO;
    for (what, q) in &cases {
        let (median, n) = time_page(&store, q).await;
        assert_eq!(
            ids(&store.telegrams_page(q).await.unwrap()),
            expected(&records, q),
            "{what}"
        );
        assert!(n > 0, "{what}: no rows");
        eprintln!(
            "page query, {} rows in the table, {what}: {n} rows in {median:?}",
            records.len()
        );
        assert_indexed(&store.telegrams_page_plan(q).await.unwrap(), q);
        worst = worst.max(median);
    }
    eprintln!("slowest page query: {worst:?}");
    // Generous for an unoptimised build on a busy machine; the figures above are the
    // measurement.
    assert!(worst < Duration::from_millis(500), "{worst:?}");
    store.close().await;
    // 44 MB: not left behind.
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test]
async fn the_daemon_appliance_filters_and_serves_raw_bytes() {
    let records = small_history();
    let (_store, path) = store_with("appliance", &records).await;
    let appliance = DaemonAppliance::new(
        tokio::sync::watch::channel(serde_json::json!({})).1,
        path.clone(),
        path.with_file_name("admin.hash"),
        Arc::new(std::sync::Mutex::new(None)),
        Arc::new(SettingsFile::new(None)),
    );
    let items = appliance
        .telegrams(HistoryQuery {
            verdict: Some("duplicate".to_owned()),
            kind: Some("forecast".to_owned()),
            from: NaiveDate::from_ymd_opt(2026, 1, 1),
            to: NaiveDate::from_ymd_opt(2026, 1, 1),
            ..HistoryQuery::default()
        })
        .await
        .unwrap();
    let got: Vec<i64> = items.iter().map(|v| v["id"].as_i64().unwrap()).collect();
    // Duplicates are i % 6 == 1 (id i + 1), two hours apart: i = 1 and 7 fall on
    // 2026-01-01 in JST (until 15:00 UTC); i = 13 (23:00 UTC once the clock stepped back)
    // is already the 2nd in Japan.
    assert_eq!(got, [8, 2]);
    assert!(
        items
            .iter()
            .all(|v| v["verdict"] == "duplicate" && v["kind"] == "forecast")
    );
    assert!(items[0].get("raw").is_none());
    assert_eq!(
        appliance.telegram_raw(2).await.unwrap(),
        Some(records[1].raw.clone())
    );
    assert_eq!(appliance.telegram_raw(999).await.unwrap(), None);
    let alerts = appliance
        .alerts(HistoryQuery {
            label: Some("drill".to_owned()),
            ..HistoryQuery::default()
        })
        .await
        .unwrap();
    assert!(alerts.is_empty());
}
