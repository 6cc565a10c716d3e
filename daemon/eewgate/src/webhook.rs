//! Notifications to the operator: every change of the appliance's faults (a channel
//! overdue or failed, a link down, the clock, storage) POSTed as JSON to a webhook
//! (`[assurance.webhook]`), so a facility manager hears of a silent failure without
//! looking at the dashboard (issue 7). HTTP/1.1 over hyper, HTTPS with rustls (ring,
//! Mozilla's roots) — `crate::system::http`, shared with the DM-D.S.S ticket request; plain `http://`
//! is allowed for a building's own LAN service.
//!
//! Never on the alarm path: one task, a bounded queue (a full queue drops the oldest
//! change's delivery, never blocks), a few retries with backoff, and every outcome in
//! the log and on the event lines.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use eew_core::settings::Walker;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use toml::Table;

use crate::app::EventPrinter;

/// One attempt's limit.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Waits before the 2nd, 3rd and 4th attempts.
const BACKOFF: [Duration; 3] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
];
/// Changes waiting to be delivered.
const QUEUE: usize = 32;
/// At most this much of a response is read.
const MAX_RESPONSE: usize = 16 * 1024;

/// `[assurance.webhook]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `https://host[:port]/path` (or `http://` on the building's LAN).
    pub url: Target,
    /// A file holding a bearer token sent as `Authorization: Bearer …` (mode 600).
    pub token_file: Option<PathBuf>,
}

/// A checked webhook URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// https.
    pub tls: bool,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path and query (`/` at least).
    pub path: String,
}

impl Target {
    /// Parses and checks a URL: http(s), a host, no credentials.
    pub fn parse(s: &str) -> Result<Self, String> {
        let crate::system::http::HttpUrl {
            tls,
            host,
            port,
            uri,
        } = crate::system::http::HttpUrl::parse(s, "put a token in token_file")?;
        let path = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        Ok(Target {
            tls,
            host,
            port,
            path: if path.is_empty() {
                "/".to_owned()
            } else {
                path
            },
        })
    }

    fn authority(&self) -> String {
        crate::system::http::authority(self.tls, &self.host, self.port)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.path)
    }
}

/// Checks `[assurance.webhook]` (inside `[assurance]`); `None` when absent.
pub(crate) fn section(
    w: &mut Walker,
    assurance: &Table,
    base: &std::path::Path,
) -> Option<WebhookConfig> {
    let path = "assurance.webhook";
    let t = w.section(assurance, "assurance", "webhook")?;
    let url = match w.get(t, path, "url") {
        Some((p, v)) => w.str_at(&p, v).and_then(|s| match Target::parse(s) {
            Ok(u) => Some(u),
            Err(e) => {
                w.error(p, e);
                None
            }
        }),
        None => {
            w.error(
                format!("{path}.url"),
                "required: where to POST, e.g. \"https://bms.example/hooks/eewgate\"",
            );
            None
        }
    };
    let token_file = crate::config::file_key(w, t, path, "token_file", base, true);
    w.unknown_keys(t, path, &["url", "token_file"]);
    url.map(|url| WebhookConfig { url, token_file })
}

/// Where notifications are handed over (never waits).
#[derive(Clone, Debug)]
pub(crate) struct Notifier {
    tx: mpsc::Sender<Value>,
}

impl Notifier {
    /// Queues one notification; a full queue drops it with a log line.
    pub(crate) fn send(&self, body: Value) {
        if self.tx.try_send(body).is_err() {
            tracing::error!("webhook queue full: a notification was dropped");
        }
    }
}

