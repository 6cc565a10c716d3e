//! The DM-D.S.S WebSocket API v2 simulator: `eewgate sim dmdata`.
//!
//! One HTTP server (axum) on one port, plain HTTP on loopback, speaking what dmdata.jp
//! documents for Socket Start v2, Socket Close v2 and WebSocket v2:
//!
//! - `POST /v2/socket` — the API key as HTTP Basic user (or `Authorization: Bearer`, or
//!   `?key=`) must equal `--api-key` (any non-empty key without it), else 401 in the
//!   documented error shape. The JSON body is checked as documented (400 for a body that
//!   is not JSON, no `classifications`, more than 30 `types`, an `appName` over 24 bytes,
//!   a `formatMode` other than raw/json); with `--max-sockets N` open, 409. The answer is
//!   `{responseId, responseTime, status: "ok", ticket, websocket: {id, url, protocol:
//!   ["dmdata.v2"], expiration: 300}, classifications, test, types, formats, appName}`
//!   with `url` = `ws://ADDR/v2/websocket?ticket=…`.
//! - `DELETE /v2/socket/{id}` — closes that socket with code 4808 (204), or 404.
//! - `GET /v2/websocket?ticket=…` — the WebSocket. Without the `dmdata.v2` subprotocol
//!   the socket gets error 4400; an unknown, used (tickets are single-use, even when the
//!   attempt fails) or expired (`--ticket-ttl-s`, 300) ticket gets 4404; over
//!   `--max-sockets`, 4409. Each error is an `error` message (`close: true`) followed by a
//!   close frame with the same code. Then `start`, then a `ping` (`pingId` a string) every
//!   `--ping-interval-s`; without a pong carrying the latest `pingId` within
//!   `--pong-timeout-s` the socket ends with 4891, a wrong `pingId` ends it with 4640, a
//!   message that is not JSON with 4641. The client's own `ping` is answered with `pong`.
//!
//! **What it sends.** Every FILE (JMA XML VXSE42–45 or DM-D.S.S `eew-information` JSON;
//! a directory stands for its files in name order, others skipped) becomes one `data`
//! message in the documented envelope: `version` "2.0", `id` (SHA-384 of the
//! gzip-compressed body, 96 hex digits), `classification` (VXSE43 `eew.warning`, others
//! `eew.forecast`), `passing`, `head {type, author, time, designation, test, xml}`,
//! `xmlReport {control, head}`, `format` (`xml`/`json`), `compression: "gzip"`,
//! `encoding: "base64"`, `body`. Like the service, it publishes: once the first socket has
//! started, the sequence plays (`--start-delay-ms`, then `--interval-ms` apart or
//! `--at-original-times` scaled by `--speed`, `--repeat N` / `--loop`) and every message
//! goes to every socket open at that moment — a socket that reconnects has missed what
//! was sent meanwhile.
//!
//! **Faults.** `--duplicate` sends every message twice (`--duplicate=P`: with probability
//! P); `--reorder` swaps neighbours; `--garbage` puts a non-JSON text
//! frame or a binary frame before some messages; `--bad-body` sends, before each
//! telegram, a `data` message of its own id whose body is not gzip; `--drop-after N`
//! drops each socket (TCP closed, no close frame) after it got N data messages;
//! `--restart-after N` ends each socket after N data messages the documented maintenance
//! way (error 4503, close 4503). `--seed` repeats the random choices.
//!
//! **Events** (JSON lines on stdout, after `{"listening":"http://ADDR"}`): `ticket`,
//! `ticket_refused` (with `status`), `socket_closed_by_api`, `connected`, `start`, `ping`,
//! `pong` (with `ms`), `pong_missed`, `pong_mismatch`, `client_ping`, `published`,
//! `sent`, `dropped`, `restart`, `end_of_sequence`, `closed` (with `code` and `reason`).

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine as _;
use chrono::{SecondsFormat, Utc};
use eew_core::report::{Format, InfoType, Product, Status};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha384};
use tokio::net::TcpListener;
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::time::Instant;

use super::jma::{Decor, EventSink, Player, ReplayPlan, Rng, SimTelegram};
use crate::system::clock::now_utc;

