//! Upstream links: each link is one task that connects (and reconnects), splits what it
//! receives into telegrams and sends [`LinkEvent`]s to the merger. A link never parses or
//! decides anything: it only frames bytes, stamps them, and reports its health.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

pub mod dmdata;
pub mod jma_stream;
pub mod replay;

/// One framed telegram as received, before parsing.
#[derive(Clone, Debug)]
pub struct Received {
    /// The link's configured name.
    pub link: Arc<str>,
    /// The telegram's bytes exactly as framed (without transport headers).
    pub bytes: Vec<u8>,
    /// Wall-clock receive time (UTC).
    pub received_at: DateTime<Utc>,
    /// Monotonic receive time, for latency measurement.
    pub received_mono: Instant,
}

/// What a link tells the merger.
#[derive(Clone, Debug)]
pub enum LinkEvent {
    /// A complete telegram.
    Telegram(Received),
    /// Bytes that are not a telegram (garbage between telegrams, an oversized frame, a
    /// broken transport frame). Logged and stored raw; never disturbs anything else.
    Garbage {
        /// The link's name.
        link: Arc<str>,
        /// The bytes (truncated to a bounded size by the link).
        bytes: Vec<u8>,
        /// Why they were set aside (stable code, e.g. `garbage`, `too_large`).
        reason: &'static str,
        /// Wall-clock receive time.
        received_at: DateTime<Utc>,
    },
    /// The link is connected and delivering.
    Up {
        /// The link's name.
        link: Arc<str>,
        /// Where it is connected (address, device).
        peer: String,
    },
    /// The link lost its connection (it keeps retrying).
    Down {
        /// The link's name.
        link: Arc<str>,
        /// Why.
        reason: String,
    },
    /// A liveness signal that is not a telegram (a health check answered, a ping).
    Alive {
        /// The link's name.
        link: Arc<str>,
    },
}
