//! The router: routes, middleware (headers, body limit, origin check, setup gate), the
//! session extractor and the handlers.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post, put};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::appliance::{
    Appliance, AuditEntry, HistoryQuery, SettingsCheck, SettingsEdit, SettingsWhatIf,
};
use crate::auth::{self, RateLimiter, SessionStore};
use crate::{CSRF_HEADER, Options, SESSION_COOKIE};

/// One route of the API or a static asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path.
    pub path: &'static str,
    /// Needs a session (and, when state-changing, the CSRF token).
    pub auth: bool,
    /// Served while first-boot setup is pending.
    pub during_setup: bool,
}

const fn route(
    method: &'static str,
    path: &'static str,
    auth: bool,
    during_setup: bool,
) -> RouteSpec {
    RouteSpec {
        method,
        path,
        auth,
        during_setup,
    }
}

/// Every route the router serves; the router is built from this table, and the OpenAPI
/// document is tested against it.
pub const ROUTES: &[RouteSpec] = &[
    route("GET", "/", false, true),
    route("GET", "/index.html", false, true),
    route("GET", "/app.js", false, true),
    route("GET", "/settings.js", false, true),
    route("GET", "/history.js", false, true),
    route("GET", "/tests.js", false, true),
    route("GET", "/system.js", false, true),
    route("GET", "/drill-report.js", false, true),
    route("GET", "/favicon.svg", false, true),
    route("GET", "/favicon.ico", false, true),
    route("GET", "/app.css", false, true),
    route("GET", "/api/setup/state", false, true),
    route("POST", "/api/setup", false, true),
    route("POST", "/api/login", false, false),
    route("POST", "/api/logout", true, false),
    route("GET", "/api/session", true, false),
    route("GET", "/api/status", true, false),
    route("GET", "/api/events", true, false),
    route("GET", "/api/history/telegrams", true, false),
    route("GET", "/api/history/alerts", true, false),
    route("GET", "/api/history/telegrams/{id}/raw", true, false),
    route("GET", "/api/history/telegrams/export", true, false),
    route("GET", "/api/history/alerts/export", true, false),
    route("GET", "/api/settings", true, false),
    route("POST", "/api/settings/check", true, false),
    route("POST", "/api/settings/whatif", true, false),
    route("PUT", "/api/settings", true, false),
    route("POST", "/api/uploads/chime", true, false),
    route("POST", "/api/uploads/certificate", true, false),
    route("GET", "/api/system", true, false),
    route("GET", "/api/system/logs", true, false),
    route("GET", "/api/system/config", true, false),
    route("GET", "/api/drills", true, false),
    route("GET", "/api/drills/reports", true, false),
    route("GET", "/api/drills/reports/{event_id}", true, false),
    route("POST", "/api/drill", true, false),
    route("GET", "/api/selftests", true, false),
    route("POST", "/api/selftest", true, false),
    route("POST", "/api/selftest/confirm", true, false),
    route("POST", "/api/alert/reset", true, false),
    route("POST", "/api/alert/silence", true, false),
    route("GET", "/api/openapi.json", false, false),
];

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct Shared<A> {
    pub(crate) appliance: Arc<A>,
    options: Options,
    /// `Some` while first-boot setup is pending.
    setup_code: Mutex<Option<String>>,
    /// Serialises setup attempts.
    setup_lock: tokio::sync::Mutex<()>,
    /// Woken when setup completes (the daemon then removes the code from the console).
    setup_done: tokio::sync::Notify,
    sessions: Mutex<SessionStore>,
    limiter: Mutex<RateLimiter>,
    /// One Argon2 computation at a time (19 MiB each): a flood of parallel logins must
    /// not exhaust a Pi's memory, and the rate limit is checked again once a turn comes.
    hashing: tokio::sync::Semaphore,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here leaves the data half-changed on a panic.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<A: Appliance> Shared<A> {
    pub(crate) fn new(appliance: Arc<A>, options: Options, setup_code: Option<String>) -> Self {
        let sessions = SessionStore::new(options.session_idle, options.max_sessions);
        Self {
            appliance,
            options,
            setup_code: Mutex::new(setup_code),
            setup_lock: tokio::sync::Mutex::new(()),
            setup_done: tokio::sync::Notify::new(),
            sessions: Mutex::new(sessions),
            limiter: Mutex::new(RateLimiter::default()),
            hashing: tokio::sync::Semaphore::new(1),
        }
    }

    pub(crate) fn setup_code(&self) -> Option<String> {
        lock(&self.setup_code).clone()
    }

    fn setup_pending(&self) -> bool {
        lock(&self.setup_code).is_some()
    }

    /// Returns once no setup is pending (at once if none was).
    pub(crate) async fn setup_finished(&self) {
        loop {
            // Registered before the check, so a completion in between is not missed.
            let done = self.setup_done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if !self.setup_pending() {
                return;
            }
            done.await;
        }
    }

    async fn audit(&self, action: &str, who: &str, detail: String) {
        let entry = AuditEntry {
            at: DateTime::<Utc>::from(std::time::SystemTime::now()),
            who: who.to_owned(),
            action: action.to_owned(),
            detail,
        };
        tracing::info!(who = %entry.who, action = %entry.action, detail = %entry.detail, "audit");
        if let Err(e) = self.appliance.audit(entry).await {
            // The action stands: a storage fault must not lock the administrator out; it is
            // on the dashboard as a storage fault.
            tracing::error!(error = %e, action, "audit entry not stored");
        }
    }
}

pub(crate) type AppState<A> = Arc<Shared<A>>;

/// An error answered as `{"error": code, "message": …}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "web UI request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the appliance could not complete the request; see the log",
        )
    }

    fn setup_required() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "setup_required",
            "set the administrator password first (POST /api/setup with the setup code \
             printed on the console)",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(json!({ "error": self.code, "message": self.message })),
        )
            .into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = r.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            _ => "bad_request",
        };
        Self::new(status, code, r.body_text())
    }
}

