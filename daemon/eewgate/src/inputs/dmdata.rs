//! The DM-D.S.S (dmdata.jp) WebSocket API v2 link.
//!
//! One link is one task ([`run`]) holding one WebSocket per configured endpoint (two by
//! default, Tokyo and Osaka, for redundancy). Each socket, on its own:
//!
//! 1. asks for a **ticket**: `POST {api_base}/v2/socket` with the API key as HTTP Basic
//!    user (empty password), JSON body `classifications` (from the types: VXSE43 →
//!    `eew.warning`, VXSE42/44/45 → `eew.forecast`), `types`, `test` (`"no"` or
//!    `"including"` for JMA's training telegrams), `appName`, `formatMode: "raw"`. A ticket
//!    is single-use and valid 300 s, so every socket and every reconnection takes a new
//!    one;
//! 2. connects to the ticket's `websocket.url` with the subprotocol `dmdata.v2` — with
//!    its host replaced by the socket's endpoint (`ws-tokyo.api.dmdata.jp`, …: dmdata.jp
//!    documents these region endpoints as usable "instead of the Socket Start URL, for
//!    geography and redundancy"), or unchanged for the endpoint `"ticket"`;
//! 3. reads JSON messages: `start` (the socket is up), `ping` (answered at once with
//!    `{"type":"pong","pingId":…}` carrying the same id; reported as `Alive`), `pong` (to
//!    our own ping, sent after [`DmdataConfig::quiet_ping_after`] without any message;
//!    also `Alive`), `data` (decoded: `encoding` base64 or utf-8, `compression` gzip or
//!    none) and `error` (logged; with `close: true` the socket ends).
//!
//! **Dedup.** Every `data` message carries a 384-bit `id` (hex) naming the delivery. Both
//! sockets receive every telegram; the link keeps the last [`DmdataConfig::dedup_capacity`]
//! ids and sends a body on as [`LinkEvent::Telegram`] only the first time its id is seen
//! (the daemon's merger also dedups across links, by report). An id is remembered only
//! once its body decoded, so a broken copy never hides a good one. dmdata.jp documents
//! the id as the SHA-384 of the body "decoded by its encoding"; the link checks that and
//! logs a mismatch, but does not refuse the telegram on it (the parser validates content).
//!
//! **Events.** `Up { peer }` when the first socket receives `start`, and again whenever the
//! set of live sockets changes (the peer then says which endpoint is down and why, so a
//! lost redundancy is visible); `Down { reason }` when no socket is live (and again when
//! the reason changes), `Alive` for every ping and pong, `Telegram` once per id, `Garbage`
//! for messages that are not JSON, binary frames, data whose body does not decode or is
//! larger than the parser's 1 MiB limit (reason codes `dmdata_bad_json`,
//! `dmdata_binary_frame`, `dmdata_bad_envelope`, `dmdata_bad_body`,
//! `dmdata_unsupported_compression`, `too_large`), each kept to 64 KiB.
//!
//! **Reconnecting.** After a socket ends it waits, then starts over with a new ticket. The
//! wait depends on why it ended (close codes and ticket statuses as documented by
//! dmdata.jp, see [`close_code_meaning`] and [`ticket_refusal`]):
//! - *normal* — network errors, 4400/4404 (bad or used ticket), 4503 (server restart,
//!   monthly maintenance), 4640/4641, 4891 (ping timeout), HTTP 5xx: jittered exponential
//!   backoff from [`DmdataConfig::backoff_min`] to [`DmdataConfig::backoff_max`], reset by
//!   every `start`;
//! - *limited* — 409/4409 (the contract's simultaneous-socket limit is reached), 429
//!   (rate limit): from [`DmdataConfig::limited_backoff`], doubling to the long backoff;
//! - *long* — 400, 401 (API key refused), 402 (no contract), 403 (missing permission or
//!   address not allowed), 4807 (contract ended), 4808 (socket closed by its owner from
//!   the control panel or API): [`DmdataConfig::long_backoff`] (5 min; dmdata.jp applies
//!   API-key permission changes within 5 min), so a wrong key never hammers the API.
//!
//! After losing a live socket without a close from the server (read error, silence), the
//! link asks `DELETE /v2/socket/{id}` (best effort; needs the `socket.close` permission):
//! otherwise dmdata.jp counts the dead socket against the contract's limit until its ping
//! timeout. On shutdown every socket sends a normal close frame.
//!
//! Nothing here panics on input: every size is bounded (WebSocket messages 4 MiB, decoded
//! bodies 1 MiB, HTTP responses 64 KiB, ids 256 bytes) and every field is checked.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::io::Read as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha384};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use super::{LinkEvent, Received};
use crate::inputs::jma_stream::backoff_delay;
use crate::system::clock::now_utc;

/// The production API.
pub const DEFAULT_API_BASE: &str = "https://api.dmdata.jp";
/// The documented region endpoints: one socket to each by default.
pub const DEFAULT_ENDPOINTS: [&str; 2] = ["ws-tokyo.api.dmdata.jp", "ws-osaka.api.dmdata.jp"];
/// The endpoint name meaning "the URL the ticket came with, unchanged".
pub const TICKET_ENDPOINT: &str = "ticket";
/// The WebSocket subprotocol.
pub const SUBPROTOCOL: &str = "dmdata.v2";
/// The EEW data types this link may ask for.
pub const EEW_TYPES: [&str; 4] = ["VXSE42", "VXSE43", "VXSE44", "VXSE45"];
/// The default data types (VXSE42, the delivery test, is left out).
pub const DEFAULT_TYPES: [&str; 3] = ["VXSE43", "VXSE44", "VXSE45"];
/// The default `appName` (dmdata.jp allows at most 24 bytes).
pub const DEFAULT_APP_NAME: &str = "eewgate";
/// Longest `appName` dmdata.jp accepts, in bytes.
pub const MAX_APP_NAME_BYTES: usize = 24;
/// Largest WebSocket message accepted (an EEW message is a few KiB).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Largest decoded body: the parser's own limit.
pub const MAX_BODY_BYTES: usize = eew_core::telegram::MAX_INPUT_BYTES;
/// Largest HTTP response read from the API.
pub const MAX_HTTP_RESPONSE_BYTES: usize = 64 * 1024;
/// Bytes of a bad message kept in a `Garbage` event.
pub const GARBAGE_KEEP: usize = 64 * 1024;
/// Longest `id` accepted (a SHA-384 in hex is 96 characters).
pub const MAX_ID_LEN: usize = 256;
/// Ids remembered for dedup.
pub const DEFAULT_DEDUP_CAPACITY: usize = 4096;
/// Bound on writing one message (a pong, our ping, a close).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on one API request (connect, TLS, request, response).
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether JMA's training and test XML telegrams are delivered (`test` of Socket Start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestMode {
    /// `"no"`: real telegrams only.
    No,
    /// `"including"`: training and test telegrams too (the November drill).
    Including,
}

impl TestMode {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TestMode::No => "no",
            TestMode::Including => "including",
        }
    }
}

/// Where one socket connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// The ticket's `websocket.url` as given.
    Ticket,
    /// The ticket's URL with its host (and port) replaced by this `host[:port]`.
    Host(String),
}

