//! History in SQLite (sqlx): every telegram received, every engine decision and output
//! action, link events, faults, output results, the audit trail, evidence that the outputs
//! work, and configuration changes. Decision record:
//! `docs/adr/0008-history-store.md`.
//!
//! - [`Store`] — the database: open (create, WAL, migrations), record, query, purge.
//! - [`HistoryWriter`] — the only way the running daemon writes: a bounded queue whose
//!   [`HistoryWriter::try_send`] never waits, and a task committing batches. History is
//!   never on the alarm path; when it cannot keep up or the disk fails, records are
//!   dropped and counted and [`StoreHealth`] says why, while alarms carry on.
//! - [`run_retention`] — the daily purge.
//!
//! # Durability
//!
//! The database is in WAL mode with `synchronous = FULL` (the WAL is fsynced at every
//! commit, so a power cut — which strong shaking often brings — does not take the history
//! of the alert that just fired). Even `NORMAL` would be `kill -9` safe: a commit appends the
//! transaction to the `-wal` file with `write(2)` before it returns; the data is then in
//! the kernel's page cache, which outlives the process. So `kill -9` (or a panic, or
//! the OOM killer) at any moment loses nothing committed, and the next open replays the
//! WAL. What `NORMAL` gives up compared with `FULL` is the `fsync` per commit: the WAL
//! is synced only at checkpoints, so after a power cut or kernel crash the commits the
//! kernel had not yet written back (the last few seconds: ext4 commits every 5 s, page
//! writeback within ~30 s) may be rolled back — never corrupted, as the WAL's checksums
//! cut it at the last intact commit. `SqliteSynchronous::Full`, used here, closes that window
//! at the cost of an `fsync` per batch (off the alarm path either way); see the ADR.
//!
//! A record is *acknowledged* when its batch has committed: [`HistoryWriter::try_send_acked`]
//! resolves then with its row id. "A `kill -9` loses at most the telegram in flight"
//! means: anything acknowledged is on disk; what was queued or in an uncommitted batch
//! (at most one batch, committed within milliseconds of arriving) is lost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use eew_core::JstTime;
use eew_core::engine::{Action, Cause, Decision};
use sha2::{Digest, Sha256};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::Sqlite;
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row};

mod drill;
mod error;
mod records;
mod retention;
mod writer;

pub use drill::{
    ActionRecord, ChannelReport, ChannelResult, ChannelTimings, DRILL_PAGE_MAX, DrillChannel,
    DrillRecords, DrillReport, DrillResult, DrillRun, EVIDENCE_GRACE_MS, EvidenceNote, Exclusion,
    ExpectedAction, Observation, RESULT_GRACE_MS, ResultRecord, SETTLE_MS,
    assemble as assemble_drill_report,
};
pub use error::{StoreError, StoreErrorKind};
pub use records::{
    ActionRow, AlertRow, AuditRecord, AuditRow, ConfigRow, DecisionRow, EvidenceRecord,
    EvidenceRow, EvidenceSummary, FaultRecord, FaultRow, LinkRecord, LinkRow, LinkState,
    OutputRecord, OutputRow, PurgeCounts, Record, StoreCounts, TelegramRecord, TelegramRow,
    Verdict,
};
pub use retention::{PURGE_INTERVAL, run_retention};
pub use writer::{
    Ack, DegradedReason, HealthState, HistoryTask, HistoryWriter, NotQueued, NotStored,
    StoreHealth, WriterOptions,
};

/// Where the daemon keeps history unless the configuration says otherwise.
pub const DEFAULT_PATH: &str = "/var/lib/eewgate/history.db";

/// Rows deleted per statement by [`Store::purge_older_than`]: each chunk is its own short
/// write transaction, so the history writer is never kept waiting for long.
const PURGE_CHUNK: i64 = 500;

/// The page size of new databases.
const PAGE_SIZE: u64 = 4096;

/// Most rows of one [`Store::evidence`] page.
pub const EVIDENCE_PAGE_MAX: u32 = 1000;

/// One page of a history query (the web UI's keyset paging).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageQuery {
    /// Only rows whose id is below this.
    pub before_id: Option<i64>,
    /// At most this many rows.
    pub limit: u32,
    /// Only this event.
    pub event_id: Option<String>,
    /// Only rows at or after this time (unix ms).
    pub from_ms: Option<i64>,
    /// Only rows before this time (unix ms).
    pub to_ms: Option<i64>,
    /// Telegrams only: only this verdict (`accepted`, `duplicate`, `rejected`, `garbage`).
    pub verdict: Option<String>,
    /// Telegrams only: only this report kind (`forecast`, `warning`, `cancel`,
    /// `delivery_test`).
    pub kind: Option<String>,
    /// Alerts only: only this label (`real`, `training`, `test`, `drill`).
    pub label: Option<String>,
}

/// How a [`Store`] is opened.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Connections in the pool: the history writer, retention, and readers (web UI).
    pub connections: u32,
    /// How long a statement waits for another connection's write lock before failing
    /// with [`StoreError::Busy`].
    pub busy_timeout: Duration,
    /// Upper bound on the database file (`PRAGMA max_page_count`); reaching it fails
    /// writes with [`StoreError::Full`] exactly as a full disk does. `None`: the disk is
    /// the limit.
    pub max_size_bytes: Option<u64>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            connections: 4,
            busy_timeout: Duration::from_secs(5),
            max_size_bytes: None,
        }
    }
}

/// The history database. Cheap to clone (a connection pool).
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
}

