//! Router tests of the per-output self-tests without a server (tower `oneshot`): the
//! list, the relay confirmation, output names, auditing, the operator's confirmation and
//! its note, refusals, the result on the status model (snapshot and SSE), sessions, CSRF
//! and the OpenAPI document.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use eewgate_webui::fake::FakeAppliance;
use eewgate_webui::{ConfirmTestRequest, Operation, ROUTES, SelfTestRequest};
use http_body_util::BodyExt;
use serde_json::{Value, json};

mod common;
use common::*;

const SELFTEST_ROUTES: [(&str, &str); 3] = [
    ("GET", "/api/selftests"),
    ("POST", "/api/selftest"),
    ("POST", "/api/selftest/confirm"),
];

fn authed(method: Method, path: &str, cookie: &str, csrf: &str, body: &Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::COOKIE, cookie)
        .header("x-csrf-token", csrf)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn post(
    router: &Router,
    path: &str,
    cookie: &str,
    csrf: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let r = send(router, authed(Method::POST, path, cookie, csrf, body)).await;
    let status = r.status();
    (status, json_body(r).await)
}

async fn status_now(router: &Router, cookie: &str) -> Value {
    json_body(send(router, get("/api/status", Some(cookie))).await).await
}

fn actions(fake: &FakeAppliance) -> Vec<String> {
    fake.state()
        .audit
        .iter()
        .map(|a| a.action.clone())
        .collect()
}

fn time(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("{v} is no time")))
        .unwrap()
}

/// Read SSE frames until one carries `data:`; returns the data as JSON.
async fn next_event(body: &mut Body) -> Value {
    let mut buf = String::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("an event in time")
            .expect("stream open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            buf.push_str(std::str::from_utf8(&data).unwrap());
        }
        if buf.contains("\n\n") && buf.contains("data:") {
            let line = buf.lines().find(|l| l.starts_with("data:")).unwrap();
            return serde_json::from_str(line.trim_start_matches("data:").trim()).unwrap();
        }
    }
}

#[tokio::test]
async fn selftest_routes_are_in_the_table_behind_session_and_csrf() {
    // In the table with `auth`, so the generic session and CSRF tests of api.rs cover
    // them too; checked here directly as well.
    for (method, path) in SELFTEST_ROUTES {
        let spec = ROUTES
            .iter()
            .find(|r| r.path == path && r.method == method)
            .unwrap_or_else(|| panic!("{method} {path} not routed"));
        assert!(spec.auth && !spec.during_setup, "{path}");
    }
    let (fake, router, cookie, _csrf) = logged_in().await;
    for (method, path) in SELFTEST_ROUTES {
        let body = json!({ "output": "led", "ok": true });
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let r = send(&router, req).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(json_body(r).await["error"], "unauthorised");
    }
    for path in ["/api/selftest", "/api/selftest/confirm"] {
        for token in [None, Some("wrong")] {
            let mut req = Request::post(path)
                .header(header::COOKIE, &cookie)
                .header(header::CONTENT_TYPE, "application/json");
            if let Some(t) = token {
                req = req.header("x-csrf-token", t);
            }
            let body = json!({ "output": "led", "ok": true, "confirm": true });
            let r = send(&router, req.body(Body::from(body.to_string())).unwrap()).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path} {token:?}");
            assert_eq!(json_body(r).await["error"], "csrf");
        }
    }
    assert!(fake.state().operations.is_empty());
    assert_eq!(actions(&fake), ["setup", "login"], "nothing audited");
}