impl Endpoint {
    /// `"ticket"` or a host name (with an optional port).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == TICKET_ENDPOINT {
            return Ok(Endpoint::Ticket);
        }
        if s.is_empty()
            || s.len() > 253
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        {
            return Err(format!(
                "{s:?} is not a host name: give a host such as \"ws-tokyo.api.dmdata.jp\" (optionally with :port), or \"ticket\" for the URL the ticket names"
            ));
        }
        let authority: hyper::http::uri::Authority = s
            .parse()
            .map_err(|e| format!("{s:?} is not a host name: {e}"))?;
        Ok(Endpoint::Host(authority.to_string()))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Ticket => f.write_str("ticket URL"),
            Endpoint::Host(h) => f.write_str(h),
        }
    }
}

/// The API's base URL, checked: `https://host[:port][/prefix]`, or `http://` for a
/// loopback simulator only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiBase {
    /// `true` for https.
    pub tls: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path prefix without a trailing `/` (usually empty).
    pub prefix: String,
}

impl ApiBase {
    /// Parses and checks a base URL.
    pub fn parse(s: &str) -> Result<Self, String> {
        let crate::system::http::HttpUrl {
            tls,
            host,
            port,
            uri,
        } = crate::system::http::HttpUrl::parse(s, "the API key comes from api_key_file")?;
        if !tls && !is_loopback(&host) {
            return Err(format!(
                "{s:?}: plain http would send the API key in clear; it is allowed only for a simulator on this machine (127.0.0.1, ::1, localhost)"
            ));
        }
        if uri.query().is_some() {
            return Err(format!("{s:?} must not have a query"));
        }
        let prefix = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            tls,
            port,
            host,
            prefix,
        })
    }

    fn authority(&self) -> String {
        crate::system::http::authority(self.tls, &self.host, self.port)
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// One DM-D.S.S link.
#[derive(Clone)]
pub struct DmdataConfig {
    /// The link's name (events, logs, history).
    pub name: Arc<str>,
    /// The API (checked by [`ApiBase::parse`]).
    pub api_base: String,
    /// The API key (a secret: never logged, never in `Debug`).
    pub api_key: String,
    /// Data types asked for (a subset of [`EEW_TYPES`]).
    pub types: Vec<String>,
    /// Training and test telegrams or not.
    pub test: TestMode,
    /// `appName` of the sockets (shown in dmdata.jp's socket list).
    pub app_name: String,
    /// One socket per endpoint.
    pub endpoints: Vec<Endpoint>,
    /// Bound on connecting a socket (and on waiting for its `start`).
    pub connect_timeout: Duration,
    /// First reconnect delay after an ordinary failure.
    pub backoff_min: Duration,
    /// Longest reconnect delay after ordinary failures.
    pub backoff_max: Duration,
    /// First delay after a limit was hit (409/4409, 429); doubles to `long_backoff`.
    pub limited_backoff: Duration,
    /// Delay after a refusal that only a person can fix (key, permission, contract).
    pub long_backoff: Duration,
    /// With no message for this long, send our own ping (the server answers `pong`).
    pub quiet_ping_after: Duration,
    /// With no message at all for this long, the socket is taken as dead.
    pub idle_timeout: Duration,
    /// Ids remembered for dedup.
    pub dedup_capacity: usize,
}

impl fmt::Debug for DmdataConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmdataConfig")
            .field("name", &self.name)
            .field("api_base", &self.api_base)
            .field("api_key", &"<redacted>")
            .field("types", &self.types)
            .field("test", &self.test)
            .field("app_name", &self.app_name)
            .field("endpoints", &self.endpoints)
            .field("connect_timeout", &self.connect_timeout)
            .field("backoff_min", &self.backoff_min)
            .field("backoff_max", &self.backoff_max)
            .field("limited_backoff", &self.limited_backoff)
            .field("long_backoff", &self.long_backoff)
            .field("quiet_ping_after", &self.quiet_ping_after)
            .field("idle_timeout", &self.idle_timeout)
            .field("dedup_capacity", &self.dedup_capacity)
            .finish()
    }
}

impl DmdataConfig {
    /// A link with every default: the default types, no test telegrams, two sockets
    /// (Tokyo and Osaka), the default timeouts and backoffs.
    pub fn new(
        name: impl Into<Arc<str>>,
        api_base: impl Into<String>,
        api_key: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            api_base: api_base.into(),
            api_key: api_key.into(),
            types: DEFAULT_TYPES.iter().map(|t| (*t).to_owned()).collect(),
            test: TestMode::No,
            app_name: DEFAULT_APP_NAME.to_owned(),
            endpoints: DEFAULT_ENDPOINTS
                .iter()
                .map(|h| Endpoint::Host((*h).to_owned()))
                .collect(),
            connect_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            limited_backoff: Duration::from_secs(30),
            long_backoff: Duration::from_secs(300),
            quiet_ping_after: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            dedup_capacity: DEFAULT_DEDUP_CAPACITY,
        }
    }
}

/// The classifications (配信区分) the types need: VXSE43 is `eew.warning`, VXSE42/44/45
/// are `eew.forecast`.
pub fn classifications(types: &[String]) -> Vec<&'static str> {
    let mut out = Vec::new();
    if types.iter().any(|t| t != "VXSE43") {
        out.push("eew.forecast");
    }
    if types.iter().any(|t| t == "VXSE43") {
        out.push("eew.warning");
    }
    out
}

/// The JSON body of Socket Start v2.
pub fn socket_start_body(config: &DmdataConfig) -> Value {
    json!({
        "classifications": classifications(&config.types),
        "types": config.types,
        "test": config.test.as_str(),
        "appName": config.app_name,
        "formatMode": "raw",
    })
}

/// The `Authorization` header value: HTTP Basic with the key as user and no password.
pub fn basic_auth(api_key: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{api_key}:"))
    )
}

// ---------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------

/// A decoded `data` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataMessage {
    /// The delivery's id (lowercased).
    pub id: String,
    /// `head.type` (`VXSE45`, …) when given.
    pub data_type: Option<String>,
    /// `head.test` (training or test telegram).
    pub test: bool,
    /// `format` (`xml`, `json`, …) when given.
    pub format: Option<String>,
    /// The body, decoded and decompressed: the JMA XML or dmdata JSON.
    pub body: Vec<u8>,
    /// Whether the id is the SHA-384 of the body as decoded by its encoding (the
    /// documented check).
    pub id_matches: bool,
}

/// One WebSocket message from the server.
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    /// `start`: the socket is open; its `socketId`.
    Start {
        /// `socketId`, when given.
        socket_id: Option<String>,
    },
    /// `ping`: must be answered with the same `pingId`.
    Ping {
        /// `pingId` exactly as sent (usually a string).
        ping_id: Option<Value>,
    },
    /// `pong`: the answer to our own ping.
    Pong,
    /// `data`: a telegram.
    Data(DataMessage),
    /// `error`.
    Error {
        /// The error code (4400, 4404, …), when given.
        code: Option<i64>,
        /// The message.
        message: String,
        /// Whether the server closes the socket.
        close: bool,
    },
    /// Another `type` (ignored).
    Other(String),
}