impl Store {
    /// Opens (creating the file and its directory if needed) the database at `path` with
    /// the default options and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_with(path, &StoreOptions::default()).await
    }

    /// [`Store::open`] with options.
    pub async fn open_with(path: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| StoreError::from_io(&e, &format!("creating {}", dir.display())))?;
        }
        create_private(path).await?;
        let mut connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // Only takes effect on a new file (before the first table): freed pages can
            // then be handed back to the file system after a purge.
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            .page_size(PAGE_SIZE as u32)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout)
            // The WAL is reset, not truncated, after a checkpoint; this caps what a large
            // transaction leaves behind.
            .pragma("journal_size_limit", (16 * 1024 * 1024).to_string());
        if let Some(bytes) = options.max_size_bytes {
            let pages = (bytes / PAGE_SIZE).max(1);
            connect = connect.pragma("max_page_count", pages.to_string());
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(options.connections.max(1))
            .min_connections(1)
            .acquire_timeout(options.busy_timeout.saturating_mul(2))
            .connect_with(connect)
            .await?;
        let mut migrator = sqlx::migrate!("./migrations");
        // A database migrated by a newer release still opens after a rollback: migrations
        // are additive only (see the schema's header).
        migrator.set_ignore_missing(true);
        if let Err(err) = migrator.run(&pool).await {
            pool.close().await;
            return Err(err.into());
        }
        Ok(Store {
            pool,
            path: path.to_owned(),
        })
    }

    /// [`Store::open_with`], but a corrupt file (or one that is not a database) is moved
    /// aside as `<name>.corrupt-<unix seconds>` (with its `-wal` and `-shm`) and a new,
    /// empty database takes its place: history starts afresh rather than staying off
    /// until someone intervenes. Returns where the damaged file went.
    pub async fn open_or_quarantine(
        path: &Path,
        options: &StoreOptions,
        now: DateTime<Utc>,
    ) -> Result<(Store, Option<PathBuf>), StoreError> {
        match Self::open_with(path, options).await {
            Err(StoreError::Corrupt(why)) => {
                let mut aside = path.as_os_str().to_owned();
                aside.push(format!(".corrupt-{}", now.timestamp()));
                let aside = PathBuf::from(aside);
                tracing::error!(path = %path.display(), aside = %aside.display(), %why,
                    "history database corrupt; moving it aside and starting a new one");
                for suffix in ["-wal", "-shm"] {
                    let mut from = path.as_os_str().to_owned();
                    from.push(suffix);
                    let mut to = aside.as_os_str().to_owned();
                    to.push(suffix);
                    // Absent when the database was closed cleanly.
                    let _ = tokio::fs::rename(&from, &to).await;
                }
                tokio::fs::rename(path, &aside)
                    .await
                    .map_err(|e| StoreError::from_io(&e, "moving the corrupt database aside"))?;
                let store = Self::open_with(path, options).await?;
                Ok((store, Some(aside)))
            }
            other => other.map(|store| (store, None)),
        }
    }

    /// Opens an existing database for reading only (`eewgate history`), alongside a
    /// running daemon: WAL lets readers and the writer proceed without waiting for each
    /// other. No migrations are run.
    pub async fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        if !tokio::fs::try_exists(path).await.unwrap_or(false) {
            return Err(StoreError::Io(format!(
                "no history database at {}",
                path.display()
            )));
        }
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(5));
        let open = |connect: SqliteConnectOptions| async move {
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(connect)
                .await?;
            // Touch the schema so a bad file fails here, not in the first query.
            sqlx::query("SELECT count(*) FROM sqlite_schema")
                .fetch_one(&pool)
                .await?;
            Ok::<_, StoreError>(pool)
        };
        let pool = match open(connect.clone()).await {
            Ok(pool) => pool,
            // A reader without write access to the directory cannot create the `-shm`
            // file a WAL database needs. With no `-wal` file there is no writer (the
            // daemon removes it when it closes), so the file may be read as immutable.
            Err(StoreError::Io(why)) if !wal_exists(path).await => {
                tracing::debug!(%why, "read-only open failed; retrying as immutable");
                open(connect.immutable(true)).await?
            }
            Err(err) => return Err(err),
        };
        Ok(Store {
            pool,
            path: path.to_owned(),
        })
    }

    /// Where the database is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes every connection (the last one checkpoints the WAL into the database and
    /// removes it). Further calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Stores a received telegram; returns its id.
    pub async fn record_telegram(&self, record: &TelegramRecord) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(insert_telegram(&mut conn, record).await?)
    }

    /// Stores an engine decision made at `at`; returns its id.
    pub async fn record_decision(
        &self,
        at: JstTime,
        decision: &Decision,
    ) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(insert_decision(&mut conn, at, decision).await?)
    }

    /// Stores an output action (its full JSON, and its event's alert summary); returns
    /// its id.
    pub async fn record_action(&self, action: &Action) -> Result<i64, StoreError> {
        let mut tx = WriteTx::begin(&self.pool).await?;
        let id = insert_action(tx.conn(), action).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Stores a link event; returns its id.
    pub async fn record_link_event(&self, record: &LinkRecord) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(insert_link(&mut conn, record).await?)
    }

    /// Stores a fault change; returns its id.
    pub async fn record_fault(&self, record: &FaultRecord) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(insert_fault(&mut conn, record).await?)
    }

    /// Stores the configuration text when it differs from the newest stored version:
    /// `Some(id)` of the new version, `None` when unchanged.
    pub async fn record_config(
        &self,
        at: DateTime<Utc>,
        text: &str,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = WriteTx::begin(&self.pool).await?;
        let (id, changed) = insert_config(tx.conn(), at, text).await?;
        tx.commit().await?;
        Ok(changed.then_some(id))
    }

    /// Stores any record; returns its id (for an unchanged configuration, the id of the
    /// stored version).
    pub async fn record(&self, record: &Record) -> Result<i64, StoreError> {
        let mut tx = WriteTx::begin(&self.pool).await?;
        let id = insert(tx.conn(), record).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Stores records in one transaction (all or none); returns their ids in order.
    pub async fn record_batch(&self, records: &[Record]) -> Result<Vec<i64>, StoreError> {
        let mut tx = WriteTx::begin(&self.pool).await?;
        let mut ids = Vec::with_capacity(records.len());
        for record in records {
            ids.push(insert(tx.conn(), record).await?);
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Deletes everything older than `cutoff`, a few hundred rows per transaction, then
    /// hands the freed pages back to the file system in steps. The newest configuration
    /// version is kept whatever its age; an alert goes when its latest action does.
    pub async fn purge_older_than(&self, cutoff: DateTime<Utc>) -> Result<PurgeCounts, StoreError> {
        let cutoff = cutoff.timestamp_millis();
        let counts = PurgeCounts {
            telegrams: self
                .purge_chunks(
                    "DELETE FROM telegrams WHERE id IN (SELECT id FROM telegrams \
                     WHERE received_ms < ?1 LIMIT ?2)",
                    cutoff,
                )
                .await?,
            decisions: self
                .purge_chunks(
                    "DELETE FROM decisions WHERE id IN (SELECT id FROM decisions \
                     WHERE at_ms < ?1 LIMIT ?2)",
                    cutoff,
                )
                .await?,
            actions: self
                .purge_chunks(
                    "DELETE FROM actions WHERE id IN (SELECT id FROM actions \
                     WHERE at_ms < ?1 LIMIT ?2)",
                    cutoff,
                )
                .await?,
            alerts: self
                .purge_chunks(
                    "DELETE FROM alerts WHERE rowid IN (SELECT rowid FROM alerts \
                     WHERE last_ms < ?1 LIMIT ?2)",
                    cutoff,
                )
                .await?,
            link_events: self
                .purge_chunks(
                    "DELETE FROM link_events WHERE id IN (SELECT id FROM link_events \
                     WHERE at_ms < ?1 LIMIT ?2)",
                    cutoff,
                )
                .await?,
            output_results: self
                .purge_chunks(
                    "DELETE FROM output_results WHERE id IN (SELECT id FROM output_results \
                     WHERE at_ms < ?1 LIMIT ?2)",
                    cutoff,
                )
                .await?,
            audit: self
                .purge_chunks(
                    "DELETE FROM audit WHERE id IN (SELECT id FROM audit \
                     WHERE at_ms < ?1 LIMIT ?2)",
                    cutoff,
                )
                .await?,
            faults: self
                .purge_chunks(
                    "DELETE FROM faults WHERE id IN (SELECT id FROM faults \
                     WHERE at_ms < ?1 LIMIT ?2)",
                    cutoff,
                )
                .await?,
            evidence: self
                .purge_chunks(
                    "DELETE FROM evidence WHERE id IN (SELECT id FROM evidence \
                     WHERE at_ms < ?1 LIMIT ?2)",
                    cutoff,
                )
                .await?,
            config_changes: self
                .purge_chunks(
                    "DELETE FROM config_changes WHERE id IN (SELECT id FROM config_changes \
                     WHERE at_ms < ?1 AND id < (SELECT max(id) FROM config_changes) LIMIT ?2)",
                    cutoff,
                )
                .await?,
        };
        if counts.total() > 0 {
            self.vacuum_free_pages().await?;
        }
        Ok(counts)
    }

    async fn purge_chunks(&self, sql: &'static str, cutoff_ms: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let deleted = sqlx::query(sql)
                .bind(cutoff_ms)
                .bind(PURGE_CHUNK)
                .execute(&self.pool)
                .await?
                .rows_affected();
            total += deleted;
            if deleted < PURGE_CHUNK as u64 {
                return Ok(total);
            }
            // Let the history writer in between chunks.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Returns free pages to the file system, 1024 (4 MiB) per transaction.
    /// Databases created before incremental auto-vacuum was set keep their free pages
    /// and reuse them, which is just as well in the steady state of a rolling year.
    async fn vacuum_free_pages(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
            .fetch_one(&mut *conn)
            .await?;
        if mode != 2 {
            return Ok(());
        }
        loop {
            let free: i64 = sqlx::query_scalar("PRAGMA freelist_count")
                .fetch_one(&mut *conn)
                .await?;
            if free == 0 {
                return Ok(());
            }
            // The step is a literal: this pragma is not a table-valued function.
            sqlx::query("PRAGMA incremental_vacuum(1024)")
                .execute(&mut *conn)
                .await?;
            let after: i64 = sqlx::query_scalar("PRAGMA freelist_count")
                .fetch_one(&mut *conn)
                .await?;
            if after >= free {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The latest `limit` telegrams, newest first.
    pub async fn recent_telegrams(&self, limit: u32) -> Result<Vec<TelegramRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, received_ms, link, verdict, reason, message, event_id, serial, status, \
             kind, format, product, actionable, decode_us, length(raw) AS size, raw \
             FROM telegrams ORDER BY received_ms DESC, id DESC LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(telegram_row).collect()
    }

    /// One telegram by id.
    pub async fn telegram(&self, id: i64) -> Result<Option<TelegramRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, received_ms, link, verdict, reason, message, event_id, serial, status, \
             kind, format, product, actionable, decode_us, length(raw) AS size, raw \
             FROM telegrams WHERE id = ?1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(telegram_row).transpose()
    }

    /// The latest `limit` engine decisions, newest first.
    pub async fn recent_decisions(&self, limit: u32) -> Result<Vec<DecisionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, event_id, serial, label, outcome, detail FROM decisions \
             ORDER BY at_ms DESC, id DESC LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DecisionRow {
                    id: r.try_get("id")?,
                    at: jst(r.try_get("at_ms")?),
                    event_id: r.try_get("event_id")?,
                    serial: opt_u32(r.try_get("serial")?),
                    label: r.try_get("label")?,
                    outcome: r.try_get("outcome")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// The latest `limit` output actions, newest first.
    pub async fn recent_actions(&self, limit: u32) -> Result<Vec<ActionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, output, action, cause, event_id, serial, label, training, \
             intensity_class, long_period_class, warning, json FROM actions \
             ORDER BY at_ms DESC, id DESC LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let json: String = r.try_get("json")?;
                Ok(ActionRow {
                    id: r.try_get("id")?,
                    at: jst(r.try_get("at_ms")?),
                    output: r.try_get("output")?,
                    action: r.try_get("action")?,
                    cause: r.try_get("cause")?,
                    event_id: r.try_get("event_id")?,
                    serial: opt_u32(r.try_get("serial")?),
                    label: r.try_get("label")?,
                    training: r.try_get("training")?,
                    intensity_class: r.try_get("intensity_class")?,
                    long_period_class: opt_u8(r.try_get("long_period_class")?),
                    warning: r.try_get("warning")?,
                    json: serde_json::from_str(&json).unwrap_or(serde_json::Value::String(json)),
                })
            })
            .collect()
    }

    /// The latest `limit` alerts (events that drove outputs), by their first action,
    /// newest first.
    pub async fn recent_alerts(&self, limit: u32) -> Result<Vec<AlertRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT event_id, label, first_ms, last_ms, first_serial, last_serial, max_class, \
             max_long_period, warning, cancelled, ended, actions FROM alerts \
             ORDER BY first_ms DESC, rowid DESC LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(alert_row).collect()
    }

    /// The latest `limit` link events, newest first.
    pub async fn recent_link_events(&self, limit: u32) -> Result<Vec<LinkRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, link, state, detail FROM link_events \
             ORDER BY at_ms DESC, id DESC LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LinkRow {
                    id: r.try_get("id")?,
                    at: jst(r.try_get("at_ms")?),
                    link: r.try_get("link")?,
                    state: r.try_get("state")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// The latest `limit` fault changes, newest first.
    pub async fn recent_faults(&self, limit: u32) -> Result<Vec<FaultRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, kind, active, detail FROM faults \
             ORDER BY at_ms DESC, id DESC LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FaultRow {
                    id: r.try_get("id")?,
                    at: jst(r.try_get("at_ms")?),
                    kind: r.try_get("kind")?,
                    active: r.try_get("active")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// The latest `limit` output results, newest first.
    pub async fn recent_output_results(&self, limit: u32) -> Result<Vec<OutputRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, output, action, event_id, serial, ok, latency_us, detail \
             FROM output_results ORDER BY at_ms DESC, id DESC LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutputRow {
                    id: r.try_get("id")?,
                    at: jst(r.try_get("at_ms")?),
                    output: r.try_get("output")?,
                    action: r.try_get("action")?,
                    event_id: r.try_get("event_id")?,
                    serial: r.try_get("serial")?,
                    ok: r.try_get("ok")?,
                    latency_us: r.try_get("latency_us")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// The latest `limit` audit trail entries, newest first.
    pub async fn recent_audit(&self, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, who, action, detail FROM audit \
             ORDER BY at_ms DESC, id DESC LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    id: r.try_get("id")?,
                    at: jst(r.try_get("at_ms")?),
                    who: r.try_get("who")?,
                    action: r.try_get("action")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// Per channel, the newest evidence (the last recorded: highest id) and the newest
    /// that it worked. Channels with no evidence are absent.
    ///
    /// Never reads more than two rows per channel: the channels are found by skipping
    /// through the `(channel, id)` index (one seek each), and each channel's newest and
    /// newest ok row are the ends of its ranges in `(channel, id)` and `(channel, ok, id)`
    /// (see [`Store::evidence_summary_plan`]).
    pub async fn evidence_summary(&self) -> Result<BTreeMap<String, EvidenceSummary>, StoreError> {
        let rows = sqlx::query(EVIDENCE_SUMMARY_SQL)
            .fetch_all(&self.pool)
            .await?;
        // At most a channel's newest row and its newest ok row, oldest first: the last
        // row seen of a channel is its newest, the last ok row its newest ok.
        let mut out: BTreeMap<String, EvidenceSummary> = BTreeMap::new();
        for r in &rows {
            let row = evidence_row(r)?;
            let ok = row.ok.then(|| row.clone());
            if let Some(summary) = out.get_mut(&row.channel) {
                if ok.is_some() {
                    summary.last_ok = ok;
                }
                summary.last = row;
            } else {
                out.insert(
                    row.channel.clone(),
                    EvidenceSummary {
                        last: row,
                        last_ok: ok,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Per channel and method, when it last proved the channel working (the newest ok
    /// row's time): what delivery assurance ages (`eew_core::assurance`). One ordered
    /// walk of the `(ok, channel, method, at_ms)` index (schema 6).
    pub async fn evidence_ok_by_method(
        &self,
    ) -> Result<BTreeMap<String, BTreeMap<String, DateTime<Utc>>>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel, method, max(at_ms) AS at_ms FROM evidence \
             WHERE ok = 1 GROUP BY channel, method",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out: BTreeMap<String, BTreeMap<String, DateTime<Utc>>> = BTreeMap::new();
        for r in &rows {
            let channel: String = r.try_get("channel")?;
            let method: String = r.try_get("method")?;
            let at = utc(r.try_get("at_ms")?);
            out.entry(channel).or_default().insert(method, at);
        }
        Ok(out)
    }

    /// When the appliance first ran: its oldest stored configuration (`None` on an empty
    /// history). Delivery assurance counts a channel never proved from here.
    pub async fn first_config_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar("SELECT min(at_ms) FROM config_changes")
            .fetch_one(&self.pool)
            .await?;
        Ok(at.map(utc))
    }

    /// One page of evidence, newest first (by id), of one channel or of all: rows strictly
    /// below `before_id`, at most `limit` of them (clamped to 1..=[`EVIDENCE_PAGE_MAX`]).
    /// A page is one walk down the `(channel, id)` index (or the ids), whatever its depth.
    pub async fn evidence(
        &self,
        channel: Option<&str>,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<EvidenceRow>, StoreError> {
        let rows = evidence_page_sql(channel, before_id, limit, false)
            .build()
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(evidence_row).collect()
    }

    /// SQLite's plan for [`Store::evidence_summary`] (`EXPLAIN QUERY PLAN`, one line per
    /// step), for tests and diagnostics.
    pub async fn evidence_summary_plan(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(EVIDENCE_SUMMARY_PLAN_SQL)
            .fetch_all(&self.pool)
            .await?;
        plan_details(&rows)
    }

    /// SQLite's plan for a [`Store::evidence`] page, for tests and diagnostics.
    pub async fn evidence_plan(
        &self,
        channel: Option<&str>,
        before_id: Option<i64>,
    ) -> Result<Vec<String>, StoreError> {
        let rows = evidence_page_sql(channel, before_id, EVIDENCE_PAGE_MAX, true)
            .build()
            .fetch_all(&self.pool)
            .await?;
        plan_details(&rows)
    }

    /// One page of telegrams for the web UI: newest first (by id), strictly below
    /// `page.before_id`, filtered by event, verdict, kind and receive time
    /// `[from_ms, to_ms)`. `raw` is left empty (`size` is its length; the bytes come from
    /// [`Store::telegram_raw`]), so a page never reads the blobs. Every filter uses an
    /// index and no page sorts more than one event's telegrams, whatever its depth: see
    /// [`Store::telegrams_page_plan`].
    pub async fn telegrams_page(&self, page: &PageQuery) -> Result<Vec<TelegramRow>, StoreError> {
        let rows = telegrams_page_sql(page, false)
            .build()
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(telegram_row).collect()
    }

    /// SQLite's plan for [`Store::telegrams_page`] (`EXPLAIN QUERY PLAN`, one line per
    /// step): how a page is found, for tests and diagnostics.
    pub async fn telegrams_page_plan(&self, page: &PageQuery) -> Result<Vec<String>, StoreError> {
        let rows = telegrams_page_sql(page, true)
            .build()
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("detail")?))
            .collect()
    }

    /// The bytes of one telegram exactly as received; `None` when there is no such id.
    pub async fn telegram_raw(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT raw FROM telegrams WHERE id = ?1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// One page of alerts for the web UI, each with its `rowid` as id: newest first,
    /// strictly below `page.before_id`, optionally of one event and label and with the
    /// first action within `[from_ms, to_ms)`.
    pub async fn alerts_page(&self, page: &PageQuery) -> Result<Vec<(i64, AlertRow)>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT rowid AS id, event_id, label, first_ms, last_ms, first_serial, last_serial, \
             max_class, max_long_period, warning, cancelled, ended, actions FROM alerts WHERE 1",
        );
        // Only the filters given are in the SQL: `(?1 IS NULL OR …)` would hide the
        // conditions from the planner, and every page would scan from the newest row.
        if let Some(before) = page.before_id {
            q.push(" AND rowid < ").push_bind(before);
        }
        if let Some(event) = &page.event_id {
            q.push(" AND event_id = ").push_bind(event.clone());
        }
        if let Some(label) = &page.label {
            q.push(" AND label = ").push_bind(label.clone());
        }
        if let Some(from) = page.from_ms {
            q.push(" AND first_ms >= ").push_bind(from);
        }
        if let Some(to) = page.to_ms {
            q.push(" AND first_ms < ").push_bind(to);
        }
        q.push(" ORDER BY rowid DESC LIMIT ")
            .push_bind(i64::from(page.limit));
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, alert_row(r)?)))
            .collect()
    }

    /// The latest `limit` configuration versions, newest first.
    pub async fn recent_configs(&self, limit: u32) -> Result<Vec<ConfigRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, sha256, text FROM config_changes ORDER BY id DESC LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConfigRow {
                    id: r.try_get("id")?,
                    at: jst(r.try_get("at_ms")?),
                    sha256: r.try_get("sha256")?,
                    text: r.try_get("text")?,
                })
            })
            .collect()
    }

    /// Rows per table and the file's size.
    pub async fn counts(&self) -> Result<StoreCounts, StoreError> {
        let r = sqlx::query(
            "SELECT (SELECT count(*) FROM telegrams) AS telegrams, \
             (SELECT count(*) FROM decisions) AS decisions, \
             (SELECT count(*) FROM actions) AS actions, \
             (SELECT count(*) FROM alerts) AS alerts, \
             (SELECT count(*) FROM link_events) AS link_events, \
             (SELECT count(*) FROM faults) AS faults, \
             (SELECT count(*) FROM config_changes) AS config_changes, \
             (SELECT page_count FROM pragma_page_count()) AS pages, \
             (SELECT freelist_count FROM pragma_freelist_count()) AS free, \
             (SELECT page_size FROM pragma_page_size()) AS page_size",
        )
        .fetch_one(&self.pool)
        .await?;
        let n = |col: &str| -> Result<u64, StoreError> {
            Ok(u64::try_from(r.try_get::<i64, _>(col)?).unwrap_or(0))
        };
        let page_size = n("page_size")?;
        Ok(StoreCounts {
            telegrams: n("telegrams")?,
            decisions: n("decisions")?,
            actions: n("actions")?,
            alerts: n("alerts")?,
            link_events: n("link_events")?,
            faults: n("faults")?,
            config_changes: n("config_changes")?,
            size_bytes: n("pages")?.saturating_mul(page_size),
            free_bytes: n("free")?.saturating_mul(page_size),
        })
    }

    /// The time of the newest telegram, link event or fault: what retention measures
    /// age against when the clock looks wrong.
    pub async fn newest_activity(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let newest: Option<i64> = sqlx::query_scalar(
            "SELECT max(coalesce((SELECT max(received_ms) FROM telegrams), 0), \
             coalesce((SELECT max(at_ms) FROM link_events), 0), \
             coalesce((SELECT max(at_ms) FROM faults), 0))",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(newest
            .filter(|&ms| ms > 0)
            .and_then(DateTime::<Utc>::from_timestamp_millis))
    }

    /// `PRAGMA quick_check`: `Ok(())` or [`StoreError::Corrupt`] with SQLite's findings.
    /// Reads the whole file: for maintenance, not for every start.
    pub async fn quick_check(&self) -> Result<(), StoreError> {
        let findings: Vec<String> = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_all(&self.pool)
            .await?;
        if findings.iter().all(|f| f == "ok") {
            Ok(())
        } else {
            Err(StoreError::Corrupt(findings.join("; ")))
        }
    }
}

/// A write transaction on a pooled connection, begun with `BEGIN IMMEDIATE` (the write
/// lock is taken up front, under the busy timeout, instead of upgrading later).
///
/// sqlx's own `Transaction` is not used: when a `COMMIT` or `ROLLBACK` fails (SQLite
/// rolls back by itself on `SQLITE_FULL` and `SQLITE_IOERR`), sqlx 0.9 keeps counting the
/// transaction as open and the pooled connection refuses every later `BEGIN`, so history
/// would never recover from a full disk. Here a transaction that did not commit, for
/// whatever reason (an error, or the future dropped), closes its connection instead of
/// returning it to the pool; closing rolls back, and the pool opens a fresh one.
struct WriteTx {
    conn: PoolConnection<Sqlite>,
    committed: bool,
}

impl WriteTx {
    async fn begin(pool: &SqlitePool) -> Result<WriteTx, StoreError> {
        let mut tx = WriteTx {
            conn: pool.acquire().await?,
            committed: false,
        };
        sqlx::query("BEGIN IMMEDIATE").execute(tx.conn()).await?;
        Ok(tx)
    }

    fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    async fn commit(mut self) -> Result<(), StoreError> {
        sqlx::query("COMMIT").execute(self.conn()).await?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if !self.committed {
            self.conn.close_on_drop();
        }
    }
}

/// Creates the database file, readable by its owner and group only (it holds the
/// configuration text), unless it exists. SQLite gives `-wal` and `-shm` the same mode.
async fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = path.to_owned();
    let created = tokio::task::spawn_blocking(move || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .open(&path)
            .map(drop)
    })
    .await
    .map_err(|e| StoreError::Other(format!("creating the database file: {e}")))?;
    match created {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::from_io(&e, "creating the database file")),
    }
}