/// The router over `shared`.
pub(crate) fn router<A: Appliance>(shared: AppState<A>) -> Router {
    let limit = shared.options.body_limit;
    let upload_limit = shared.options.upload_limit;
    let mut r: Router<AppState<A>> = Router::new();
    for spec in ROUTES {
        let mut m = method_router::<A>(spec.method, spec.path);
        if spec.path.starts_with("/api/uploads/") {
            // The route's own limit wins over the router-wide one below.
            m = m.layer(DefaultBodyLimit::max(upload_limit));
        }
        r = r.route(spec.path, m);
    }
    r.fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            setup_gate::<A>,
        ))
        .layer(middleware::from_fn(origin_check))
        .layer(middleware::from_fn_with_state(
            (limit, shared.options.upload_limit),
            body_limit,
        ))
        .layer(middleware::from_fn(security_headers))
        .with_state(shared)
}

fn method_router<A: Appliance>(method: &str, path: &str) -> MethodRouter<AppState<A>> {
    match (method, path) {
        ("GET", "/api/settings") => return get(settings_get::<A>),
        ("PUT", "/api/settings") => return put(settings_save::<A>),
        ("POST", "/api/settings/check") => return post(settings_check::<A>),
        ("POST", "/api/settings/whatif") => return post(settings_whatif::<A>),
        ("POST", "/api/uploads/chime") => return post(upload_chime::<A>),
        ("POST", "/api/uploads/certificate") => return post(upload_certificate::<A>),
        ("GET", "/api/system") => return get(system::<A>),
        ("GET", "/api/system/logs") => return get(system_logs::<A>),
        ("GET", "/api/system/config") => return get(system_config::<A>),
        ("GET", "/api/drills") => return get(drills::<A>),
        ("GET", "/api/drills/reports") => return get(crate::drill_reports::list::<A>),
        ("GET", "/api/drills/reports/{event_id}") => return get(crate::drill_reports::one::<A>),
        ("POST", "/api/drill") => return post(drill::<A>),
        ("GET", "/api/selftests") => return get(self_tests::<A>),
        ("POST", "/api/selftest") => return post(self_test::<A>),
        ("POST", "/api/selftest/confirm") => return post(confirm_test::<A>),
        ("POST", "/api/alert/reset" | "/api/alert/silence") => {
            return post(alert_command::<A>);
        }
        _ => {}
    }
    match path {
        "/api/setup/state" => get(setup_state::<A>),
        "/api/setup" => post(setup::<A>),
        "/api/login" => post(login::<A>),
        "/api/logout" => post(logout::<A>),
        "/api/session" => get(session::<A>),
        "/api/status" => get(status::<A>),
        "/api/events" => get(events::<A>),
        "/api/history/telegrams" => get(crate::history::telegrams::<A>),
        "/api/history/alerts" => get(crate::history::alerts::<A>),
        "/api/history/telegrams/{id}/raw" => get(crate::history::telegram_raw::<A>),
        "/api/history/telegrams/export" => get(crate::history::telegrams_export::<A>),
        "/api/history/alerts/export" => get(crate::history::alerts_export::<A>),
        "/api/openapi.json" => get(openapi),
        _ => get(asset),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such page")
}

async fn asset(req: Request) -> Response {
    match crate::assets::get(req.uri().path()) {
        Some((ct, body)) => (
            [
                (header::CONTENT_TYPE, ct),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
        None => not_found().await.into_response(),
    }
}

async fn openapi() -> Json<serde_json::Value> {
    Json(crate::openapi::document())
}

// ---------------------------------------------------------------- middleware

async fn security_headers(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if api {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

async fn body_limit(
    State((limit, upload_limit)): State<(usize, usize)>,
    req: Request,
    next: Next,
) -> Response {
    let limit = if req.uri().path().starts_with("/api/uploads/") {
        upload_limit
    } else {
        limit
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("request bodies are limited to {limit} bytes"),
        )
        .into_response();
    }
    next.run(req).await
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A state-changing request from another origin is refused, whatever it carries.
async fn origin_check(req: Request, next: Next) -> Response {
    if !is_safe(req.method())
        && let Some(origin) = req.headers().get(header::ORIGIN)
    {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest);
        if host.is_none() || origin_host != host {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "cross_origin",
                "cross-origin requests are refused",
            )
            .into_response();
        }
    }
    next.run(req).await
}

async fn setup_gate<A: Appliance>(
    State(shared): State<AppState<A>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if path.starts_with("/api/") && shared.setup_pending() {
        let allowed = ROUTES.iter().any(|r| r.during_setup && r.path == path);
        if !allowed {
            return ApiError::setup_required().into_response();
        }
    }
    next.run(req).await
}

// ---------------------------------------------------------------- extractors

/// The client's address, when the server was started with `ConnectInfo`.
#[derive(Debug, Clone, Copy)]
struct ClientAddr(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

impl ClientAddr {
    fn describe(self) -> String {
        self.0
            .map_or_else(|| "client unknown".to_owned(), |ip| format!("from {ip}"))
    }
}

/// The session cookie's value.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// A logged-in administrator; for state-changing methods, with a valid CSRF token.
#[derive(Debug)]
pub(crate) struct Admin {
    session: String,
    csrf: String,
}

impl<A: Appliance> FromRequestParts<AppState<A>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &AppState<A>,
    ) -> Result<Self, Self::Rejection> {
        let unauthorised =
            || ApiError::new(StatusCode::UNAUTHORIZED, "unauthorised", "log in first");
        let id = session_cookie(&parts.headers).ok_or_else(unauthorised)?;
        let info = lock(&shared.sessions)
            .touch(&id, Instant::now())
            .ok_or_else(unauthorised)?;
        if !is_safe(&parts.method) {
            let sent = parts
                .headers
                .get(HeaderName::from_static(CSRF_HEADER))
                .map(HeaderValue::as_bytes)
                .unwrap_or_default();
            if !auth::constant_time_eq(sent, info.csrf.as_bytes()) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "missing or wrong X-CSRF-Token",
                ));
            }
        }
        Ok(Self {
            session: id,
            csrf: info.csrf,
        })
    }
}