/// Why a message was set aside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadMessage {
    /// Stable reason code.
    pub reason: &'static str,
    /// For people.
    pub detail: String,
}

fn bad(reason: &'static str, detail: impl Into<String>) -> BadMessage {
    BadMessage {
        reason,
        detail: detail.into(),
    }
}

/// Reads one text message. Never panics; anything unexpected is a [`BadMessage`].
pub fn parse_message(text: &str) -> Result<Incoming, BadMessage> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| bad("dmdata_bad_json", format!("not JSON: {e}")))?;
    let Some(obj) = value.as_object() else {
        return Err(bad("dmdata_bad_json", "not a JSON object"));
    };
    let Some(kind) = obj.get("type").and_then(Value::as_str) else {
        return Err(bad("dmdata_bad_json", "no \"type\""));
    };
    Ok(match kind {
        "start" => Incoming::Start {
            socket_id: obj.get("socketId").and_then(id_text),
        },
        "ping" => Incoming::Ping {
            ping_id: obj.get("pingId").cloned(),
        },
        "pong" => Incoming::Pong,
        "error" => Incoming::Error {
            code: obj.get("code").and_then(|c| {
                c.as_i64()
                    .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
            }),
            message: obj
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("")
                .chars()
                .take(500)
                .collect(),
            close: obj.get("close").and_then(Value::as_bool).unwrap_or(false),
        },
        "data" => Incoming::Data(parse_data(obj)?),
        other => Incoming::Other(other.chars().take(64).collect()),
    })
}

/// An id given as a number or a string.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() && s.len() <= MAX_ID_LEN => Some(s.clone()),
        _ => None,
    }
}

fn parse_data(obj: &serde_json::Map<String, Value>) -> Result<DataMessage, BadMessage> {
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= MAX_ID_LEN && s.is_ascii())
        .ok_or_else(|| bad("dmdata_bad_envelope", "data without a usable \"id\""))?
        .to_ascii_lowercase();
    let body = obj
        .get("body")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("dmdata_bad_envelope", "data without a \"body\""))?;
    let text = |key: &str| obj.get(key).and_then(Value::as_str);
    let head = obj.get("head").and_then(Value::as_object);
    let (raw, body) = decode_body(body, text("compression"), text("encoding"))?;
    let digest = Sha384::digest(&raw);
    let id_matches = hex(&digest) == id;
    Ok(DataMessage {
        id,
        data_type: head
            .and_then(|h| h.get("type"))
            .and_then(Value::as_str)
            .map(|s| s.chars().take(32).collect()),
        test: head
            .and_then(|h| h.get("test"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        format: text("format").map(|s| s.chars().take(32).collect()),
        body,
        id_matches,
    })
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Decodes a `data` body: first by `encoding` (`base64`, `utf-8` or none), then by
/// `compression` (`gzip` or none). Returns the bytes after the encoding step (what the
/// id hashes) and the final body.
pub fn decode_body(
    body: &str,
    compression: Option<&str>,
    encoding: Option<&str>,
) -> Result<(Vec<u8>, Vec<u8>), BadMessage> {
    let raw = match encoding {
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|e| bad("dmdata_bad_body", format!("the body is not base64: {e}")))?,
        Some("utf-8") | None => body.as_bytes().to_vec(),
        Some(other) => {
            return Err(bad(
                "dmdata_bad_body",
                format!(
                    "unknown encoding {:?}",
                    other.chars().take(32).collect::<String>()
                ),
            ));
        }
    };
    let body = match compression {
        None => raw.clone(),
        Some("gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(raw.as_slice())
                .take(u64::try_from(MAX_BODY_BYTES).unwrap_or(u64::MAX) + 1)
                .read_to_end(&mut out)
                .map_err(|e| bad("dmdata_bad_body", format!("the body is not gzip: {e}")))?;
            out
        }
        Some(other) => {
            return Err(bad(
                "dmdata_unsupported_compression",
                format!(
                    "compression {:?} is not supported (EEW XML comes gzip-compressed)",
                    other.chars().take(32).collect::<String>()
                ),
            ));
        }
    };
    if body.len() > MAX_BODY_BYTES {
        return Err(bad(
            "too_large",
            format!("the decoded body is larger than {MAX_BODY_BYTES} bytes"),
        ));
    }
    Ok((raw, body))
}

// ---------------------------------------------------------------------------------------
// Failure classes
// ---------------------------------------------------------------------------------------

/// How long to wait before trying again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Jittered exponential backoff from `backoff_min`.
    Normal,
    /// From `limited_backoff`, doubling to `long_backoff`.
    Limited,
    /// `long_backoff`: something a person has to fix.
    Long,
}

impl Retry {
    fn hint(self, config: &DmdataConfig) -> String {
        match self {
            Retry::Normal => String::new(),
            Retry::Limited => format!(
                "; retrying from every {} s up to every {} s",
                config.limited_backoff.as_secs(),
                config.long_backoff.as_secs()
            ),
            Retry::Long => format!(
                "; retrying only every {} s",
                config.long_backoff.as_secs().max(1)
            ),
        }
    }
}

/// What a WebSocket close (or error) code means, as documented for WebSocket v2, and how
/// soon to retry.
pub fn close_code_meaning(code: u16) -> (Retry, String) {
    let (retry, text) = match code {
        4400 => (Retry::Normal, "the server says a parameter is missing"),
        4404 => (Retry::Normal, "the ticket was not valid (used or expired)"),
        4409 => (
            Retry::Limited,
            "the contract's limit of simultaneous WebSocket connections is reached: close other sockets (dmdata.jp control panel) or raise the limit",
        ),
        4503 => (
            Retry::Normal,
            "the server is restarting (maintenance); reconnecting",
        ),
        4640 => (Retry::Normal, "the server got a pong with a wrong pingId"),
        4641 => (Retry::Normal, "the server refused data we sent"),
        4807 => (
            Retry::Long,
            "the contract for the classifications of this socket ended",
        ),
        4808 => (
            Retry::Long,
            "the socket was closed by its owner (dmdata.jp control panel or Socket Close API)",
        ),
        4891 => (
            Retry::Normal,
            "ping timeout: the server did not get our pongs",
        ),
        1000 | 1001 => (Retry::Normal, "closed by the server"),
        _ => (Retry::Normal, "closed by the server"),
    };
    (retry, format!("{text} ({code})"))
}

/// What a refused Socket Start means, and how soon to retry.
pub fn ticket_refusal(status: u16, message: &str) -> (Retry, String) {
    let msg = if message.is_empty() {
        String::new()
    } else {
        format!(" {message:?}")
    };
    match status {
        401 => (
            Retry::Long,
            format!("ticket refused: the API key was not accepted (401{msg}); check api_key_file"),
        ),
        402 => (
            Retry::Long,
            format!("ticket refused: no valid contract for the EEW classifications (402{msg})"),
        ),
        403 => (
            Retry::Long,
            format!(
                "ticket refused: the API key lacks a permission (socket.start, eew.get.forecast, eew.get.warning) or this address is not allowed (403{msg})"
            ),
        ),
        400 => (
            Retry::Long,
            format!("ticket refused: the request was not accepted (400{msg})"),
        ),
        409 => (
            Retry::Limited,
            format!(
                "ticket refused: the contract's limit of simultaneous WebSocket connections is reached (409{msg})"
            ),
        ),
        429 => (
            Retry::Limited,
            format!("ticket refused: rate limited (429{msg})"),
        ),
        _ => (Retry::Normal, format!("ticket refused: HTTP {status}{msg}")),
    }
}