/// `eewgate sim dmdata`.
#[derive(Debug, clap::Args)]
pub struct DmdataSimArgs {
    /// Telegram files (JMA XML VXSE42–45, DM-D.S.S eew-information JSON), or directories
    /// of them (read in name order).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Address to listen on; port 0 picks a free one (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub bind: String,
    /// The API key clients must present (default: any non-empty key).
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Milliseconds between telegrams.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub interval_ms: u64,
    /// Space telegrams by their issue times instead (scaled by --speed).
    #[arg(long)]
    pub at_original_times: bool,
    /// Speed-up for --at-original-times.
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    pub speed: f64,
    /// Milliseconds after the first socket's start before the first telegram.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub start_delay_ms: u64,
    /// Send messages twice: `--duplicate` always, `--duplicate=P` with probability P.
    #[arg(
        long,
        default_value_t = 0.0,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "1",
        value_name = "P"
    )]
    pub duplicate: f64,
    /// Swap neighbouring telegrams at random.
    #[arg(long)]
    pub reorder: bool,
    /// Put non-JSON text and binary frames before some messages.
    #[arg(long)]
    pub garbage: bool,
    /// Before each telegram, send a data message whose body does not decode.
    #[arg(long)]
    pub bad_body: bool,
    /// Play the sequence this many times.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: u32,
    /// Play the sequence forever.
    #[arg(long = "loop")]
    pub forever: bool,
    /// Seed of the random choices (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seconds between the server's pings.
    #[arg(long, default_value_t = 60.0, value_name = "S")]
    pub ping_interval_s: f64,
    /// Seconds a pong may take before the socket is closed (4891).
    #[arg(long, default_value_t = 60.0, value_name = "S")]
    pub pong_timeout_s: f64,
    /// Drop each socket (no close frame) after it got this many data messages.
    #[arg(long, value_name = "N")]
    pub drop_after: Option<u64>,
    /// End each socket with the maintenance code 4503 after this many data messages.
    #[arg(long, value_name = "N")]
    pub restart_after: Option<u64>,
    /// The contract's limit of simultaneous sockets (409 / 4409 beyond it).
    #[arg(long, value_name = "N")]
    pub max_sockets: Option<usize>,
    /// Seconds a ticket stays valid.
    #[arg(long, default_value_t = 300, value_name = "S")]
    pub ticket_ttl_s: u64,
}

/// Everything the simulator needs (the library's entry point is [`serve`]).
#[derive(Clone, Debug)]
pub struct DmdataSimOptions {
    /// What to publish.
    pub telegrams: Arc<Vec<SimTelegram>>,
    /// How (timing, duplicates, reordering, garbage).
    pub plan: ReplayPlan,
    /// The accepted API key (`None`: any non-empty key).
    pub api_key: Option<String>,
    /// Between pings.
    pub ping_interval: Duration,
    /// How long a pong may take.
    pub pong_timeout: Duration,
    /// A broken data message before each telegram.
    pub bad_body: bool,
    /// Drop a socket after this many data messages.
    pub drop_after: Option<u64>,
    /// End a socket with 4503 after this many data messages.
    pub restart_after: Option<u64>,
    /// Simultaneous sockets allowed.
    pub max_sockets: Option<usize>,
    /// Ticket lifetime.
    pub ticket_ttl: Duration,
    /// Random choices.
    pub seed: u64,
    /// Where events go.
    pub events: Option<EventSink>,
}

impl DmdataSimOptions {
    /// Every telegram once, `interval` apart; pings every 60 s; no faults, no events.
    pub fn new(telegrams: Vec<SimTelegram>, interval: Duration) -> Self {
        Self {
            telegrams: Arc::new(telegrams),
            plan: ReplayPlan::simple(interval),
            api_key: None,
            ping_interval: Duration::from_secs(60),
            pong_timeout: Duration::from_secs(60),
            bad_body: false,
            drop_after: None,
            restart_after: None,
            max_sockets: None,
            ticket_ttl: Duration::from_secs(300),
            seed: 0,
            events: None,
        }
    }

    fn emit(&self, event: Value) {
        if let Some(sink) = &self.events {
            let _ = sink.send(event);
        }
    }
}

