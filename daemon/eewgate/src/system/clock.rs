//! The wall clock, behind a seam: the only place the daemon reads the time of day.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use eew_core::JstTime;

/// Now, as UTC.
pub fn now_utc() -> DateTime<Utc> {
    DateTime::<Utc>::from(SystemTime::now())
}

/// Now, as JST (the engine's time).
pub fn now_jst() -> JstTime {
    JstTime::from_datetime(now_utc().fixed_offset())
}