// ---------------------------------------------------------------------------------------
// HTTP (Socket Start, Socket Close)
// ---------------------------------------------------------------------------------------

use crate::system::http::tls_config;

/// An HTTP response: status, body (bounded).
struct HttpResponse {
    status: u16,
    body: Vec<u8>,
}

/// One HTTP/1.1 request to the API on a fresh connection.
async fn http_request(
    base: &ApiBase,
    method: hyper::Method,
    path: &str,
    api_key: &str,
    body: Option<Vec<u8>>,
) -> anyhow::Result<HttpResponse> {
    let attempt = async {
        let tcp = TcpStream::connect((base.host.as_str(), base.port))
            .await
            .with_context(|| format!("connecting to {}:{}", base.host, base.port))?;
        tcp.set_nodelay(true)?;
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", base.prefix))
            .header(hyper::header::HOST, base.authority())
            .header(hyper::header::AUTHORIZATION, basic_auth(api_key))
            .header(
                hyper::header::USER_AGENT,
                concat!("eewgate/", env!("CARGO_PKG_VERSION")),
            )
            .header(hyper::header::ACCEPT, "application/json");
        let request = match body {
            Some(b) => request
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(http_body_util::Full::new(hyper::body::Bytes::from(b)))?,
            None => request.body(http_body_util::Full::new(hyper::body::Bytes::new()))?,
        };
        if base.tls {
            let server_name = rustls::pki_types::ServerName::try_from(base.host.clone())
                .with_context(|| format!("{} is not a valid TLS server name", base.host))?;
            let tls = tokio_rustls::TlsConnector::from(tls_config(true)?)
                .connect(server_name, tcp)
                .await
                .with_context(|| format!("TLS with {}", base.host))?;
            send_http(tls, request).await
        } else {
            send_http(tcp, request).await
        }
    };
    tokio::time::timeout(HTTP_TIMEOUT, attempt)
        .await
        .map_err(|_| anyhow!("the API did not answer within {HTTP_TIMEOUT:?}"))?
}

async fn send_http<S>(
    stream: S,
    request: hyper::Request<http_body_util::Full<hyper::body::Bytes>>,
) -> anyhow::Result<HttpResponse>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (status, body) =
        crate::system::http::exchange(stream, request, MAX_HTTP_RESPONSE_BYTES).await?;
    Ok(HttpResponse { status, body })
}

/// A ticket from Socket Start v2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// `websocket.url` (with the ticket in its query).
    pub url: String,
    /// `websocket.id`, for Socket Close.
    pub socket_id: Option<String>,
}

/// Why a socket could not be opened or ended.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Failure {
    reason: String,
    retry: Retry,
}

impl Failure {
    fn normal(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            retry: Retry::Normal,
        }
    }
}

/// Reads a Socket Start response.
pub fn parse_ticket_response(status: u16, body: &[u8]) -> Result<Ticket, (Retry, String)> {
    let value: Option<Value> = serde_json::from_slice(body).ok();
    if status != 200 {
        let message = value
            .as_ref()
            .and_then(|v| v.pointer("/error/message"))
            .and_then(Value::as_str)
            .map(|m| m.chars().take(300).collect::<String>())
            .unwrap_or_default();
        return Err(ticket_refusal(status, &message));
    }
    let Some(value) = value else {
        return Err((
            Retry::Normal,
            "Socket Start answered 200 without JSON".to_owned(),
        ));
    };
    if value.get("status").and_then(Value::as_str) == Some("error") {
        let code = value
            .pointer("/error/code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(500);
        let message = value
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .chars()
            .take(300)
            .collect::<String>();
        return Err(ticket_refusal(code, &message));
    }
    let url = value
        .pointer("/websocket/url")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty() && u.len() <= 4096)
        .ok_or((
            Retry::Normal,
            "Socket Start answered without websocket.url".to_owned(),
        ))?;
    Ok(Ticket {
        url: url.to_owned(),
        socket_id: value.pointer("/websocket/id").and_then(id_text),
    })
}

async fn request_ticket(
    config: &DmdataConfig,
    base: &ApiBase,
    api_key: &str,
) -> Result<Ticket, Failure> {
    let body = serde_json::to_vec(&socket_start_body(config))
        .map_err(|e| Failure::normal(format!("building the ticket request: {e}")))?;
    let response = http_request(base, hyper::Method::POST, "/v2/socket", api_key, Some(body))
        .await
        .map_err(|e| Failure::normal(format!("ticket request failed: {e:#}")))?;
    parse_ticket_response(response.status, &response.body)
        .map_err(|(retry, reason)| Failure { reason, retry })
}

/// Asks Socket Start v2 for a ticket with the link's settings (also for diagnostics).
pub async fn socket_start(config: &DmdataConfig) -> Result<Ticket, String> {
    let base = ApiBase::parse(&config.api_base)?;
    request_ticket(config, &base, &config.api_key)
        .await
        .map_err(|f| f.reason)
}

/// Best effort: Socket Close v2 for a socket we lost without the server closing it.
async fn close_socket_by_api(base: &ApiBase, api_key: &str, socket_id: &str, link: &str) {
    if !socket_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return;
    }
    let path = format!("/v2/socket/{socket_id}");
    match http_request(base, hyper::Method::DELETE, &path, api_key, None).await {
        Ok(r) if r.status < 300 || r.status == 404 => {
            tracing::debug!(link, socket_id, status = r.status, "socket closed by API");
        }
        Ok(r) => {
            tracing::debug!(link, socket_id, status = r.status, "Socket Close refused");
        }
        Err(e) => tracing::debug!(link, socket_id, error = %e, "Socket Close failed"),
    }
}

