//! The JMA code-telegram stream simulator: `eewgate sim jma-tcp` and `sim jma-serial`.
//!
//! **What it replays.** Each FILE is split with the same [`StreamSplitter`] the links use,
//! so a file may hold one telegram (the fixture corpus) or a whole recorded stream; a
//! directory stands for its files in name order (files without a code telegram, such as
//! `.expected.json`, are skipped there, but a named file without one is an error). The
//! sequence is played `--repeat N` times (`--loop`: forever), to every TCP client from the
//! start, or once into the pty.
//!
//! **Timing.** `--interval-ms` between telegrams (default 1000), or `--at-original-times`:
//! the gaps between the telegrams' issue times (the header's `yymmddhhmmss`) divided by
//! `--speed`; a gap that is negative (reordered) counts as 0 and one over an hour (another
//! event) as the interval. `--start-delay-ms` before the first telegram of a connection.
//!
//! **Faults.** `--duplicate P` sends each telegram a second time with probability P;
//! `--reorder` swaps each pair of neighbours with probability ½; `--garbage` puts noise
//! lines, binary junk, JMBSC katakana title lines (Shift_JIS), blank lines or CRLF line
//! ends around telegrams (only noise and junk are garbage to a receiver: titles, blank
//! lines and CRLF are part of a well-formed stream); `--drop-after N` closes a connection
//! after N sends (a link drop); `--max-connections N` stops accepting after N clients, so
//! a dropped link stays down. `--seed` makes the random choices repeatable (each
//! connection uses seed + its number).
//!
//! **JMA socket** (`--framing jma-socket`): each telegram is a `BI` message (`bI` with
//! `--checkpoint`, which the receiver must acknowledge) with a 20-byte BCH; noise goes in
//! `AN` messages of its own; a title line goes inside the `BI` body. Every
//! `--health-interval-s` (default 10, 0 = never) the server sends `00000003ENchk` and
//! closes the connection when `00000003ENCHK` has not come back within
//! `--health-timeout-s` (default 5). It answers the client's own health checks.
//!
//! **Events** (JSON lines on stdout, after the address line): `connected`, `sent` (with
//! `n`, `source`, `duplicate`, `decor`), `health_check`, `health_answer` (with `ms`),
//! `health_missed`, `ack`, `dropped`, `end_of_sequence`, `closed` (with `reason`),
//! `listener_closed`; every event but the last names the client as `peer`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::NaiveDateTime;
use eew_core::telegram::framing::{
    self, FramingKind, HEALTH_ANSWER, HEALTH_CHECK, MessageType, SocketDecoder, encode, encode_bch,
};
use eew_core::telegram::stream::{Frame, StreamSplitter, probe_header};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::system::clock::now_utc;

/// Where the simulator's events go (the CLI prints them as JSON lines).
pub type EventSink = mpsc::UnboundedSender<Value>;

/// Replay options shared by `jma-tcp` and `jma-serial`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Telegram files, or directories of them (read in name order); a file may hold a
    /// whole recorded stream.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Milliseconds between telegrams.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub interval_ms: u64,
    /// Space telegrams by their issue times instead (scaled by --speed).
    #[arg(long)]
    pub at_original_times: bool,
    /// Speed-up for --at-original-times (2 = twice as fast).
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    pub speed: f64,
    /// Milliseconds to wait before the first telegram of a connection.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub start_delay_ms: u64,
    /// Probability of sending a telegram twice.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub duplicate: f64,
    /// Swap neighbouring telegrams at random.
    #[arg(long)]
    pub reorder: bool,
    /// Put noise, junk, title lines, blank lines and CRLF around telegrams.
    #[arg(long)]
    pub garbage: bool,
    /// Play the sequence this many times.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: u32,
    /// Play the sequence forever.
    #[arg(long = "loop")]
    pub forever: bool,
    /// Seed of the random choices (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// `eewgate sim jma-tcp`.