async fn wal_exists(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    tokio::fs::try_exists(PathBuf::from(wal))
        .await
        .unwrap_or(true)
}

/// Unix milliseconds to a UTC time (out-of-range values become the epoch).
fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH)
}

/// Unix milliseconds to a JST time (out-of-range values become the epoch).
fn jst(ms: i64) -> JstTime {
    JstTime::from_datetime(utc(ms).fixed_offset())
}

fn opt_u32(v: Option<i64>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

fn opt_u8(v: Option<i64>) -> Option<u8> {
    v.and_then(|v| u8::try_from(v).ok())
}

fn alert_row(r: &SqliteRow) -> Result<AlertRow, StoreError> {
    Ok(AlertRow {
        event_id: r.try_get("event_id")?,
        label: r.try_get("label")?,
        first_at: jst(r.try_get("first_ms")?),
        last_at: jst(r.try_get("last_ms")?),
        first_serial: opt_u32(r.try_get("first_serial")?),
        last_serial: opt_u32(r.try_get("last_serial")?),
        max_class: r.try_get("max_class")?,
        max_long_period_class: opt_u8(r.try_get("max_long_period")?),
        warning: r.try_get("warning")?,
        cancelled: r.try_get("cancelled")?,
        ended: r.try_get("ended")?,
        actions: u64::try_from(r.try_get::<i64, _>("actions")?).unwrap_or(0),
    })
}

/// The `detail` column of an `EXPLAIN QUERY PLAN`.
fn plan_details(rows: &[SqliteRow]) -> Result<Vec<String>, StoreError> {
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("detail")?))
        .collect()
}