/// The URL a socket connects to: the ticket's, with the endpoint's host when one is
/// given. The scheme must be `wss` unless the API itself is plain http (a simulator).
pub fn socket_url(ticket_url: &str, endpoint: &Endpoint, base: &ApiBase) -> Result<String, String> {
    let uri: hyper::Uri = ticket_url
        .parse()
        .map_err(|e| format!("the ticket's URL is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("wss") => {}
        Some("ws") if !base.tls => {}
        _ => {
            return Err(format!(
                "the ticket's URL {:?} is not wss://",
                ticket_url.chars().take(80).collect::<String>()
            ));
        }
    }
    let Endpoint::Host(host) = endpoint else {
        return Ok(ticket_url.to_owned());
    };
    let mut parts = uri.into_parts();
    parts.authority = Some(
        host.parse()
            .map_err(|e| format!("endpoint {host:?} is not a host: {e}"))?,
    );
    hyper::Uri::from_parts(parts)
        .map(|u| u.to_string())
        .map_err(|e| format!("cannot build the socket URL: {e}"))
}

// ---------------------------------------------------------------------------------------
// Dedup
// ---------------------------------------------------------------------------------------

/// The last N ids seen (FIFO).
#[derive(Debug)]
pub struct RecentIds {
    set: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl RecentIds {
    /// Remembers up to `capacity` ids (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            set: HashSet::with_capacity(capacity),
            order: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Whether `id` was seen.
    pub fn contains(&self, id: &str) -> bool {
        self.set.contains(id)
    }

    /// Records `id`; `true` when it is new.
    pub fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        while self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        true
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

// ---------------------------------------------------------------------------------------
// The link
// ---------------------------------------------------------------------------------------

/// What a socket tells the link.
#[derive(Debug)]
enum SocketEvent {
    Up {
        idx: usize,
        peer: String,
    },
    Down {
        idx: usize,
        reason: String,
    },
    Alive,
    Data {
        idx: usize,
        message: Box<DataMessage>,
        received_at: DateTime<Utc>,
        received_mono: Instant,
    },
    Garbage {
        bytes: Vec<u8>,
        reason: &'static str,
        received_at: DateTime<Utc>,
    },
}

/// Runs a link configured in the settings file (`[[links.dmdata]]`). The API key is
/// read from its file now; while it cannot be read the link is down and tries again
/// every [`DmdataConfig::long_backoff`].
pub async fn run_link(
    link: crate::config::LinkConfig,
    tx: mpsc::Sender<LinkEvent>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    use crate::config::{DmdataTest, LinkKind};
    let LinkKind::Dmdata {
        api_key_file,
        api_base,
        test,
        types,
        endpoints,
        app_name,
    } = &link.kind
    else {
        bail!("link {} is not a DM-D.S.S link", link.name);
    };
    let name: Arc<str> = Arc::from(link.name.as_str());
    let mut config = DmdataConfig::new(name.clone(), api_base.clone(), String::new());
    config.types.clone_from(types);
    config.test = match test {
        DmdataTest::No => TestMode::No,
        DmdataTest::Including => TestMode::Including,
    };
    config.app_name.clone_from(app_name);
    config.endpoints = endpoints
        .iter()
        .map(|e| Endpoint::parse(e).map_err(|m| anyhow!("link {}: {m}", link.name)))
        .collect::<anyhow::Result<_>>()?;
    let mut reported = false;
    loop {
        match crate::config::read_secret(api_key_file) {
            Ok(key) => {
                config.api_key = key;
                break;
            }
            Err(err) => {
                let reason = format!("cannot read the API key: {err:#}");
                tracing::error!(link = %name, reason = %reason, "link down");
                if !reported {
                    deliver(
                        &tx,
                        &cancel,
                        LinkEvent::Down {
                            link: name.clone(),
                            reason,
                        },
                    )
                    .await?;
                    reported = true;
                }
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return Ok(()),
                    () = tokio::time::sleep(config.long_backoff) => {}
                }
            }
        }
    }
    run(config, tx, cancel).await
}

/// Sends an event unless cancelled first.
async fn deliver(
    tx: &mpsc::Sender<LinkEvent>,
    cancel: &CancellationToken,
    event: LinkEvent,
) -> anyhow::Result<()> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Ok(()),
        sent = tx.send(event) => sent.map_err(|_| anyhow!("the link event channel is closed")),
    }
}

/// The state of one socket, as the link sees it.
#[derive(Clone, Debug, Default)]
struct SocketState {
    label: String,
    up: Option<String>,
    last_reason: Option<String>,
}

/// Runs the link until `cancel` fires (then `Ok(())`). Fails only when the event channel
/// is closed, or when the configuration is unusable (no endpoint, a bad `api_base`).
pub async fn run(
    config: DmdataConfig,
    tx: mpsc::Sender<LinkEvent>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let link = config.name.clone();
    let base = ApiBase::parse(&config.api_base).map_err(|e| anyhow!("link {link}: {e}"))?;
    if config.endpoints.is_empty() {
        bail!("link {link}: no endpoint to connect to");
    }
    let config = Arc::new(config);
    let (ev_tx, mut ev_rx) = mpsc::channel::<SocketEvent>(256);
    let sockets_cancel = cancel.child_token();
    let mut sockets = JoinSet::new();
    let mut states: Vec<SocketState> = Vec::new();
    for (idx, endpoint) in config.endpoints.iter().enumerate() {
        states.push(SocketState {
            label: match endpoint {
                Endpoint::Ticket if config.endpoints.len() > 1 => format!("socket {}", idx + 1),
                e => e.to_string(),
            },
            ..SocketState::default()
        });
        sockets.spawn(socket_task(
            idx,
            endpoint.clone(),
            config.clone(),
            base.clone(),
            ev_tx.clone(),
            sockets_cancel.clone(),
        ));
    }
    drop(ev_tx);
    let mut seen = RecentIds::new(config.dedup_capacity);
    let mut last_down: Option<String> = None;
    let mut duplicates: u64 = 0;
    let result = loop {
        let event = tokio::select! {
            biased;
            () = cancel.cancelled() => break Ok(()),
            ev = ev_rx.recv() => ev,
        };
        let Some(event) = event else {
            break Err(anyhow!("link {link}: every socket task ended"));
        };
        let out = match event {
            SocketEvent::Alive => Some(LinkEvent::Alive { link: link.clone() }),
            SocketEvent::Garbage {
                bytes,
                reason,
                received_at,
            } => Some(LinkEvent::Garbage {
                link: link.clone(),
                bytes,
                reason,
                received_at,
            }),
            SocketEvent::Data {
                idx,
                message,
                received_at,
                received_mono,
            } => {
                if seen.insert(&message.id) {
                    if !message.id_matches {
                        tracing::warn!(link = %link, id = %message.id, "the data id is not the SHA-384 of the body; delivered anyway");
                    }
                    tracing::debug!(link = %link, socket = idx, id = %message.id, data_type = ?message.data_type, test = message.test, "telegram");
                    Some(LinkEvent::Telegram(Received {
                        link: link.clone(),
                        bytes: message.body,
                        received_at,
                        received_mono,
                    }))
                } else {
                    duplicates += 1;
                    tracing::trace!(link = %link, socket = idx, id = %message.id, duplicates, "later copy of a delivery");
                    Some(LinkEvent::Alive { link: link.clone() })
                }
            }
            SocketEvent::Up { idx, peer } => {
                if let Some(s) = states.get_mut(idx) {
                    s.up = Some(peer);
                    s.last_reason = None;
                }
                last_down = None;
                Some(LinkEvent::Up {
                    link: link.clone(),
                    peer: describe_up(&states),
                })
            }
            SocketEvent::Down { idx, reason } => {
                let (was_up, changed) = states
                    .get_mut(idx)
                    .map(|s| {
                        let changed = s.last_reason.as_deref() != Some(reason.as_str());
                        s.last_reason = Some(reason);
                        (s.up.take().is_some(), changed)
                    })
                    .unwrap_or((false, false));
                if states.iter().any(|s| s.up.is_some()) {
                    // Still up: say which socket is down and why (lost redundancy).
                    (was_up || changed).then(|| LinkEvent::Up {
                        link: link.clone(),
                        peer: describe_up(&states),
                    })
                } else if was_up || states.iter().all(|s| s.last_reason.is_some()) {
                    // Nothing is up: once per outage, and again when the reason changes.
                    let reason = describe_down(&states);
                    if last_down.as_deref() == Some(reason.as_str()) {
                        None
                    } else {
                        last_down = Some(reason.clone());
                        tracing::warn!(link = %link, reason = %reason, "link down");
                        Some(LinkEvent::Down {
                            link: link.clone(),
                            reason,
                        })
                    }
                } else {
                    None
                }
            }
        };
        if let Some(event) = out {
            let sent = tokio::select! {
                biased;
                () = cancel.cancelled() => break Ok(()),
                sent = tx.send(event) => sent,
            };
            if sent.is_err() {
                break Err(anyhow!("link {link}: the event channel is closed"));
            }
        }
    };
    // Let the sockets send their close frames (bounded), then stop them.
    sockets_cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while sockets.join_next().await.is_some() {}
    })
    .await;
    sockets.abort_all();
    if cancel.is_cancelled() {
        let _ = tx.try_send(LinkEvent::Down {
            link: link.clone(),
            reason: "shutting down".into(),
        });
    }
    result
}