#[tokio::test]
async fn self_tests_list_the_outputs() {
    let (fake, router, cookie, _) = logged_in().await;
    let r = send(&router, get("/api/selftests", Some(&cookie))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = json_body(r).await;
    assert_eq!(v["allowed"], true);
    let outputs = v["outputs"].as_array().unwrap();
    let names: Vec<&str> = outputs
        .iter()
        .map(|o| o["output"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["relay:1", "relay:2", "led", "audio", "mqtt"]);
    for o in outputs {
        for key in ["enabled", "readback", "needs_confirmation"] {
            assert!(o[key].is_boolean(), "{key} of {o}");
        }
        assert!(SelfTestRequest::valid_output(o["output"].as_str().unwrap()));
    }
    assert_eq!(outputs[0]["name"], "elevators");
    assert_eq!(outputs[0]["readback"], true);
    assert_eq!(outputs[0]["needs_confirmation"], false);
    assert_eq!(outputs[1]["readback"], false);
    assert_eq!(outputs[1]["needs_confirmation"], true);

    fake.state().disabled_outputs.insert("mqtt".into());
    fake.state().alert_in_progress = true;
    let v = json_body(send(&router, get("/api/selftests", Some(&cookie))).await).await;
    assert_eq!(v["allowed"], false, "not during an alert");
    assert_eq!(v["outputs"][4]["enabled"], false);
}

#[tokio::test]
async fn relay_self_test_needs_confirmation() {
    let (fake, router, cookie, csrf) = logged_in().await;
    let audit_before = actions(&fake);
    for body in [
        json!({ "output": "relay:1" }),
        json!({ "output": "relay:1", "confirm": false }),
    ] {
        let (status, v) = post(&router, "/api/selftest", &cookie, &csrf, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(v["error"], "confirm_required");
        let message = v["message"].as_str().unwrap();
        assert!(message.contains("relay:1"), "{message}");
        assert!(message.contains("real equipment"), "{message}");
    }
    assert!(fake.state().operations.is_empty());
    assert_eq!(actions(&fake), audit_before, "nothing audited");
    assert!(
        status_now(&router, &cookie)
            .await
            .get("verification")
            .is_none()
    );

    // The other outputs operate no equipment: no confirmation needed.
    let (status, v) = post(
        &router,
        "/api/selftest",
        &cookie,
        &csrf,
        &json!({ "output": "led" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn bad_output_names_are_refused() {
    let (fake, router, cookie, csrf) = logged_in().await;
    let audit_before = actions(&fake);
    for output in [
        "relay:0",
        "relay:x",
        "speaker",
        "../x",
        "relay:01",
        "relay:256",
        "relay:",
        "relay",
        "LED",
        " audio",
        "",
        "relay:1\n",
    ] {
        for (path, body) in [
            (
                "/api/selftest",
                json!({ "output": output, "confirm": true }),
            ),
            (
                "/api/selftest/confirm",
                json!({ "output": output, "ok": true }),
            ),
        ] {
            let (status, v) = post(&router, path, &cookie, &csrf, &body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {output:?}");
            assert_eq!(v["error"], "invalid_output", "{path} {output:?}");
            assert!(v["message"].as_str().unwrap().contains("relay:N"));
        }
    }
    // Bodies of the wrong shape: axum's JSON errors (422 data, 400 syntax).
    for (path, body) in [
        ("/api/selftest", json!({ "confirm": true })),
        ("/api/selftest", json!({ "output": "led", "extra": 1 })),
        ("/api/selftest", json!({ "output": 1 })),
        ("/api/selftest/confirm", json!({ "output": "led" })),
        (
            "/api/selftest/confirm",
            json!({ "output": "led", "ok": "yes" }),
        ),
        (
            "/api/selftest/confirm",
            json!({ "output": "led", "ok": true, "by": "me" }),
        ),
    ] {
        let (status, _) = post(&router, path, &cookie, &csrf, &body).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {body} → {status}"
        );
    }
    assert!(fake.state().operations.is_empty());
    assert_eq!(actions(&fake), audit_before, "nothing audited");
}

#[tokio::test]
async fn accepted_self_test_is_audited_and_verified() {
    let (fake, router, cookie, csrf) = logged_in().await;
    let (status, answer) = post(
        &router,
        "/api/selftest",
        &cookie,
        &csrf,
        &json!({ "output": "relay:1", "confirm": true }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["output"], "relay:1");
    assert_eq!(answer["needs_confirmation"], false, "relay:1 is read back");
    let started_at = time(&answer["started_at"]);
    assert_eq!(
        fake.state().operations,
        [Operation::SelfTest(SelfTestRequest {
            confirm: true,
            output: "relay:1".into()
        })]
    );
    {
        let s = fake.state();
        let last = s.audit.last().unwrap();
        assert_eq!(last.action, "self_test");
        assert_eq!(last.who, "admin");
        assert!(
            last.detail.starts_with("self-test of relay:1"),
            "{}",
            last.detail
        );
    }

    // The result on the status model.
    let status = status_now(&router, &cookie).await;
    assert_eq!(status["ready"], true, "the rest of the status stays");
    let v = &status["verification"]["relay:1"];
    assert!(time(&v["last"]["at"]) >= started_at, "{v}");
    assert_eq!(v["last"]["source"], "self_test");
    assert_eq!(v["last"]["method"], "readback");
    assert_eq!(v["last"]["ok"], true);
    assert!(v["last"]["measurement_ms"].is_number());
    assert!(v["last"]["detail"].is_string());
    assert_eq!(v["last_ok_at"], v["last"]["at"]);
    assert_eq!(v["last_ok_method"], "readback");

    // Each output its own method; those without read-back ask the operator.
    for (output, method, needs) in [
        ("relay:2", "pin", true),
        ("led", "pin", true),
        ("audio", "playback", true),
        ("mqtt", "roundtrip", false),
    ] {
        let (status, answer) = post(
            &router,
            "/api/selftest",
            &cookie,
            &csrf,
            &json!({ "output": output, "confirm": true }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{output}: {answer}");
        assert_eq!(answer["needs_confirmation"], needs, "{output}");
        let v = &status_now(&router, &cookie).await["verification"][output];
        assert_eq!(v["last"]["method"], method, "{output}");
        assert_eq!(v["last"]["source"], "self_test", "{output}");
        assert!(time(&v["last"]["at"]) >= time(&answer["started_at"]));
        assert_eq!(
            fake.state().audit.last().unwrap().detail.split(' ').nth(2),
            Some(output)
        );
    }
    let status = status_now(&router, &cookie).await;
    assert_eq!(
        status["verification"].as_object().unwrap().len(),
        5,
        "relay:1 kept"
    );

    // A failing output: ok false, the last success kept.
    fake.state().failing_outputs.insert("relay:1".into());
    let (status, _) = post(
        &router,
        "/api/selftest",
        &cookie,
        &csrf,
        &json!({ "output": "relay:1", "confirm": true }),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the test ran; its result is the failure"
    );
    let after = &status_now(&router, &cookie).await["verification"]["relay:1"];
    assert_eq!(after["last"]["ok"], false);
    assert_eq!(after["last_ok_at"], v["last_ok_at"]);
    assert_eq!(after["last_ok_method"], "readback");
}

#[tokio::test]
async fn results_follow_over_sse_and_a_running_test_is_busy() {
    let (fake, router, cookie, csrf) = logged_in().await;
    fake.state().self_test_delay = Some(Duration::from_millis(300));
    let mut events = send(&router, get("/api/events", Some(&cookie)))
        .await
        .into_body();
    let first = next_event(&mut events).await;
    assert!(first.get("verification").is_none());

    let (status, answer) = post(
        &router,
        "/api/selftest",
        &cookie,
        &csrf,
        &json!({ "output": "audio" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["needs_confirmation"], true);
    // Still running: a second test of the same output is refused; another output is not.
    let (status, v) = post(
        &router,
        "/api/selftest",
        &cookie,
        &csrf,
        &json!({ "output": "audio" }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(v["error"], "busy");
    assert_eq!(actions(&fake).last().unwrap(), "self_test_refused");
    assert!(
        status_now(&router, &cookie)
            .await
            .get("verification")
            .is_none(),
        "not yet"
    );

    let pushed = next_event(&mut events).await;
    let v = &pushed["verification"]["audio"];
    assert_eq!(v["last"]["method"], "playback", "{pushed}");
    assert!(time(&v["last"]["at"]) >= time(&answer["started_at"]));
    assert!(fake.state().self_tests_running.is_empty());
    let (status, _) = post(
        &router,
        "/api/selftest",
        &cookie,
        &csrf,
        &json!({ "output": "audio" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "done: may run again");

    // A status the daemon publishes meanwhile keeps the record.
    fake.set_status(json!({ "ready": true, "links": {} }));
    assert!(status_now(&router, &cookie).await["verification"]["audio"].is_object());
}

#[tokio::test]
async fn operator_confirmation_is_recorded_and_audited() {
    let (fake, router, cookie, csrf) = logged_in().await;
    let (status, answer) = post(
        &router,
        "/api/selftest",
        &cookie,
        &csrf,
        &json!({ "output": "relay:2", "confirm": true }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["needs_confirmation"], true);
    let tested = status_now(&router, &cookie).await["verification"]["relay:2"].clone();

    let (status, v) = post(
        &router,
        "/api/selftest/confirm",
        &cookie,
        &csrf,
        &json!({ "output": "relay:2", "ok": true }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["output"], "relay:2");
    {
        let s = fake.state();
        let last = s.audit.last().unwrap();
        assert_eq!(last.action, "self_test_confirmed");
        assert!(
            last.detail.starts_with("relay:2 worked "),
            "{}",
            last.detail
        );
    }
    let worked = status_now(&router, &cookie).await["verification"]["relay:2"].clone();
    assert_eq!(worked["last"]["source"], "operator");
    assert_eq!(worked["last"]["method"], "operator");
    assert_eq!(worked["last"]["ok"], true);
    assert_eq!(worked["last_ok_method"], "operator");
    assert!(time(&worked["last"]["at"]) >= time(&tested["last"]["at"]));

    // It did not work, with a note (trimmed): recorded as a failure, the success kept.
    let (status, _) = post(
        &router,
        "/api/selftest/confirm",
        &cookie,
        &csrf,
        &json!({ "output": "relay:2", "ok": false, "note": "  no click from the valve  " }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        fake.state()
            .audit
            .last()
            .unwrap()
            .detail
            .starts_with("relay:2 did not work: no click from the valve "),
        "{:?}",
        fake.state().audit.last()
    );
    assert_eq!(
        fake.state().operations.last().unwrap(),
        &Operation::ConfirmTest(ConfirmTestRequest {
            output: "relay:2".into(),
            ok: false,
            note: Some("no click from the valve".into()),
        })
    );
    let failed = &status_now(&router, &cookie).await["verification"]["relay:2"];
    assert_eq!(failed["last"]["ok"], false);
    assert_eq!(failed["last"]["detail"], "no click from the valve");
    assert_eq!(failed["last_ok_at"], worked["last"]["at"]);

    // A blank note is no note.
    post(
        &router,
        "/api/selftest/confirm",
        &cookie,
        &csrf,
        &json!({ "output": "led", "ok": false, "note": " " }),
    )
    .await;
    assert!(actions(&fake).last().unwrap() == "self_test_confirmed");
    assert!(
        fake.state()
            .audit
            .last()
            .unwrap()
            .detail
            .starts_with("led did not work ")
    );

    // The note: at most 200 characters (not bytes), one line.
    let operations = fake.state().operations.len();
    let audited = actions(&fake).len();
    for (note, want) in [
        ("あ".repeat(200), StatusCode::OK),
        ("a".repeat(201), StatusCode::BAD_REQUEST),
        ("line one\nline two".to_owned(), StatusCode::BAD_REQUEST),
    ] {
        let (status, v) = post(
            &router,
            "/api/selftest/confirm",
            &cookie,
            &csrf,
            &json!({ "output": "audio", "ok": true, "note": note }),
        )
        .await;
        assert_eq!(status, want, "{} chars: {v}", note.chars().count());
        if want == StatusCode::BAD_REQUEST {
            assert_eq!(v["error"], "bad_request");
        }
    }
    assert_eq!(
        fake.state().operations.len(),
        operations + 1,
        "only the good note"
    );
    assert_eq!(actions(&fake).len(), audited + 1);
}

#[tokio::test]
async fn refused_self_tests_are_409_with_their_code_and_audited() {
    let (fake, router, cookie, csrf) = logged_in().await;
    fake.state().disabled_outputs.insert("mqtt".into());
    let (status, v) = post(
        &router,
        "/api/selftest",
        &cookie,
        &csrf,
        &json!({ "output": "mqtt" }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(v["error"], "output_disabled");
    assert!(v["message"].as_str().unwrap().contains("mqtt"));
    {
        let s = fake.state();
        let last = s.audit.last().unwrap();
        assert_eq!(last.action, "self_test_refused");
        assert!(
            last.detail.starts_with("self-test of mqtt: "),
            "{}",
            last.detail
        );
    }
    let (status, v) = post(
        &router,
        "/api/selftest/confirm",
        &cookie,
        &csrf,
        &json!({ "output": "mqtt", "ok": true }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(v["error"], "output_disabled");
    assert_eq!(
        actions(&fake).last().unwrap(),
        "self_test_confirmed_refused"
    );

    // A well-formed name of an output this appliance does not have: the appliance's 400.
    let (status, v) = post(
        &router,
        "/api/selftest",
        &cookie,
        &csrf,
        &json!({ "output": "relay:9", "confirm": true }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "bad_request");
    assert!(v["message"].as_str().unwrap().contains("relay:9"));

    // During an alert.
    fake.state().alert_in_progress = true;
    let (status, v) = post(
        &router,
        "/api/selftest",
        &cookie,
        &csrf,
        &json!({ "output": "relay:1", "confirm": true }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(v["error"], "alert_in_progress");
    assert!(fake.state().operations.is_empty());
    assert!(
        !actions(&fake)
            .iter()
            .any(|a| a == "self_test" || a == "self_test_confirmed")
    );
    assert!(
        status_now(&router, &cookie)
            .await
            .get("verification")
            .is_none()
    );
}

#[tokio::test]
async fn openapi_documents_the_self_tests() {
    // Not served while setup is pending.
    let (_fake, router, _, _) = logged_in().await;
    let doc = json_body(send(&router, get("/api/openapi.json", None)).await).await;
    for (method, path) in SELFTEST_ROUTES {
        let op = &doc["paths"][path][method.to_lowercase()];
        assert!(op["security"][0]["session"].is_array(), "{method} {path}");
        assert_eq!(
            op["security"][0].get("csrf").is_some(),
            method == "POST",
            "{method} {path}"
        );
        assert!(op["responses"]["200"].is_object());
        assert!(op["responses"]["401"].is_object());
    }
    let post = &doc["paths"]["/api/selftest"]["post"];
    let props = &post["requestBody"]["content"]["application/json"]["schema"]["properties"];
    assert!(props["output"]["pattern"].is_string());
    assert!(props["confirm"].is_object());
    assert!(
        post["responses"]["409"]["description"]
            .as_str()
            .unwrap()
            .contains("output_disabled")
    );
    let answer = &post["responses"]["200"]["content"]["application/json"]["schema"]["properties"];
    for key in ["ok", "output", "started_at", "needs_confirmation"] {
        assert!(answer[key].is_object(), "{key}");
    }
    let confirm = &doc["paths"]["/api/selftest/confirm"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["properties"];
    assert_eq!(confirm["note"]["maxLength"], 200);
}
