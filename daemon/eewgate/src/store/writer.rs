//! [`HistoryWriter`]: history off the alarm path.
//!
//! The engine side calls [`HistoryWriter::try_send`] (or [`HistoryWriter::record`]),
//! which puts the record on a bounded queue and returns at once, whatever the disk is
//! doing. One [`HistoryTask`] takes everything queued (up to a batch), writes it in one
//! transaction and goes back for more: a record waits at most for the commit before it,
//! a few milliseconds, and under a burst the batches grow instead of the latency.
//!
//! When the queue is full, or a batch cannot be written (disk full, database locked or
//! corrupt), the records are dropped and counted, and [`StoreHealth`] (a `watch` channel)
//! turns `degraded` with the reason and since when. It turns `ok` again by itself once a
//! batch commits (and, after an overflow, once the queue has room again), and the episode
//! is then written to the `faults` table as `storage` raised and cleared with the number
//! of records lost. The runtime raises its storage fault from the health channel and
//! should not record `storage` faults itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::{FaultRecord, Record, Store, StoreError, StoreErrorKind};
use crate::system::clock::now_utc;

/// Queue and batch sizes.
#[derive(Clone, Copy, Debug)]
pub struct WriterOptions {
    /// Records the queue holds before further ones are dropped. A telegram burst is tens
    /// of records (each report: a telegram, a few decisions, an action per output), so
    /// the default rides out seconds of a stalled disk.
    pub capacity: usize,
    /// Most records per transaction.
    pub max_batch: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            capacity: 4096,
            max_batch: 256,
        }
    }
}

/// Why a record was not queued (it has been counted as dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotQueued {
    /// The queue is full: the writer cannot keep up.
    #[error("history queue full; record dropped")]
    Full,
    /// The writer task has stopped.
    #[error("history writer stopped; record dropped")]
    Closed,
}

/// A queued record's batch did not commit (or the writer stopped first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("record not stored")]
pub struct NotStored;

/// Resolves when a record is committed (acknowledged), with its row id.
#[derive(Debug)]
pub struct Ack(oneshot::Receiver<i64>);

impl Ack {
    /// Waits for the commit; the row id, or [`NotStored`] when the record was lost.
    pub async fn stored(self) -> Result<i64, NotStored> {
        self.0.await.map_err(|_| NotStored)
    }
}

/// Why history is degraded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DegradedReason {
    /// The queue overflowed: the writer could not keep up.
    QueueFull,
    /// The writer task has stopped.
    Stopped,
    /// The disk (or the size cap) is full.
    Full,
    /// The database stayed locked by another connection.
    Busy,
    /// The database is corrupt.
    Corrupt,
    /// The file cannot be written.
    Io,
    /// Another database error.
    Other,
}

impl DegradedReason {
    /// Stable code: `queue_full`, `stopped`, `full`, `busy`, `corrupt`, `io`, `other`.
    pub fn code(self) -> &'static str {
        match self {
            DegradedReason::QueueFull => "queue_full",
            DegradedReason::Stopped => "stopped",
            DegradedReason::Full => "full",
            DegradedReason::Busy => "busy",
            DegradedReason::Corrupt => "corrupt",
            DegradedReason::Io => "io",
            DegradedReason::Other => "other",
        }
    }
}

impl From<StoreErrorKind> for DegradedReason {
    fn from(kind: StoreErrorKind) -> Self {
        match kind {
            StoreErrorKind::Full => DegradedReason::Full,
            StoreErrorKind::Busy => DegradedReason::Busy,
            StoreErrorKind::Corrupt => DegradedReason::Corrupt,
            StoreErrorKind::Io => DegradedReason::Io,
            StoreErrorKind::Other => DegradedReason::Other,
        }
    }
}

/// Whether history is being written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum HealthState {
    /// Records are being committed.
    Ok,
    /// Records are being lost.
    Degraded {
        /// Why.
        reason: DegradedReason,
        /// The first error's message.
        detail: String,
        /// Since when.
        since: DateTime<Utc>,
    },
}

/// History's health, as published on [`HistoryWriter::health`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoreHealth {
    /// Ok or degraded.
    #[serde(flatten)]
    pub state: HealthState,
    /// Records lost since the start (queue overflow, failed batches, writer stopped).
    pub dropped: u64,
}

impl StoreHealth {
    /// Records are being committed.
    pub fn is_ok(&self) -> bool {
        self.state == HealthState::Ok
    }

    /// A sentence for the status model, `None` when ok.
    pub fn detail(&self) -> Option<String> {
        match &self.state {
            HealthState::Ok => None,
            HealthState::Degraded {
                reason,
                detail,
                since,
            } => Some(format!(
                "history degraded ({}) since {}: {detail}; {} record(s) lost",
                reason.code(),
                since.to_rfc3339(),
                self.dropped
            )),
        }
    }
}

#[derive(Debug)]
struct Queued {
    record: Record,
    ack: Option<oneshot::Sender<i64>>,
}

