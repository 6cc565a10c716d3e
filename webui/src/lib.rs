//! The local web UI of eewgate: an axum router with a JSON API under `/api`, live status
//! over server-sent events, and small dependency-free static pages embedded in the binary
//! (no Node.js in the build).
//!
//! # The seam
//!
//! The crate does not depend on the daemon. It asks for an [`Appliance`]: a small trait
//! the daemon implements, exchanging only JSON values and plain structs
//! ([`HistoryQuery`], [`AuditEntry`]) so the status model and the history schema can grow
//! without touching this crate's types. `fake::FakeAppliance` (feature `fake`, and in
//! tests) is an in-memory implementation for tests and UI work.
//!
//! ```no_run
//! # async fn run(appliance: std::sync::Arc<impl eewgate_webui::Appliance>) -> Result<(), Box<dyn std::error::Error>> {
//! let ui = eewgate_webui::WebUi::new(appliance, eewgate_webui::Options::default()).await?;
//! if let Some(code) = ui.setup_code() {
//!     println!("web UI setup code: {code}"); // once, on the console
//! }
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:80").await?;
//! ui.serve(listener).await?;
//! # Ok(()) }
//! ```
//!
//! # Security model
//!
//! - **No default password.** Until an administrator password exists, [`WebUi::new`]
//!   makes a one-time setup code (10 symbols, 50 bits, from the OS CSPRNG) that the
//!   caller prints on the console; the API then serves only `/api/setup/state` and
//!   `/api/setup` (plus the static pages) and answers `409 setup_required` to everything
//!   else. Setting the password needs the code; afterwards the code is forgotten.
//! - **Passwords**: at least 10 characters, hashed with Argon2id (RustCrypto `argon2`,
//!   19 MiB, 2 passes, 1 lane) off the async runtime; only the PHC string is stored, by
//!   the appliance.
//! - **Sessions**: 256-bit random ids in memory, idle expiry, a cap on live sessions;
//!   cookie `eewgate_session` is `HttpOnly; SameSite=Strict; Path=/` and `Secure` when
//!   [`Options::tls`] says the UI is served over HTTPS.
//! - **CSRF**: every state-changing request (any method but GET/HEAD/OPTIONS) of a
//!   session must carry `X-CSRF-Token` equal to the session's token (from login and
//!   `GET /api/session`), else 403. Login and setup, which have no session yet, need a
//!   JSON body (a cross-site form cannot send one without a CORS preflight, which is never
//!   granted) and the SameSite cookie; and any state-changing request whose `Origin`
//!   differs from its `Host` is refused with 403.
//! - **Rate limiting**: 5 failed logins (or setup codes) per client address, 20 overall,
//!   in a sliding 15-minute window; beyond that, 429 with `Retry-After` and the password is
//!   not even checked. Without the client address (no `ConnectInfo`), all clients share
//!   one bucket.
//! - **Bodies** over [`Options::body_limit`] (64 KiB) are refused with 413.
//! - **Headers** on every response: `Content-Security-Policy: default-src 'self'` (no
//!   inline script or style), `X-Content-Type-Options: nosniff`, `Referrer-Policy:
//!   no-referrer`, `X-Frame-Options: DENY`; API responses are `Cache-Control: no-store`.
//! - **Audit**: every state-changing call (setup, login, failed login, logout) is
//!   recorded through [`Appliance::audit`] with who, what and the client address, never a
//!   password, hash, setup code, session id or token. No secret is ever sent back.

mod appliance;
mod assets;
pub mod auth;
mod drill_reports;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
mod history;
pub mod openapi;
mod server;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use appliance::{
    Appliance, ApplianceError, AuditEntry, ConfirmTestRequest, DrillReportsQuery, DrillRequest,
    HistoryQuery, Operation, OperationError, SelfTestRequest, SettingChange, SettingsCheck,
    SettingsDiff, SettingsEdit, SettingsProblem, SettingsSaved, SettingsWhatIf,
};
pub use history::{CSV_ALERT_COLUMNS, CSV_TELEGRAM_COLUMNS, EXPORT_MAX_ROWS};
pub use server::{ROUTES, RouteSpec};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "eewgate_session";
/// The CSRF header's name.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How the UI is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Served over HTTPS: the session cookie gets `Secure`.
    pub tls: bool,
    /// A session ends after this long without a request.
    pub session_idle: Duration,
    /// At most this many sessions at once (the least recently used is dropped).
    pub max_sessions: usize,
    /// Request bodies larger than this are refused with 413.
    pub body_limit: usize,
    /// Uploads (`/api/uploads/…`, a chime WAV) may be up to this large.
    pub upload_limit: usize,
    /// Keep-alive comment interval on the live status stream.
    pub keep_alive: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            tls: false,
            session_idle: Duration::from_secs(30 * 60),
            max_sessions: 16,
            body_limit: 64 * 1024,
            upload_limit: 8 * 1024 * 1024,
            keep_alive: Duration::from_secs(15),
        }
    }
}

/// Why the UI could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The credential store could not be read.
    #[error("reading the administrator credential: {0}")]
    Appliance(#[from] ApplianceError),
    /// No randomness for the setup code.
    #[error("making the setup code: {0}")]
    Auth(#[from] auth::AuthError),
}

/// The web UI over one appliance.
#[derive(Debug)]
pub struct WebUi<A: Appliance> {
    shared: Arc<server::Shared<A>>,
}

impl<A: Appliance> Clone for WebUi<A> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<A: Appliance> WebUi<A> {
    /// Read the credential store; without an administrator, make a one-time setup code.
    pub async fn new(appliance: Arc<A>, options: Options) -> Result<Self, Error> {
        let setup_code = match appliance.get_admin_hash().await? {
            Some(_) => None,
            None => Some(auth::new_setup_code()?),
        };
        if setup_code.is_some() {
            tracing::warn!("no administrator password yet: the web UI is in setup mode");
        }
        Ok(Self {
            shared: Arc::new(server::Shared::new(appliance, options, setup_code)),
        })
    }

    /// The one-time setup code while setup is pending, for the caller to print once on
    /// the console (never in a page or an API response).
    pub fn setup_code(&self) -> Option<String> {
        self.shared.setup_code()
    }

    /// Returns once first-boot setup is complete (at once when it was never pending), so
    /// the caller can withdraw the code it showed.
    pub async fn setup_finished(&self) {
        self.shared.setup_finished().await;
    }

    /// The router (state included). Serve it with
    /// `into_make_service_with_connect_info::<SocketAddr>()` so login limits are per
    /// client.
    pub fn router(&self) -> axum::Router {
        server::router(Arc::clone(&self.shared))
    }

    /// Serve over HTTPS on `listener` until the task is dropped (set [`Options::tls`] so
    /// the session cookie is `Secure`).
    pub async fn serve_tls(
        self,
        listener: tokio::net::TcpListener,
        config: Arc<tokio_rustls::rustls::ServerConfig>,
    ) -> std::io::Result<()> {
        tls::serve(self.router(), listener, config).await
    }

    /// Serve on `listener` until the task is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(
            listener,
            self.router()
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    }
}
