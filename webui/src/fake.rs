//! An in-memory [`Appliance`] for tests and for UI work without the daemon.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::appliance::{Appliance, ApplianceError, AuditEntry, HistoryQuery};

/// Everything the fake holds; tests read and change it through [`FakeAppliance`].
#[derive(Debug, Default)]
pub struct FakeState {
    /// The stored administrator hash.
    pub admin_hash: Option<String>,
    /// The audit trail, oldest first.
    pub audit: Vec<AuditEntry>,
    /// Telegrams, any order; each needs an integer `id` and may have `event_id` and `day`
    /// (`YYYY-MM-DD`) for filtering.
    pub telegrams: Vec<serde_json::Value>,
    /// Alerts, same shape rules as telegrams.
    pub alerts: Vec<serde_json::Value>,
    /// The last query seen, for tests of parameter mapping.
    pub last_query: Option<HistoryQuery>,
}

/// An in-memory appliance.
#[derive(Debug, Clone)]
pub struct FakeAppliance {
    state: Arc<Mutex<FakeState>>,
    status_tx: Arc<watch::Sender<serde_json::Value>>,
}

impl Default for FakeAppliance {
    fn default() -> Self {
        Self::new(serde_json::json!({}))
    }
}

impl FakeAppliance {
    /// A fresh appliance (no administrator yet) publishing `status`.
    pub fn new(status: serde_json::Value) -> Self {
        let (tx, _rx) = watch::channel(status);
        Self {
            state: Arc::new(Mutex::new(FakeState::default())),
            status_tx: Arc::new(tx),
        }
    }

    /// The shared state (poisoning is ignored: a test that panicked is already failing).
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publish a new status snapshot.
    pub fn set_status(&self, status: serde_json::Value) {
        self.status_tx.send_replace(status);
    }

    fn page(records: &[serde_json::Value], q: &HistoryQuery) -> Vec<serde_json::Value> {
        let mut out: Vec<serde_json::Value> = records
            .iter()
            .filter(|r| {
                let id = r.get("id").and_then(serde_json::Value::as_i64).unwrap_or(0);
                let day = r
                    .get("day")
                    .and_then(serde_json::Value::as_str)
                    .and_then(|d| d.parse::<chrono::NaiveDate>().ok());
                q.before_id.is_none_or(|b| id < b)
                    && q.event_id.as_deref().is_none_or(|e| {
                        r.get("event_id").and_then(serde_json::Value::as_str) == Some(e)
                    })
                    && q.from.is_none_or(|f| day.is_some_and(|d| d >= f))
                    && q.to.is_none_or(|t| day.is_some_and(|d| d <= t))
            })
            .cloned()
            .collect();
        out.sort_by_key(|r| {
            std::cmp::Reverse(r.get("id").and_then(serde_json::Value::as_i64).unwrap_or(0))
        });
        out.truncate(usize::try_from(q.limit).unwrap_or(usize::MAX));
        out
    }
}

impl Appliance for FakeAppliance {
    fn status(&self) -> watch::Receiver<serde_json::Value> {
        self.status_tx.subscribe()
    }

    async fn telegrams(
        &self,
        query: HistoryQuery,
    ) -> Result<Vec<serde_json::Value>, ApplianceError> {
        let mut s = self.state();
        let page = Self::page(&s.telegrams, &query);
        s.last_query = Some(query);
        Ok(page)
    }

    async fn alerts(&self, query: HistoryQuery) -> Result<Vec<serde_json::Value>, ApplianceError> {
        let mut s = self.state();
        let page = Self::page(&s.alerts, &query);
        s.last_query = Some(query);
        Ok(page)
    }

    async fn get_admin_hash(&self) -> Result<Option<String>, ApplianceError> {
        Ok(self.state().admin_hash.clone())
    }

    async fn set_admin_hash(&self, hash: String) -> Result<(), ApplianceError> {
        self.state().admin_hash = Some(hash);
        Ok(())
    }

    async fn audit(&self, entry: AuditEntry) -> Result<(), ApplianceError> {
        self.state().audit.push(entry);
        Ok(())
    }
}