/// Reads XML and dmdata JSON telegrams from files and directories.
pub fn load_telegrams(paths: &[PathBuf]) -> anyhow::Result<Vec<SimTelegram>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("listing {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            for file in files {
                if let Some(t) = telegram_in(&file)? {
                    out.push(t);
                } else {
                    tracing::debug!(file = %file.display(), "not JMA XML or DM-D.S.S JSON; skipped");
                }
            }
        } else {
            match telegram_in(path)? {
                Some(t) => out.push(t),
                None => bail!(
                    "{} is neither JMA XML nor DM-D.S.S eew-information JSON",
                    path.display()
                ),
            }
        }
    }
    if out.is_empty() {
        bail!("no telegram to send");
    }
    Ok(out)
}

fn telegram_in(path: &Path) -> anyhow::Result<Option<SimTelegram>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if !matches!(
        eew_core::telegram::detect(&bytes),
        Some(Format::JmaXml | Format::DmdataJson)
    ) {
        return Ok(None);
    }
    let issued = eew_core::parse(&bytes)
        .ok()
        .and_then(|r| r.issued_at)
        .map(|t| t.0.naive_local());
    Ok(Some(SimTelegram {
        bytes,
        source: path.display().to_string(),
        issued,
    }))
}

fn iso_now() -> String {
    now_utc().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Gzip, deterministically (no file name, mtime 0).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    if enc.write_all(bytes).is_err() {
        return Vec::new();
    }
    enc.finish().unwrap_or_default()
}

/// The `data` message for one telegram, in the documented envelope.
pub fn data_message(bytes: &[u8]) -> Value {
    let report = eew_core::parse(bytes).ok();
    let is_xml = eew_core::telegram::detect(bytes) == Some(Format::JmaXml);
    let text = String::from_utf8_lossy(bytes);
    let product = report.as_ref().map(|r| r.product).or_else(|| {
        [
            ("（警報）", Product::Vxse43),
            ("（予報）", Product::Vxse44),
            ("（地震動予報）", Product::Vxse45),
            ("配信テスト", Product::Vxse42),
        ]
        .into_iter()
        .find(|(needle, _)| text.contains(needle))
        .map(|(_, p)| p)
    });
    let (data_type, title) = match product {
        Some(Product::Vxse42) => ("VXSE42", "緊急地震速報（配信テスト）"),
        Some(Product::Vxse43) => ("VXSE43", "緊急地震速報（警報）"),
        Some(Product::Vxse44) => ("VXSE44", "緊急地震速報（予報）"),
        _ => ("VXSE45", "緊急地震速報（地震動予報）"),
    };
    let classification = if data_type == "VXSE43" {
        "eew.warning"
    } else {
        "eew.forecast"
    };
    let issued = report.as_ref().and_then(|r| r.issued_at);
    let issued_utc = issued
        .map(|t| {
            t.0.with_timezone(&Utc)
                .to_rfc3339_opts(SecondsFormat::Millis, true)
        })
        .unwrap_or_else(iso_now);
    let status = report.as_ref().map_or("通常", |r| match r.status {
        Status::Normal => "通常",
        Status::Training => "訓練",
        Status::Test => "試験",
    });
    let xml_report = json!({
        "control": {
            "title": title,
            "dateTime": issued_utc.replace(".000Z", "Z"),
            "status": status,
            "editorialOffice": "気象庁本庁",
            "publishingOffice": "気象庁",
        },
        "head": {
            "title": title,
            "reportDateTime": issued.map(|t| t.to_rfc3339()),
            "targetDateTime": issued.map(|t| t.to_rfc3339()),
            "eventId": report.as_ref().map(|r| r.event_id.as_str().to_owned()),
            "serial": report.as_ref().map(|r| r.serial.to_string()),
            "infoType": report.as_ref().map_or("発表", |r| match r.info_type {
                InfoType::Issued => "発表",
                InfoType::Correction => "訂正",
                InfoType::Cancel => "取消",
            }),
            "infoKind": "緊急地震速報",
            "infoKindVersion": "1.0_0",
            "headline": null,
        },
    });
    let compressed = gzip(bytes);
    json!({
        "type": "data",
        "version": "2.0",
        "classification": classification,
        "id": crate::inputs::dmdata::hex(&Sha384::digest(&compressed)),
        "passing": [
            { "name": "sim-ingest", "time": iso_now() },
            { "name": "websocket-sim", "time": iso_now() },
        ],
        "head": {
            "type": data_type,
            "author": "RJTD",
            "time": issued_utc,
            "designation": null,
            "test": status != "通常",
            "xml": is_xml,
        },
        "xmlReport": xml_report,
        "format": if is_xml { "xml" } else { "json" },
        "compression": "gzip",
        "encoding": "base64",
        "body": base64::engine::general_purpose::STANDARD.encode(&compressed),
    })
}