fn evidence_row(r: &SqliteRow) -> Result<EvidenceRow, StoreError> {
    Ok(EvidenceRow {
        id: r.try_get("id")?,
        at: utc(r.try_get("at_ms")?),
        channel: r.try_get("channel")?,
        source: r.try_get("source")?,
        method: r.try_get("method")?,
        ok: r.try_get("ok")?,
        measurement_ms: r.try_get("measurement_ms")?,
        detail: r.try_get("detail")?,
    })
}

/// The SQL of [`Store::evidence_summary`]: each channel's newest and newest ok row, oldest
/// first.
///
/// `channels` skips through `evidence_channel` (each step the smallest channel above the
/// last: one seek, where `SELECT DISTINCT` would read the whole index), and `latest` takes
/// the end of each channel's range in `evidence_channel` (`channel = ?`, ids descending)
/// and in `evidence_channel_ok` (`channel = ? AND ok = 1`). The rows are then fetched by
/// id. A macro, so that the SQL of its plan is a literal too (`concat!`).
macro_rules! evidence_summary_sql {
    () => {
        "\
            WITH RECURSIVE channels(channel) AS ( \
                SELECT (SELECT min(channel) FROM evidence) \
                UNION ALL \
                SELECT (SELECT min(e.channel) FROM evidence AS e WHERE e.channel > c.channel) \
                FROM channels AS c WHERE c.channel IS NOT NULL \
            ), \
            latest AS MATERIALIZED ( \
                SELECT (SELECT e.id FROM evidence AS e WHERE e.channel = c.channel \
                        ORDER BY e.id DESC LIMIT 1) AS last_id, \
                       (SELECT e.id FROM evidence AS e WHERE e.channel = c.channel AND e.ok = 1 \
                        ORDER BY e.id DESC LIMIT 1) AS ok_id \
                FROM channels AS c WHERE c.channel IS NOT NULL \
            ) \
            SELECT id, at_ms, channel, source, method, ok, measurement_ms, detail FROM evidence \
            WHERE id IN (SELECT last_id FROM latest UNION ALL SELECT ok_id FROM latest) \
            ORDER BY id"
    };
}
/// See `evidence_summary_sql!`.
const EVIDENCE_SUMMARY_SQL: &str = evidence_summary_sql!();
/// [`EVIDENCE_SUMMARY_SQL`]'s plan.
const EVIDENCE_SUMMARY_PLAN_SQL: &str = concat!("EXPLAIN QUERY PLAN ", evidence_summary_sql!());