// ---------------------------------------------------------------- setup and login

async fn setup_state<A: Appliance>(State(shared): State<AppState<A>>) -> Json<serde_json::Value> {
    Json(json!({
        "setup_required": shared.setup_pending(),
        "min_password_chars": auth::MIN_PASSWORD_CHARS,
    }))
}

#[derive(Deserialize)]
struct SetupBody {
    setup_code: String,
    password: String,
}

// Not `Debug`: it holds the password.
#[derive(Deserialize)]
struct LoginBody {
    password: String,
}

fn rate_limited<A>(shared: &Shared<A>, client: ClientAddr) -> Result<(), ApiError> {
    match lock(&shared.limiter).check(client.0, Instant::now()) {
        None => Ok(()),
        Some(wait) => {
            let secs = wait
                .as_secs()
                .saturating_add(u64::from(wait.subsec_nanos() > 0));
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many failed attempts; try again in {secs} s"),
            );
            e.retry_after = Some(secs.max(1));
            Err(e)
        }
    }
}

async fn setup<A: Appliance>(
    State(shared): State<AppState<A>>,
    client: ClientAddr,
    body: Result<Json<SetupBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body?;
    let _one_at_a_time = shared.setup_lock.lock().await;
    let Some(code) = shared.setup_code() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_set_up",
            "the administrator password is already set",
        ));
    };
    rate_limited(&shared, client)?;
    let typed = auth::normalise_setup_code(&body.setup_code);
    if !auth::constant_time_eq(
        typed.as_bytes(),
        auth::normalise_setup_code(&code).as_bytes(),
    ) {
        lock(&shared.limiter).failure(client.0, Instant::now());
        shared
            .audit(
                "setup_failed",
                "setup",
                format!("wrong setup code {}", client.describe()),
            )
            .await;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_setup_code",
            "the setup code is wrong (it is printed on the appliance's console)",
        ));
    }
    if let Some(problem) = auth::password_problem(&body.password) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "weak_password",
            problem,
        ));
    }
    let _turn = shared.hashing.acquire().await.map_err(ApiError::internal)?;
    let password = body.password;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    shared
        .appliance
        .set_admin_hash(hash)
        .await
        .map_err(ApiError::internal)?;
    *lock(&shared.setup_code) = None;
    shared.setup_done.notify_waiters();
    shared
        .audit(
            "setup",
            "setup",
            format!("administrator password set {}", client.describe()),
        )
        .await;
    Ok(Json(json!({ "ok": true })))
}