/// A data message whose body is not gzip (its own id).
fn bad_body_message(n: u64) -> Value {
    let body = format!("this is not gzip #{n}");
    json!({
        "type": "data",
        "version": "2.0",
        "classification": "eew.forecast",
        "id": crate::inputs::dmdata::hex(&Sha384::digest(body.as_bytes())),
        "passing": [],
        "head": { "type": "VXSE45", "author": "RJTD", "time": iso_now(), "designation": null, "test": false, "xml": true },
        "format": "xml",
        "compression": "gzip",
        "encoding": "base64",
        "body": base64::engine::general_purpose::STANDARD.encode(body.as_bytes()),
    })
}

/// One frame of a published item.
#[derive(Clone, Debug)]
enum Frame {
    /// A data message (counted).
    Data {
        text: String,
        id: String,
        source: String,
        duplicate: bool,
    },
    /// Anything else (bad body, garbage).
    Extra(Message),
}

/// What is published at once.
type Item = Arc<Vec<Frame>>;

struct TicketInfo {
    created: Instant,
    used: bool,
    socket_id: u64,
    request: Value,
}

struct Server {
    options: DmdataSimOptions,
    addr: SocketAddr,
    tickets: Mutex<HashMap<String, TicketInfo>>,
    sockets: Mutex<HashMap<u64, mpsc::Sender<u16>>>,
    next_socket: AtomicU64,
    rng: Mutex<Rng>,
    publish: broadcast::Sender<Item>,
    first_start: Notify,
}

impl Server {
    fn open_sockets(&self) -> usize {
        self.sockets.lock().map(|s| s.len()).unwrap_or(0)
    }
}

/// `eewgate sim dmdata`.
pub async fn run(args: &DmdataSimArgs) -> anyhow::Result<()> {
    let plan = ReplayPlan {
        interval: Duration::from_millis(args.interval_ms),
        at_original_times: args.at_original_times,
        speed: args.speed,
        start_delay: Duration::from_millis(args.start_delay_ms),
        duplicate: args.duplicate,
        reorder: args.reorder,
        garbage: args.garbage,
        passes: (!args.forever).then_some(args.repeat),
    };
    if !(args.speed.is_finite() && args.speed > 0.0) {
        bail!("--speed must be a positive number, not {}", args.speed);
    }
    if !(0.0..=1.0).contains(&args.duplicate) {
        bail!(
            "--duplicate is a probability between 0 and 1, not {}",
            args.duplicate
        );
    }
    for (what, s) in [
        ("--ping-interval-s", args.ping_interval_s),
        ("--pong-timeout-s", args.pong_timeout_s),
    ] {
        if !(s.is_finite() && s > 0.0 && s < 1e6) {
            bail!("{what} must be a number of seconds above 0, not {s}");
        }
    }
    let telegrams = load_telegrams(&args.files)?;
    let listener = TcpListener::bind(&args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let addr = listener.local_addr()?;
    print_line(&json!({ "listening": format!("http://{addr}") }));
    let seed = args.seed.unwrap_or_else(|| {
        let now = now_utc();
        u64::try_from(now.timestamp()).unwrap_or(0) ^ u64::from(now.timestamp_subsec_nanos())
    });
    let (events, mut printed) = mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        while let Some(event) = printed.recv().await {
            print_line(&event);
        }
    });
    let options = DmdataSimOptions {
        telegrams: Arc::new(telegrams),
        plan,
        api_key: args.api_key.clone(),
        ping_interval: Duration::from_secs_f64(args.ping_interval_s),
        pong_timeout: Duration::from_secs_f64(args.pong_timeout_s),
        bad_body: args.bad_body,
        drop_after: args.drop_after,
        restart_after: args.restart_after,
        max_sockets: args.max_sockets,
        ticket_ttl: Duration::from_secs(args.ticket_ttl_s),
        seed,
        events: Some(events),
    };
    serve(listener, options).await
}

