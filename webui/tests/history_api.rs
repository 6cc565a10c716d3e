//! Router tests of the history API without a server (tower `oneshot`): the verdict, kind
//! and label filters, the raw telegram view, CSV and JSON export (quoting, the formula
//! guard, file names, content types, the row bound), bad parameters, and sessions.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use axum::body::Body;
use axum::http::{Response, StatusCode};
use eewgate_webui::fake::FakeAppliance;
use eewgate_webui::{CSV_ALERT_COLUMNS, CSV_TELEGRAM_COLUMNS, EXPORT_MAX_ROWS, HistoryQuery};
use serde_json::{Value, json};

mod common;
use common::*;

fn header_of<'a>(r: &'a Response<Body>, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
}

fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_i64().unwrap())
        .collect()
}

/// Ten telegrams of every verdict and kind over three days, and four alerts.
fn fill(fake: &FakeAppliance) {
    let mut s = fake.state();
    s.telegrams = (1..=10)
        .map(|i| {
            let (verdict, kind) = match i % 4 {
                0 => ("garbage", Value::Null),
                1 => ("accepted", json!("forecast")),
                2 => ("duplicate", json!("forecast")),
                _ => ("accepted", json!("warning")),
            };
            json!({
                "id": i,
                "day": format!("2026-01-0{}", 1 + i % 3),
                "received_at": format!("2026-01-01T09:00:0{}.000+09:00", i % 10),
                "link": if verdict == "duplicate" { "backup" } else { "primary" },
                "verdict": verdict,
                "kind": kind,
                "event_id": if kind.is_null() { Value::Null } else { json!("20260101090000") },
                "serial": i,
                "size": 100 + i,
            })
        })
        .collect();
    s.alerts = ["real", "training", "drill", "real"]
        .iter()
        .zip(1..)
        .map(|(label, i)| json!({ "id": i, "event_id": format!("2026010{i}000000"), "label": label, "day": "2026-01-01" }))
        .collect();
}

#[tokio::test]
async fn telegram_pages_filter_by_verdict_and_kind() {
    let (fake, router, cookie, _) = logged_in().await;
    fill(&fake);
    let page = |q: &str| get(&format!("/api/history/telegrams{q}"), Some(&cookie));
    let r = json_body(send(&router, page("?verdict=accepted")).await).await;
    assert_eq!(ids(&r), [9, 7, 5, 3, 1]);
    let q = fake.state().last_query.clone().unwrap();
    assert_eq!(q.verdict.as_deref(), Some("accepted"));
    assert_eq!(q.kind, None);
    let r = json_body(send(&router, page("?verdict=accepted&kind=warning")).await).await;
    assert_eq!(ids(&r), [7, 3]);
    let r = json_body(send(&router, page("?kind=forecast&limit=2")).await).await;
    assert_eq!(ids(&r), [10, 9]);
    assert_eq!(r["next_before_id"], 9);
    let r = json_body(send(&router, page("?kind=forecast&limit=2&before_id=9")).await).await;
    assert_eq!(ids(&r), [6, 5]);
    let r = json_body(
        send(
            &router,
            page("?verdict=garbage&from=2026-01-02&to=2026-01-02"),
        )
        .await,
    )
    .await;
    assert_eq!(ids(&r), [4]);
    // Every value of the documented sets is accepted.
    for v in HistoryQuery::VERDICTS {
        let r = send(&router, page(&format!("?verdict={v}"))).await;
        assert_eq!(r.status(), StatusCode::OK, "{v}");
    }
    for k in HistoryQuery::KINDS {
        let r = send(&router, page(&format!("?kind={k}"))).await;
        assert_eq!(r.status(), StatusCode::OK, "{k}");
    }
}

#[tokio::test]
async fn alert_pages_filter_by_label() {
    let (fake, router, cookie, _) = logged_in().await;
    fill(&fake);
    let page = |q: &str| get(&format!("/api/history/alerts{q}"), Some(&cookie));
    let r = json_body(send(&router, page("?label=real")).await).await;
    assert_eq!(ids(&r), [4, 1]);
    assert_eq!(
        fake.state().last_query.clone().unwrap().label.as_deref(),
        Some("real")
    );
    let r = json_body(send(&router, page("?label=drill&event_id=20260103000000")).await).await;
    assert_eq!(ids(&r), [3]);
    for l in HistoryQuery::LABELS {
        let r = send(&router, page(&format!("?label={l}"))).await;
        assert_eq!(r.status(), StatusCode::OK, "{l}");
    }
}