/// Spawns the sender task.
pub(crate) fn spawn(
    sup: &mut crate::supervisor::Supervisor,
    cfg: &WebhookConfig,
    events: Option<EventPrinter>,
) -> anyhow::Result<Notifier> {
    let token = match &cfg.token_file {
        Some(f) => Some(crate::config::read_secret(f)?),
        None => None,
    };
    let (tx, mut rx) = mpsc::channel::<Value>(QUEUE);
    let target = cfg.url.clone();
    let cancel = sup.token();
    sup.spawn("webhook", async move {
        loop {
            let body = tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                b = rx.recv() => match b { Some(b) => b, None => return Ok(()) },
            };
            deliver(&target, token.as_deref(), &body, events.as_ref(), &cancel).await;
        }
    });
    Ok(Notifier { tx })
}

async fn deliver(
    target: &Target,
    token: Option<&str>,
    body: &Value,
    events: Option<&EventPrinter>,
    cancel: &tokio_util::sync::CancellationToken,
) {
    let bytes = body.to_string().into_bytes();
    let mut attempt = 0usize;
    loop {
        attempt += 1;
        let result = post(target, token, bytes.clone()).await;
        let (ok, detail) = match &result {
            Ok(status) if (200..300).contains(status) => (true, format!("HTTP {status}")),
            Ok(status) => (false, format!("HTTP {status}")),
            Err(e) => (false, format!("{e:#}")),
        };
        if ok {
            tracing::info!(url = %target, attempt, "notification delivered");
        } else {
            tracing::warn!(url = %target, attempt, detail = %detail, "notification not delivered");
        }
        if let Some(p) = events {
            p.send(json!({
                "type": "notification", "url": target.to_string(), "ok": ok,
                "attempt": attempt, "detail": detail, "body": body,
            }));
        }
        let Some(wait) = BACKOFF.get(attempt - 1).filter(|_| !ok) else {
            if !ok {
                tracing::error!(url = %target, "notification given up after {attempt} attempts");
            }
            return;
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(*wait) => {}
        }
    }
}

/// One POST on a fresh connection; the response's status.
async fn post(target: &Target, token: Option<&str>, body: Vec<u8>) -> anyhow::Result<u16> {
    let attempt = async {
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .with_context(|| format!("connecting to {}:{}", target.host, target.port))?;
        tcp.set_nodelay(true)?;
        let mut request = hyper::Request::builder()
            .method(hyper::Method::POST)
            .uri(target.path.as_str())
            .header(hyper::header::HOST, target.authority())
            .header(
                hyper::header::USER_AGENT,
                concat!("eewgate/", env!("CARGO_PKG_VERSION")),
            )
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {}", t.trim()));
        }
        let request = request.body(http_body_util::Full::new(hyper::body::Bytes::from(body)))?;
        if target.tls {
            let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                .with_context(|| format!("{} is not a valid TLS server name", target.host))?;
            let tls = tokio_rustls::TlsConnector::from(crate::system::http::tls_config(true)?)
                .connect(name, tcp)
                .await
                .with_context(|| format!("TLS with {}", target.host))?;
            crate::system::http::exchange(tls, request, MAX_RESPONSE).await
        } else {
            crate::system::http::exchange(tcp, request, MAX_RESPONSE).await
        }
    };
    let (status, _body) = tokio::time::timeout(TIMEOUT, attempt)
        .await
        .map_err(|_| anyhow!("no answer within {TIMEOUT:?}"))??;
    Ok(status)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let t = Target::parse("https://bms.example/hooks/eewgate?x=1").unwrap();
        assert_eq!(
            (t.tls, t.port, t.path.as_str()),
            (true, 443, "/hooks/eewgate?x=1")
        );
        assert_eq!(t.to_string(), "https://bms.example/hooks/eewgate?x=1");
        let t = Target::parse("http://10.0.0.5:8080").unwrap();
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.path.as_str()),
            (false, "10.0.0.5", 8080, "/")
        );
        assert!(Target::parse("ftp://x/").is_err());
        assert!(
            Target::parse("https://user:pw@x/")
                .unwrap_err()
                .contains("credentials")
        );
        assert!(Target::parse("not a url").is_err());
        assert!(Target::parse("/relative").is_err());
    }
}
