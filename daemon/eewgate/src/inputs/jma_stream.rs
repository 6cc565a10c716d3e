//! JMA code-telegram stream links (TCP and serial).
//!
//! One link is one task: [`run`] connects (a TCP client to a distributor or a dedicated
//! line's router, or a serial port through `tokio-serial`), reads into a bounded buffer,
//! pushes the bytes through the link's [`Framing`] (plain stream splitting, or JMA's
//! socket procedure — see `docs/jma-socket-framing.md`) and sends [`LinkEvent`]s:
//!
//! - `Up { peer }` when connected, `Down { reason }` when the connection is lost or a
//!   connection attempt fails (once per outage, not once per retry);
//! - `Telegram` for every complete telegram, stamped with the wall clock
//!   ([`crate::system::clock::now_utc`]) and [`Instant::now`] taken when the read that
//!   completed it returned;
//! - `Garbage` for bytes that are not a telegram (noise, cut-off or oversized telegrams, a
//!   broken socket frame), bounded to 64 KiB each;
//! - `Alive` for every JMA socket health check, which is answered on the same connection
//!   (`00000003ENCHK`) before anything else is read; checkpoint messages are acknowledged
//!   the same way.
//!
//! On end of stream, a read or write error, or a broken socket frame the link reports
//! `Down` and reconnects after a jittered exponential backoff ([`backoff_delay`]: from
//! `backoff_min`, doubling up to `backoff_max`, each wait drawn from its upper half; the
//! jitter comes from the clock's nanoseconds, so links restarted together spread out).
//! The backoff starts over after a connection that delivered bytes.
//!
//! The link never parses a telegram and never judges silence: the runtime does both from
//! the events. It never panics on input — the framing is pure and property-tested. It
//! returns `Ok(())` promptly once `cancel` fires, and an error only when the event
//! channel is closed (nobody listens any more).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use eew_core::telegram::framing::{Framing, FramingKind, Output};
use eew_core::telegram::stream::Frame;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{LinkEvent, Received};
use crate::system::clock::now_utc;

/// Default bound on a connection attempt (name resolution and TCP connect).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default first reconnect delay.
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_millis(500);
/// Default longest reconnect delay.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Bytes read at once. A telegram larger than this simply takes several reads.
pub const READ_BUFFER: usize = 64 * 1024;
/// Bound on writing a reply (health-check answer, acknowledgement).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// How a link reaches its upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A TCP client connection.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// A serial line (8N1, no flow control).
    Serial {
        /// Device path, e.g. `/dev/ttyUSB0`.
        device: PathBuf,
        /// Baud rate.
        baud: u32,
    },
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Tcp { host, port } => write!(f, "tcp {host}:{port}"),
            Transport::Serial { device, baud } => {
                write!(f, "serial {} at {baud} baud", device.display())
            }
        }
    }
}

/// One JMA code-telegram stream link.
#[derive(Clone, Debug)]
pub struct JmaStreamConfig {
    /// The link's name (events, logs, history).
    pub name: Arc<str>,
    /// Where to connect.
    pub transport: Transport,
    /// How the stream is framed.
    pub framing: FramingKind,
    /// Bound on one connection attempt.
    pub connect_timeout: Duration,
    /// First reconnect delay.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
}

impl JmaStreamConfig {
    /// A link with the default timeout and backoff.
    pub fn new(name: impl Into<Arc<str>>, transport: Transport, framing: FramingKind) -> Self {
        Self {
            name: name.into(),
            transport,
            framing,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            backoff_min: DEFAULT_BACKOFF_MIN,
            backoff_max: DEFAULT_BACKOFF_MAX,
        }
    }
}

/// The wait before reconnect attempt `attempt` (0 for the first): `min · 2^attempt`
/// capped at `max`, then scaled into its upper half by `jitter` (0 → ½, `u32::MAX` → 1).
pub fn backoff_delay(attempt: u32, min: Duration, max: Duration, jitter: u32) -> Duration {
    let max = max.max(min);
    let base = min
        .checked_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
        .unwrap_or(max)
        .min(max);
    let half = base / 2;
    let fraction = f64::from(jitter) / f64::from(u32::MAX);
    half + half.mul_f64(fraction)
}

/// Jitter from the wall clock's nanoseconds, mixed so that close instants differ.
fn clock_jitter() -> u32 {
    let nanos = u64::from(now_utc().timestamp_subsec_nanos());
    // splitmix64 finaliser
    let mut z = nanos.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    u32::try_from(z >> 32).unwrap_or(u32::MAX)
}