async fn login<A: Appliance>(
    State(shared): State<AppState<A>>,
    client: ClientAddr,
    body: Result<Json<LoginBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    rate_limited(&shared, client)?;
    let _turn = shared.hashing.acquire().await.map_err(ApiError::internal)?;
    // Failures recorded while this request waited count too.
    rate_limited(&shared, client)?;
    let hash = shared
        .appliance
        .get_admin_hash()
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::setup_required)?;
    let password = body.password;
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .map_err(ApiError::internal)?;
    if !ok {
        lock(&shared.limiter).failure(client.0, Instant::now());
        shared
            .audit(
                "login_failed",
                "admin",
                format!("wrong password {}", client.describe()),
            )
            .await;
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "wrong password",
        ));
    }
    lock(&shared.limiter).success(client.0);
    let (id, csrf) = lock(&shared.sessions)
        .create(Instant::now())
        .map_err(ApiError::internal)?;
    shared
        .audit("login", "admin", format!("logged in {}", client.describe()))
        .await;
    let secure = if shared.options.tls { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/{secure}");
    let cookie = HeaderValue::from_str(&cookie).map_err(ApiError::internal)?;
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(json!({ "user": "admin", "csrf_token": csrf })),
    )
        .into_response())
}

async fn logout<A: Appliance>(
    State(shared): State<AppState<A>>,
    client: ClientAddr,
    admin: Admin,
) -> Response {
    lock(&shared.sessions).remove(&admin.session);
    shared
        .audit(
            "logout",
            "admin",
            format!("logged out {}", client.describe()),
        )
        .await;
    let secure = if shared.options.tls { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}");
    match HeaderValue::from_str(&cookie) {
        Ok(c) => ([(header::SET_COOKIE, c)], Json(json!({ "ok": true }))).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

async fn session<A: Appliance>(
    State(shared): State<AppState<A>>,
    admin: Admin,
) -> Json<serde_json::Value> {
    Json(json!({
        "user": "admin",
        "csrf_token": admin.csrf,
        "idle_timeout_s": shared.options.session_idle.as_secs(),
    }))
}

// ---------------------------------------------------------------- live status

async fn status<A: Appliance>(
    State(shared): State<AppState<A>>,
    _admin: Admin,
) -> Json<serde_json::Value> {
    Json(shared.appliance.status().borrow().clone())
}

async fn events<A: Appliance>(
    State(shared): State<AppState<A>>,
    _admin: Admin,
) -> impl IntoResponse {
    let rx = shared.appliance.status();
    let stream = futures_util::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first && rx.changed().await.is_err() {
            return None;
        }
        // Compact JSON has no raw line breaks, so it is one `data:` line.
        let data = rx.borrow_and_update().to_string();
        let event = Event::default().event("status").data(data);
        Some((Ok::<_, Infallible>(event), (rx, false)))
    });
    Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(shared.options.keep_alive)
            .text("keep-alive"),
    )
}

// ---------------------------------------------------------------- history

/// A page's `limit`: 1 to `max`.
pub(crate) fn parse_limit(v: &str, max: u32) -> Result<u32, String> {
    v.parse::<u32>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| format!("limit must be a whole number from 1 to {max}"))
}

/// A page's `before_id`: a positive id.
pub(crate) fn parse_before_id(v: &str) -> Result<i64, String> {
    v.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| "before_id must be a positive whole number".to_owned())
}