#[derive(Debug)]
struct Shared {
    health: watch::Sender<StoreHealth>,
    written: AtomicU64,
}

impl Shared {
    /// Counts `n` lost records and degrades; says whether the reason changed (for
    /// logging once per episode, not per record). An earlier reason is kept, except that
    /// a storage error replaces `queue_full`: a queue usually backs up *because* the disk
    /// failed, and the disk is what the operator must fix.
    fn lost(&self, n: u64, reason: DegradedReason, detail: &str) -> bool {
        let mut changed = false;
        self.health.send_modify(|h| {
            h.dropped = h.dropped.saturating_add(n);
            match &mut h.state {
                HealthState::Ok => {
                    h.state = HealthState::Degraded {
                        reason,
                        detail: detail.to_owned(),
                        since: now_utc(),
                    };
                    changed = true;
                }
                HealthState::Degraded {
                    reason: current,
                    detail: current_detail,
                    ..
                } if *current == DegradedReason::QueueFull
                    && !matches!(reason, DegradedReason::QueueFull | DegradedReason::Stopped) =>
                {
                    *current = reason;
                    detail.clone_into(current_detail);
                    changed = true;
                }
                HealthState::Degraded { .. } => {}
            }
        });
        changed
    }
}

/// The engine side of history: cheap to clone, never waits.
#[derive(Clone, Debug)]
pub struct HistoryWriter {
    tx: mpsc::Sender<Queued>,
    shared: Arc<Shared>,
}

impl HistoryWriter {
    /// A writer and the task that drains it; run the task with [`HistoryTask::run`]
    /// under the supervisor.
    pub fn new(store: Store, options: WriterOptions) -> (HistoryWriter, HistoryTask) {
        let (tx, rx) = mpsc::channel(options.capacity.max(1));
        let (health, _) = watch::channel(StoreHealth {
            state: HealthState::Ok,
            dropped: 0,
        });
        let shared = Arc::new(Shared {
            health,
            written: AtomicU64::new(0),
        });
        let task = HistoryTask {
            store,
            rx,
            shared: Arc::clone(&shared),
            max_batch: options.max_batch.max(1),
            lost_reported: 0,
        };
        (HistoryWriter { tx, shared }, task)
    }

    /// Queues a record without waiting. On `Err` the record was dropped and counted.
    pub fn try_send(&self, record: Record) -> Result<(), NotQueued> {
        self.enqueue(Queued { record, ack: None })
    }

    /// [`HistoryWriter::try_send`], and an [`Ack`] that resolves once the record has
    /// committed.
    pub fn try_send_acked(&self, record: Record) -> Result<Ack, NotQueued> {
        let (ack, rx) = oneshot::channel();
        self.enqueue(Queued {
            record,
            ack: Some(ack),
        })?;
        Ok(Ack(rx))
    }

    /// Queues a record without waiting; a record that does not fit is dropped, counted
    /// and shows in [`HistoryWriter::health`]: nothing for the caller to handle.
    pub fn record(&self, record: Record) {
        let _ = self.try_send(record);
    }

    fn enqueue(&self, queued: Queued) -> Result<(), NotQueued> {
        match self.tx.try_send(queued) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(q)) => {
                if self
                    .shared
                    .lost(1, DegradedReason::QueueFull, "history queue full")
                {
                    tracing::warn!(
                        table = q.record.table(),
                        capacity = self.tx.max_capacity(),
                        "history queue full: dropping records until the writer catches up"
                    );
                }
                Err(NotQueued::Full)
            }
            Err(mpsc::error::TrySendError::Closed(q)) => {
                if self
                    .shared
                    .lost(1, DegradedReason::Stopped, "history writer stopped")
                {
                    tracing::warn!(
                        table = q.record.table(),
                        "history writer stopped: dropping records"
                    );
                }
                Err(NotQueued::Closed)
            }
        }
    }

    /// History's health: ok, or degraded with why and since when, and records lost.
    pub fn health(&self) -> watch::Receiver<StoreHealth> {
        self.shared.health.subscribe()
    }

    /// Records committed since the start.
    pub fn written(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    /// Records waiting in the queue.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity().saturating_sub(self.tx.capacity())
    }
}

/// The task that commits what [`HistoryWriter`] queues.
#[derive(Debug)]
pub struct HistoryTask {
    store: Store,
    rx: mpsc::Receiver<Queued>,
    shared: Arc<Shared>,
    max_batch: usize,
    /// `dropped` as of the last recovery (what the fault record has accounted for).
    lost_reported: u64,
}

/// After a cancel, the writer stops once no record has come for this long…
pub const SHUTDOWN_QUIET: Duration = Duration::from_millis(150);
/// …and in any case this long after the cancel (well inside the shutdown bound).
pub const SHUTDOWN_LINGER: Duration = Duration::from_secs(1);