/// The SQL of a [`Store::evidence`] page (or of its plan). Only the filters given are in
/// the SQL, so the planner sees them (see [`telegrams_page_sql`]).
fn evidence_page_sql(
    channel: Option<&str>,
    before_id: Option<i64>,
    limit: u32,
    explain: bool,
) -> QueryBuilder<Sqlite> {
    let mut q = QueryBuilder::<Sqlite>::new(if explain { "EXPLAIN QUERY PLAN " } else { "" });
    q.push(
        "SELECT id, at_ms, channel, source, method, ok, measurement_ms, detail \
         FROM evidence WHERE 1",
    );
    if let Some(channel) = channel {
        q.push(" AND channel = ").push_bind(channel.to_owned());
    }
    if let Some(before) = before_id {
        q.push(" AND id < ").push_bind(before);
    }
    q.push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::from(limit.clamp(1, EVIDENCE_PAGE_MAX)));
    q
}

fn telegram_row(r: &SqliteRow) -> Result<TelegramRow, StoreError> {
    Ok(TelegramRow {
        id: r.try_get("id")?,
        received_at: jst(r.try_get("received_ms")?),
        link: r.try_get("link")?,
        verdict: r.try_get("verdict")?,
        reason: r.try_get("reason")?,
        message: r.try_get("message")?,
        event_id: r.try_get("event_id")?,
        serial: opt_u32(r.try_get("serial")?),
        status: r.try_get("status")?,
        kind: r.try_get("kind")?,
        format: r.try_get("format")?,
        product: r.try_get("product")?,
        actionable: r.try_get("actionable")?,
        decode_us: r
            .try_get::<Option<i64>, _>("decode_us")?
            .and_then(|v| u64::try_from(v).ok()),
        size: u64::try_from(r.try_get::<i64, _>("size")?).unwrap_or(0),
        raw: r.try_get("raw")?,
    })
}