#[tokio::test]
async fn bad_parameters_are_400_with_a_message() {
    let (fake, router, cookie, _) = logged_in().await;
    fill(&fake);
    for (path, why) in [
        (
            "/api/history/telegrams?verdict=ok",
            "verdict must be one of",
        ),
        ("/api/history/telegrams?verdict=", "verdict must be one of"),
        (
            "/api/history/telegrams?verdict=accepted,duplicate",
            "verdict must be one of",
        ),
        ("/api/history/telegrams?kind=Warning", "kind must be one of"),
        (
            "/api/history/telegrams?label=real",
            "unknown parameter \"label\" for telegrams",
        ),
        (
            "/api/history/telegrams?format=csv",
            "unknown parameter \"format\"",
        ),
        ("/api/history/telegrams?limit=501", "limit must be"),
        (
            "/api/history/telegrams?from=2026-02-30",
            "from must be a date",
        ),
        (
            "/api/history/alerts?verdict=accepted",
            "unknown parameter \"verdict\" for alerts",
        ),
        (
            "/api/history/alerts?kind=warning",
            "unknown parameter \"kind\" for alerts",
        ),
        (
            "/api/history/alerts?label=exercise",
            "label must be one of real, training, test, drill",
        ),
        ("/api/history/telegrams/export", "format is required"),
        (
            "/api/history/telegrams/export?format=xlsx",
            "format must be csv or json",
        ),
        (
            "/api/history/telegrams/export?format=csv&limit=10",
            "an export takes no limit",
        ),
        (
            "/api/history/telegrams/export?format=csv&verdict=nope",
            "verdict must be one of",
        ),
        (
            "/api/history/telegrams/export?format=csv&from=2026-02-01&to=2026-01-01",
            "from must not be after to",
        ),
        (
            "/api/history/alerts/export?format=json&kind=warning",
            "unknown parameter \"kind\" for alerts",
        ),
        (
            "/api/history/alerts/export?format=json&event_id=%3Cx%3E",
            "event_id must be",
        ),
        ("/api/history/telegrams/abc/raw", "positive whole number"),
        ("/api/history/telegrams/0/raw", "positive whole number"),
        ("/api/history/telegrams/-5/raw", "positive whole number"),
        (
            "/api/history/telegrams/99999999999999999999/raw",
            "positive whole number",
        ),
    ] {
        let r = send(&router, get(path, Some(&cookie))).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        let body = json_body(r).await;
        assert_eq!(body["error"], "bad_request", "{path}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(why), "{path}: {message}");
    }
    // Nothing was exported or paged by a refused request.
    assert_eq!(fake.state().pages_read, 0);
}

#[tokio::test]
async fn new_routes_need_a_session() {
    let (fake, router, _cookie, _) = logged_in().await;
    fill(&fake);
    fake.state().telegram_raw.insert(1, b"secret-ish".to_vec());
    for path in [
        "/api/history/telegrams?verdict=accepted",
        "/api/history/alerts?label=real",
        "/api/history/telegrams/1/raw",
        "/api/history/telegrams/export?format=csv",
        "/api/history/alerts/export?format=json",
    ] {
        for cookie in [None, Some("eewgate_session=0123456789abcdef")] {
            let r = send(&router, get(path, cookie)).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path} {cookie:?}");
            assert_eq!(json_body(r).await["error"], "unauthorised");
        }
    }
    assert_eq!(fake.state().pages_read, 0);
    // And during first-boot setup they are not served at all.
    let (_fake, _ui, router) = fresh().await;
    let r = send(&router, get("/api/history/telegrams/1/raw", None)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn raw_telegrams_are_plain_text_inline() {
    let (fake, router, cookie, _) = logged_in().await;
    {
        let mut s = fake.state();
        s.telegram_raw.insert(
            7,
            b"37 03 00 110311144645 C11\n\xff\xfe<script>alert(1)</script>\n9999=".to_vec(),
        );
        s.telegram_raw.insert(8, Vec::new());
    }
    let r = send(&router, get("/api/history/telegrams/7/raw", Some(&cookie))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header_of(&r, "content-type"), "text/plain; charset=utf-8");
    assert_eq!(
        header_of(&r, "content-disposition"),
        "inline; filename=\"eewgate-telegram-7.txt\""
    );
    assert_eq!(header_of(&r, "x-content-type-options"), "nosniff");
    assert!(header_of(&r, "content-security-policy").starts_with("default-src 'self'"));
    assert_eq!(header_of(&r, "x-frame-options"), "DENY");
    assert_eq!(header_of(&r, "cache-control"), "no-store");
    assert_eq!(
        text_body(r).await,
        "37 03 00 110311144645 C11\n\u{FFFD}\u{FFFD}<script>alert(1)</script>\n9999="
    );
    let r = send(&router, get("/api/history/telegrams/8/raw", Some(&cookie))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(text_body(r).await, "");
    let r = send(&router, get("/api/history/telegrams/9/raw", Some(&cookie))).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(header_of(&r, "x-content-type-options"), "nosniff");
    let body = json_body(r).await;
    assert_eq!(body["error"], "not_found");
    assert!(body["message"].as_str().unwrap().contains("no telegram 9"));
}

/// The rows of a CSV file (RFC 4180, CRLF), for files without quoted line breaks.
fn csv_lines(text: &str) -> Vec<&str> {
    let text = text
        .strip_prefix('\u{feff}')
        .unwrap_or_else(|| panic!("a UTF-8 byte-order mark for spreadsheets: {text:?}"));
    assert!(text.ends_with("\r\n"), "{text:?}");
    text.trim_end_matches("\r\n").split("\r\n").collect()
}

#[tokio::test]
async fn csv_export_is_quoted_and_guarded_against_formulas() {
    let (fake, router, cookie, _) = logged_in().await;
    fake.state().telegrams = vec![
        json!({
            "id": 3, "received_at": "2026-01-01T09:00:00.000+09:00", "link": "=HYPERLINK(\"http://x\",\"y\")",
            "verdict": "rejected", "reason": "bad_header", "message": "expected \"37\", got \"38\"\r\nsecond line",
            "serial": null, "actionable": false, "decode_us": 12, "size": 30,
        }),
        json!({ "id": 2, "link": "+81-3", "verdict": "garbage", "message": "-1 or @me, and\ttab" }),
        json!({ "id": 1, "link": "primary", "verdict": "accepted", "event_id": "20260101090000", "serial": 2,
                "status": "normal", "kind": "forecast", "format": "jma_code", "product": "code37",
                "actionable": true, "decode_us": 40, "size": 412, "raw_not_a_column": "x" }),
    ];
    let r = send(
        &router,
        get("/api/history/telegrams/export?format=csv", Some(&cookie)),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header_of(&r, "content-type"),
        "text/csv; charset=utf-8; header=present"
    );
    let disposition = header_of(&r, "content-disposition").to_owned();
    let name = disposition
        .strip_prefix("attachment; filename=\"eewgate-telegrams-")
        .and_then(|n| n.strip_suffix(".csv\""))
        .unwrap_or_else(|| panic!("{disposition}"));
    assert!(
        name.len() == 8 && name.bytes().all(|b| b.is_ascii_digit()),
        "{disposition}"
    );
    assert!(name.starts_with("20"), "{disposition}");
    assert_eq!(header_of(&r, "x-eewgate-export-rows"), "3");
    assert_eq!(header_of(&r, "x-eewgate-export-truncated"), "false");
    assert!(r.headers().get("x-eewgate-export-next-before-id").is_none());
    assert_eq!(header_of(&r, "x-content-type-options"), "nosniff");
    let text = text_body(r).await;
    let expected = [
        CSV_TELEGRAM_COLUMNS.join(","),
        "3,2026-01-01T09:00:00.000+09:00,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",rejected,bad_header,\
         \"expected \"\"37\"\", got \"\"38\"\"\r\nsecond line\",,,,,,,false,12,30"
            .to_owned(),
        "2,,'+81-3,garbage,,\"'-1 or @me, and\ttab\",,,,,,,,,".to_owned(),
        "1,,primary,accepted,,,20260101090000,2,normal,forecast,jma_code,code37,true,40,412".to_owned(),
    ];
    // A byte-order mark first, for Excel on Japanese Windows.
    assert_eq!(
        text,
        "\u{feff}".to_owned() + &expected.join("\r\n") + "\r\n"
    );
    assert_eq!(
        CSV_TELEGRAM_COLUMNS,
        [
            "id",
            "received_at",
            "link",
            "verdict",
            "reason",
            "message",
            "event_id",
            "serial",
            "status",
            "kind",
            "format",
            "product",
            "actionable",
            "decode_us",
            "size"
        ]
    );
}

#[tokio::test]
async fn json_export_is_one_array_of_the_records() {
    let (fake, router, cookie, _) = logged_in().await;
    fill(&fake);
    let r = send(
        &router,
        get(
            "/api/history/telegrams/export?format=json&verdict=accepted&kind=forecast",
            Some(&cookie),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header_of(&r, "content-type"), "application/json");
    let disposition = header_of(&r, "content-disposition");
    assert!(
        disposition.starts_with("attachment; filename=\"eewgate-telegrams-")
            && disposition.ends_with(".json\""),
        "{disposition}"
    );
    assert_eq!(header_of(&r, "x-eewgate-export-rows"), "3");
    let q = fake.state().last_query.clone().unwrap();
    assert_eq!(q.verdict.as_deref(), Some("accepted"));
    assert_eq!(q.kind.as_deref(), Some("forecast"));
    assert_eq!(q.limit, HistoryQuery::MAX_LIMIT, "pages of 500");
    let items: Value = serde_json::from_str(&text_body(r).await).unwrap();
    let all: Vec<Value> = fake.state().telegrams.clone();
    let want: Vec<&Value> = [9, 5, 1].iter().map(|i| &all[i - 1]).collect();
    assert_eq!(items.as_array().unwrap().iter().collect::<Vec<_>>(), want);
    // Nothing matches: an empty array, and a CSV with its header only.
    let r = send(
        &router,
        get(
            "/api/history/alerts/export?format=json&label=test",
            Some(&cookie),
        ),
    )
    .await;
    assert_eq!(header_of(&r, "x-eewgate-export-rows"), "0");
    assert_eq!(json_body(r).await, json!([]));
    let r = send(
        &router,
        get(
            "/api/history/alerts/export?format=csv&label=test",
            Some(&cookie),
        ),
    )
    .await;
    assert!(header_of(&r, "content-disposition").contains("eewgate-alerts-"));
    assert_eq!(
        text_body(r).await,
        "\u{feff}".to_owned() + &CSV_ALERT_COLUMNS.join(",") + "\r\n"
    );
    // Alerts in CSV.
    let r = send(
        &router,
        get(
            "/api/history/alerts/export?format=csv&label=real",
            Some(&cookie),
        ),
    )
    .await;
    let text = text_body(r).await;
    let lines = csv_lines(&text);
    assert_eq!(lines.len(), 3);
    assert!(lines[1].starts_with("4,20260104000000,real,"), "{text}");
}

#[tokio::test]
async fn exports_walk_every_page_up_to_the_bound() {
    let (fake, router, cookie, _) = logged_in().await;
    // 1,234 records: three pages of 500.
    fake.state().telegrams = (1..=1234)
        .map(|i| json!({ "id": i, "verdict": "accepted" }))
        .collect();
    let r = send(
        &router,
        get("/api/history/telegrams/export?format=csv", Some(&cookie)),
    )
    .await;
    assert_eq!(header_of(&r, "x-eewgate-export-rows"), "1234");
    assert_eq!(header_of(&r, "x-eewgate-export-truncated"), "false");
    let text = text_body(r).await;
    let lines = csv_lines(&text);
    assert_eq!(lines.len(), 1235);
    assert!(lines[1].starts_with("1234,"));
    assert!(lines[1234].starts_with("1,"));
    assert_eq!(fake.state().pages_read, 3);
    // Starting below an id.
    let r = send(
        &router,
        get(
            "/api/history/telegrams/export?format=json&before_id=11",
            Some(&cookie),
        ),
    )
    .await;
    assert_eq!(header_of(&r, "x-eewgate-export-rows"), "10");

    // One record more than the bound: cut, and said so.
    let n = i64::try_from(EXPORT_MAX_ROWS).unwrap() + 1;
    fake.state().telegrams = (1..=n)
        .map(|i| json!({ "id": i, "link": "primary" }))
        .collect();
    fake.state().pages_read = 0;
    let r = send(
        &router,
        get("/api/history/telegrams/export?format=csv", Some(&cookie)),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header_of(&r, "x-eewgate-export-rows"),
        EXPORT_MAX_ROWS.to_string()
    );
    assert_eq!(header_of(&r, "x-eewgate-export-truncated"), "true");
    // The records left out are below 2: go on with before_id=2.
    assert_eq!(header_of(&r, "x-eewgate-export-next-before-id"), "2");
    let text = text_body(r).await;
    let lines = csv_lines(&text);
    assert_eq!(lines.len(), EXPORT_MAX_ROWS + 1);
    assert!(lines[1].starts_with(&format!("{n},")));
    assert!(lines[EXPORT_MAX_ROWS].starts_with("2,"));
    // 200 pages of 500 and one look beyond the bound.
    assert_eq!(fake.state().pages_read, EXPORT_MAX_ROWS / 500 + 1);
    let r = send(
        &router,
        get(
            "/api/history/telegrams/export?format=csv&before_id=2",
            Some(&cookie),
        ),
    )
    .await;
    assert_eq!(header_of(&r, "x-eewgate-export-rows"), "1");
    assert_eq!(header_of(&r, "x-eewgate-export-truncated"), "false");

    // Exactly the bound: not cut.
    fake.state().telegrams.pop();
    let r = send(
        &router,
        get("/api/history/telegrams/export?format=json", Some(&cookie)),
    )
    .await;
    assert_eq!(
        header_of(&r, "x-eewgate-export-rows"),
        EXPORT_MAX_ROWS.to_string()
    );
    assert_eq!(header_of(&r, "x-eewgate-export-truncated"), "false");
}

#[tokio::test]
async fn openapi_documents_the_history_api() {
    let (_fake, router, _, _) = logged_in().await;
    let doc = json_body(send(&router, get("/api/openapi.json", None)).await).await;
    let paths = &doc["paths"];
    let params = |path: &str| -> Vec<String> {
        paths[path]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}"))
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for p in [
        "verdict",
        "kind",
        "before_id",
        "limit",
        "event_id",
        "from",
        "to",
    ] {
        assert!(
            params("/api/history/telegrams").contains(&p.to_owned()),
            "{p}"
        );
    }
    assert!(params("/api/history/alerts").contains(&"label".to_owned()));
    assert!(!params("/api/history/alerts").contains(&"verdict".to_owned()));
    for path in [
        "/api/history/telegrams/export",
        "/api/history/alerts/export",
    ] {
        let names = params(path);
        assert!(names.contains(&"format".to_owned()), "{path}");
        assert!(!names.contains(&"limit".to_owned()), "{path}");
        let ok = &paths[path]["get"]["responses"]["200"];
        assert!(
            ok["headers"]["X-Eewgate-Export-Truncated"].is_object(),
            "{path}"
        );
        assert!(ok["content"]["text/csv"].is_object(), "{path}");
    }
    assert_eq!(params("/api/history/telegrams/{id}/raw"), ["id"]);
    let raw = &paths["/api/history/telegrams/{id}/raw"]["get"]["responses"];
    assert!(raw["404"].is_object());
    assert!(raw["200"]["content"]["text/plain"].is_object());
    let verdict = paths["/api/history/telegrams"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "verdict")
        .unwrap();
    assert_eq!(verdict["schema"]["enum"], json!(HistoryQuery::VERDICTS));
}
