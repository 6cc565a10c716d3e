//! Helpers the router test files share: a fresh UI over the fake appliance, setup and
//! login, requests and bodies.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code; each test file uses part of it"
)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use eewgate_webui::fake::FakeAppliance;
use eewgate_webui::{Options, WebUi};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

pub const PASSWORD: &str = "tsunami-ready-2026";

pub async fn fresh() -> (FakeAppliance, WebUi<FakeAppliance>, Router) {
    let fake = FakeAppliance::new(json!({ "ready": true, "links": {} }));
    let ui = WebUi::new(Arc::new(fake.clone()), Options::default())
        .await
        .unwrap();
    let router = ui.router();
    (fake, ui, router)
}

/// Set up and log in: `(fake, router, cookie, csrf)`.
pub async fn logged_in() -> (FakeAppliance, Router, String, String) {
    let (fake, ui, router) = fresh().await;
    let code = ui.setup_code().unwrap();
    let r = send(
        &router,
        post_json(
            "/api/setup",
            &json!({ "setup_code": code, "password": PASSWORD }),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (cookie, csrf) = login(&router, PASSWORD).await;
    (fake, router, cookie, csrf)
}

pub async fn login(router: &Router, password: &str) -> (String, String) {
    let r = send(
        router,
        post_json("/api/login", &json!({ "password": password })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let set_cookie = r
        .headers()
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set_cookie.contains("HttpOnly"));
    assert!(set_cookie.contains("SameSite=Strict"));
    assert!(set_cookie.contains("Path=/"));
    assert!(!set_cookie.contains("Secure"), "no TLS in these tests");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let body = json_body(r).await;
    (cookie, body["csrf_token"].as_str().unwrap().to_owned())
}

pub fn post_json(path: &str, body: &Value) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

pub fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap()
}

pub async fn send(router: &Router, req: Request<Body>) -> Response<Body> {
    router.clone().oneshot(req).await.unwrap()
}

pub async fn text_body(r: Response<Body>) -> String {
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

pub async fn json_body(r: Response<Body>) -> Value {
    serde_json::from_str(&text_body(r).await).unwrap()
}