/// The SQL of a telegram page (or of its plan).
///
/// Only the filters given are in the SQL: `(?1 IS NULL OR id < ?1)` would hide the
/// conditions from the planner, and every page would scan down from the newest row.
///
/// A time range becomes an id range (`span`): the smallest and largest id received
/// within it, read once from the `telegrams_received` index alone (no row is touched).
/// The page is then one walk down the ids (or down the verdict or kind index, which end
/// with the id) that stops after `limit` rows, where the index on the time would have
/// fetched and sorted every row of the range for every page. The time condition itself
/// stays (`+` keeps the planner off its index there), so the result is exact even when
/// the clock stepped back and ids are not in time order.
fn telegrams_page_sql(page: &PageQuery, explain: bool) -> QueryBuilder<Sqlite> {
    let mut q = QueryBuilder::<Sqlite>::new(if explain { "EXPLAIN QUERY PLAN " } else { "" });
    let range = (page.from_ms.is_some() || page.to_ms.is_some()).then(|| {
        (
            page.from_ms.unwrap_or(i64::MIN),
            page.to_ms.unwrap_or(i64::MAX),
        )
    });
    if let Some((from, to)) = range {
        q.push(
            "WITH span AS MATERIALIZED (SELECT min(id) AS lo, max(id) AS hi FROM telegrams \
             WHERE received_ms >= ",
        )
        .push_bind(from)
        .push(" AND received_ms < ")
        .push_bind(to)
        .push(") ");
    }
    q.push(
        "SELECT id, received_ms, link, verdict, reason, message, event_id, serial, status, \
         kind, format, product, actionable, decode_us, length(raw) AS size, x'' AS raw \
         FROM telegrams WHERE 1",
    );
    // One upper bound on the id: given two (`id <= hi AND id < before`), SQLite walks
    // down from one and only filters by the other, which on a deep page of a long range
    // reads every row between them.
    match (range, page.before_id) {
        (Some(_), Some(before)) => {
            q.push(" AND id >= (SELECT lo FROM span) AND id < min((SELECT hi FROM span) + 1, ")
                .push_bind(before)
                .push(")");
        }
        (Some(_), None) => {
            q.push(" AND id >= (SELECT lo FROM span) AND id <= (SELECT hi FROM span)");
        }
        (None, Some(before)) => {
            q.push(" AND id < ").push_bind(before);
        }
        (None, None) => {}
    }
    if let Some((from, to)) = range {
        q.push(" AND +received_ms >= ")
            .push_bind(from)
            .push(" AND +received_ms < ")
            .push_bind(to);
    }
    if let Some(event) = &page.event_id {
        q.push(" AND event_id = ").push_bind(event.clone());
    }
    if let Some(verdict) = &page.verdict {
        q.push(" AND verdict = ").push_bind(verdict.clone());
    }
    if let Some(kind) = &page.kind {
        q.push(" AND kind = ").push_bind(kind.clone());
    }
    q.push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::from(page.limit));
    q
}