/// Runs a link configured in the settings file (`[[links.jma_tcp]]`,
/// `[[links.jma_serial]]`) with the default timeout and backoff.
pub async fn run_link(
    link: crate::config::LinkConfig,
    tx: mpsc::Sender<LinkEvent>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    use crate::config::{LinkKind, StreamFraming};
    let framing = |f: &StreamFraming| match f {
        StreamFraming::Plain => FramingKind::Plain,
        StreamFraming::JmaSocket => FramingKind::JmaSocket,
    };
    let (transport, framing) = match &link.kind {
        LinkKind::JmaTcp {
            host,
            port,
            framing: f,
        } => (
            Transport::Tcp {
                host: host.clone(),
                port: *port,
            },
            framing(f),
        ),
        LinkKind::JmaSerial {
            device,
            baud,
            framing: f,
        } => (
            Transport::Serial {
                device: device.clone(),
                baud: *baud,
            },
            framing(f),
        ),
        LinkKind::Replay { .. } | LinkKind::Dmdata { .. } => {
            anyhow::bail!("link {} is not a JMA stream", link.name)
        }
    };
    run(
        JmaStreamConfig::new(link.name.as_str(), transport, framing),
        tx,
        cancel,
    )
    .await
}

/// Runs the link until `cancel` fires (then `Ok(())`), reconnecting as needed. Fails only
/// when the event channel is closed.
pub async fn run(
    config: JmaStreamConfig,
    tx: mpsc::Sender<LinkEvent>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let link = config.name.clone();
    let mut attempt: u32 = 0;
    // A Down has been reported for the current outage (or there was never an Up).
    let mut down_reported = false;
    loop {
        let connected = tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(()),
            c = connect(&config.transport, config.connect_timeout) => c,
        };
        match connected {
            Ok((conn, peer)) => {
                tracing::info!(link = %link, peer = %peer, "link up");
                deliver(
                    &tx,
                    &cancel,
                    LinkEvent::Up {
                        link: link.clone(),
                        peer,
                    },
                )
                .await?;
                let (end, delivered) = match conn {
                    Conn::Tcp(s) => session(s, &config, &tx, &cancel).await,
                    Conn::Serial(s) => session(s, &config, &tx, &cancel).await,
                };
                match end {
                    End::Cancelled => {
                        // Best effort: the runtime may already have stopped reading.
                        let _ = tx.try_send(LinkEvent::Down {
                            link: link.clone(),
                            reason: "shutting down".into(),
                        });
                        return Ok(());
                    }
                    End::ChannelClosed => anyhow::bail!("link {link}: the event channel is closed"),
                    End::Lost(reason) => {
                        tracing::warn!(link = %link, reason = %reason, "link down");
                        deliver(
                            &tx,
                            &cancel,
                            LinkEvent::Down {
                                link: link.clone(),
                                reason,
                            },
                        )
                        .await?;
                        down_reported = true;
                    }
                }
                if delivered {
                    attempt = 0;
                }
            }
            Err(err) => {
                let reason = format!("{err:#}");
                tracing::debug!(link = %link, attempt, reason = %reason, "connection attempt failed");
                if !down_reported {
                    tracing::warn!(link = %link, reason = %reason, "link down");
                    deliver(
                        &tx,
                        &cancel,
                        LinkEvent::Down {
                            link: link.clone(),
                            reason,
                        },
                    )
                    .await?;
                    down_reported = true;
                }
            }
        }
        if cancel.is_cancelled() {
            return Ok(());
        }
        let delay = backoff_delay(
            attempt,
            config.backoff_min,
            config.backoff_max,
            clock_jitter(),
        );
        attempt = attempt.saturating_add(1);
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// An open connection.
enum Conn {
    Tcp(TcpStream),
    Serial(tokio_serial::SerialStream),
}

/// How a session ended.
enum End {
    Cancelled,
    ChannelClosed,
    Lost(String),
}

async fn connect(transport: &Transport, timeout: Duration) -> anyhow::Result<(Conn, String)> {
    match transport {
        Transport::Tcp { host, port } => {
            let attempt = async {
                let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), *port))
                    .await
                    .with_context(|| format!("resolving {host}"))?
                    .collect();
                let mut last = None;
                for addr in addrs {
                    let socket = if addr.is_ipv4() {
                        TcpSocket::new_v4()
                    } else {
                        TcpSocket::new_v6()
                    }?;
                    // JMA's socket procedure asks for TCP keepalive; harmless elsewhere.
                    socket.set_keepalive(true)?;
                    match socket.connect(addr).await {
                        Ok(stream) => {
                            stream.set_nodelay(true)?;
                            return Ok((Conn::Tcp(stream), addr.to_string()));
                        }
                        Err(e) => {
                            last =
                                Some(anyhow::Error::new(e).context(format!("connecting to {addr}")))
                        }
                    }
                }
                Err(last.unwrap_or_else(|| anyhow::anyhow!("{host} has no address")))
            };
            tokio::time::timeout(timeout, attempt).await.map_err(|_| {
                anyhow::anyhow!("connecting to {host}:{port} timed out after {timeout:?}")
            })?
        }
        Transport::Serial { device, baud } => {
            use tokio_serial::SerialPortBuilderExt;
            let path = device.to_string_lossy().into_owned();
            let port = tokio_serial::new(path.as_str(), *baud)
                .data_bits(tokio_serial::DataBits::Eight)
                .parity(tokio_serial::Parity::None)
                .stop_bits(tokio_serial::StopBits::One)
                .flow_control(tokio_serial::FlowControl::None)
                .open_native_async()
                .with_context(|| format!("opening {path}"))?;
            Ok((Conn::Serial(port), path))
        }
    }
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
        sent = tx.send(event) => sent.map_err(|_| anyhow::anyhow!("the link event channel is closed")),
    }
}