/// Prints one JSON line on stdout (a closed stdout is ignored).
fn print_line(value: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// Serves the API and the WebSocket on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, options: DmdataSimOptions) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let (publish, _) = broadcast::channel(1024);
    let server = Arc::new(Server {
        rng: Mutex::new(Rng::new(options.seed)),
        options,
        addr,
        tickets: Mutex::new(HashMap::new()),
        sockets: Mutex::new(HashMap::new()),
        next_socket: AtomicU64::new(1),
        publish,
        first_start: Notify::new(),
    });
    tokio::spawn(publisher(server.clone()));
    let app = Router::new()
        .route("/v2/socket", post(socket_start))
        .route("/v2/socket/{id}", delete(socket_close))
        .route("/v2/websocket", get(websocket))
        .with_state(server);
    axum::serve(listener, app)
        .await
        .context("serving the simulator")
}

/// Plays the sequence to every open socket, from the first socket's start.
async fn publisher(server: Arc<Server>) {
    server.first_start.notified().await;
    let options = &server.options;
    let player = Player::new(&options.telegrams, options.plan.clone(), options.seed);
    let mut n: u64 = 0;
    let mut bad: u64 = 0;
    for step in player {
        tokio::time::sleep(step.delay).await;
        let Some(telegram) = options.telegrams.get(step.index) else {
            continue;
        };
        let mut frames = Vec::new();
        if options.bad_body {
            bad += 1;
            frames.push(Frame::Extra(Message::text(
                bad_body_message(bad).to_string(),
            )));
        }
        match step.decor {
            Decor::Noise => frames.push(Frame::Extra(Message::text("+++ LINE NOISE +++ ATH0"))),
            Decor::Junk => frames.push(Frame::Extra(Message::binary(
                b"\x00\x01\x02\x1b[2J\xff\xfe binary junk".to_vec(),
            ))),
            _ => {}
        }
        let message = data_message(&telegram.bytes);
        let id = message
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        frames.push(Frame::Data {
            text: message.to_string(),
            id: id.clone(),
            source: telegram.source.clone(),
            duplicate: step.duplicate,
        });
        n += 1;
        options.emit(json!({
            "event": "published", "n": n, "id": id, "source": telegram.source,
            "duplicate": step.duplicate, "sockets": server.open_sockets(),
        }));
        let _ = server.publish.send(Arc::new(frames));
    }
    options.emit(json!({ "event": "end_of_sequence", "published": n }));
}

fn error_body(status: StatusCode, message: &str) -> Response {
    let body = json!({
        "responseId": format!("{:016x}", now_utc().timestamp_nanos_opt().unwrap_or(0)),
        "responseTime": iso_now(),
        "status": "error",
        "error": { "message": message, "code": status.as_u16() },
    });
    (status, axum::Json(body)).into_response()
}

/// The API key in a request: Basic user, Bearer token, or `?key=`.
fn presented_key(headers: &HeaderMap, query: &HashMap<String, String>) -> Option<String> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(b64) = value.strip_prefix("Basic ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            return Some(text.split(':').next().unwrap_or_default().to_owned());
        }
        if let Some(token) = value.strip_prefix("Bearer ") {
            return Some(token.trim().to_owned());
        }
        return None;
    }
    query.get("key").cloned()
}

fn authorized(server: &Server, headers: &HeaderMap, query: &HashMap<String, String>) -> bool {
    match (presented_key(headers, query), &server.options.api_key) {
        (Some(k), Some(expected)) => !k.is_empty() && &k == expected,
        (Some(k), None) => !k.is_empty(),
        (None, _) => false,
    }
}

