//! The daily purge.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::Store;
use crate::system::clock::now_utc;

/// How often [`run_retention`] purges.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Purges rows older than `retention` now and then every [`PURGE_INTERVAL`] until
/// `cancel` fires. Failures are logged and retried on the next round: retention is
/// housekeeping, never a reason to stop.
///
/// Age is measured from the earlier of the clock and one day after the newest thing
/// recorded, so a clock that jumps years ahead (a dead RTC battery, a bad NTP answer)
/// cannot wipe the history.
pub async fn run_retention(store: Store, retention: Duration, cancel: CancellationToken) {
    loop {
        purge_once(&store, retention).await;
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(PURGE_INTERVAL) => {}
        }
    }
}

/// The cutoff for `retention` at `now`, given the newest recorded activity.
pub(crate) fn cutoff(
    now: DateTime<Utc>,
    newest: Option<DateTime<Utc>>,
    retention: Duration,
) -> Option<DateTime<Utc>> {
    let retention = chrono::Duration::from_std(retention).ok()?;
    let reference = match newest {
        Some(newest) => now.min(newest.checked_add_signed(chrono::Duration::days(1))?),
        None => now,
    };
    reference.checked_sub_signed(retention)
}

async fn purge_once(store: &Store, retention: Duration) {
    let newest = match store.newest_activity().await {
        Ok(newest) => newest,
        Err(err) => {
            tracing::warn!(error = %err, "retention: cannot read the history");
            return;
        }
    };
    let now = now_utc();
    let Some(cutoff) = cutoff(now, newest, retention) else {
        return;
    };
    if cutoff < now - chrono::Duration::from_std(retention).unwrap_or_default() {
        tracing::warn!(
            cutoff = %cutoff.to_rfc3339(),
            "retention: the clock is ahead of the newest record by more than a day; purging by the records' time"
        );
    }
    let started = std::time::Instant::now();
    match store.purge_older_than(cutoff).await {
        Ok(counts) => tracing::info!(
            cutoff = %cutoff.to_rfc3339(),
            deleted = counts.total(),
            telegrams = counts.telegrams,
            actions = counts.actions,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "retention: purged history"
        ),
        Err(err) => {
            tracing::warn!(error = %err, kind = err.kind().code(), "retention: purge failed")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

    #[test]
    fn cutoff_follows_the_clock_normally() {
        let now = t("2026-11-02T00:00:00Z");
        let newest = Some(t("2026-11-01T23:59:00Z"));
        assert_eq!(cutoff(now, newest, YEAR), Some(t("2025-11-02T00:00:00Z")));
        assert_eq!(cutoff(now, None, YEAR), Some(t("2025-11-02T00:00:00Z")));
    }

    #[test]
    fn a_clock_far_ahead_cannot_wipe_history() {
        let now = t("2099-01-01T00:00:00Z");
        let newest = Some(t("2026-11-01T00:00:00Z"));
        assert_eq!(cutoff(now, newest, YEAR), Some(t("2025-11-02T00:00:00Z")));
    }
}