#[derive(Debug, clap::Args)]
pub struct JmaTcpArgs {
    #[command(flatten)]
    replay: ReplayArgs,
    /// Address to listen on; port 0 picks a free one (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    bind: String,
    /// Wire framing.
    #[arg(long, value_enum, default_value_t = SimFraming::Plain)]
    framing: SimFraming,
    /// Seconds between health checks (jma-socket; 0 = none).
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    health_interval_s: f64,
    /// Seconds to wait for a health-check answer before closing the connection.
    #[arg(long, default_value_t = 5.0, value_name = "S")]
    health_timeout_s: f64,
    /// Send telegrams as checkpoint messages (bI) that must be acknowledged (jma-socket).
    #[arg(long)]
    checkpoint: bool,
    /// Close each connection after this many sends (a link drop).
    #[arg(long, value_name = "N")]
    drop_after: Option<u64>,
    /// Stop accepting connections after this many.
    #[arg(long, value_name = "N")]
    max_connections: Option<u64>,
    /// Close each connection once its sequence has been played.
    #[arg(long)]
    close_at_end: bool,
}

/// `eewgate sim jma-serial`.
#[derive(Debug, clap::Args)]
pub struct JmaSerialArgs {
    #[command(flatten)]
    replay: ReplayArgs,
}

/// `--framing` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SimFraming {
    /// The bare telegram stream.
    Plain,
    /// JMA's socket procedure.
    JmaSocket,
}

impl From<SimFraming> for FramingKind {
    fn from(f: SimFraming) -> Self {
        match f {
            SimFraming::Plain => FramingKind::Plain,
            SimFraming::JmaSocket => FramingKind::JmaSocket,
        }
    }
}

/// One telegram to replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimTelegram {
    /// Its bytes (title line included when the source had one).
    pub bytes: Vec<u8>,
    /// The file it came from.
    pub source: String,
    /// Issue time from the header (`yymmddhhmmss`), JST.
    pub issued: Option<NaiveDateTime>,
}

/// Reads the telegrams of files and directories (see the module docs).
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
                let found = telegrams_in(&file)?;
                if found.is_empty() {
                    tracing::debug!(file = %file.display(), "no code telegram; skipped");
                }
                out.extend(found);
            }
        } else {
            let found = telegrams_in(path)?;
            if found.is_empty() {
                bail!("{} holds no JMA code telegram", path.display());
            }
            out.extend(found);
        }
    }
    if out.is_empty() {
        bail!("no telegram to replay");
    }
    Ok(out)
}

fn telegrams_in(path: &Path) -> anyhow::Result<Vec<SimTelegram>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut splitter = StreamSplitter::new();
    let mut frames = splitter.push(&bytes);
    frames.extend(splitter.flush());
    let source = path.display().to_string();
    Ok(frames
        .into_iter()
        .filter_map(|f| match f {
            Frame::Telegram(bytes) => Some(SimTelegram {
                issued: issue_time(&bytes),
                bytes,
                source: source.clone(),
            }),
            Frame::Garbage { .. } => None,
        })
        .collect())
}

/// The issue time in a code telegram's header (also when its line breaks arrived
/// escaped as `\n`).
pub fn issue_time(telegram: &[u8]) -> Option<NaiveDateTime> {
    let header = telegram
        .split(|&b| b == b'\n' || b == b'\r')
        .find(|line| probe_header(line, true) == Some(true))?;
    let token = header
        .split(|b| b.is_ascii_whitespace() || *b == b'\\')
        .filter(|t| !t.is_empty())
        .nth(3)?;
    NaiveDateTime::parse_from_str(std::str::from_utf8(token).ok()?, "%y%m%d%H%M%S").ok()
}

/// A small deterministic generator (xorshift64*), enough for fault injection.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded; any seed works (0 included).
    pub fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        // 53 random bits as the mantissa.
        let bits = self.next_u64() >> 11;
        f64::from(u32::try_from(bits >> 21).unwrap_or(0)) * 2f64.powi(-32)
            + f64::from(u32::try_from(bits & 0x1f_ffff).unwrap_or(0)) * 2f64.powi(-53)
    }

    /// Uniform in 0..n (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        let n64 = u64::try_from(n).unwrap_or(u64::MAX);
        if n64 == 0 {
            return 0;
        }
        usize::try_from(self.next_u64() % n64).unwrap_or(0)
    }
}

/// A seed from the clock.
fn clock_seed() -> u64 {
    let now = now_utc();
    u64::try_from(now.timestamp()).unwrap_or(0) ^ (u64::from(now.timestamp_subsec_nanos()) << 20)
}

/// How a telegram is dressed on the wire (`--garbage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decor {
    /// As it is, LF after it.
    Bare,
    /// An ASCII noise line before it (garbage to a receiver).
    Noise,
    /// A line of binary junk before it (garbage to a receiver).
    Junk,
    /// A JMBSC katakana title line and a blank line before it.
    Title,
    /// Blank lines before it.
    Blank,
    /// CRLF line ends.
    Crlf,
}