/// The SHA-256 of a text, lowercase hex.
pub fn sha256_hex(text: &str) -> String {
    use std::fmt::Write;
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

async fn insert(conn: &mut SqliteConnection, record: &Record) -> Result<i64, sqlx::Error> {
    match record {
        Record::Telegram(t) => insert_telegram(conn, t).await,
        Record::Decision { at, decision } => insert_decision(conn, *at, decision).await,
        Record::Action(a) => insert_action(conn, a).await,
        Record::Link(l) => insert_link(conn, l).await,
        Record::Fault(f) => insert_fault(conn, f).await,
        Record::Output(o) => insert_output(conn, o).await,
        Record::Audit(a) => insert_audit(conn, a).await,
        Record::Evidence(e) => insert_evidence(conn, e).await,
        Record::Config { at, text } => Ok(insert_config(conn, *at, text).await?.0),
    }
}

async fn insert_telegram(
    conn: &mut SqliteConnection,
    t: &TelegramRecord,
) -> Result<i64, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO telegrams (received_ms, link, verdict, reason, message, event_id, serial, \
         status, kind, format, product, actionable, decode_us, raw) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )
    .bind(t.received_at.timestamp_millis())
    .bind(&t.link)
    .bind(t.verdict.as_str())
    .bind(&t.reason)
    .bind(&t.message)
    .bind(&t.event_id)
    .bind(t.serial)
    .bind(&t.status)
    .bind(&t.kind)
    .bind(&t.format)
    .bind(&t.product)
    .bind(t.actionable)
    .bind(t.decode_us.map(|us| i64::try_from(us).unwrap_or(i64::MAX)))
    .bind(&t.raw)
    .execute(conn)
    .await?;
    Ok(done.last_insert_rowid())
}

fn label_code(label: eew_core::engine::Label) -> String {
    records::code_of(&label).unwrap_or_default()
}

async fn insert_decision(
    conn: &mut SqliteConnection,
    at: JstTime,
    d: &Decision,
) -> Result<i64, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO decisions (at_ms, event_id, serial, label, outcome, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(at.0.timestamp_millis())
    .bind(&d.event_id)
    .bind(d.serial)
    .bind(label_code(d.label))
    .bind(d.outcome)
    .bind(d.detail)
    .execute(conn)
    .await?;
    Ok(done.last_insert_rowid())
}

