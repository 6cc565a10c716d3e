//! The daemon's side of the local web UI (crate `eewgate-webui`, docs/adr/0011-web-ui.md):
//! the `[webui]` settings section, [`DaemonAppliance`] (the `Appliance` seam over the
//! status watch channel, the history database and the administrator's password hash
//! file), and [`start`], which the composition root calls once history and status exist.
//!
//! The web UI is never allowed to endanger the alarms: it reads history through its own
//! read-only connection, writes audit entries with `try_send` (never waiting), and a port
//! it cannot bind or a credential file it cannot read is a `webui` fault on the status
//! model (`outputs["webui"] = "fault: …"`, so it shows in `STATUS=`, the dashboard and
//! MQTT), in history and in the log — the daemon keeps running.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{NaiveDate, TimeDelta};
use eew_core::settings::Walker;
use eewgate_webui::{Appliance, ApplianceError, AuditEntry, HistoryQuery, Options, WebUi};
use serde_json::{Value, json};
use tokio::sync::{OnceCell, watch};
use toml::Table;

use crate::app::EventPrinter;
use crate::status::Status;
use crate::store::{AuditRecord, FaultRecord, HistoryWriter, PageQuery, Record, Store};
use crate::supervisor::Supervisor;
use crate::system::clock::now_utc;

/// Default listening address.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// Default directory of the administrator's password hash.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/eewgate";
/// The administrator's password hash (a PHC string), in `state_dir`.
pub const HASH_FILE: &str = "webui-admin.hash";

const KEYS: &[&str] = &["enabled", "listen", "state_dir"];

/// `[webui]`: the local web UI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebUiConfig {
    /// The UI is served (false when the section is absent; true by default when present).
    pub enabled: bool,
    /// Where it listens.
    pub listen: SocketAddr,
    /// Directory of [`HASH_FILE`].
    pub state_dir: PathBuf,
}

impl Default for WebUiConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
        }
    }
}

impl WebUiConfig {
    /// The password hash file.
    pub fn hash_file(&self) -> PathBuf {
        self.state_dir.join(HASH_FILE)
    }
}

/// Checks `[webui]`; relative paths are taken from `base` (the settings file's directory).
pub fn section(w: &mut Walker, table: &Table, base: &Path) -> WebUiConfig {
    let mut out = WebUiConfig::default();
    let Some(t) = w.section(table, "", "webui") else {
        return out;
    };
    out.enabled = true;
    if let Some((p, v)) = w.get(t, "webui", "enabled")
        && let Some(b) = w.bool_at(&p, v)
    {
        out.enabled = b;
    }
    if let Some((p, v)) = w.get(t, "webui", "listen")
        && let Some(s) = w.str_at(&p, v)
    {
        match s.trim().parse::<SocketAddr>() {
            Ok(addr) => out.listen = addr,
            Err(_) => w.error(
                p,
                format!(
                    "{s:?} is not a socket address: an IP address and a port, e.g. \
                     \"{DEFAULT_LISTEN}\", \"127.0.0.1:8080\" or \"[::]:8080\""
                ),
            ),
        }
    }
    if let Some((p, v)) = w.get(t, "webui", "state_dir")
        && let Some(s) = w.str_at(&p, v)
    {
        if s.trim().is_empty() {
            w.error(
                p,
                format!("must name a directory, e.g. \"{DEFAULT_STATE_DIR}\""),
            );
        } else {
            out.state_dir = base.join(s);
        }
    }
    w.unknown_keys(t, "webui", KEYS);
    out
}

/// The [`Appliance`] over the running daemon.
#[derive(Debug)]
pub struct DaemonAppliance {
    status: watch::Receiver<Value>,
    db: PathBuf,
    store: OnceCell<Store>,
    hash_file: PathBuf,
    history: Option<HistoryWriter>,
}