impl Decor {
    const ALL: [Decor; 6] = [
        Decor::Bare,
        Decor::Noise,
        Decor::Junk,
        Decor::Title,
        Decor::Blank,
        Decor::Crlf,
    ];

    /// The name used in `sent` events.
    pub fn as_str(self) -> &'static str {
        match self {
            Decor::Bare => "bare",
            Decor::Noise => "noise",
            Decor::Junk => "junk",
            Decor::Title => "title",
            Decor::Blank => "blank",
            Decor::Crlf => "crlf",
        }
    }

    /// Whether a receiver should report garbage for it.
    pub fn is_garbage(self) -> bool {
        matches!(self, Decor::Noise | Decor::Junk)
    }
}

/// ｷﾝｷｭｳｼﾞｼﾝｿｸﾎｳ in JIS X 0201 bytes, as a JMBSC line sends the title.
pub const TITLE_SJIS: &[u8] = b"\xB7\xDD\xB7\xAD\xB3\xBC\xDE\xBC\xDD\xBF\xB8\xCE\xB3";
const NOISE: &[u8] = b"+++ LINE NOISE +++ ATH0\r\n";
const JUNK: &[u8] = b"\x00\x01\x02\x1b[2J\xff\xfe binary junk \x7f\r\n";

fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 32);
    let mut prev = 0u8;
    for &b in bytes {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// The bytes to write for one telegram, as a list of writes (a JMA socket message each,
/// or one stream chunk).
pub fn wire_units(
    telegram: &[u8],
    decor: Decor,
    framing: FramingKind,
    checkpoint: bool,
) -> Vec<Vec<u8>> {
    let (before, body, after): (&[u8], Vec<u8>, &[u8]) = match decor {
        Decor::Bare => (b"", telegram.to_vec(), b"\n"),
        Decor::Noise => (NOISE, telegram.to_vec(), b"\n"),
        Decor::Junk => (JUNK, telegram.to_vec(), b"\n"),
        Decor::Title => (b"", [TITLE_SJIS, b"\r\n\r\n", telegram].concat(), b"\r\n"),
        Decor::Blank => (b"\r\n\r\n\r\n", telegram.to_vec(), b"\n"),
        Decor::Crlf => (b"", crlf(telegram), b"\r\n"),
    };
    match framing {
        FramingKind::Plain => vec![[before, &body[..], after].concat()],
        FramingKind::JmaSocket => {
            let mut units = Vec::new();
            if !before.is_empty() && decor.is_garbage() {
                units.extend(encode(MessageType::TEXT, before).ok());
            }
            let bi = MessageType {
                kind: framing::MessageKind::Binary,
                checkpoint,
            };
            let payload = [&encode_bch(0)[..], &body[..]].concat();
            units.extend(encode(bi, &payload).ok());
            units
        }
    }
}

/// The replay schedule's settings.
#[derive(Clone, Debug)]
pub struct ReplayPlan {
    /// Gap between telegrams.
    pub interval: Duration,
    /// Use the issue-time gaps instead.
    pub at_original_times: bool,
    /// Divides the issue-time gaps.
    pub speed: f64,
    /// Wait before the first telegram.
    pub start_delay: Duration,
    /// Probability of a second copy.
    pub duplicate: f64,
    /// Swap neighbours at random.
    pub reorder: bool,
    /// Dress telegrams at random.
    pub garbage: bool,
    /// How many passes (`None`: forever).
    pub passes: Option<u32>,
}

impl ReplayPlan {
    /// From the command line, checked.
    pub fn from_args(args: &ReplayArgs) -> anyhow::Result<Self> {
        if !(args.speed.is_finite() && args.speed > 0.0) {
            bail!("--speed must be a positive number, not {}", args.speed);
        }
        if !(0.0..=1.0).contains(&args.duplicate) {
            bail!(
                "--duplicate is a probability between 0 and 1, not {}",
                args.duplicate
            );
        }
        Ok(Self {
            interval: Duration::from_millis(args.interval_ms),
            at_original_times: args.at_original_times,
            speed: args.speed,
            start_delay: Duration::from_millis(args.start_delay_ms),
            duplicate: args.duplicate,
            reorder: args.reorder,
            garbage: args.garbage,
            passes: (!args.forever).then_some(args.repeat),
        })
    }

    /// A plain schedule: every telegram once, `interval` apart, nothing injected.
    pub fn simple(interval: Duration) -> Self {
        Self {
            interval,
            at_original_times: false,
            speed: 1.0,
            start_delay: Duration::ZERO,
            duplicate: 0.0,
            reorder: false,
            garbage: false,
            passes: Some(1),
        }
    }
}

/// One send of the schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// Wait before it.
    pub delay: Duration,
    /// Which telegram.
    pub index: usize,
    /// A second copy of the previous send.
    pub duplicate: bool,
    /// How it is dressed.
    pub decor: Decor,
}