async fn insert_action(conn: &mut SqliteConnection, a: &Action) -> Result<i64, sqlx::Error> {
    let json = serde_json::to_string(a).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let at_ms = a.at.0.timestamp_millis();
    let label = label_code(a.label);
    let class = a.intensity_class.map(|c| c.as_str());
    let done = sqlx::query(
        "INSERT INTO actions (at_ms, output, action, cause, event_id, serial, label, training, \
         intensity_class, long_period_class, warning, json) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .bind(at_ms)
    .bind(a.output.to_string())
    .bind(a.kind.name())
    .bind(records::code_of(&a.cause).unwrap_or_default())
    .bind(&a.event_id)
    .bind(a.serial)
    .bind(&label)
    .bind(a.training)
    .bind(class)
    .bind(a.long_period_class)
    .bind(a.warning)
    .bind(json)
    .execute(&mut *conn)
    .await?;
    let id = done.last_insert_rowid();
    if let Some(event_id) = &a.event_id {
        let rank = a.intensity_class.and_then(|c| {
            eew_core::Intensity::ALL
                .iter()
                .position(|&i| i == c)
                .and_then(|p| i64::try_from(p).ok())
        });
        let ended = match a.cause {
            Cause::Cancel => Some("cancel"),
            Cause::Expiry => Some("expiry"),
            Cause::Reset => Some("reset"),
            _ => None,
        };
        let restarts = matches!(a.cause, Cause::Start | Cause::Update);
        sqlx::query(
            "INSERT INTO alerts (event_id, label, first_ms, last_ms, first_serial, last_serial, \
             max_rank, max_class, max_long_period, warning, cancelled, ended, actions) \
             VALUES (?1, ?2, ?3, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1) \
             ON CONFLICT (event_id, label) DO UPDATE SET \
               first_ms = min(first_ms, excluded.first_ms), \
               last_ms = max(last_ms, excluded.last_ms), \
               last_serial = coalesce(max(last_serial, excluded.last_serial), last_serial, \
                                      excluded.last_serial), \
               max_class = CASE WHEN coalesce(excluded.max_rank, -1) > coalesce(max_rank, -1) \
                                THEN excluded.max_class ELSE max_class END, \
               max_rank = nullif(max(coalesce(max_rank, -1), coalesce(excluded.max_rank, -1)), -1), \
               max_long_period = nullif(max(coalesce(max_long_period, -1), \
                                            coalesce(excluded.max_long_period, -1)), -1), \
               warning = max(warning, excluded.warning), \
               cancelled = max(cancelled, excluded.cancelled), \
               ended = CASE WHEN excluded.ended IS NOT NULL THEN excluded.ended \
                            WHEN ?11 THEN NULL ELSE ended END, \
               actions = actions + 1",
        )
        .bind(event_id)
        .bind(&label)
        .bind(at_ms)
        .bind(a.serial)
        .bind(rank)
        .bind(class)
        .bind(a.long_period_class)
        .bind(a.warning)
        .bind(a.cause == Cause::Cancel)
        .bind(ended)
        .bind(restarts)
        .execute(&mut *conn)
        .await?;
    }
    Ok(id)
}

async fn insert_link(conn: &mut SqliteConnection, l: &LinkRecord) -> Result<i64, sqlx::Error> {
    let done =
        sqlx::query("INSERT INTO link_events (at_ms, link, state, detail) VALUES (?1, ?2, ?3, ?4)")
            .bind(l.at.timestamp_millis())
            .bind(&l.link)
            .bind(l.state.as_str())
            .bind(&l.detail)
            .execute(conn)
            .await?;
    Ok(done.last_insert_rowid())
}

async fn insert_fault(conn: &mut SqliteConnection, f: &FaultRecord) -> Result<i64, sqlx::Error> {
    let done =
        sqlx::query("INSERT INTO faults (at_ms, kind, active, detail) VALUES (?1, ?2, ?3, ?4)")
            .bind(f.at.timestamp_millis())
            .bind(&f.kind)
            .bind(f.active)
            .bind(&f.detail)
            .execute(conn)
            .await?;
    Ok(done.last_insert_rowid())
}

async fn insert_output(conn: &mut SqliteConnection, o: &OutputRecord) -> Result<i64, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO output_results \
         (at_ms, output, action, event_id, serial, ok, latency_us, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .bind(o.at.timestamp_millis())
    .bind(&o.output)
    .bind(&o.action)
    .bind(&o.event_id)
    .bind(o.serial.map(i64::from))
    .bind(o.ok)
    .bind(o.latency_us)
    .bind(&o.detail)
    .execute(conn)
    .await?;
    Ok(done.last_insert_rowid())
}

async fn insert_audit(conn: &mut SqliteConnection, a: &AuditRecord) -> Result<i64, sqlx::Error> {
    let done =
        sqlx::query("INSERT INTO audit (at_ms, who, action, detail) VALUES (?1, ?2, ?3, ?4)")
            .bind(a.at.timestamp_millis())
            .bind(&a.who)
            .bind(&a.action)
            .bind(&a.detail)
            .execute(conn)
            .await?;
    Ok(done.last_insert_rowid())
}

async fn insert_evidence(
    conn: &mut SqliteConnection,
    e: &EvidenceRecord,
) -> Result<i64, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO evidence (at_ms, channel, source, method, ok, measurement_ms, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(e.at.timestamp_millis())
    .bind(&e.channel)
    .bind(&e.source)
    .bind(&e.method)
    .bind(e.ok)
    .bind(e.measurement_ms.filter(|ms| ms.is_finite()))
    .bind(&e.detail)
    .execute(conn)
    .await?;
    Ok(done.last_insert_rowid())
}

/// Inserts the text unless it equals the newest version; `(id, inserted)`.
async fn insert_config(
    conn: &mut SqliteConnection,
    at: DateTime<Utc>,
    text: &str,
) -> Result<(i64, bool), sqlx::Error> {
    let sha = sha256_hex(text);
    let newest: Option<(i64, String)> =
        sqlx::query_as("SELECT id, sha256 FROM config_changes ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    if let Some((id, newest_sha)) = newest
        && newest_sha == sha
    {
        return Ok((id, false));
    }
    let done = sqlx::query("INSERT INTO config_changes (at_ms, sha256, text) VALUES (?1, ?2, ?3)")
        .bind(at.timestamp_millis())
        .bind(sha)
        .bind(text)
        .execute(&mut *conn)
        .await?;
    Ok((done.last_insert_rowid(), true))
}