/// Map and validate the common history query parameters (the handlers, and the
/// parameters of one table, are in `history.rs`).
pub(crate) fn parse_history_query(
    params: &BTreeMap<String, String>,
) -> Result<HistoryQuery, String> {
    let mut q = HistoryQuery::default();
    for (k, v) in params {
        match k.as_str() {
            "limit" => q.limit = parse_limit(v, HistoryQuery::MAX_LIMIT)?,
            "before_id" => q.before_id = Some(parse_before_id(v)?),
            "event_id" => {
                let ok = (1..=64).contains(&v.len())
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    return Err("event_id must be 1 to 64 letters, digits, '-' or '_'".to_owned());
                }
                q.event_id = Some(v.clone());
            }
            "from" | "to" => {
                let d = NaiveDate::parse_from_str(v, "%Y-%m-%d")
                    .map_err(|_| format!("{k} must be a date like 2026-01-31"))?;
                if k == "from" {
                    q.from = Some(d);
                } else {
                    q.to = Some(d);
                }
            }
            other => {
                return Err(format!(
                    "unknown parameter {other:?} (use limit, before_id, event_id, from, to)"
                ));
            }
        }
    }
    if let (Some(f), Some(t)) = (q.from, q.to)
        && f > t
    {
        return Err("from must not be after to".to_owned());
    }
    Ok(q)
}

// ---------------------------------------------------------------- settings

async fn settings_get<A: Appliance>(
    State(shared): State<AppState<A>>,
    _admin: Admin,
) -> Result<Json<serde_json::Value>, ApiError> {
    shared
        .appliance
        .settings()
        .await
        .map(Json)
        .map_err(ApiError::internal)
}

fn edit_body(body: Result<Json<SettingsEdit>, JsonRejection>) -> Result<SettingsEdit, ApiError> {
    let Json(edit) = body?;
    match (&edit.text, edit.changes.is_empty()) {
        (Some(_), false) => Err(ApiError::bad_request(
            "send either key changes or the whole text, not both",
        )),
        (None, true) => Err(ApiError::bad_request(
            "nothing to change: send key changes or the whole text",
        )),
        _ if edit.changes.len() > SettingsEdit::MAX_CHANGES => Err(ApiError::bad_request(format!(
            "at most {} key changes at once",
            SettingsEdit::MAX_CHANGES
        ))),
        _ => Ok(edit),
    }
}

async fn settings_check<A: Appliance>(
    State(shared): State<AppState<A>>,
    _admin: Admin,
    body: Result<Json<SettingsEdit>, JsonRejection>,
) -> Result<Json<SettingsCheck>, ApiError> {
    let edit = edit_body(body)?;
    shared
        .appliance
        .check_settings(edit)
        .await
        .map(Json)
        .map_err(ApiError::internal)
}

/// The what-if preview of an edit. Like a check it changes nothing, so it is not
/// audited; unlike a check an empty edit is allowed: it previews the settings in force
/// (the page shows them on opening and after a save).
async fn settings_whatif<A: Appliance>(
    State(shared): State<AppState<A>>,
    _admin: Admin,
    body: Result<Json<SettingsEdit>, JsonRejection>,
) -> Result<Json<SettingsWhatIf>, ApiError> {
    let Json(edit) = body?;
    if edit.text.is_some() && !edit.changes.is_empty() {
        return Err(ApiError::bad_request(
            "send either key changes or the whole text, not both",
        ));
    }
    if edit.changes.len() > SettingsEdit::MAX_CHANGES {
        return Err(ApiError::bad_request(format!(
            "at most {} key changes at once",
            SettingsEdit::MAX_CHANGES
        )));
    }
    shared
        .appliance
        .whatif_settings(edit)
        .await
        .map(Json)
        .map_err(ApiError::internal)
}

/// The diff for the audit trail: one `path: old → new` per key, bounded.
fn audit_diff(diff: &[crate::SettingsDiff]) -> String {
    const MAX: usize = 4000;
    let mut out = String::new();
    for d in diff {
        let line = format!(
            "{}: {} → {}",
            d.path,
            d.old.as_deref().unwrap_or("(default)"),
            d.new.as_deref().unwrap_or("(default)")
        );
        if out.len() + line.len() + 2 > MAX {
            out.push_str("; …");
            break;
        }
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(&line);
    }
    out
}

async fn settings_save<A: Appliance>(
    State(shared): State<AppState<A>>,
    client: ClientAddr,
    _admin: Admin,
    body: Result<Json<SettingsEdit>, JsonRejection>,
) -> Result<Response, ApiError> {
    let edit = edit_body(body)?;
    let outcome = shared
        .appliance
        .save_settings(edit)
        .await
        .map_err(ApiError::internal)?;
    match outcome {
        Ok(saved) => {
            shared
                .audit(
                    "settings_saved",
                    "admin",
                    format!(
                        "{} change(s) {}, applied {}: {}",
                        saved.diff.len(),
                        client.describe(),
                        saved.apply,
                        audit_diff(&saved.diff)
                    ),
                )
                .await;
            Ok(Json(saved).into_response())
        }
        Err(check) => {
            let (status, code, message) = if check.conflict {
                (
                    StatusCode::CONFLICT,
                    "conflict",
                    "the settings were changed meanwhile; reload them and make the change again",
                )
            } else {
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_settings",
                    "the settings were not saved: see the problems beside each field",
                )
            };
            shared
                .audit(
                    "settings_refused",
                    "admin",
                    format!(
                        "{code}: {} problem(s) {}",
                        check.problems.len(),
                        client.describe()
                    ),
                )
                .await;
            Ok((
                status,
                Json(json!({ "error": code, "message": message, "check": check })),
            )
                .into_response())
        }
    }
}

