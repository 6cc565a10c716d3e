//! Router tests of the drill reports without a server (tower `oneshot`): the routes are in
//! the table behind the session (read-only GETs, no CSRF, nothing audited), a drill's
//! answer names its event and its audit entry says so, the list and one report have the
//! shape the OpenAPI document gives (every field the report page reads), a failing
//! channel fails the drill, paging, and refusals (bad id 400, unknown id 404).
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use eewgate_webui::ROUTES;
use eewgate_webui::openapi::{DRILL_CHANNEL_RESULTS, DRILL_RESULTS};
use serde_json::{Value, json};

mod common;
use common::*;

const REPORT_ROUTES: [&str; 2] = ["/api/drills/reports", "/api/drills/reports/{event_id}"];

fn start_drill(cookie: &str, csrf: &str, body: &Value) -> Request<Body> {
    Request::post("/api/drill")
        .header(header::COOKIE, cookie)
        .header("x-csrf-token", csrf)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// The `required` list of a schema of the OpenAPI document.
fn required(doc: &Value, schema: &Value) -> Vec<String> {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{r} missing")),
        None => schema,
    };
    schema["required"]
        .as_array()
        .unwrap_or_else(|| panic!("no required in {schema}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn has_all(what: &str, value: &Value, keys: &[String]) {
    for k in keys {
        assert!(
            value.get(k).is_some(),
            "{what} lacks {k:?} (the document requires it): {value:#}"
        );
    }
}

#[tokio::test]
async fn report_routes_are_read_only_and_behind_the_session() {
    for path in REPORT_ROUTES {
        let spec = ROUTES
            .iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("{path} not routed"));
        assert_eq!(spec.method, "GET", "{path}");
        assert!(spec.auth && !spec.during_setup, "{path}");
    }
    let (fake, router, cookie, _) = logged_in().await;
    let audits = fake.state().audit.len();
    for path in [
        "/api/drills/reports",
        "/api/drills/reports?limit=5",
        "/api/drills/reports/drill-20261204120000",
    ] {
        for c in [None, Some("eewgate_session=0123"), Some("other=1")] {
            let r = send(&router, get(path, c)).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path} {c:?}");
            assert_eq!(json_body(r).await["error"], "unauthorised");
        }
        // With the session: a GET needs no CSRF token.
        let r = send(&router, get(path, Some(&cookie))).await;
        assert_ne!(r.status(), StatusCode::FORBIDDEN, "{path}");
        assert_ne!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    // Reading reports changes nothing and is not audited.
    assert_eq!(fake.state().audit.len(), audits);
    assert!(fake.state().operations.is_empty());
}

#[tokio::test]
async fn a_drill_names_its_report_and_the_report_has_the_documented_shape() {
    let (fake, router, cookie, csrf) = logged_in().await;
    let doc = json_body(send(&router, get("/api/openapi.json", None)).await).await;
    let r = send(
        &router,
        start_drill(
            &cookie,
            &csrf,
            &json!({ "confirm": true, "class": "5-", "seconds": 20 }),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let event_id = json_body(r).await["event_id"].as_str().unwrap().to_owned();
    // The audit entry names the event: the report's operator is found by it.
    let audit = fake.state().audit.last().cloned().unwrap();
    assert_eq!(audit.action, "drill_started");
    assert!(
        audit.detail.contains(&format!("(event {event_id})")),
        "{audit:?}"
    );

    let r = send(&router, get("/api/drills/reports", Some(&cookie))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = json_body(r).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page:#}");
    let summary = &items[0];
    assert_eq!(summary["event_id"], event_id.as_str());
    assert!(
        summary.get("channels").is_none(),
        "a summary has no channels"
    );
    has_all(
        "a summary",
        summary,
        &required(&doc, &doc["components"]["schemas"]["DrillSummary"]),
    );
    assert_eq!(
        page["next_before_id"],
        Value::Null,
        "a short page is the last"
    );

    let r = send(
        &router,
        get(&format!("/api/drills/reports/{event_id}"), Some(&cookie)),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let report = json_body(r).await;
    let schemas = &doc["components"]["schemas"];
    has_all(
        "the report",
        &report,
        &required(&doc, &schemas["DrillReport"]),
    );
    assert!(DRILL_RESULTS.contains(&report["result"].as_str().unwrap()));
    assert_eq!(
        report["result"], "ok",
        "every fake output works: {report:#}"
    );
    assert_eq!(report["kind"], "synthetic");
    let channel_keys = required(&doc, &schemas["DrillChannel"]);
    let channel_schema = &schemas["DrillChannel"]["properties"];
    let expected_keys = required(&doc, &channel_schema["expected"]["items"]);
    let timing_keys = required(&doc, &channel_schema["timings"]);
    let observed_keys = required(&doc, &channel_schema["unmatched"]["items"]);
    let channels = report["channels"].as_array().unwrap();
    let names: Vec<&str> = channels
        .iter()
        .map(|c| c["channel"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["relay:1", "relay:2", "led", "audio", "mqtt"]);
    for c in channels {
        has_all("a channel", c, &channel_keys);
        has_all("its timings", &c["timings"], &timing_keys);
        assert!(
            DRILL_CHANNEL_RESULTS.contains(&c["result"].as_str().unwrap()),
            "{c:#}"
        );
        for e in c["expected"].as_array().unwrap() {
            has_all("an order", e, &expected_keys);
            if !e["observed"].is_null() {
                has_all("an observation", &e["observed"], &observed_keys);
            }
        }
    }
    let by = |n: &str| channels.iter().find(|c| c["channel"] == n).unwrap();
    assert_eq!(by("relay:2")["result"], "not_included");
    assert_eq!(by("relay:2")["excluded"], "not_in_drills");
    assert!(
        by("relay:1")["expected"][0]["observed"]["detail"]
            .as_str()
            .unwrap()
            .contains("read-back followed")
    );
}

#[tokio::test]
async fn a_failing_output_fails_its_channel_and_the_drill() {
    let (fake, router, cookie, csrf) = logged_in().await;
    fake.state().failing_outputs.insert("relay:1".into());
    fake.state().failing_outputs.insert("mqtt".into());
    let r = send(
        &router,
        start_drill(
            &cookie,
            &csrf,
            &json!({ "confirm": true, "recorded": "bungo-2024" }),
        ),
    )
    .await;
    let event_id = json_body(r).await["event_id"].as_str().unwrap().to_owned();
    let report = json_body(
        send(
            &router,
            get(&format!("/api/drills/reports/{event_id}"), Some(&cookie)),
        )
        .await,
    )
    .await;
    assert_eq!(report["result"], "failed");
    assert_eq!(report["kind"], "recorded");
    assert_eq!(report["recorded"], "bungo-2024");
    let by = |n: &str| {
        report["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(by("relay:1")["result"], "failed");
    assert!(
        by("relay:1")["problem"]
            .as_str()
            .unwrap()
            .contains("did not follow")
    );
    // Nothing recorded is not observed, never ok.
    assert_eq!(by("mqtt")["result"], "not_observed");
    assert!(by("mqtt")["expected"][0]["observed"].is_null());
    assert_eq!(report["counts"]["not_observed"], 1);
}

#[tokio::test]
async fn pages_and_refusals() {
    let (_fake, router, cookie, csrf) = logged_in().await;
    for _ in 0..3 {
        let r = send(
            &router,
            start_drill(
                &cookie,
                &csrf,
                &json!({ "confirm": true, "class": "4", "seconds": 10 }),
            ),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let page =
        json_body(send(&router, get("/api/drills/reports?limit=2", Some(&cookie))).await).await;
    let ids: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [3, 2], "newest first");
    assert_eq!(page["next_before_id"], 2);
    let rest = json_body(
        send(
            &router,
            get("/api/drills/reports?limit=2&before_id=2", Some(&cookie)),
        )
        .await,
    )
    .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next_before_id"], Value::Null);

    for bad in [
        "/api/drills/reports?limit=0",
        "/api/drills/reports?limit=101",
        "/api/drills/reports?before_id=x",
        "/api/drills/reports?label=drill",
        "/api/drills/reports/drill%2F..",
        "/api/drills/reports/a%20b",
    ] {
        let r = send(&router, get(bad, Some(&cookie))).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(json_body(r).await["error"], "bad_request", "{bad}");
    }
    let r = send(
        &router,
        get("/api/drills/reports/drill-19990101000000", Some(&cookie)),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_body(r).await["error"], "not_found");
    // Not a way to change anything.
    let r = send(
        &router,
        Request::builder()
            .method(Method::POST)
            .uri("/api/drills/reports")
            .header(header::COOKIE, &cookie)
            .header("x-csrf-token", &csrf)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn the_report_page_is_served_and_loaded() {
    let (_fake, _ui, router) = fresh().await;
    let html = text_body(send(&router, get("/", None)).await).await;
    assert!(html.contains("<script src=\"/drill-report.js\""), "{html}");
    assert!(html.contains("id=\"view-drill-report\""));
    let r = send(&router, get("/drill-report.js", None)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let js = text_body(r).await;
    // Both languages, the print button, and data inserted as text only.
    for needle in ["訓練記録", "Drill report", "window.print()", "印刷 / Print"] {
        assert!(js.contains(needle), "{needle}");
    }
    assert!(!js.contains("innerHTML"), "text only, never HTML");
    let css = text_body(send(&router, get("/app.css", None)).await).await;
    assert!(css.contains("@media print"), "a print style");
}