/// The schedule as an iterator of sends.
#[derive(Clone, Debug)]
pub struct Player {
    issued: Vec<Option<NaiveDateTime>>,
    plan: ReplayPlan,
    rng: Rng,
    pass: u32,
    order: Vec<usize>,
    pos: usize,
    previous: Option<usize>,
    again: Option<usize>,
}

impl Player {
    /// Plays `telegrams` by `plan` with random choices from `seed`.
    pub fn new(telegrams: &[SimTelegram], plan: ReplayPlan, seed: u64) -> Self {
        let mut player = Self {
            issued: telegrams.iter().map(|t| t.issued).collect(),
            plan,
            rng: Rng::new(seed),
            pass: 0,
            order: Vec::new(),
            pos: 0,
            previous: None,
            again: None,
        };
        player.shuffle();
        player
    }

    fn shuffle(&mut self) {
        self.order = (0..self.issued.len()).collect();
        if self.plan.reorder {
            for pair in self.order.chunks_mut(2) {
                if self.rng.unit() < 0.5 {
                    pair.reverse();
                }
            }
        }
        self.pos = 0;
    }

    fn gap(&self, from: usize, to: usize) -> Duration {
        let issued = |i: usize| self.issued.get(i).copied().flatten();
        let (Some(a), Some(b)) = (issued(from), issued(to)) else {
            return self.plan.interval;
        };
        let ms = (b - a).num_milliseconds();
        if ms <= 0 {
            Duration::ZERO
        } else if ms > 3_600_000 {
            self.plan.interval
        } else {
            Duration::from_millis(u64::try_from(ms).unwrap_or(0)).div_f64(self.plan.speed)
        }
    }
}

impl Iterator for Player {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        if let Some(index) = self.again.take() {
            return Some(Step {
                delay: Duration::ZERO,
                index,
                duplicate: true,
                decor: Decor::Bare,
            });
        }
        if self.pos >= self.order.len() {
            self.pass += 1;
            if self.plan.passes.is_some_and(|p| self.pass >= p) || self.order.is_empty() {
                return None;
            }
            self.shuffle();
        }
        let index = *self.order.get(self.pos)?;
        let delay = match self.previous {
            None => self.plan.start_delay,
            Some(prev) if self.plan.at_original_times && self.pos > 0 => self.gap(prev, index),
            Some(_) => self.plan.interval,
        };
        self.pos += 1;
        self.previous = Some(index);
        if self.plan.duplicate > 0.0 && self.rng.unit() < self.plan.duplicate {
            self.again = Some(index);
        }
        let decor = if self.plan.garbage {
            Decor::ALL
                .get(self.rng.below(Decor::ALL.len()))
                .copied()
                .unwrap_or(Decor::Bare)
        } else {
            Decor::Bare
        };
        Some(Step {
            delay,
            index,
            duplicate: false,
            decor,
        })
    }
}

/// Everything a TCP simulator needs.
#[derive(Clone, Debug)]
pub struct TcpSimOptions {
    /// What to replay.
    pub telegrams: Arc<Vec<SimTelegram>>,
    /// How.
    pub plan: ReplayPlan,
    /// Wire framing.
    pub framing: FramingKind,
    /// Health-check period (JMA socket), `None` for none.
    pub health_interval: Option<Duration>,
    /// How long an answer may take.
    pub health_timeout: Duration,
    /// Send checkpoint messages.
    pub checkpoint: bool,
    /// Close a connection after this many sends.
    pub drop_after: Option<u64>,
    /// Stop accepting after this many connections.
    pub max_connections: Option<u64>,
    /// Close a connection when its sequence is done.
    pub close_at_end: bool,
    /// Base seed.
    pub seed: u64,
    /// Where events go.
    pub events: Option<EventSink>,
}