// ---------------------------------------------------------------- uploads

/// An uploaded file's name: a plain name of letters, digits, `.`, `-` and `_` (no path,
/// no `..`, not hidden) ending in `ext`, at most 64 characters. Anything else is refused,
/// never cleaned up into something else.
pub(crate) fn upload_name(name: &str, ext: &str) -> Result<String, String> {
    let plain = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && !name.starts_with('.')
        && !name.contains("..");
    if !plain {
        return Err(format!(
            "{name:?} is not a plain file name: 1 to 64 letters, digits, '.', '-' or '_', \
             not starting with '.', no '..' and no path"
        ));
    }
    if !name.to_ascii_lowercase().ends_with(ext) || name.len() == ext.len() {
        return Err(format!("{name:?} must end with {ext}"));
    }
    Ok(name.to_owned())
}

async fn upload_chime<A: Appliance>(
    State(shared): State<AppState<A>>,
    client: ClientAddr,
    _admin: Admin,
    params: Result<
        axum::extract::Query<BTreeMap<String, String>>,
        axum::extract::rejection::QueryRejection,
    >,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let axum::extract::Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let raw = params
        .get("name")
        .ok_or_else(|| ApiError::bad_request("name the file: ?name=chime.wav"))?;
    let name = upload_name(raw, ".wav")
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "invalid_name", m))?;
    let bytes = body.map_err(|e| {
        let status = e.status();
        ApiError::new(
            status,
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                "too_large"
            } else {
                "bad_request"
            },
            e.body_text(),
        )
    })?;
    let size = bytes.len();
    match shared
        .appliance
        .upload_chime(name.clone(), bytes.to_vec())
        .await
    {
        Ok(v) => {
            shared
                .audit(
                    "chime_uploaded",
                    "admin",
                    format!("{name} ({size} bytes) {}", client.describe()),
                )
                .await;
            Ok(Json(v))
        }
        Err(e) => {
            shared
                .audit(
                    "chime_upload_refused",
                    "admin",
                    format!("{name}: {e} {}", client.describe()),
                )
                .await;
            Err(e.into())
        }
    }
}

// Not `Debug`: it holds a private key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificateBody {
    certificate: String,
    key: String,
}

async fn upload_certificate<A: Appliance>(
    State(shared): State<AppState<A>>,
    client: ClientAddr,
    _admin: Admin,
    body: Result<Json<CertificateBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body?;
    match shared
        .appliance
        .upload_certificate(body.certificate, body.key)
        .await
    {
        Ok(v) => {
            let fp = v
                .get("fingerprint")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?")
                .to_owned();
            shared
                .audit(
                    "certificate_uploaded",
                    "admin",
                    format!("SHA-256 {fp} {}", client.describe()),
                )
                .await;
            Ok(Json(v))
        }
        Err(e) => {
            shared
                .audit(
                    "certificate_upload_refused",
                    "admin",
                    format!("{e} {}", client.describe()),
                )
                .await;
            Err(e.into())
        }
    }
}

// ---------------------------------------------------------------- system

async fn system<A: Appliance>(
    State(shared): State<AppState<A>>,
    _admin: Admin,
) -> Result<Json<serde_json::Value>, ApiError> {
    shared
        .appliance
        .system()
        .await
        .map(Json)
        .map_err(ApiError::internal)
}

/// A download named after the appliance's day (JST).
fn attachment(content_type: &'static str, name: &str, ext: &str, body: String) -> Response {
    let now = DateTime::<Utc>::from(std::time::SystemTime::now());
    let day = (now + chrono::TimeDelta::hours(9)).format("%Y%m%d");
    let disposition = format!("attachment; filename=\"eewgate-{name}-{day}.{ext}\"");
    match HeaderValue::from_str(&disposition) {
        Ok(d) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (header::CONTENT_DISPOSITION, d),
            ],
            body,
        )
            .into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