impl HistoryTask {
    /// Commits batches until every [`HistoryWriter`] is gone or `cancel` fires; on
    /// cancel, what is already queued is still written, and so is what the other tasks
    /// record on their own way out (until [`SHUTDOWN_QUIET`] passes without a record, at
    /// most [`SHUTDOWN_LINGER`]); only later sends are dropped.
    /// Never fails: storage errors degrade [`StoreHealth`].
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut batch = Vec::with_capacity(self.max_batch);
        loop {
            let received = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                n = self.rx.recv_many(&mut batch, self.max_batch) => n,
            };
            if received == 0 {
                return;
            }
            self.write(&mut batch).await;
        }
        // The tasks stop at the same cancel and record their last evidence as they go.
        let linger = tokio::time::Instant::now() + SHUTDOWN_LINGER;
        loop {
            let quiet = (tokio::time::Instant::now() + SHUTDOWN_QUIET).min(linger);
            match tokio::time::timeout_at(quiet, self.rx.recv_many(&mut batch, self.max_batch))
                .await
            {
                Ok(0) => return self.stopped(),
                Ok(_) => self.write(&mut batch).await,
                Err(_) => break,
            }
        }
        self.rx.close();
        while self.rx.recv_many(&mut batch, self.max_batch).await > 0 {
            self.write(&mut batch).await;
        }
        self.stopped();
    }

    fn stopped(&self) {
        tracing::debug!(
            written = self.shared.written.load(Ordering::Relaxed),
            "history writer stopped"
        );
    }

    async fn write(&mut self, batch: &mut Vec<Queued>) {
        let (records, acks): (Vec<Record>, Vec<Option<oneshot::Sender<i64>>>) =
            batch.drain(..).map(|q| (q.record, q.ack)).unzip();
        let mut result = self.store.record_batch(&records).await;
        if let Err(StoreError::Busy(why)) = &result {
            tracing::debug!(%why, "history batch busy; retrying once");
            tokio::time::sleep(Duration::from_millis(100)).await;
            result = self.store.record_batch(&records).await;
        }
        match result {
            Ok(ids) => {
                self.committed(ids.len());
                for (ack, id) in acks.into_iter().zip(ids) {
                    if let Some(ack) = ack {
                        let _ = ack.send(id);
                    }
                }
                self.maybe_recovered().await;
            }
            // One bad record must not cost the whole batch: write them one by one.
            Err(StoreError::Other(why)) if records.len() > 1 => {
                tracing::warn!(%why, records = records.len(), "history batch failed; writing its records one by one");
                let mut any = false;
                for (record, ack) in records.iter().zip(acks) {
                    match self.store.record(record).await {
                        Ok(id) => {
                            any = true;
                            self.committed(1);
                            if let Some(ack) = ack {
                                let _ = ack.send(id);
                            }
                        }
                        Err(err) => self.failed(&err, 1, record.table()),
                    }
                }
                if any {
                    self.maybe_recovered().await;
                }
            }
            Err(err) => {
                let table = records.first().map_or("", Record::table);
                self.failed(&err, records.len(), table);
            }
        }
    }

    fn committed(&self, n: usize) {
        self.shared
            .written
            .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn failed(&self, err: &StoreError, n: usize, table: &str) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        if self.shared.lost(n, err.kind().into(), &err.to_string()) {
            tracing::error!(error = %err, kind = err.kind().code(), table, records = n,
                "history cannot be written; alarms are unaffected, records are being dropped");
        }
    }

    /// After a commit: the episode written to `faults`, then back to ok (after an
    /// overflow, only once the queue has room again).
    async fn maybe_recovered(&mut self) {
        let snapshot = self.shared.health.borrow().clone();
        let HealthState::Degraded {
            reason,
            detail,
            since,
        } = snapshot.state
        else {
            return;
        };
        if reason == DegradedReason::QueueFull && self.rx.len() > self.rx.max_capacity() / 2 {
            return;
        }
        let lost = snapshot.dropped.saturating_sub(self.lost_reported);
        let episode = [
            Record::Fault(FaultRecord {
                at: since,
                kind: "storage".to_owned(),
                active: true,
                detail: Some(format!("{}: {detail}", reason.code())),
            }),
            Record::Fault(FaultRecord {
                at: now_utc(),
                kind: "storage".to_owned(),
                active: false,
                detail: Some(format!("recovered; {lost} record(s) lost")),
            }),
        ];
        if let Err(err) = self.store.record_batch(&episode).await {
            tracing::warn!(error = %err, "could not record the storage fault");
            return;
        }
        // Records lost meanwhile keep it degraded until the next commit accounts for them.
        let recovered = self.shared.health.send_if_modified(|h| {
            if h.dropped == snapshot.dropped {
                h.state = HealthState::Ok;
                true
            } else {
                false
            }
        });
        if recovered {
            self.lost_reported = snapshot.dropped;
            tracing::warn!(reason = reason.code(), since = %since.to_rfc3339(), lost,
                "history recovered");
        }
    }
}