/// `POST /v2/socket` (Socket Start v2).
async fn socket_start(
    State(server): State<Arc<Server>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let options = &server.options;
    let refuse = |status: StatusCode, message: &str| {
        options.emit(
            json!({ "event": "ticket_refused", "status": status.as_u16(), "reason": message }),
        );
        error_body(status, message)
    };
    if !authorized(&server, &headers, &query) {
        return refuse(StatusCode::UNAUTHORIZED, "Authorization required.");
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The body of the request is not json.",
        );
    };
    let classifications: Vec<String> = request
        .get("classifications")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if classifications.is_empty() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "At least one element of `classifications` is required.",
        );
    }
    let types = request.get("types").cloned().unwrap_or(Value::Null);
    let types_ok = match &types {
        Value::Null => true,
        Value::Array(a) => a.len() <= 30 && a.iter().all(Value::is_string),
        _ => false,
    };
    if !types_ok {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The `types` is not a string or has more than 30 elements.",
        );
    }
    let app_name = request.get("appName").cloned().unwrap_or(Value::Null);
    if !(app_name.is_null() || app_name.as_str().is_some_and(|s| s.len() <= 24)) {
        return refuse(StatusCode::BAD_REQUEST, "The `appName` is up to 24 bytes.");
    }
    let format_mode = request
        .get("formatMode")
        .and_then(Value::as_str)
        .unwrap_or("raw");
    if !matches!(format_mode, "raw" | "json") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "You have entered a string that is not defined in `formatMode`.",
        );
    }
    if options
        .max_sockets
        .is_some_and(|m| server.open_sockets() >= m)
    {
        return refuse(
            StatusCode::CONFLICT,
            "The maximum number of simultaneous connections is full.",
        );
    }
    let socket_id = server.next_socket.fetch_add(1, Ordering::Relaxed);
    let ticket = {
        let mut rng = server.rng.lock().unwrap_or_else(|e| e.into_inner());
        (0..4)
            .map(|_| format!("{:016x}", rng.next_u64()))
            .collect::<String>()
    };
    let test = request
        .get("test")
        .and_then(Value::as_str)
        .unwrap_or("no")
        .to_owned();
    let formats = if format_mode == "json" {
        json!(["json"])
    } else {
        json!(["xml", "a/n", "binary"])
    };
    let start = json!({
        "type": "start",
        "socketId": socket_id,
        "classifications": classifications,
        "types": types,
        "test": test,
        "formats": formats,
        "appName": app_name,
    });
    let answer = json!({
        "responseId": format!("{socket_id:016x}"),
        "responseTime": iso_now(),
        "status": "ok",
        "ticket": ticket,
        "websocket": {
            "id": socket_id,
            "url": format!("ws://{}/v2/websocket?ticket={ticket}", server.addr),
            "protocol": ["dmdata.v2"],
            "expiration": server.options.ticket_ttl.as_secs(),
        },
        "classifications": classifications,
        "test": test,
        "types": types,
        "formats": formats,
        "appName": app_name,
    });
    if let Ok(mut tickets) = server.tickets.lock() {
        let ttl = options.ticket_ttl;
        tickets.retain(|_, t| !t.used && t.created.elapsed() <= ttl);
        tickets.insert(
            ticket,
            TicketInfo {
                created: Instant::now(),
                used: false,
                socket_id,
                request: start,
            },
        );
    }
    options
        .emit(json!({ "event": "ticket", "socket_id": socket_id, "test": test, "types": types }));
    axum::Json(answer).into_response()
}

/// `DELETE /v2/socket/{id}` (Socket Close v2).
async fn socket_close(
    State(server): State<Arc<Server>>,
    UrlPath(id): UrlPath<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&server, &headers, &query) {
        return error_body(StatusCode::UNAUTHORIZED, "Authorization required.");
    }
    let sender = id
        .parse::<u64>()
        .ok()
        .and_then(|id| server.sockets.lock().ok().and_then(|s| s.get(&id).cloned()));
    match sender {
        Some(tx) => {
            let _ = tx.try_send(4808);
            server
                .options
                .emit(json!({ "event": "socket_closed_by_api", "socket_id": id }));
            StatusCode::NO_CONTENT.into_response()
        }
        None => error_body(StatusCode::NOT_FOUND, "Socket ID not found."),
    }
}

/// `GET /v2/websocket?ticket=…`.
async fn websocket(
    State(server): State<Arc<Server>>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let ticket = query.get("ticket").cloned().unwrap_or_default();
    upgrade
        .protocols(["dmdata.v2"])
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| async move {
            let (code, reason) = serve_socket(socket, &server, &ticket).await;
            server
                .options
                .emit(json!({ "event": "closed", "code": code, "reason": reason }));
        })
}