async fn system_logs<A: Appliance>(
    State(shared): State<AppState<A>>,
    client: ClientAddr,
    _admin: Admin,
) -> Result<Response, ApiError> {
    let text = shared.appliance.logs().await.map_err(ApiError::internal)?;
    // Reading the logs is not a change, but who took them is worth knowing.
    shared
        .audit("logs_downloaded", "admin", client.describe())
        .await;
    Ok(attachment("text/plain; charset=utf-8", "log", "txt", text))
}

async fn system_config<A: Appliance>(
    State(shared): State<AppState<A>>,
    _admin: Admin,
) -> Result<Response, ApiError> {
    let s = shared
        .appliance
        .settings()
        .await
        .map_err(ApiError::internal)?;
    let text = s
        .get("text")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok(attachment(
        "application/toml; charset=utf-8",
        "settings",
        "toml",
        text,
    ))
}

// ---------------------------------------------------------------- operations

impl From<crate::OperationError> for ApiError {
    fn from(e: crate::OperationError) -> Self {
        match e {
            crate::OperationError::Refused { code, message } => {
                Self::new(StatusCode::CONFLICT, code, message)
            }
            crate::OperationError::Invalid(m) => Self::bad_request(m),
            crate::OperationError::Failed(e) => Self::internal(e),
        }
    }
}

async fn drills<A: Appliance>(
    State(shared): State<AppState<A>>,
    _admin: Admin,
) -> Result<Json<serde_json::Value>, ApiError> {
    shared
        .appliance
        .drills()
        .await
        .map(Json)
        .map_err(ApiError::internal)
}

/// Carries out `op` and audits it as `action` (also when refused).
async fn operate<A: Appliance>(
    shared: &Shared<A>,
    client: ClientAddr,
    op: crate::Operation,
    action: &str,
    what: String,
) -> Result<Json<serde_json::Value>, ApiError> {
    match shared.appliance.operate(op).await {
        Ok(v) => {
            // A drill names its event, so its report finds who started it.
            let event = v
                .get("event_id")
                .and_then(serde_json::Value::as_str)
                .filter(|e| crate::drill_reports::valid_event_id(e))
                .map(|e| format!(" (event {e})"))
                .unwrap_or_default();
            shared
                .audit(
                    action,
                    "admin",
                    format!("{what}{event} {}", client.describe()),
                )
                .await;
            Ok(Json(v))
        }
        Err(e) => {
            shared
                .audit(
                    &format!("{action}_refused"),
                    "admin",
                    format!("{what}: {e} {}", client.describe()),
                )
                .await;
            Err(e.into())
        }
    }
}

async fn drill<A: Appliance>(
    State(shared): State<AppState<A>>,
    client: ClientAddr,
    _admin: Admin,
    body: Result<Json<crate::DrillRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(req) = body?;
    if !req.confirm {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "confirm_required",
            "a drill may operate contacts wired to real equipment: send \"confirm\": true",
        ));
    }
    let what = match (&req.recorded, &req.class) {
        (Some(r), None) => format!("drill of the recorded event {r}"),
        (None, Some(c)) => format!(
            "synthetic drill, class {c}, S wave in {} s{}",
            req.seconds.unwrap_or(0),
            if req.warning { ", warning" } else { "" }
        ),
        _ => {
            return Err(ApiError::bad_request(
                "name either a recorded event (recorded) or a class (class, seconds)",
            ));
        }
    };
    operate(
        &shared,
        client,
        crate::Operation::Drill(req),
        "drill_started",
        what,
    )
    .await
}

async fn self_tests<A: Appliance>(
    State(shared): State<AppState<A>>,
    _admin: Admin,
) -> Result<Json<serde_json::Value>, ApiError> {
    shared
        .appliance
        .self_tests()
        .await
        .map(Json)
        .map_err(ApiError::internal)
}

/// A self-test's output must be named in its one accepted form.
fn check_output(output: &str) -> Result<(), ApiError> {
    if crate::SelfTestRequest::valid_output(output) {
        Ok(())
    } else {
        // `{:?}` quotes and escapes whatever was sent.
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_output",
            format!(
                "{:?} is not an output: use relay:N (N from 1 to 255), led, audio or mqtt",
                output.chars().take(40).collect::<String>()
            ),
        ))
    }
}

async fn self_test<A: Appliance>(
    State(shared): State<AppState<A>>,
    client: ClientAddr,
    _admin: Admin,
    body: Result<Json<crate::SelfTestRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(req) = body?;
    check_output(&req.output)?;
    if crate::SelfTestRequest::is_relay(&req.output) && !req.confirm {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "confirm_required",
            format!(
                "a self-test of {} closes its contact briefly and may operate real equipment \
                 wired to it: send \"confirm\": true",
                req.output
            ),
        ));
    }
    let what = format!("self-test of {}", req.output);
    operate(
        &shared,
        client,
        crate::Operation::SelfTest(req),
        "self_test",
        what,
    )
    .await
}