impl DaemonAppliance {
    /// An appliance reading `db` (opened read-only on first use), keeping the password
    /// hash in `hash_file`, auditing into `history` (logged only when `None`), with status
    /// from `status`.
    pub fn new(
        status: watch::Receiver<Value>,
        db: PathBuf,
        hash_file: PathBuf,
        history: Option<HistoryWriter>,
    ) -> Self {
        Self {
            status,
            db,
            store: OnceCell::new(),
            hash_file,
            history,
        }
    }

    async fn store(&self) -> Result<&Store, ApplianceError> {
        self.store
            .get_or_try_init(|| Store::open_read_only(&self.db))
            .await
            .map_err(|e| ApplianceError(format!("history unavailable: {e}")))
    }
}

/// The daemon's status as the UI sees it: the model plus its fault codes and summary.
pub fn status_json(s: &Status) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut v {
        map.insert("faults".to_owned(), json!(s.faults()));
        map.insert("summary".to_owned(), json!(s.summary()));
    }
    v
}

/// A UI query as a store page: `to` is inclusive (the whole day, UTC).
pub fn page_query(q: &HistoryQuery) -> PageQuery {
    let day_ms = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
    };
    PageQuery {
        before_id: q.before_id,
        limit: q.limit.clamp(1, HistoryQuery::MAX_LIMIT),
        event_id: q.event_id.clone(),
        from_ms: q.from.and_then(day_ms),
        to_ms: q
            .to
            .and_then(|d| d.checked_add_signed(TimeDelta::days(1)))
            .and_then(day_ms),
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> ApplianceError {
    ApplianceError(format!("{what}: {e}"))
}

/// Reads the hash file: `None` when it does not exist (or is empty).
pub fn read_hash(path: &Path) -> Result<Option<String>, std::io::Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let hash = text.trim();
            Ok((!hash.is_empty()).then(|| hash.to_owned()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the hash file atomically: a temporary file (mode 600) written and synced,
/// renamed over the old one, then the directory synced.
pub fn write_hash(path: &Path, hash: &str) -> Result<(), std::io::Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(hash.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

impl Appliance for DaemonAppliance {
    fn status(&self) -> watch::Receiver<Value> {
        self.status.clone()
    }

    async fn telegrams(&self, query: HistoryQuery) -> Result<Vec<Value>, ApplianceError> {
        let rows = self
            .store()
            .await?
            .telegrams_page(&page_query(&query))
            .await
            .map_err(|e| failed("reading telegrams", e))?;
        rows.iter()
            .map(|r| serde_json::to_value(r).map_err(|e| failed("telegram", e)))
            .collect()
    }

    async fn alerts(&self, query: HistoryQuery) -> Result<Vec<Value>, ApplianceError> {
        let rows = self
            .store()
            .await?
            .alerts_page(&page_query(&query))
            .await
            .map_err(|e| failed("reading alerts", e))?;
        rows.iter()
            .map(|(id, r)| {
                let mut v = serde_json::to_value(r).map_err(|e| failed("alert", e))?;
                if let Value::Object(map) = &mut v {
                    map.insert("id".to_owned(), json!(id));
                }
                Ok(v)
            })
            .collect()
    }

    async fn get_admin_hash(&self) -> Result<Option<String>, ApplianceError> {
        let path = self.hash_file.clone();
        tokio::task::spawn_blocking(move || read_hash(&path))
            .await
            .map_err(|e| failed("reading the credential", e))?
            .map_err(|e| failed(&format!("reading {}", self.hash_file.display()), e))
    }

    async fn set_admin_hash(&self, hash: String) -> Result<(), ApplianceError> {
        let path = self.hash_file.clone();
        tokio::task::spawn_blocking(move || write_hash(&path, &hash))
            .await
            .map_err(|e| failed("writing the credential", e))?
            .map_err(|e| failed(&format!("writing {}", self.hash_file.display()), e))
    }

    async fn audit(&self, entry: AuditEntry) -> Result<(), ApplianceError> {
        tracing::info!(who = %entry.who, action = %entry.action, detail = %entry.detail, "audit");
        let Some(history) = &self.history else {
            return Ok(());
        };
        history
            .try_send(Record::Audit(AuditRecord {
                at: entry.at,
                who: entry.who,
                action: entry.action,
                detail: (!entry.detail.is_empty()).then_some(entry.detail),
            }))
            .map_err(|e| failed("recording the audit entry", e))
    }
}

/// Everything [`start`] needs from the composition root.
#[derive(Debug)]
pub(crate) struct Wiring<'a> {
    pub cfg: &'a WebUiConfig,
    pub db: &'a Path,
    pub status: watch::Receiver<Status>,
    pub status_tx: &'a watch::Sender<Status>,
    pub history: Option<HistoryWriter>,
    pub events: Option<&'a EventPrinter>,
}

/// Marks the web UI faulty (status, history, events, log); the daemon keeps running.
fn fault(w: &Wiring<'_>, detail: String) {
    tracing::error!(detail = %detail, "web UI unavailable: alarms still run");
    w.status_tx.send_modify(|s| {
        s.outputs
            .insert("webui".to_owned(), format!("fault: {detail}"));
    });
    if let Some(h) = &w.history {
        let _ = h.try_send(Record::Fault(FaultRecord {
            at: now_utc(),
            kind: "webui".to_owned(),
            active: true,
            detail: Some(detail.clone()),
        }));
    }
    if let Some(p) = w.events {
        p.send(json!({"type": "fault", "fault": "webui", "active": true, "detail": detail}));
    }
}

/// Starts the web UI: the status feed, the credential check (printing the first-boot
/// setup code once), the listener and the server, each supervised. Never fails the
/// daemon: a problem is a `webui` fault.
pub(crate) async fn start(sup: &mut Supervisor, w: Wiring<'_>) {
    // The status model as JSON, re-serialised on every change.
    let mut status_rx = w.status.clone();
    let (json_tx, json_rx) = watch::channel(status_json(&status_rx.borrow_and_update()));
    {
        let cancel = sup.token();
        sup.spawn("webui-status", async move {
            loop {
                tokio::select! {
                    changed = status_rx.changed() => {
                        if changed.is_err() {
                            cancel.cancelled().await;
                            break;
                        }
                        let v = status_json(&status_rx.borrow_and_update());
                        json_tx.send_replace(v);
                    }
                    () = cancel.cancelled() => break,
                }
            }
            Ok(())
        });
    }
    let appliance = Arc::new(DaemonAppliance::new(
        json_rx,
        w.db.to_owned(),
        w.cfg.hash_file(),
        w.history.clone(),
    ));
    let ui = match WebUi::new(appliance, Options::default()).await {
        Ok(ui) => ui,
        Err(e) => return fault(&w, format!("cannot start: {e}")),
    };
    let listen = w.cfg.listen;
    if let Some(code) = ui.setup_code() {
        let line = format!("eewgate web UI first-boot setup code: {code} — open http://{listen}/");
        eprintln!("{line}");
        tracing::warn!("{line}");
        if let Some(p) = w.events {
            p.send(json!({"type": "webui", "setup_code": code, "listen": listen.to_string()}));
        }
    }
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => return fault(&w, format!("cannot listen on {listen}: {e}")),
    };
    w.status_tx.send_modify(|s| {
        s.outputs.insert("webui".to_owned(), "ok".to_owned());
    });
    tracing::info!(listen = %listen, "web UI listening");
    let cancel = sup.token();
    sup.spawn("webui", async move {
        // Dropped on cancellation rather than drained with `with_graceful_shutdown`:
        // live-status streams (SSE) never end by themselves and would hold the shutdown
        // open until its bound. `WebUi::serve` provides the client addresses for the
        // login rate limit.
        tokio::select! {
            served = ui.serve(listener) => {
                if let Err(e) = served {
                    tracing::error!(error = %e, "web UI server stopped");
                }
                // Nothing here may end the daemon: wait for the shutdown.
                cancel.cancelled().await;
            }
            () = cancel.cancelled() => {}
        }
        Ok(())
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;

    fn parse(text: &str, base: &Path) -> (WebUiConfig, Vec<String>) {
        let table: Table = text.parse().unwrap();
        let mut w = Walker::new();
        let cfg = section(&mut w, &table, base);
        let errors = w
            .into_errors()
            .into_iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect();
        (cfg, errors)
    }

    #[test]
    fn absent_is_off_present_is_on_with_defaults() {
        let (cfg, e) = parse("", Path::new("/etc/eewgate"));
        assert!(e.is_empty());
        assert_eq!(cfg, WebUiConfig::default());
        assert!(!cfg.enabled);
        let (cfg, e) = parse("[webui]\n", Path::new("/etc/eewgate"));
        assert!(e.is_empty(), "{e:?}");
        assert!(cfg.enabled);
        assert_eq!(cfg.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(cfg.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(
            cfg.hash_file(),
            PathBuf::from("/var/lib/eewgate/webui-admin.hash")
        );
    }

    #[test]
    fn keys_are_read_and_relative_dirs_follow_the_file() {
        let (cfg, e) = parse(
            "[webui]\nenabled = false\nlisten = \"[::1]:8443\"\nstate_dir = \"state\"\n",
            Path::new("/etc/eewgate"),
        );
        assert!(e.is_empty(), "{e:?}");
        assert!(!cfg.enabled);
        assert_eq!(cfg.listen, "[::1]:8443".parse().unwrap());
        assert_eq!(cfg.state_dir, PathBuf::from("/etc/eewgate/state"));
    }

    #[test]
    fn bad_values_and_unknown_keys_are_errors_with_their_path() {
        let (_, e) = parse(
            "[webui]\nlisten = \"localhost\"\nstate_dir = \" \"\nport = 80\nenabled = 1\n",
            Path::new("."),
        );
        assert!(
            e.iter()
                .any(|l| l.starts_with("webui.listen:") && l.contains("socket address")),
            "{e:?}"
        );
        assert!(e.iter().any(|l| l.starts_with("webui.state_dir:")), "{e:?}");
        assert!(e.iter().any(|l| l.starts_with("webui.port")), "{e:?}");
        assert!(e.iter().any(|l| l.starts_with("webui.enabled:")), "{e:?}");
        let (_, e) = parse("[webui]\nlisten = \"1.2.3.4:99999\"\n", Path::new("."));
        assert_eq!(e.len(), 1, "{e:?}");
    }

    #[test]
    fn the_hash_file_is_written_atomically_and_privately() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("eewgate-webui-hash-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub").join(HASH_FILE);
        assert_eq!(read_hash(&path).unwrap(), None);
        write_hash(&path, "$argon2id$v=19$first").unwrap();
        write_hash(&path, "$argon2id$v=19$second").unwrap();
        assert_eq!(
            read_hash(&path).unwrap().as_deref(),
            Some("$argon2id$v=19$second")
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn queries_become_store_pages_with_an_inclusive_last_day() {
        let q = HistoryQuery {
            before_id: Some(42),
            limit: 10_000,
            event_id: Some("20240417231417".to_owned()),
            from: NaiveDate::from_ymd_opt(2024, 4, 17),
            to: NaiveDate::from_ymd_opt(2024, 4, 17),
        };
        let p = page_query(&q);
        assert_eq!(p.before_id, Some(42));
        assert_eq!(p.limit, HistoryQuery::MAX_LIMIT);
        assert_eq!(p.from_ms, Some(1_713_312_000_000));
        assert_eq!(p.to_ms, Some(1_713_312_000_000 + 86_400_000));
        assert_eq!(page_query(&HistoryQuery::default()).to_ms, None);
    }
}