fn describe_up(states: &[SocketState]) -> String {
    let up: Vec<&str> = states.iter().filter_map(|s| s.up.as_deref()).collect();
    let down: Vec<String> = states
        .iter()
        .filter(|s| s.up.is_none())
        .map(|s| match &s.last_reason {
            Some(r) => format!("{} down: {r}", s.label),
            None => format!("{} connecting", s.label),
        })
        .collect();
    if down.is_empty() {
        up.join(", ")
    } else {
        format!("{} ({})", up.join(", "), down.join("; "))
    }
}

fn describe_down(states: &[SocketState]) -> String {
    let first = states.first().and_then(|s| s.last_reason.as_deref());
    if let Some(first) = first
        && states
            .iter()
            .all(|s| s.last_reason.as_deref() == Some(first))
    {
        return first.to_owned();
    }
    states
        .iter()
        .map(|s| {
            format!(
                "{}: {}",
                s.label,
                s.last_reason.as_deref().unwrap_or("connecting")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// How a socket session ended.
enum End {
    Cancelled,
    Failed(Failure),
    /// Lost without a close from the server (the API should be told); the connection
    /// when it is still open, to be dropped only once the API has been asked.
    Lost(Failure, Option<Box<Socket>>),
}

/// Jitter from the wall clock's nanoseconds (as the JMA stream link does).
fn clock_jitter() -> u32 {
    let nanos = u64::from(now_utc().timestamp_subsec_nanos());
    let mut z = nanos.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    u32::try_from(z >> 32).unwrap_or(u32::MAX)
}

/// One socket: ticket, connect, read, and again, until cancelled.
async fn socket_task(
    idx: usize,
    endpoint: Endpoint,
    config: Arc<DmdataConfig>,
    base: ApiBase,
    events: mpsc::Sender<SocketEvent>,
    cancel: CancellationToken,
) {
    let link = config.name.clone();
    let mut normal_attempt: u32 = 0;
    let mut limited_attempt: u32 = 0;
    loop {
        let mut socket_id = None;
        let mut started = false;
        let end = session(
            idx,
            &endpoint,
            &config,
            &base,
            &events,
            &cancel,
            &mut socket_id,
            &mut started,
        )
        .await;
        if started {
            normal_attempt = 0;
            limited_attempt = 0;
        }
        let failure = match end {
            End::Cancelled => return,
            End::Failed(f) => f,
            End::Lost(f, stale) => {
                // Ask the API to close the socket (dmdata.jp would otherwise count it
                // against the limit until its ping timeout), in the background: the
                // network may be what failed, and the next attempt must not wait. A
                // connection still open is dropped only after the request.
                if let Some(id) = socket_id {
                    let (base, key, link) = (base.clone(), config.api_key.clone(), link.clone());
                    tokio::spawn(async move {
                        close_socket_by_api(&base, &key, &id, &link).await;
                        drop(stale);
                    });
                }
                f
            }
        };
        tracing::info!(link = %link, endpoint = %endpoint, reason = %failure.reason, "socket down");
        let reason = format!("{}{}", failure.reason, failure.retry.hint(&config));
        if events
            .send(SocketEvent::Down { idx, reason })
            .await
            .is_err()
        {
            return;
        }
        let delay = match failure.retry {
            Retry::Normal => {
                let d = backoff_delay(
                    normal_attempt,
                    config.backoff_min,
                    config.backoff_max,
                    clock_jitter(),
                );
                normal_attempt = normal_attempt.saturating_add(1);
                d
            }
            Retry::Limited => {
                let d = backoff_delay(
                    limited_attempt,
                    config.limited_backoff,
                    config.long_backoff,
                    clock_jitter(),
                );
                limited_attempt = limited_attempt.saturating_add(1);
                d
            }
            Retry::Long => backoff_delay(
                0,
                config.long_backoff,
                config.long_backoff,
                u32::MAX / 2 + clock_jitter() / 2,
            ),
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One ticket and one connection, until it ends.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site; the pieces are the socket's context"
)]
async fn session(
    idx: usize,
    endpoint: &Endpoint,
    config: &DmdataConfig,
    base: &ApiBase,
    events: &mpsc::Sender<SocketEvent>,
    cancel: &CancellationToken,
    socket_id: &mut Option<String>,
    started: &mut bool,
) -> End {
    let link = &config.name;
    let ticket = tokio::select! {
        biased;
        () = cancel.cancelled() => return End::Cancelled,
        t = request_ticket(config, base, &config.api_key) => t,
    };
    let ticket = match ticket {
        Ok(t) => t,
        Err(f) => return End::Failed(f),
    };
    socket_id.clone_from(&ticket.socket_id);
    let url = match socket_url(&ticket.url, endpoint, base) {
        Ok(u) => u,
        Err(e) => return End::Failed(Failure::normal(e)),
    };
    let peer = url_host(&url);
    let connected = tokio::select! {
        biased;
        () = cancel.cancelled() => return End::Cancelled,
        c = tokio::time::timeout(config.connect_timeout, connect(&url)) => c,
    };
    let mut ws = match connected {
        Err(_) => {
            return End::Failed(Failure::normal(format!(
                "connecting to {peer} timed out after {:?}",
                config.connect_timeout
            )));
        }
        Ok(Err(f)) => return End::Failed(f),
        Ok(Ok(ws)) => ws,
    };
    tracing::debug!(link = %link, peer = %peer, "socket connected; waiting for start");
    let mut last_rx = tokio::time::Instant::now();
    let mut own_ping_sent = false;
    let mut pings: u64 = 0;
    let start_deadline = last_rx + config.connect_timeout;
    loop {
        let quiet_at = last_rx + config.quiet_ping_after;
        let idle_at = if *started {
            last_rx + config.idle_timeout
        } else {
            start_deadline
        };
        let next = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "shutting down".into() })),
                )
                .await;
                return End::Cancelled;
            }
            m = ws.next() => m,
            () = tokio::time::sleep_until(quiet_at), if *started && !own_ping_sent => {
                own_ping_sent = true;
                pings += 1;
                let ping = json!({"type": "ping", "pingId": format!("eewgate-{pings}")}).to_string();
                if let Err(e) = send_text(&mut ws, ping).await {
                    return End::Lost(Failure::normal(format!("{peer}: {e}")), None);
                }
                continue;
            }
            () = tokio::time::sleep_until(idle_at) => {
                let what = if *started {
                    format!("{peer}: nothing received for {} s", config.idle_timeout.as_secs())
                } else {
                    format!("{peer}: no start message within {} s", config.connect_timeout.as_secs())
                };
                return End::Lost(Failure::normal(what), Some(Box::new(ws)));
            }
        };
        let received_at = now_utc();
        let received_mono = Instant::now();
        last_rx = tokio::time::Instant::now();
        own_ping_sent = false;
        let message = match next {
            None => {
                return End::Lost(
                    Failure::normal(format!("{peer}: the connection ended without a close")),
                    None,
                );
            }
            Some(Err(e)) => return End::Lost(Failure::normal(format!("{peer}: {e}")), None),
            Some(Ok(m)) => m,
        };
        let text = match message {
            Message::Text(t) => t,
            Message::Binary(b) => {
                let bytes = b
                    .get(..b.len().min(GARBAGE_KEEP))
                    .unwrap_or_default()
                    .to_vec();
                let ev = SocketEvent::Garbage {
                    bytes,
                    reason: "dmdata_binary_frame",
                    received_at,
                };
                if events.send(ev).await.is_err() {
                    return End::Cancelled;
                }
                continue;
            }
            Message::Close(frame) => {
                return End::Failed(match frame {
                    Some(f) => {
                        let (retry, text) = close_code_meaning(u16::from(f.code));
                        let why = if f.reason.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", f.reason.chars().take(200).collect::<String>())
                        };
                        Failure {
                            reason: format!("{peer}: {text}{why}"),
                            retry,
                        }
                    }
                    None => Failure::normal(format!("{peer}: closed by the server")),
                });
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        let incoming = match parse_message(text.as_str()) {
            Ok(i) => i,
            Err(b) => {
                tracing::warn!(link = %link, peer = %peer, reason = b.reason, detail = %b.detail, "message set aside");
                let bytes = text.as_bytes();
                let ev = SocketEvent::Garbage {
                    bytes: bytes
                        .get(..bytes.len().min(GARBAGE_KEEP))
                        .unwrap_or_default()
                        .to_vec(),
                    reason: b.reason,
                    received_at,
                };
                if events.send(ev).await.is_err() {
                    return End::Cancelled;
                }
                continue;
            }
        };
        let event = match incoming {
            Incoming::Start { socket_id: sid } => {
                if sid.is_some() {
                    *socket_id = sid;
                }
                if *started {
                    None
                } else {
                    *started = true;
                    tracing::info!(link = %link, peer = %peer, socket_id = ?socket_id, "socket started");
                    Some(SocketEvent::Up {
                        idx,
                        peer: peer.clone(),
                    })
                }
            }
            Incoming::Ping { ping_id } => {
                let pong = match ping_id {
                    Some(id) => json!({"type": "pong", "pingId": id}),
                    None => json!({"type": "pong"}),
                };
                if let Err(e) = send_text(&mut ws, pong.to_string()).await {
                    return End::Lost(Failure::normal(format!("{peer}: {e}")), None);
                }
                Some(SocketEvent::Alive)
            }
            Incoming::Pong => Some(SocketEvent::Alive),
            Incoming::Data(message) => Some(SocketEvent::Data {
                idx,
                message: Box::new(message),
                received_at,
                received_mono,
            }),
            Incoming::Error {
                code,
                message,
                close,
            } => {
                let (retry, text) = code
                    .and_then(|c| u16::try_from(c).ok())
                    .map(close_code_meaning)
                    .unwrap_or((Retry::Normal, "error".to_owned()));
                tracing::warn!(link = %link, peer = %peer, code, close, message = %message, "server error message");
                if close {
                    let detail = if message.is_empty() {
                        String::new()
                    } else {
                        format!(": {message}")
                    };
                    return End::Failed(Failure {
                        reason: format!("{peer}: {text}{detail}"),
                        retry,
                    });
                }
                None
            }
            Incoming::Other(kind) => {
                tracing::debug!(link = %link, peer = %peer, kind = %kind, "message ignored");
                None
            }
        };
        if let Some(ev) = event
            && events.send(ev).await.is_err()
        {
            return End::Cancelled;
        }
    }
}