async fn confirm_test<A: Appliance>(
    State(shared): State<AppState<A>>,
    client: ClientAddr,
    _admin: Admin,
    body: Result<Json<crate::ConfirmTestRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(mut req) = body?;
    check_output(&req.output)?;
    let max = crate::ConfirmTestRequest::MAX_NOTE_CHARS;
    if let Some(note) = &req.note {
        if note.chars().count() > max {
            return Err(ApiError::bad_request(format!(
                "the note is limited to {max} characters"
            )));
        }
        if note.chars().any(char::is_control) {
            return Err(ApiError::bad_request(
                "the note must be one line of text (no control characters)",
            ));
        }
    }
    req.note = req
        .note
        .take()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    let what = match (&req.note, req.ok) {
        (None, true) => format!("{} worked", req.output),
        (None, false) => format!("{} did not work", req.output),
        (Some(n), true) => format!("{} worked: {n}", req.output),
        (Some(n), false) => format!("{} did not work: {n}", req.output),
    };
    operate(
        &shared,
        client,
        crate::Operation::ConfirmTest(req),
        "self_test_confirmed",
        what,
    )
    .await
}

/// `POST /api/alert/reset` and `/api/alert/silence`: which one is the path's last part.
async fn alert_command<A: Appliance>(
    State(shared): State<AppState<A>>,
    client: ClientAddr,
    _admin: Admin,
    uri: axum::http::Uri,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (op, action, what) = if uri.path().ends_with("/reset") {
        (crate::Operation::Reset, "alert_reset", "reset")
    } else {
        (crate::Operation::Silence, "alert_silenced", "silence")
    };
    operate(&shared, client, op, action, what.to_owned()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn history_query_maps_and_validates() {
        let q = parse_history_query(&params(&[
            ("limit", "20"),
            ("before_id", "99"),
            ("event_id", "20260101123456"),
            ("from", "2026-01-01"),
            ("to", "2026-01-31"),
        ]))
        .unwrap();
        assert_eq!(q.limit, 20);
        assert_eq!(q.before_id, Some(99));
        assert_eq!(q.event_id.as_deref(), Some("20260101123456"));
        assert_eq!(q.from, NaiveDate::from_ymd_opt(2026, 1, 1));
        assert_eq!(
            parse_history_query(&params(&[])).unwrap(),
            HistoryQuery::default()
        );
        for bad in [
            ("limit", "0"),
            ("limit", "501"),
            ("limit", "x"),
            ("before_id", "-1"),
            ("event_id", "a b"),
            ("event_id", ""),
            ("from", "2026-13-01"),
            ("sort", "asc"),
        ] {
            assert!(parse_history_query(&params(&[bad])).is_err(), "{bad:?}");
        }
        assert!(
            parse_history_query(&params(&[("from", "2026-02-01"), ("to", "2026-01-01")])).is_err()
        );
    }

    #[test]
    fn upload_names_are_plain_or_refused() {
        assert_eq!(
            upload_name("lobby-chime_2.WAV", ".wav").unwrap(),
            "lobby-chime_2.WAV"
        );
        for bad in [
            "../chime.wav",
            "..wav",
            "a/b.wav",
            "/etc/passwd",
            ".hidden.wav",
            "chime.wav/",
            "chime..wav",
            "chime.txt",
            ".wav",
            "",
            "チャイム.wav",
            "c\\d.wav",
            "c%2F.wav",
        ] {
            assert!(upload_name(bad, ".wav").is_err(), "{bad:?}");
        }
        assert!(upload_name(&format!("{}.wav", "a".repeat(61)), ".wav").is_err());
    }

    #[test]
    fn self_test_outputs_have_one_form() {
        use crate::SelfTestRequest;
        for good in [
            "relay:1",
            "relay:9",
            "relay:10",
            "relay:255",
            "led",
            "audio",
            "mqtt",
        ] {
            assert!(SelfTestRequest::valid_output(good), "{good}");
        }
        for bad in [
            "relay:0",
            "relay:256",
            "relay:01",
            "relay:+1",
            "relay:-1",
            "relay:x",
            "relay:",
            "relay",
            "relay:1 ",
            " led",
            "LED",
            "speaker",
            "../x",
            "",
            "relay:1/..",
        ] {
            assert!(!SelfTestRequest::valid_output(bad), "{bad:?}");
        }
    }

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; eewgate_session=abc; b=2"),
        );
        assert_eq!(session_cookie(&h).as_deref(), Some("abc"));
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }
}