/// Reads one connection until it ends. Returns how, and whether it delivered any bytes.
async fn session<S>(
    mut stream: S,
    config: &JmaStreamConfig,
    tx: &mpsc::Sender<LinkEvent>,
    cancel: &CancellationToken,
) -> (End, bool)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let link = &config.name;
    let mut framing = Framing::new(config.framing);
    let mut buf = vec![0u8; READ_BUFFER];
    let mut delivered = false;
    loop {
        let read = tokio::select! {
            biased;
            () = cancel.cancelled() => return (End::Cancelled, delivered),
            r = stream.read(&mut buf) => r,
        };
        let received_at = now_utc();
        let received_mono = Instant::now();
        let (outputs, lost) = match read {
            Ok(0) => (framing.finish(), Some("closed by the peer".to_owned())),
            Ok(n) => {
                delivered = true;
                (framing.push(buf.get(..n).unwrap_or_default()), None)
            }
            Err(e) => (framing.finish(), Some(format!("read failed: {e}"))),
        };
        for output in outputs {
            let event = match output {
                Output::Frame(Frame::Telegram(bytes)) => LinkEvent::Telegram(Received {
                    link: link.clone(),
                    bytes,
                    received_at,
                    received_mono,
                }),
                Output::Frame(Frame::Garbage { bytes, reason }) => LinkEvent::Garbage {
                    link: link.clone(),
                    bytes,
                    reason,
                    received_at,
                },
                Output::Alive => LinkEvent::Alive { link: link.clone() },
                Output::Reply(reply) => {
                    let written = tokio::time::timeout(WRITE_TIMEOUT, async {
                        stream.write_all(&reply).await?;
                        stream.flush().await
                    })
                    .await;
                    match written {
                        Ok(Ok(())) => continue,
                        Ok(Err(e)) => return (End::Lost(format!("write failed: {e}")), delivered),
                        Err(_) => {
                            return (
                                End::Lost(format!("write timed out after {WRITE_TIMEOUT:?}")),
                                delivered,
                            );
                        }
                    }
                }
                Output::Broken { reason, bytes } => {
                    let event = LinkEvent::Garbage {
                        link: link.clone(),
                        bytes,
                        reason,
                        received_at,
                    };
                    if let Some(end) = send_event(tx, cancel, event).await {
                        return (end, delivered);
                    }
                    return (
                        End::Lost(format!("JMA socket framing broken ({reason})")),
                        delivered,
                    );
                }
            };
            if let Some(end) = send_event(tx, cancel, event).await {
                return (end, delivered);
            }
        }
        if let Some(reason) = lost {
            return (End::Lost(reason), delivered);
        }
    }
}

/// Sends an event; `Some` when the session must end instead.
async fn send_event(
    tx: &mpsc::Sender<LinkEvent>,
    cancel: &CancellationToken,
    event: LinkEvent,
) -> Option<End> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Some(End::Cancelled),
        sent = tx.send(event) => sent.is_err().then_some(End::ChannelClosed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_min_to_max_within_its_upper_half() {
        let min = Duration::from_millis(500);
        let max = Duration::from_secs(30);
        assert_eq!(backoff_delay(0, min, max, 0), Duration::from_millis(250));
        assert_eq!(backoff_delay(0, min, max, u32::MAX), min);
        assert_eq!(backoff_delay(1, min, max, u32::MAX), Duration::from_secs(1));
        assert_eq!(backoff_delay(3, min, max, u32::MAX), Duration::from_secs(4));
        assert_eq!(backoff_delay(10, min, max, u32::MAX), max);
        assert_eq!(backoff_delay(u32::MAX, min, max, 0), max / 2);
        for attempt in 0..40 {
            let d = backoff_delay(attempt, min, max, clock_jitter());
            assert!(d >= min / 2 && d <= max, "{attempt}: {d:?}");
        }
        // a max below min is taken as min
        assert_eq!(backoff_delay(5, min, Duration::ZERO, u32::MAX), min);
    }

    #[test]
    fn transports_describe_themselves() {
        let tcp = Transport::Tcp {
            host: "eew.example".into(),
            port: 4000,
        };
        assert_eq!(tcp.to_string(), "tcp eew.example:4000");
        let serial = Transport::Serial {
            device: "/dev/ttyUSB0".into(),
            baud: 9600,
        };
        assert_eq!(serial.to_string(), "serial /dev/ttyUSB0 at 9600 baud");
    }
}
