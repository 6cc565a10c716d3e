//! Router tests without a server (tower `oneshot`): every API route, the setup gate,
//! authentication, CSRF, rate limiting, body limits, live status, history paging, the
//! security headers, the OpenAPI document, and that no secret ever leaves.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use eewgate_webui::fake::FakeAppliance;
use eewgate_webui::{Appliance, Options, ROUTES, WebUi};
use http_body_util::BodyExt;
use serde_json::{Value, json};

mod common;
use common::*;

fn api_routes() -> impl Iterator<Item = &'static eewgate_webui::RouteSpec> {
    ROUTES.iter().filter(|r| r.path.starts_with("/api/"))
}

#[tokio::test]
async fn setup_mode_serves_only_setup_and_assets() {
    let (_fake, ui, router) = fresh().await;
    assert!(ui.setup_code().is_some());
    let r = send(&router, get("/api/setup/state", None)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json_body(r).await["setup_required"], true);
    for spec in ROUTES {
        let method = Method::from_bytes(spec.method.as_bytes()).unwrap();
        let req = Request::builder()
            .method(method)
            .uri(spec.path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let r = send(&router, req).await;
        if spec.during_setup {
            assert_ne!(r.status(), StatusCode::CONFLICT, "{}", spec.path);
        } else {
            assert_eq!(r.status(), StatusCode::CONFLICT, "{}", spec.path);
            assert_eq!(json_body(r).await["error"], "setup_required");
        }
    }
    // Unknown API paths too.
    let r = send(&router, get("/api/settings", None)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // Pages are served.
    let r = send(&router, get("/", None)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(text_body(r).await.contains("app.js"));
}

#[tokio::test]
async fn wrong_setup_code_and_short_password_are_refused() {
    let (fake, ui, router) = fresh().await;
    let code = ui.setup_code().unwrap();
    let r = send(
        &router,
        post_json(
            "/api/setup",
            &json!({ "setup_code": "AAAAA-AAAAA", "password": PASSWORD }),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_body(r).await["error"], "wrong_setup_code");

    let r = send(
        &router,
        post_json(
            "/api/setup",
            &json!({ "setup_code": code, "password": "short12" }),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(r).await["error"], "weak_password");
    assert!(fake.state().admin_hash.is_none());
    assert!(ui.setup_code().is_some(), "still in setup mode");

    // Malformed body.
    let r = send(
        &router,
        post_json("/api/setup", &json!({ "password": PASSWORD })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Not JSON: a cross-site form cannot post here.
    let req = Request::post("/api/setup")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("setup_code=x&password=y"))
        .unwrap();
    assert_eq!(
        send(&router, req).await.status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}

#[tokio::test]
async fn setup_then_login_works_and_setup_closes() {
    let (fake, ui, router) = fresh().await;
    // Someone waits to withdraw the code from the console once setup is done.
    let waiter = {
        let ui = ui.clone();
        tokio::spawn(async move { ui.setup_finished().await })
    };
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished(), "setup is still pending");
    // The code is accepted however it is typed.
    let code = ui.setup_code().unwrap().to_lowercase().replace('-', " ");
    let r = send(
        &router,
        post_json(
            "/api/setup",
            &json!({ "setup_code": code, "password": PASSWORD }),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(ui.setup_code().is_none());
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("setup_finished returns once setup is done")
        .unwrap();
    assert!(
        fake.state()
            .admin_hash
            .as_deref()
            .unwrap()
            .starts_with("$argon2id$")
    );
    let r = send(&router, get("/api/setup/state", None)).await;
    assert_eq!(json_body(r).await["setup_required"], false);
    // Setup cannot run again.
    let r = send(
        &router,
        post_json(
            "/api/setup",
            &json!({ "setup_code": code, "password": "another-password" }),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);

    let (cookie, csrf) = login(&router, PASSWORD).await;
    let r = send(&router, get("/api/session", Some(&cookie))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json_body(r).await["csrf_token"], csrf.as_str());

    // A restarted UI over the same store is not in setup mode.
    let ui2 = WebUi::new(Arc::new(fake.clone()), Options::default())
        .await
        .unwrap();
    assert!(ui2.setup_code().is_none());
    // Never pending: returns at once.
    ui2.setup_finished().await;
    // ...and sessions do not survive it.
    let r = send(&ui2.router(), get("/api/session", Some(&cookie))).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let actions: Vec<String> = fake
        .state()
        .audit
        .iter()
        .map(|a| a.action.clone())
        .collect();
    assert_eq!(actions, ["setup", "login"]);
}

#[tokio::test]
async fn secure_cookie_over_tls() {
    let fake = FakeAppliance::default();
    let ui = WebUi::new(
        Arc::new(fake.clone()),
        Options {
            tls: true,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let router = ui.router();
    let code = ui.setup_code().unwrap();
    send(
        &router,
        post_json(
            "/api/setup",
            &json!({ "setup_code": code, "password": PASSWORD }),
        ),
    )
    .await;
    let r = send(
        &router,
        post_json("/api/login", &json!({ "password": PASSWORD })),
    )
    .await;
    let c = r
        .headers()
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(c.ends_with("; Secure"), "{c}");
}

#[tokio::test]
async fn wrong_password_is_401_and_audited() {
    let (fake, router, _, _) = logged_in().await;
    let r = send(
        &router,
        post_json("/api/login", &json!({ "password": "not-the-password" })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get(header::SET_COOKIE).is_none());
    assert_eq!(json_body(r).await["error"], "bad_credentials");
    assert_eq!(fake.state().audit.last().unwrap().action, "login_failed");
}

#[tokio::test]
async fn repeated_failures_are_rate_limited() {
    let (_fake, router, _, _) = logged_in().await;
    for _ in 0..5 {
        let r = send(
            &router,
            post_json("/api/login", &json!({ "password": "guess-guess" })),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Even the right password is refused now.
    let r = send(
        &router,
        post_json("/api/login", &json!({ "password": PASSWORD })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r
        .headers()
        .get(header::RETRY_AFTER)
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    assert_eq!(json_body(r).await["error"], "rate_limited");
}

#[tokio::test]
async fn authenticated_routes_refuse_without_session() {
    let (_fake, router, cookie, _) = logged_in().await;
    for spec in api_routes().filter(|r| r.auth) {
        for c in [
            None,
            Some("eewgate_session=0123456789abcdef"),
            Some("other=1"),
        ] {
            let method = Method::from_bytes(spec.method.as_bytes()).unwrap();
            let mut req = Request::builder().method(method).uri(spec.path);
            if let Some(c) = c {
                req = req.header(header::COOKIE, c);
            }
            let r = send(&router, req.body(Body::empty()).unwrap()).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{} {c:?}", spec.path);
        }
    }
    // After logout the old cookie is worthless.
    let r = send(&router, get("/api/session", Some(&cookie))).await;
    let csrf = json_body(r).await["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let req = Request::post("/api/logout")
        .header(header::COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .body(Body::empty())
        .unwrap();
    let r = send(&router, req).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let r = send(&router, get("/api/status", Some(&cookie))).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn state_changing_routes_need_the_csrf_token() {
    let (fake, router, cookie, csrf) = logged_in().await;
    let audit_before = fake.state().audit.len();
    let changing: Vec<_> = api_routes()
        .filter(|r| r.auth && r.method != "GET")
        .collect();
    assert!(!changing.is_empty());
    for spec in &changing {
        for token in [None, Some("wrong"), Some(&csrf[..63])] {
            let method = Method::from_bytes(spec.method.as_bytes()).unwrap();
            let mut req = Request::builder()
                .method(method)
                .uri(spec.path)
                .header(header::COOKIE, &cookie);
            if let Some(t) = token {
                req = req.header("x-csrf-token", t);
            }
            let r = send(&router, req.body(Body::empty()).unwrap()).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{} {token:?}", spec.path);
            assert_eq!(json_body(r).await["error"], "csrf");
        }
    }
    assert_eq!(fake.state().audit.len(), audit_before, "nothing happened");
    // Still logged in.
    assert_eq!(
        send(&router, get("/api/session", Some(&cookie)))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn cross_origin_posts_are_refused() {
    let (_fake, router, _, _) = logged_in().await;
    let mut req = post_json("/api/login", &json!({ "password": PASSWORD }));
    req.headers_mut()
        .insert(header::HOST, "eewgate.local".parse().unwrap());
    req.headers_mut()
        .insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    assert_eq!(send(&router, req).await.status(), StatusCode::FORBIDDEN);
    // Same origin is fine.
    let mut req = post_json("/api/login", &json!({ "password": PASSWORD }));
    req.headers_mut()
        .insert(header::HOST, "eewgate.local".parse().unwrap());
    req.headers_mut()
        .insert(header::ORIGIN, "http://eewgate.local".parse().unwrap());
    assert_eq!(send(&router, req).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let (_fake, router, cookie, csrf) = logged_in().await;
    let big = "x".repeat(65 * 1024);
    // Declared length.
    let r = send(
        &router,
        post_json("/api/login", &json!({ "password": big })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Streamed without a length.
    let body = Body::from_stream(futures_util::stream::iter(
        (0..70).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024])),
    ));
    let req = Request::post("/api/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap();
    assert_eq!(
        send(&router, req).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // Before authentication, too.
    let req = Request::post("/api/logout")
        .header(header::COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .header(header::CONTENT_LENGTH, "1000000")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&router, req).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[tokio::test]
async fn status_snapshot() {
    let (fake, router, cookie, _) = logged_in().await;
    let r = send(&router, get("/api/status", Some(&cookie))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json_body(r).await, json!({ "ready": true, "links": {} }));
    fake.set_status(json!({ "ready": false }));
    let r = send(&router, get("/api/status", Some(&cookie))).await;
    assert_eq!(json_body(r).await, json!({ "ready": false }));
}

/// Read SSE frames until one carries `data:`; returns the data.
async fn next_event(body: &mut Body) -> String {
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
            assert!(buf.contains("event: status"), "{buf}");
            let line = buf.lines().find(|l| l.starts_with("data:")).unwrap();
            return line.trim_start_matches("data:").trim().to_owned();
        }
    }
}

#[tokio::test]
async fn sse_sends_snapshot_on_connect_and_on_change() {
    let (fake, router, cookie, _) = logged_in().await;
    let r = send(&router, get("/api/events", Some(&cookie))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers().get(header::CONTENT_TYPE).unwrap(),
        "text/event-stream"
    );
    let mut body = r.into_body();
    let first: Value = serde_json::from_str(&next_event(&mut body).await).unwrap();
    assert_eq!(first["ready"], true);
    fake.set_status(json!({ "ready": true, "alert": { "running": ["ev1"] } }));
    let second: Value = serde_json::from_str(&next_event(&mut body).await).unwrap();
    assert_eq!(second["alert"]["running"][0], "ev1");
}

#[tokio::test]
async fn sse_keep_alive_comments() {
    let fake = FakeAppliance::new(json!({}));
    let ui = WebUi::new(
        Arc::new(fake.clone()),
        Options {
            keep_alive: Duration::from_millis(50),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let router = ui.router();
    let code = ui.setup_code().unwrap();
    send(
        &router,
        post_json(
            "/api/setup",
            &json!({ "setup_code": code, "password": PASSWORD }),
        ),
    )
    .await;
    let (cookie, _) = login(&router, PASSWORD).await;
    let mut body = send(&router, get("/api/events", Some(&cookie)))
        .await
        .into_body();
    next_event(&mut body).await;
    let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    assert!(text.starts_with(": keep-alive"), "{text:?}");
}

#[tokio::test]
async fn history_paging_and_bad_params() {
    let (fake, router, cookie, _) = logged_in().await;
    {
        let mut s = fake.state();
        s.telegrams = (1..=7)
            .map(|i| json!({ "id": i, "event_id": if i % 2 == 0 { "even" } else { "odd" }, "day": format!("2026-01-0{i}") }))
            .collect();
        s.alerts = vec![json!({ "id": 1, "event_id": "odd", "day": "2026-01-01" })];
    }
    let page = |q: &str| get(&format!("/api/history/telegrams{q}"), Some(&cookie));
    let r = json_body(send(&router, page("?limit=3")).await).await;
    let ids: Vec<i64> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [7, 6, 5]);
    assert_eq!(r["next_before_id"], 5);
    let r = json_body(send(&router, page("?limit=3&before_id=5")).await).await;
    assert_eq!(r["items"][0]["id"], 4);
    let r = json_body(send(&router, page("?limit=3&before_id=2")).await).await;
    assert_eq!(r["items"].as_array().unwrap().len(), 1);
    assert_eq!(r["next_before_id"], Value::Null, "last page");
    let r = json_body(
        send(
            &router,
            page("?event_id=even&from=2026-01-03&to=2026-01-06"),
        )
        .await,
    )
    .await;
    let ids: Vec<i64> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [6, 4]);
    let q = fake.state().last_query.clone().unwrap();
    assert_eq!(q.event_id.as_deref(), Some("even"));
    assert_eq!(q.limit, 50);

    let r = json_body(send(&router, get("/api/history/alerts", Some(&cookie))).await).await;
    assert_eq!(r["items"][0]["id"], 1);

    for bad in [
        "?limit=0",
        "?limit=100000",
        "?before_id=abc",
        "?from=yesterday",
        "?from=2026-02-01&to=2026-01-01",
        "?event_id=%3Cscript%3E",
        "?order=asc",
    ] {
        let r = send(&router, page(bad)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body = json_body(r).await;
        assert_eq!(body["error"], "bad_request");
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn security_headers_on_every_response() {
    let (_fake, router, cookie, _) = logged_in().await;
    let mut reqs = vec![
        get("/", None),
        get("/app.js", None),
        get("/app.css", None),
        get("/api/status", Some(&cookie)),
        get("/api/status", None),
        get("/api/nothing", None),
        get("/nothing", None),
        post_json("/api/login", &json!({ "password": "x".repeat(70_000) })),
    ];
    reqs.push(post_json(
        "/api/login",
        &json!({ "password": "wrong-password" }),
    ));
    for req in reqs {
        let path = req.uri().path().to_owned();
        let r = send(&router, req).await;
        let h = r.headers();
        assert!(
            h.get("content-security-policy")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("default-src 'self'"),
            "{path}"
        );
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
        assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer");
        assert_eq!(h.get("x-frame-options").unwrap(), "DENY");
        if path.starts_with("/api/") {
            assert_eq!(h.get(header::CACHE_CONTROL).unwrap(), "no-store");
        }
    }
    let r = send(&router, get("/app.js", None)).await;
    assert_eq!(
        r.headers().get(header::CONTENT_TYPE).unwrap(),
        "text/javascript; charset=utf-8"
    );
}

#[tokio::test]
async fn static_pages_have_no_inline_script_or_style() {
    let (_fake, _ui, router) = fresh().await;
    let html = text_body(send(&router, get("/", None)).await).await;
    assert!(html.contains("<script src=\"/app.js\""));
    assert!(
        !html.contains("<script>"),
        "inline script would be blocked by the CSP"
    );
    assert!(
        !html.contains("style="),
        "inline style would be blocked by the CSP"
    );
    assert!(
        !html.contains("onclick"),
        "inline handlers would be blocked by the CSP"
    );
}

#[tokio::test]
async fn openapi_covers_every_route() {
    let (_fake, router, _, _) = logged_in().await;
    let r = send(&router, get("/api/openapi.json", None)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let doc = json_body(r).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for spec in api_routes() {
        let op = &paths
            .get(spec.path)
            .unwrap_or_else(|| panic!("{} missing", spec.path))[spec.method.to_lowercase()];
        assert!(op.is_object(), "{} {}", spec.method, spec.path);
        assert_eq!(
            op.get("security").is_some(),
            spec.auth,
            "security of {} {}",
            spec.method,
            spec.path
        );
    }
    // And nothing documented that is not served.
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            assert!(
                ROUTES
                    .iter()
                    .any(|r| r.path == path && r.method.eq_ignore_ascii_case(method)),
                "{method} {path} documented but not routed"
            );
        }
    }
}

#[tokio::test]
async fn no_secret_ever_leaves() {
    let (fake, ui, router) = fresh().await;
    let code = ui.setup_code().unwrap();
    let mut seen = String::new();
    let mut record = |r: String| seen.push_str(&r);
    let calls = [
        post_json(
            "/api/setup",
            &json!({ "setup_code": "WRONG-CODE1", "password": PASSWORD }),
        ),
        post_json(
            "/api/setup",
            &json!({ "setup_code": code, "password": "short" }),
        ),
        post_json(
            "/api/setup",
            &json!({ "setup_code": code, "password": PASSWORD }),
        ),
        post_json("/api/login", &json!({ "password": "wrong-password-1" })),
        post_json("/api/login", &json!({ "password": PASSWORD })),
    ];
    let mut cookie = String::new();
    for req in calls {
        let r = send(&router, req).await;
        if let Some(c) = r.headers().get(header::SET_COOKIE) {
            cookie = c.to_str().unwrap().split(';').next().unwrap().to_owned();
        }
        record(format!("{:?}", r.headers()));
        record(text_body(r).await);
    }
    for path in [
        "/api/session",
        "/api/status",
        "/api/setup/state",
        "/api/history/telegrams",
        "/api/history/alerts",
        "/api/openapi.json",
    ] {
        record(text_body(send(&router, get(path, Some(&cookie))).await).await);
    }
    let hash = fake.state().admin_hash.clone().unwrap();
    let audit = format!("{:?}", fake.state().audit);
    let session_id = cookie.trim_start_matches("eewgate_session=").to_owned();
    assert_eq!(session_id.len(), 64);
    for secret in [
        PASSWORD,
        "wrong-password-1",
        &hash,
        &code,
        &code.replace('-', ""),
    ] {
        assert!(!seen.contains(secret), "{secret} in a response");
        assert!(!audit.contains(secret), "{secret} in the audit trail");
    }
    assert!(
        !audit.contains(&session_id),
        "session id in the audit trail"
    );
    // The audit trail has every state-changing call.
    let actions: Vec<String> = fake
        .state()
        .audit
        .iter()
        .map(|a| a.action.clone())
        .collect();
    assert_eq!(actions, ["setup_failed", "setup", "login_failed", "login"]);
    assert!(fake.state().audit.iter().all(|a| !a.who.is_empty()));
}

#[tokio::test]
async fn fake_implements_the_seam() {
    fn assert_appliance<A: Appliance>(_: &A) {}
    assert_appliance(&FakeAppliance::default());
}

#[tokio::test]
async fn parallel_guessing_is_limited_too() {
    let (_fake, router, _, _) = logged_in().await;
    let tries = (0..12).map(|i| {
        let router = router.clone();
        tokio::spawn(async move {
            send(
                &router,
                post_json(
                    "/api/login",
                    &json!({ "password": format!("guess-number-{i}") }),
                ),
            )
            .await
            .status()
        })
    });
    let mut unauthorised = 0;
    let mut limited = 0;
    for t in tries {
        match t.await.unwrap() {
            StatusCode::UNAUTHORIZED => unauthorised += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("{other}"),
        }
    }
    assert_eq!(
        (unauthorised, limited),
        (5, 7),
        "only five passwords were checked"
    );
}

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

#[tokio::test]
async fn settings_are_read_checked_saved_and_audited() {
    let (fake, router, cookie, csrf) = logged_in().await;
    fake.state()
        .settings
        .insert("outputs.relay[0].min_class".into(), json!("4"));
    let r = send(&router, get("/api/settings", Some(&cookie))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let doc = json_body(r).await;
    assert_eq!(doc["revision"], "0");
    assert_eq!(doc["document"]["outputs.relay[0].min_class"], "4");

    // A check reports every problem with its path and saves nothing.
    let edit = json!({ "revision": "0", "changes": [
        { "path": "outputs.relay[0].min_class", "value": "invalid" },
        { "path": "unknown.key", "value": 1 },
        { "path": "site.lat", "value": 35.0 },
    ]});
    let r = send(
        &router,
        authed(Method::POST, "/api/settings/check", &cookie, &csrf, &edit),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let check = json_body(r).await;
    assert_eq!(check["valid"], false);
    let paths: Vec<&str> = check["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["outputs.relay[0].min_class", "unknown.key"]);
    let audits = fake.state().audit.len();

    // Saving the same edit is refused with 422, every problem listed, and audited.
    let r = send(
        &router,
        authed(Method::PUT, "/api/settings", &cookie, &csrf, &edit),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = json_body(r).await;
    assert_eq!(body["error"], "invalid_settings");
    assert_eq!(body["check"]["problems"].as_array().unwrap().len(), 2);
    assert_eq!(fake.state().settings_revision, 0, "nothing saved");
    assert_eq!(
        fake.state().audit.last().unwrap().action,
        "settings_refused"
    );
    assert_eq!(fake.state().audit.len(), audits + 1);

    // A valid save: the diff comes back and goes into the audit trail.
    let good = json!({ "revision": "0", "changes": [
        { "path": "outputs.relay[0].min_class", "value": "5-" },
    ]});
    let r = send(
        &router,
        authed(Method::PUT, "/api/settings", &cookie, &csrf, &good),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let saved = json_body(r).await;
    assert_eq!(saved["apply"], "now");
    assert_eq!(saved["revision"], "1");
    assert_eq!(saved["diff"][0]["old"], "\"4\"");
    assert_eq!(saved["diff"][0]["new"], "\"5-\"");
    {
        let s = fake.state();
        assert_eq!(s.settings["outputs.relay[0].min_class"], "5-");
        let entry = s.audit.last().unwrap();
        assert_eq!(entry.action, "settings_saved");
        assert_eq!(entry.who, "admin");
        assert!(
            entry
                .detail
                .contains("outputs.relay[0].min_class: \"4\" → \"5-\""),
            "{}",
            entry.detail
        );
    }

    // The same edit again, against the old revision: a conflict, not a silent overwrite.
    let r = send(
        &router,
        authed(Method::PUT, "/api/settings", &cookie, &csrf, &good),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body = json_body(r).await;
    assert_eq!(body["error"], "conflict");
    assert_eq!(body["check"]["revision"], "1");

    // During an alert the change waits for it to end.
    fake.state().alert_in_progress = true;
    let later = json!({ "revision": "1", "changes": [
        { "path": "outputs.audio.volume", "value": 60 },
    ]});
    let r = send(
        &router,
        authed(Method::PUT, "/api/settings", &cookie, &csrf, &later),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json_body(r).await["apply"], "after_alert");
}

#[tokio::test]
async fn settings_edits_must_be_one_kind_and_well_formed() {
    let (fake, router, cookie, csrf) = logged_in().await;
    let too_many: Vec<Value> = (0..501)
        .map(|i| json!({ "path": format!("k{i}"), "value": i }))
        .collect();
    for bad in [
        json!({}),
        json!({ "changes": [] }),
        json!({ "text": "a = 1", "changes": [{ "path": "a", "value": 2 }] }),
        json!({ "changes": too_many }),
        json!({ "changes": [{ "path": "a" }] }),
        json!({ "changes": [{ "path": "a", "value": 1, "extra": true }] }),
        json!({ "text": 5 }),
    ] {
        for (method, path) in [
            (Method::PUT, "/api/settings"),
            (Method::POST, "/api/settings/check"),
        ] {
            let r = send(&router, authed(method, path, &cookie, &csrf, &bad)).await;
            assert!(
                r.status() == StatusCode::BAD_REQUEST
                    || r.status() == StatusCode::UNPROCESSABLE_ENTITY,
                "{bad} → {}",
                r.status()
            );
        }
    }
    assert_eq!(fake.state().settings_revision, 0);
    // A whole-text edit is accepted as such.
    let r = send(
        &router,
        authed(
            Method::PUT,
            "/api/settings",
            &cookie,
            &csrf,
            &json!({ "text": "[site]\nlat = 35.0\n" }),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(fake.state().settings_revision, 1);
}

#[tokio::test]
async fn whatif_previews_the_draft_and_changes_nothing() {
    let (fake, router, cookie, csrf) = logged_in().await;
    let audits = fake.state().audit.len();
    let whatif = |body: Value| authed(Method::POST, "/api/settings/whatif", &cookie, &csrf, &body);
    let relay1_fires = |previews: &Value, scenario: &str| -> bool {
        let p = previews
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["scenario"] == scenario)
            .unwrap();
        p["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["output"] == "relay:1" && o["fires"] == true)
    };

    // An empty edit previews the settings in force (the fake's contact from 4).
    let r = send(&router, whatif(json!({}))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = json_body(r).await;
    assert_eq!(body["check"]["valid"], true);
    let previews = &body["previews"];
    assert_eq!(previews.as_array().unwrap().len(), 2);
    assert!(relay1_fires(previews, "distant_m8_offshore"));

    // The draft is what is previewed: a threshold above the distant quake's class
    // takes the contact out of it, not out of the nearby one.
    let draft = json!({ "revision": "0", "changes": [
        { "path": "outputs.relay[0].min_class", "value": "5-" },
    ]});
    let r = send(&router, whatif(draft)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = json_body(r).await;
    assert!(!relay1_fires(&body["previews"], "distant_m8_offshore"));
    assert!(relay1_fires(&body["previews"], "nearby_m7_inland"));
    assert_eq!(
        body["check"]["diff"][0]["path"],
        "outputs.relay[0].min_class"
    );

    // A draft with a problem: the problems, no preview.
    let bad = json!({ "changes": [{ "path": "outputs.relay[0].min_class", "value": "invalid" }] });
    let body = json_body(send(&router, whatif(bad)).await).await;
    assert_eq!(body["check"]["valid"], false);
    assert_eq!(
        body["check"]["problems"][0]["path"],
        "outputs.relay[0].min_class"
    );
    assert_eq!(body["previews"], json!([]));

    // Malformed or mixed edits are refused like a check's.
    for bad in [
        json!({ "text": "a = 1", "changes": [{ "path": "a", "value": 2 }] }),
        json!({ "changes": [{ "path": "a" }] }),
        json!({ "text": 5 }),
    ] {
        let status = send(&router, whatif(bad.clone())).await.status();
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{bad} → {status}"
        );
    }

    // Nothing was saved or audited.
    let s = fake.state();
    assert_eq!(s.settings_revision, 0);
    assert!(s.settings.is_empty());
    assert_eq!(s.audit.len(), audits);
}

#[tokio::test]
async fn drills_need_confirmation_and_are_audited() {
    let (fake, router, cookie, csrf) = logged_in().await;
    let r = send(&router, get("/api/drills", Some(&cookie))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let drills = json_body(r).await;
    assert_eq!(drills["recorded"][0]["id"], "bungo-2024");

    // Without the confirmation nothing happens.
    let r = send(
        &router,
        authed(
            Method::POST,
            "/api/drill",
            &cookie,
            &csrf,
            &json!({ "recorded": "bungo-2024" }),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(r).await["error"], "confirm_required");
    for bad in [
        json!({ "confirm": true }),
        json!({ "confirm": true, "recorded": "bungo-2024", "class": "5-" }),
        json!({ "confirm": true, "recorded": "nowhere" }),
        json!({ "confirm": true, "recorded": "bungo-2024", "extra": 1 }),
    ] {
        let r = send(
            &router,
            authed(Method::POST, "/api/drill", &cookie, &csrf, &bad),
        )
        .await;
        // 422: a body of the wrong shape (axum's JSON data error); 400: a wrong request.
        assert!(
            r.status() == StatusCode::BAD_REQUEST || r.status() == StatusCode::UNPROCESSABLE_ENTITY,
            "{bad} → {}",
            r.status()
        );
    }
    assert!(fake.state().operations.is_empty());

    let r = send(
        &router,
        authed(
            Method::POST,
            "/api/drill",
            &cookie,
            &csrf,
            &json!({ "confirm": true, "recorded": "bungo-2024" }),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = send(
        &router,
        authed(
            Method::POST,
            "/api/drill",
            &cookie,
            &csrf,
            &json!({ "confirm": true, "class": "5-", "seconds": 20, "warning": true }),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    {
        let s = fake.state();
        assert_eq!(s.operations.len(), 2);
        let actions: Vec<&str> = s.audit.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(
            actions.iter().filter(|a| **a == "drill_started").count(),
            2,
            "{actions:?}"
        );
        assert!(s.audit.iter().any(|a| {
            a.detail
                .contains("synthetic drill, class 5-, S wave in 20 s, warning")
        }));
    }

    // During a real alert: refused (409), and the refusal is audited too.
    fake.state().alert_in_progress = true;
    let r = send(
        &router,
        authed(
            Method::POST,
            "/api/drill",
            &cookie,
            &csrf,
            &json!({ "confirm": true, "recorded": "bungo-2024" }),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(json_body(r).await["error"], "alert_in_progress");
    assert_eq!(
        fake.state().audit.last().unwrap().action,
        "drill_started_refused"
    );
}

#[tokio::test]
async fn reset_and_silence_are_operations_and_audited() {
    use eewgate_webui::Operation;
    let (fake, router, cookie, csrf) = logged_in().await;
    for (path, action) in [
        ("/api/alert/silence", "alert_silenced"),
        ("/api/alert/reset", "alert_reset"),
    ] {
        let req = Request::post(path)
            .header(header::COOKIE, &cookie)
            .header("x-csrf-token", &csrf)
            .body(Body::empty())
            .unwrap();
        let r = send(&router, req).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(fake.state().audit.last().unwrap().action, action);
    }
    assert_eq!(
        fake.state().operations,
        [Operation::Silence, Operation::Reset]
    );
}

#[tokio::test]
async fn system_info_log_download_and_settings_export() {
    let (fake, router, cookie, _) = logged_in().await;
    fake.state().logs = "2026-01-01T00:00:00Z INFO eewgate started\n".into();
    fake.state().settings.insert("site.lat".into(), json!(35.0));
    let r = send(&router, get("/api/system", Some(&cookie))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let sys = json_body(r).await;
    assert!(
        sys["version"].is_string() && sys["uptime_s"].is_number(),
        "{sys}"
    );

    let r = send(&router, get("/api/system/logs", Some(&cookie))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let disposition = r.headers()[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"eewgate-log-")
            && disposition.ends_with(".txt\""),
        "{disposition}"
    );
    assert!(
        r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(
        text_body(r).await,
        "2026-01-01T00:00:00Z INFO eewgate started\n"
    );
    assert_eq!(fake.state().audit.last().unwrap().action, "logs_downloaded");

    let r = send(&router, get("/api/system/config", Some(&cookie))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let disposition = r.headers()[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.contains("eewgate-settings-") && disposition.ends_with(".toml\""),
        "{disposition}"
    );
}

fn upload(path: &str, cookie: &str, csrf: &str, body: Vec<u8>) -> Request<Body> {
    Request::post(path)
        .header(header::COOKIE, cookie)
        .header("x-csrf-token", csrf)
        .header(header::CONTENT_TYPE, "audio/wav")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn chime_uploads_refuse_paths_oversize_and_non_wav() {
    let (fake, router, cookie, csrf) = logged_in().await;
    let wav = b"RIFF....WAVEfmt ".to_vec();
    for bad in [
        "..%2Fchime.wav",
        "%2Fetc%2Fpasswd",
        "a%2Fb.wav",
        ".hidden.wav",
        "chime..wav",
        "chime.txt",
        "%2E%2E%2Fx.wav",
    ] {
        let r = send(
            &router,
            upload(
                &format!("/api/uploads/chime?name={bad}"),
                &cookie,
                &csrf,
                wav.clone(),
            ),
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(json_body(r).await["error"], "invalid_name", "{bad}");
    }
    let r = send(
        &router,
        upload("/api/uploads/chime", &cookie, &csrf, wav.clone()),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "no name");
    // Larger than the upload limit (8 MiB), but a normal size is fine past the 64 KiB
    // limit of other requests.
    let r = send(
        &router,
        upload(
            "/api/uploads/chime?name=big.wav",
            &cookie,
            &csrf,
            vec![0; 8 * 1024 * 1024 + 1],
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let mut medium = b"RIFF".to_vec();
    medium.resize(200 * 1024, 0);
    let r = send(
        &router,
        upload("/api/uploads/chime?name=lobby.wav", &cookie, &csrf, medium),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        json_body(r).await["path"],
        "/var/lib/eewgate/chimes/lobby.wav"
    );
    // Not a WAV: refused by the appliance, audited.
    let r = send(
        &router,
        upload(
            "/api/uploads/chime?name=x.wav",
            &cookie,
            &csrf,
            b"MZ\x90".to_vec(),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        fake.state().audit.last().unwrap().action,
        "chime_upload_refused"
    );
    // Without the CSRF token nothing is stored.
    let req = Request::post("/api/uploads/chime?name=y.wav")
        .header(header::COOKIE, &cookie)
        .body(Body::from(wav))
        .unwrap();
    assert_eq!(send(&router, req).await.status(), StatusCode::FORBIDDEN);
    let s = fake.state();
    assert_eq!(s.uploads, [("lobby.wav".to_owned(), 200 * 1024)]);
    assert!(
        s.audit
            .iter()
            .any(|a| a.action == "chime_uploaded" && a.detail.contains("lobby.wav"))
    );
}

#[tokio::test]
async fn certificate_uploads_are_checked_and_never_echo_the_key() {
    let (fake, router, cookie, csrf) = logged_in().await;
    let key = "-----BEGIN PRIVATE KEY-----\nsecret-key-material\n-----END PRIVATE KEY-----\n";
    let body = json!({ "certificate": "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n", "key": key });
    let r = send(
        &router,
        authed(
            Method::POST,
            "/api/uploads/certificate",
            &cookie,
            &csrf,
            &body,
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = text_body(r).await;
    assert!(!text.contains("secret-key-material"), "{text}");
    let bad = json!({ "certificate": "nope", "key": "nope" });
    let r = send(
        &router,
        authed(
            Method::POST,
            "/api/uploads/certificate",
            &cookie,
            &csrf,
            &bad,
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let s = fake.state();
    assert!(
        s.audit
            .iter()
            .all(|a| !a.detail.contains("secret-key-material"))
    );
    let actions: Vec<&str> = s.audit.iter().map(|a| a.action.as_str()).collect();
    assert!(
        actions.contains(&"certificate_uploaded")
            && actions.contains(&"certificate_upload_refused")
    );
}
