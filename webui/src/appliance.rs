//! The seam: what the web UI needs from the appliance, and nothing more.

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use tokio::sync::watch;

/// A failure inside the appliance (history unreadable, credential store not writable…).
///
/// The message is logged and shown to the administrator; it must never carry a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ApplianceError(pub String);

/// One page of history: newest first, strictly older than `before_id` when given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryQuery {
    /// Only records whose id is below this (the `id` of the last record of the previous
    /// page): keyset paging that stays fast over a year of data.
    pub before_id: Option<i64>,
    /// At most this many records (1..=[`HistoryQuery::MAX_LIMIT`]).
    pub limit: u32,
    /// Only this event.
    pub event_id: Option<String>,
    /// Only records received on or after this day (UTC).
    pub from: Option<NaiveDate>,
    /// Only records received on or before this day (UTC).
    pub to: Option<NaiveDate>,
}

impl HistoryQuery {
    /// The page size when none is asked for.
    pub const DEFAULT_LIMIT: u32 = 50;
    /// The largest page.
    pub const MAX_LIMIT: u32 = 500;
}

impl Default for HistoryQuery {
    fn default() -> Self {
        Self {
            before_id: None,
            limit: Self::DEFAULT_LIMIT,
            event_id: None,
            from: None,
            to: None,
        }
    }
}

/// One line of the audit trail: who did what, when. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who (`admin`, or `setup` before an administrator exists).
    pub who: String,
    /// A stable action code (`setup`, `login`, `login_failed`, `logout`…).
    pub action: String,
    /// Free text for people (the client address, why it failed); no secrets.
    pub detail: String,
}

/// What the daemon offers the web UI. The daemon implements it; the UI never sees the
/// daemon's own types, only JSON values, so the two can evolve separately.
///
/// Every method must be cheap or truly asynchronous: the UI calls them from request
/// handlers on the daemon's runtime.
pub trait Appliance: Send + Sync + 'static {
    /// The live status model, serialised (the daemon's `Status`). Every change is pushed
    /// to dashboards over server-sent events.
    fn status(&self) -> watch::Receiver<serde_json::Value>;

    /// Received telegrams, newest first, each an object with at least a numeric `id`.
    fn telegrams(
        &self,
        query: HistoryQuery,
    ) -> impl Future<Output = Result<Vec<serde_json::Value>, ApplianceError>> + Send;

    /// Alerts (decisions and what the outputs did), newest first, each an object with at
    /// least a numeric `id`.
    fn alerts(
        &self,
        query: HistoryQuery,
    ) -> impl Future<Output = Result<Vec<serde_json::Value>, ApplianceError>> + Send;

    /// The administrator's password hash (a PHC string), or `None` before first-boot setup.
    fn get_admin_hash(&self)
    -> impl Future<Output = Result<Option<String>, ApplianceError>> + Send;

    /// Store the administrator's password hash durably (written atomically).
    fn set_admin_hash(
        &self,
        hash: String,
    ) -> impl Future<Output = Result<(), ApplianceError>> + Send;

    /// Append to the audit trail.
    fn audit(&self, entry: AuditEntry) -> impl Future<Output = Result<(), ApplianceError>> + Send;
}