fn url_host(url: &str) -> String {
    url.parse::<hyper::Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "?".to_owned())
}

async fn send_text(ws: &mut Socket, text: String) -> Result<(), String> {
    match tokio::time::timeout(WRITE_TIMEOUT, ws.send(Message::text(text))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write failed: {e}")),
        Err(_) => Err(format!("write timed out after {WRITE_TIMEOUT:?}")),
    }
}

/// Opens the WebSocket with the `dmdata.v2` subprotocol.
async fn connect(url: &str) -> Result<Socket, Failure> {
    let mut request = url
        .into_client_request()
        .map_err(|e| Failure::normal(format!("bad socket URL: {e}")))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        hyper::header::HeaderValue::from_static(SUBPROTOCOL),
    );
    let tls = tls_config(false).map_err(|e| Failure::normal(format!("{e:#}")))?;
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES));
    let peer = url_host(url);
    match tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(ws_config),
        true,
        Some(Connector::Rustls(tls)),
    )
    .await
    {
        Ok((ws, response)) => {
            let protocol = response
                .headers()
                .get("Sec-WebSocket-Protocol")
                .and_then(|v| v.to_str().ok());
            if protocol != Some(SUBPROTOCOL) {
                return Err(Failure::normal(format!(
                    "{peer}: the server did not accept the {SUBPROTOCOL} subprotocol"
                )));
            }
            Ok(ws)
        }
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            Err(Failure::normal(format!(
                "{peer}: the WebSocket handshake was refused (HTTP {status})"
            )))
        }
        Err(e) => Err(Failure::normal(format!("connecting to {peer}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap_or_default();
        enc.finish().unwrap_or_default()
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn data_messages_decode_gzip_base64_and_plain_bodies() {
        let xml = "<Report>…</Report>".as_bytes();
        let raw = gzip(xml);
        let id = hex(&Sha384::digest(&raw));
        let text = json!({
            "type": "data", "version": "2.0", "id": id, "classification": "eew.forecast",
            "head": {"type": "VXSE45", "test": false, "xml": true},
            "format": "xml", "compression": "gzip", "encoding": "base64", "body": b64(&raw),
        })
        .to_string();
        let Ok(Incoming::Data(d)) = parse_message(&text) else {
            panic!("not data: {text}");
        };
        assert_eq!(d.body, xml);
        assert!(d.id_matches);
        assert_eq!(d.data_type.as_deref(), Some("VXSE45"));
        let text = json!({
            "type": "data", "id": "ABC", "format": "json", "compression": null,
            "encoding": "utf-8", "body": "{\"a\":1}",
        })
        .to_string();
        let Ok(Incoming::Data(d)) = parse_message(&text) else {
            panic!("not data");
        };
        assert_eq!(d.body, b"{\"a\":1}");
        assert_eq!(d.id, "abc");
        assert!(!d.id_matches);
    }

    #[test]
    fn broken_messages_are_bad_never_panics() {
        let cases = [
            ("not json", "dmdata_bad_json"),
            ("[1,2]", "dmdata_bad_json"),
            ("{\"x\":1}", "dmdata_bad_json"),
            ("{\"type\":\"data\",\"body\":\"\"}", "dmdata_bad_envelope"),
            ("{\"type\":\"data\",\"id\":\"a\"}", "dmdata_bad_envelope"),
            (
                "{\"type\":\"data\",\"id\":\"a\",\"encoding\":\"base64\",\"body\":\"***\"}",
                "dmdata_bad_body",
            ),
            (
                "{\"type\":\"data\",\"id\":\"a\",\"encoding\":\"base64\",\"compression\":\"gzip\",\"body\":\"aGVsbG8=\"}",
                "dmdata_bad_body",
            ),
            (
                "{\"type\":\"data\",\"id\":\"a\",\"encoding\":\"base64\",\"compression\":\"zip\",\"body\":\"aGVsbG8=\"}",
                "dmdata_unsupported_compression",
            ),
        ];
        for (text, reason) in cases {
            assert_eq!(
                parse_message(text).map(|_| ()).map_err(|b| b.reason),
                Err(reason),
                "{text}"
            );
        }
        // a gzip bomb stops at the parser's limit
        let big = gzip(&vec![b'a'; MAX_BODY_BYTES + 10]);
        let text = json!({"type":"data","id":"a","encoding":"base64","compression":"gzip","body":b64(&big)}).to_string();
        assert_eq!(parse_message(&text).map_err(|b| b.reason), Err("too_large"));
    }

    #[test]
    fn pings_errors_and_starts_are_read() {
        assert_eq!(
            parse_message("{\"type\":\"ping\",\"pingId\":\"012345\"}"),
            Ok(Incoming::Ping {
                ping_id: Some(json!("012345"))
            })
        );
        assert_eq!(
            parse_message("{\"type\":\"error\",\"error\":\"x\",\"code\":4808,\"close\":true}"),
            Ok(Incoming::Error {
                code: Some(4808),
                message: "x".into(),
                close: true
            })
        );
        assert_eq!(
            parse_message("{\"type\":\"start\",\"socketId\":1}"),
            Ok(Incoming::Start {
                socket_id: Some("1".into())
            })
        );
    }

    #[test]
    fn the_link_describes_its_sockets() {
        let state = |label: &str, up: Option<&str>, reason: Option<&str>| SocketState {
            label: label.into(),
            up: up.map(Into::into),
            last_reason: reason.map(Into::into),
        };
        let both = [
            state("tokyo", Some("ws-tokyo"), None),
            state("osaka", Some("ws-osaka"), None),
        ];
        assert_eq!(describe_up(&both), "ws-tokyo, ws-osaka");
        let half = [
            state("tokyo", Some("ws-tokyo"), None),
            state("osaka", None, Some("4503")),
        ];
        assert_eq!(describe_up(&half), "ws-tokyo (osaka down: 4503)");
        let same = [state("a", None, Some("401")), state("b", None, Some("401"))];
        assert_eq!(describe_down(&same), "401");
        let mixed = [state("a", None, Some("x")), state("b", None, None)];
        assert_eq!(describe_down(&mixed), "a: x; b: connecting");
    }

    #[test]
    fn recent_ids_are_bounded() {
        let mut ids = RecentIds::new(3);
        assert!(ids.insert("a"));
        assert!(!ids.insert("a"));
        assert!(ids.insert("b") && ids.insert("c") && ids.insert("d"));
        assert_eq!(ids.len(), 3);
        assert!(!ids.contains("a"));
        assert!(ids.insert("a"));
    }

    #[test]
    fn api_base_and_socket_urls() {
        let b = ApiBase::parse("https://api.dmdata.jp").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((b.tls, b.port, b.prefix.as_str()), (true, 443, ""));
        assert!(ApiBase::parse("http://api.dmdata.jp").is_err());
        assert!(ApiBase::parse("http://127.0.0.1:8080/").is_ok());
        assert!(ApiBase::parse("ftp://x").is_err());
        assert!(ApiBase::parse("https://user:pw@api.dmdata.jp").is_err());
        let url = "wss://ws003.api.dmdata.jp/v2/websocket?ticket=abc";
        let tokyo = Endpoint::parse("ws-tokyo.api.dmdata.jp").unwrap_or(Endpoint::Ticket);
        assert_eq!(
            socket_url(url, &tokyo, &b).as_deref(),
            Ok("wss://ws-tokyo.api.dmdata.jp/v2/websocket?ticket=abc")
        );
        assert_eq!(socket_url(url, &Endpoint::Ticket, &b).as_deref(), Ok(url));
        assert!(socket_url("ws://x/v2/websocket", &Endpoint::Ticket, &b).is_err());
        assert!(Endpoint::parse("wss://x").is_err());
        assert_eq!(Endpoint::parse(" ticket "), Ok(Endpoint::Ticket));
    }

    #[test]
    fn the_request_asks_for_the_classifications_of_its_types() {
        let mut c = DmdataConfig::new("d", DEFAULT_API_BASE, "k");
        let body = socket_start_body(&c);
        assert_eq!(
            body["classifications"],
            json!(["eew.forecast", "eew.warning"])
        );
        assert_eq!(body["formatMode"], "raw");
        assert_eq!(body["test"], "no");
        c.types = vec!["VXSE43".into()];
        assert_eq!(classifications(&c.types), vec!["eew.warning"]);
        assert!(!format!("{c:?}").contains("\"k\""));
        assert_eq!(basic_auth("key"), "Basic a2V5Og==");
    }

    #[test]
    fn refusals_and_close_codes_pick_their_backoff() {
        assert_eq!(ticket_refusal(401, "").0, Retry::Long);
        assert_eq!(ticket_refusal(409, "").0, Retry::Limited);
        assert_eq!(ticket_refusal(503, "").0, Retry::Normal);
        assert_eq!(close_code_meaning(4808).0, Retry::Long);
        assert_eq!(close_code_meaning(4409).0, Retry::Limited);
        assert_eq!(close_code_meaning(4891).0, Retry::Normal);
        let t = parse_ticket_response(
            200,
            br#"{"status":"ok","ticket":"T","websocket":{"id":7,"url":"wss://a/v2/websocket?ticket=T","protocol":["dmdata.v2"],"expiration":300}}"#,
        );
        assert_eq!(
            t,
            Ok(Ticket {
                url: "wss://a/v2/websocket?ticket=T".into(),
                socket_id: Some("7".into())
            })
        );
        let e = parse_ticket_response(
            401,
            br#"{"status":"error","error":{"message":"Authorization required.","code":401}}"#,
        );
        assert!(matches!(e, Err((Retry::Long, ref m)) if m.contains("Authorization required.")));
    }
}
