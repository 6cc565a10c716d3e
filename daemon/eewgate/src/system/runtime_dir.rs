//! Files in the runtime directory (`/run/eewgate`, systemd's `RuntimeDirectory=`) for the
//! programs beside the daemon, which must not need a login, a broker or the network:
//!
//! - `health.json` — the MQTT health document plus `updated_at` and `pid`, rewritten on
//!   every change and at least every [`HEALTH_REFRESH`]; `eewgate health-gate` reads it
//!   (the update's mark-good, the booted-system test);
//! - `setup-code` — while first-boot setup is pending, the one-time code and where the
//!   web UI listens; `eewgate setup-code` shows it on the console. Removed once set up.
//!
//! Every write is a temporary file and a rename: a reader never sees half a file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::status::Status;

/// The health file's name.
pub const HEALTH_FILE: &str = "health.json";
/// The setup code file's name.
pub const SETUP_CODE_FILE: &str = "setup-code";
/// The health file is rewritten at least this often, so its age shows a live daemon.
pub const HEALTH_REFRESH: Duration = Duration::from_secs(10);
/// Changes closer together than this are written once (a burst of telegrams).
const DEBOUNCE: Duration = Duration::from_millis(200);

/// The directory to use: `--runtime-dir`, else the first of systemd's
/// `$RUNTIME_DIRECTORY` (colon-separated when a unit names several).
pub fn resolve(flag: Option<&Path>) -> Option<PathBuf> {
    systemd_dir(flag, "RUNTIME_DIRECTORY")
}

/// A directory systemd hands a unit (`RUNTIME_DIRECTORY`, `STATE_DIRECTORY`, …): the
/// flag when given, else the first entry of `var` (colon-separated when a unit names
/// several).
pub fn systemd_dir(flag: Option<&Path>, var: &str) -> Option<PathBuf> {
    resolve_from(flag, std::env::var_os(var))
}

fn resolve_from(flag: Option<&Path>, env: Option<std::ffi::OsString>) -> Option<PathBuf> {
    if let Some(p) = flag {
        return Some(p.to_owned());
    }
    let env = env?;
    let first = env.to_string_lossy().split(':').next()?.to_owned();
    (!first.is_empty()).then(|| PathBuf::from(first))
}

/// Writes `text` to `dir/name` atomically.
pub fn write_atomic(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join(name))
}

/// Removes `dir/name`; an absent file is fine.
pub fn remove(dir: &Path, name: &str) -> std::io::Result<()> {
    match std::fs::remove_file(dir.join(name)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The health file's document for `status`.
pub fn health_json(status: &Status, now: chrono::DateTime<chrono::Utc>) -> Value {
    let mut doc = crate::mqtt::health_document(status);
    if let Some(o) = doc.as_object_mut() {
        o.insert(
            "updated_at".to_owned(),
            json!(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        o.insert("pid".to_owned(), json!(std::process::id()));
    }
    doc
}

/// Keeps `dir/health.json` current until cancelled; removes it on the way out (a stopped
/// daemon has no health to report). A write failure is logged once per kind, never fatal.
pub async fn health_task(
    dir: PathBuf,
    mut status: watch::Receiver<Status>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut refresh = tokio::time::interval(HEALTH_REFRESH);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error: Option<std::io::ErrorKind> = None;
    loop {
        let text =
            health_json(&status.borrow_and_update(), crate::system::clock::now_utc()).to_string();
        match write_atomic(&dir, HEALTH_FILE, &text) {
            Ok(()) => last_error = None,
            Err(e) => {
                if last_error != Some(e.kind()) {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot write the health file");
                }
                last_error = Some(e.kind());
            }
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = refresh.tick() => {}
            changed = status.changed() => {
                if changed.is_err() {
                    cancel.cancelled().await;
                    break;
                }
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(DEBOUNCE) => {}
                }
            }
        }
    }
    if let Err(e) = remove(&dir, HEALTH_FILE) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the health file");
    }
    Ok(())
}

/// The setup code file's document.
pub fn setup_code_json(code: &str, scheme: &str, listen: std::net::SocketAddr) -> String {
    json!({ "code": code, "scheme": scheme, "listen": listen.to_string() }).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_then_the_first_systemd_directory() {
        let env = Some(std::ffi::OsString::from("/run/eewgate:/run/other"));
        assert_eq!(
            resolve_from(Some(Path::new("/x")), env.clone()),
            Some(PathBuf::from("/x")),
            "--runtime-dir wins"
        );
        assert_eq!(resolve_from(None, env), Some(PathBuf::from("/run/eewgate")));
        assert_eq!(resolve_from(None, Some("".into())), None);
        assert_eq!(resolve_from(None, None), None);
    }

    #[test]
    fn health_json_is_the_mqtt_document_with_time_and_pid() {
        let mut s = Status {
            ready: true,
            ..Status::default()
        };
        s.time.synchronised = Some(true);
        s.storage.ok = true;
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-04T01:02:03.456Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let doc = health_json(&s, now);
        assert_eq!(doc["ok"], true);
        assert_eq!(doc["ready"], true);
        assert_eq!(doc["time"]["synchronised"], true);
        assert_eq!(doc["updated_at"], "2026-12-04T01:02:03.456Z");
        assert_eq!(doc["pid"], std::process::id());
    }

    #[test]
    fn writes_replace_whole_files_and_removal_tolerates_absence() {
        let dir = tempdir();
        write_atomic(&dir, "f", "one").unwrap();
        write_atomic(&dir, "f", "two").unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("f")).unwrap(), "two");
        assert!(!dir.join(".f.tmp").exists(), "no temporary file left");
        remove(&dir, "f").unwrap();
        remove(&dir, "f").unwrap();
        assert!(!dir.join("f").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "eewgate-runtime-dir-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
