//! The replay link: telegram files fed as if they arrived on a link (drills, the demo).
//! Each file is one telegram; with `at_original_times` the gaps between their issue times
//! are kept, otherwise they are `interval` apart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{LinkEvent, Received};
use crate::system::clock::now_utc;

/// A replay link's settings.
#[derive(Clone, Debug)]
pub struct ReplayConfig {
    /// Link name.
    pub name: Arc<str>,
    /// Files, in order.
    pub files: Vec<PathBuf>,
    /// Gap between files.
    pub interval: Duration,
    /// Keep the telegrams' own spacing.
    pub at_original_times: bool,
    /// Start again after the last file.
    pub repeat: bool,
}

/// Feeds the files; ends (Ok) after the last unless `repeat`, staying "up" until
/// cancelled so an idle replay is not mistaken for a dead link.
pub async fn run(
    cfg: ReplayConfig,
    tx: mpsc::Sender<LinkEvent>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let send = |ev: LinkEvent| {
        let tx = tx.clone();
        async move { tx.send(ev).await.is_ok() }
    };
    if !send(LinkEvent::Up {
        link: cfg.name.clone(),
        peer: format!("{} file(s)", cfg.files.len()),
    })
    .await
    {
        return Ok(());
    }
    loop {
        let mut previous_issue: Option<chrono::DateTime<chrono::FixedOffset>> = None;
        for (i, path) in cfg.files.iter().enumerate() {
            let bytes = match tokio::fs::read(path).await {
                Ok(b) => b,
                Err(err) => {
                    tracing::warn!(link = %cfg.name, file = %path.display(), error = %err, "replay file unreadable");
                    continue;
                }
            };
            let wait = if cfg.at_original_times {
                let issued = eew_core::parse(&bytes)
                    .ok()
                    .and_then(|r| r.issued_at)
                    .map(|t| t.0);
                let gap = match (previous_issue, issued) {
                    (Some(a), Some(b)) if b > a => (b - a).to_std().unwrap_or_default(),
                    _ => Duration::ZERO,
                };
                if issued.is_some() {
                    previous_issue = issued;
                }
                gap
            } else if i == 0 {
                Duration::ZERO
            } else {
                cfg.interval
            };
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                () = tokio::time::sleep(wait) => {}
            }
            let ev = LinkEvent::Telegram(Received {
                link: cfg.name.clone(),
                bytes,
                received_at: now_utc(),
                received_mono: Instant::now(),
            });
            if !send(ev).await {
                return Ok(());
            }
        }
        if !cfg.repeat {
            break;
        }
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(cfg.interval.max(Duration::from_secs(1))) => {}
        }
    }
    cancel.cancelled().await;
    Ok(())
}