impl TcpSimOptions {
    /// Plain framing, the simple schedule, no faults, no events.
    pub fn new(telegrams: Vec<SimTelegram>, plan: ReplayPlan) -> Self {
        Self {
            telegrams: Arc::new(telegrams),
            plan,
            framing: FramingKind::Plain,
            health_interval: None,
            health_timeout: Duration::from_secs(5),
            checkpoint: false,
            drop_after: None,
            max_connections: None,
            close_at_end: false,
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

/// `eewgate sim jma-tcp`.
pub async fn run_tcp(args: &JmaTcpArgs) -> anyhow::Result<()> {
    let plan = ReplayPlan::from_args(&args.replay)?;
    for (what, s) in [
        ("--health-interval-s", args.health_interval_s),
        ("--health-timeout-s", args.health_timeout_s),
    ] {
        if !(s.is_finite() && s >= 0.0) {
            bail!("{what} must be a number of seconds ≥ 0, not {s}");
        }
    }
    let telegrams = load_telegrams(&args.replay.files)?;
    let listener = TcpListener::bind(&args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let addr = listener.local_addr()?;
    print_line(&json!({ "listening": addr.to_string() }));
    let seed = args.replay.seed.unwrap_or_else(clock_seed);
    tracing::info!(%addr, seed, telegrams = telegrams.len(), "simulator listening");
    let framing = FramingKind::from(args.framing);
    let (events, printing) = printer();
    let options = TcpSimOptions {
        telegrams: Arc::new(telegrams),
        plan,
        framing,
        health_interval: (framing == FramingKind::JmaSocket && args.health_interval_s > 0.0)
            .then(|| Duration::from_secs_f64(args.health_interval_s)),
        health_timeout: Duration::from_secs_f64(args.health_timeout_s),
        checkpoint: args.checkpoint,
        drop_after: args.drop_after,
        max_connections: args.max_connections,
        close_at_end: args.close_at_end,
        seed,
        events: Some(events),
    };
    let served = serve_tcp(listener, Arc::new(options)).await;
    // Every sender went with the options: print what is still queued (the last `sent`,
    // `dropped`, `closed`) before the process exits.
    let _ = printing.await;
    served
}

/// Serves every client of `listener` until `max_connections` have come and gone (then
/// `Ok`), or forever.
pub async fn serve_tcp(listener: TcpListener, options: Arc<TcpSimOptions>) -> anyhow::Result<()> {
    let mut connections = JoinSet::new();
    let mut accepted: u64 = 0;
    loop {
        if options.max_connections.is_some_and(|m| accepted >= m) {
            drop(listener);
            options.emit(json!({ "event": "listener_closed" }));
            while connections.join_next().await.is_some() {}
            return Ok(());
        }
        tokio::select! {
            accept = listener.accept() => {
                let (stream, peer) = accept.context("accepting a connection")?;
                accepted += 1;
                let options = options.clone();
                let number = accepted;
                connections.spawn(async move {
                    let reason = match serve_connection(stream, peer, &options, number).await {
                        Ok(reason) => reason,
                        Err(e) => format!("{e:#}"),
                    };
                    options.emit(json!({ "event": "closed", "peer": peer.to_string(), "reason": reason }));
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Sleeps until `at`, or forever.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Plays the schedule to one client; returns why the connection ended.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    options: &TcpSimOptions,
    number: u64,
) -> anyhow::Result<String> {
    let peer_s = peer.to_string();
    options.emit(json!({ "event": "connected", "peer": peer_s, "connection": number }));
    stream.set_nodelay(true)?;
    let (mut reader, mut writer) = stream.into_split();
    let mut player = Player::new(
        &options.telegrams,
        options.plan.clone(),
        options.seed.wrapping_add(number),
    );
    let mut next = player.next();
    let start = Instant::now();
    let mut send_at = next.map(|s| start + s.delay);
    let mut health_at = options.health_interval.map(|i| start + i);
    let mut answer_due: Option<(Instant, Instant)> = None; // (sent, deadline)
    let mut decoder = SocketDecoder::new();
    let mut buf = vec![0u8; 4096];
    let mut sent: u64 = 0;
    loop {
        tokio::select! {
            () = until(send_at) => {
                let Some(step) = next else { continue };
                let Some(telegram) = options.telegrams.get(step.index) else { continue };
                for unit in wire_units(&telegram.bytes, step.decor, options.framing, options.checkpoint) {
                    writer.write_all(&unit).await?;
                }
                sent += 1;
                options.emit(json!({
                    "event": "sent",
                    "peer": peer_s,
                    "n": sent,
                    "source": telegram.source,
                    "duplicate": step.duplicate,
                    "decor": step.decor.as_str(),
                }));
                if options.drop_after.is_some_and(|n| sent >= n) {
                    options.emit(json!({ "event": "dropped", "peer": peer_s, "after": sent }));
                    return Ok("dropped".into());
                }
                next = player.next();
                send_at = next.map(|s| Instant::now() + s.delay);
                if next.is_none() {
                    options.emit(json!({ "event": "end_of_sequence", "peer": peer_s }));
                    if options.close_at_end {
                        writer.shutdown().await?;
                        return Ok("end of sequence".into());
                    }
                }
            }
            () = until(health_at) => {
                writer.write_all(HEALTH_CHECK).await?;
                let now = Instant::now();
                if answer_due.is_none() {
                    answer_due = Some((now, now + options.health_timeout));
                }
                health_at = options.health_interval.map(|i| now + i);
                options.emit(json!({ "event": "health_check", "peer": peer_s }));
            }
            () = until(answer_due.map(|(_, deadline)| deadline)) => {
                options.emit(json!({ "event": "health_missed", "peer": peer_s }));
                return Ok("health check not answered".into());
            }
            read = reader.read(&mut buf) => {
                let n = read?;
                if n == 0 {
                    return Ok("closed by the client".into());
                }
                if options.framing != FramingKind::JmaSocket {
                    continue;
                }
                for message in decoder.push(buf.get(..n).unwrap_or_default()) {
                    let message = match message {
                        Ok(m) => m,
                        Err(e) => return Ok(format!("client sent a broken frame ({})", e.reason)),
                    };
                    match message.control() {
                        Some(b"CHK") => {
                            if let Some((sent_at, _)) = answer_due.take() {
                                let ms = sent_at.elapsed().as_millis();
                                options.emit(json!({ "event": "health_answer", "peer": peer_s, "ms": u64::try_from(ms).unwrap_or(u64::MAX) }));
                            }
                        }
                        Some(b"chk") => writer.write_all(HEALTH_ANSWER).await?,
                        Some(b"ACK") => options.emit(json!({ "event": "ack", "peer": peer_s })),
                        _ => {}
                    }
                }
            }
        }
    }
}

/// `eewgate sim jma-serial`: a pty pair; the stream goes to the master, a link opens the
/// slave.
pub async fn run_serial(args: &JmaSerialArgs) -> anyhow::Result<()> {
    use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
    let plan = ReplayPlan::from_args(&args.replay)?;
    let telegrams = load_telegrams(&args.replay.files)?;
    let pty = nix::pty::openpty(None, None).context("creating a pseudo-terminal")?;
    // Raw, so CR/LF and every byte arrive as written (no echo, no CR→NL).
    let mut termios = tcgetattr(&pty.slave).context("reading the pty's settings")?;
    cfmakeraw(&mut termios);
    tcsetattr(&pty.slave, SetArg::TCSANOW, &termios).context("making the pty raw")?;
    let path = nix::unistd::ttyname(&pty.slave).context("naming the pty")?;
    print_line(&json!({ "pty": path.display().to_string() }));
    let seed = args.replay.seed.unwrap_or_else(clock_seed);
    let (events, _printing) = printer();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let mut master = std::fs::File::from(pty.master);
    // The slave stays open here too: the stream never sees a hang-up while no link has
    // the device open, and what is written waits in the pty for the next reader.
    let slave = pty.slave;
    std::thread::spawn(move || {
        let result = (|| -> anyhow::Result<()> {
            let path = path.display().to_string();
            for (n, step) in Player::new(&telegrams, plan, seed).enumerate() {
                std::thread::sleep(step.delay);
                let Some(telegram) = telegrams.get(step.index) else {
                    continue;
                };
                for unit in wire_units(&telegram.bytes, step.decor, FramingKind::Plain, false) {
                    master.write_all(&unit)?;
                }
                master.flush()?;
                let _ = events.send(json!({
                    "event": "sent",
                    "peer": path,
                    "n": n + 1,
                    "source": telegram.source,
                    "duplicate": step.duplicate,
                    "decor": step.decor.as_str(),
                }));
            }
            let _ = events.send(json!({ "event": "end_of_sequence", "peer": path }));
            Ok(())
        })();
        let _ = done_tx.send(result);
        // Keep the pty (both ends) open until the process ends.
        let _keep = (master, slave);
        loop {
            std::thread::park();
        }
    });
    done_rx.await.context("the pty writer stopped")??;
    // Stay up (the pty open) until interrupted.
    std::future::pending::<()>().await;
    Ok(())
}

/// Prints one JSON line on stdout (a closed stdout is ignored).
fn print_line(value: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// A sink whose events are printed, one JSON line each, in order; the task ends once
/// every sender is gone and everything queued is printed.
fn printer() -> (EventSink, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let task = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            print_line(&event);
        }
    });
    (tx, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn telegram(issued: &str) -> SimTelegram {
        let bytes = format!("37 03 00 {issued} C11 9999=").into_bytes();
        SimTelegram {
            issued: issue_time(&bytes),
            bytes,
            source: issued.into(),
        }
    }

    #[test]
    fn issue_times_come_from_the_header() {
        let t = telegram("110311144645");
        assert_eq!(
            t.issued.map(|d| d.to_string()),
            Some("2011-03-11 14:46:45".into())
        );
        assert_eq!(issue_time(b"no header"), None);
        assert!(issue_time(b"\xb7\xdd\n37 03 00 110311144645 C11\\n1103 9999=").is_some());
    }

    #[test]
    fn original_times_are_scaled_clamped_and_reordered_gaps_are_zero() {
        let ts = vec![
            telegram("110311144645"),
            telegram("110311144647"),
            telegram("110311144657"),
            telegram("120311144657"),
        ];
        let plan = ReplayPlan {
            at_original_times: true,
            speed: 2.0,
            ..ReplayPlan::simple(Duration::from_millis(700))
        };
        let delays: Vec<Duration> = Player::new(&ts, plan, 1).map(|s| s.delay).collect();
        assert_eq!(
            delays,
            vec![
                Duration::ZERO,
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_millis(700)
            ]
        );
    }

    #[test]
    fn duplicates_reorder_and_repeats_follow_the_plan() {
        let ts: Vec<SimTelegram> = (0..10)
            .map(|i| telegram(&format!("1103111446{i:02}")))
            .collect();
        let plan = ReplayPlan {
            duplicate: 1.0,
            passes: Some(2),
            ..ReplayPlan::simple(Duration::from_millis(10))
        };
        let steps: Vec<Step> = Player::new(&ts, plan, 7).collect();
        assert_eq!(steps.len(), 40);
        assert!(
            steps
                .chunks(2)
                .all(|p| p[0].index == p[1].index && p[1].duplicate)
        );
        let plan = ReplayPlan {
            reorder: true,
            ..ReplayPlan::simple(Duration::from_millis(10))
        };
        let order: Vec<usize> = Player::new(&ts, plan.clone(), 3).map(|s| s.index).collect();
        assert_ne!(order, (0..10).collect::<Vec<_>>(), "seed 3 swaps something");
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert!(
            order.chunks(2).all(|p| p[0] / 2 == p[1] / 2),
            "only neighbours swap"
        );
        let again: Vec<usize> = Player::new(&ts, plan, 3).map(|s| s.index).collect();
        assert_eq!(order, again, "a seed repeats");
    }

    #[test]
    fn the_rng_is_uniform_enough() {
        let mut rng = Rng::new(0);
        let n = 10_000;
        let mean = (0..n).map(|_| rng.unit()).sum::<f64>() / f64::from(n);
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        assert!((0..1000).all(|_| rng.below(6) < 6));
    }

    #[test]
    fn decorated_units_still_split_into_the_telegram() {
        let t = b"37 03 00 110311144645 C11\n110311144619\n9999=";
        for decor in Decor::ALL {
            let unit = wire_units(t, decor, FramingKind::Plain, false).concat();
            let mut s = StreamSplitter::new();
            let mut frames = s.push(&unit);
            frames.extend(s.flush());
            let telegrams: Vec<_> = frames
                .iter()
                .filter(|f| matches!(f, Frame::Telegram(_)))
                .collect();
            assert_eq!(telegrams.len(), 1, "{decor:?}");
            assert_eq!(
                frames.len(),
                1 + usize::from(decor.is_garbage()),
                "{decor:?}"
            );
        }
    }
}