/// Sends an `error` message and a close frame with its code.
async fn refuse_socket(socket: &mut WebSocket, code: u16, message: &str) {
    let error = json!({ "type": "error", "error": message, "code": code, "close": true });
    let _ = socket.send(Message::text(error.to_string())).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: message.into(),
        })))
        .await;
    // Finish the closing handshake (bounded), so that the client reads everything sent
    // before the connection goes (closing with unread input would reset it).
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(m)) = socket.recv().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

struct Registered<'a> {
    server: &'a Server,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.server.sockets.lock() {
            s.remove(&self.id);
        }
    }
}

/// One socket, from its upgrade to its end: returns the close code (0: dropped) and why.
async fn serve_socket(mut socket: WebSocket, server: &Server, ticket: &str) -> (u16, String) {
    let options = &server.options;
    let has_protocol = socket
        .protocol()
        .is_some_and(|p| p.as_bytes() == b"dmdata.v2");
    let claimed = server.tickets.lock().ok().and_then(|mut t| {
        let info = t.get_mut(ticket)?;
        let fresh = !info.used && info.created.elapsed() <= options.ticket_ttl;
        info.used = true;
        fresh.then(|| (info.socket_id, info.request.clone()))
    });
    if !has_protocol {
        refuse_socket(
            &mut socket,
            4400,
            "The WebSocket protocol dmdata.v2 is required.",
        )
        .await;
        return (4400, "no dmdata.v2 subprotocol".into());
    }
    let Some((socket_id, mut start)) = claimed else {
        refuse_socket(&mut socket, 4404, "The ticket is invalid.").await;
        return (4404, "invalid ticket".into());
    };
    let (close_tx, mut close_rx) = mpsc::channel::<u16>(1);
    let admitted = match server.sockets.lock() {
        Ok(mut sockets) if options.max_sockets.is_none_or(|m| sockets.len() < m) => {
            sockets.insert(socket_id, close_tx);
            true
        }
        _ => false,
    };
    if !admitted {
        refuse_socket(
            &mut socket,
            4409,
            "The maximum number of simultaneous connections is full.",
        )
        .await;
        return (4409, "too many sockets".into());
    }
    let _registered = Registered {
        server,
        id: socket_id,
    };
    let mut published = server.publish.subscribe();
    options.emit(json!({ "event": "connected", "socket_id": socket_id }));
    if let Some(obj) = start.as_object_mut() {
        obj.insert("time".into(), Value::String(iso_now()));
    }
    if socket.send(Message::text(start.to_string())).await.is_err() {
        return (0, "client gone before start".into());
    }
    options.emit(json!({ "event": "start", "socket_id": socket_id }));
    server.first_start.notify_one();
    let mut next_ping = Instant::now() + options.ping_interval;
    let mut pings: u64 = 0;
    // (pingId, sent at, deadline) of the latest ping not yet answered
    let mut waiting: Option<(String, Instant, Instant)> = None;
    let mut sent: u64 = 0;
    loop {
        let deadline = waiting.as_ref().map(|(_, _, d)| *d);
        tokio::select! {
            item = published.recv() => {
                let item = match item {
                    Ok(item) => item,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        options.emit(json!({ "event": "lagged", "socket_id": socket_id, "missed": n }));
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => continue,
                };
                for frame in item.iter() {
                    match frame {
                        Frame::Extra(m) => {
                            if socket.send(m.clone()).await.is_err() {
                                return (0, "client gone".into());
                            }
                        }
                        Frame::Data { text, id, source, duplicate } => {
                            if socket.send(Message::text(text.clone())).await.is_err() {
                                return (0, "client gone".into());
                            }
                            sent += 1;
                            options.emit(json!({
                                "event": "sent", "socket_id": socket_id, "n": sent, "id": id,
                                "source": source, "duplicate": duplicate,
                            }));
                            if options.drop_after.is_some_and(|n| sent >= n) {
                                options.emit(json!({ "event": "dropped", "socket_id": socket_id, "after": sent }));
                                return (0, "dropped".into());
                            }
                            if options.restart_after.is_some_and(|n| sent >= n) {
                                options.emit(json!({ "event": "restart", "socket_id": socket_id, "after": sent }));
                                refuse_socket(&mut socket, 4503, "Server restart.").await;
                                return (4503, "restart".into());
                            }
                        }
                    }
                }
            }
            () = tokio::time::sleep_until(next_ping) => {
                pings += 1;
                let ping_id = format!("{socket_id}-{pings}");
                let ping = json!({ "type": "ping", "pingId": ping_id });
                if socket.send(Message::text(ping.to_string())).await.is_err() {
                    return (0, "client gone".into());
                }
                let now = Instant::now();
                let due = waiting.as_ref().map_or(now + options.pong_timeout, |(_, _, d)| *d);
                waiting = Some((ping_id.clone(), now, due));
                next_ping = now + options.ping_interval;
                options.emit(json!({ "event": "ping", "socket_id": socket_id, "ping_id": ping_id }));
            }
            () = sleep_until_opt(deadline) => {
                options.emit(json!({ "event": "pong_missed", "socket_id": socket_id }));
                refuse_socket(&mut socket, 4891, "Ping timeout.").await;
                return (4891, "pong missed".into());
            }
            code = close_rx.recv() => {
                let code = code.unwrap_or(4808);
                refuse_socket(&mut socket, code, "The WebSocket was closed by the user.").await;
                return (code, "closed by API".into());
            }
            incoming = socket.recv() => {
                let message = match incoming {
                    None => return (0, "closed by the client".into()),
                    Some(Err(e)) => return (0, format!("read failed: {e}")),
                    Some(Ok(m)) => m,
                };
                let text = match message {
                    Message::Text(t) => t,
                    Message::Close(frame) => {
                        let code = frame.map_or(1005, |f| f.code);
                        return (code, "closed by the client".into());
                    }
                    Message::Binary(_) => {
                        refuse_socket(&mut socket, 4641, "Invalid data.").await;
                        return (4641, "binary from the client".into());
                    }
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
                    refuse_socket(&mut socket, 4641, "Invalid data.").await;
                    return (4641, "not JSON".into());
                };
                match value.get("type").and_then(Value::as_str) {
                    Some("pong") => {
                        let got = value.get("pingId").and_then(Value::as_str).unwrap_or_default();
                        match &waiting {
                            Some((expected, sent_at, _)) if expected == got => {
                                let ms = u64::try_from(sent_at.elapsed().as_millis()).unwrap_or(u64::MAX);
                                options.emit(json!({ "event": "pong", "socket_id": socket_id, "ping_id": got, "ms": ms }));
                                waiting = None;
                            }
                            _ => {
                                options.emit(json!({ "event": "pong_mismatch", "socket_id": socket_id, "ping_id": got }));
                                refuse_socket(&mut socket, 4640, "The pingId does not match.").await;
                                return (4640, "wrong pingId".into());
                            }
                        }
                    }
                    Some("ping") => {
                        let mut pong = json!({ "type": "pong" });
                        if let (Some(obj), Some(id)) = (pong.as_object_mut(), value.get("pingId")) {
                            obj.insert("pingId".into(), id.clone());
                        }
                        options.emit(json!({ "event": "client_ping", "socket_id": socket_id }));
                        if socket.send(Message::text(pong.to_string())).await.is_err() {
                            return (0, "client gone".into());
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_has_the_documented_fields_and_a_decodable_body() {
        let xml = std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../core/tests/fixtures/telegrams/jmaxml_vxse44_20240417_bungo_36_01_01_serial1_forecast.xml"),
        )
        .unwrap();
        let m = data_message(&xml);
        for key in [
            "type",
            "version",
            "id",
            "classification",
            "passing",
            "head",
            "xmlReport",
            "format",
            "compression",
            "encoding",
            "body",
        ] {
            assert!(m.get(key).is_some(), "{key}");
        }
        assert_eq!(m["head"]["type"], "VXSE44");
        assert_eq!(m["classification"], "eew.forecast");
        assert_eq!(m["xmlReport"]["head"]["eventId"], "20240417231454");
        assert_eq!(m["id"].as_str().map(str::len), Some(96));
        let Ok(crate::inputs::dmdata::Incoming::Data(d)) =
            crate::inputs::dmdata::parse_message(&m.to_string())
        else {
            panic!("not data");
        };
        assert_eq!(d.body, xml);
        assert!(d.id_matches);
        assert_eq!(data_message(&xml)["id"], m["id"], "ids are deterministic");
    }
}
