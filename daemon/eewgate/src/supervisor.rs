//! Named, tracked, cancellable tasks. Every long-running piece of the daemon is spawned
//! here with a name; the first task to fail cancels the rest and its error becomes the
//! process's exit (systemd restarts the service). A task that returns `Ok` while the
//! daemon is not shutting down is also a failure: nothing is supposed to end by itself.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Why the supervisor stopped.
#[derive(Debug)]
pub enum Outcome {
    /// Shutdown was requested (signal) and every task ended within the bound.
    Clean,
    /// Shutdown was requested but some tasks did not end within the bound.
    Timeout(Vec<String>),
    /// A task failed or ended unexpectedly.
    Failed {
        /// The task's name.
        task: String,
        /// What happened.
        error: String,
    },
}

/// The daemon's tasks.
#[derive(Debug)]
pub struct Supervisor {
    tasks: JoinSet<(String, anyhow::Result<()>)>,
    cancel: CancellationToken,
}

impl Supervisor {
    /// A supervisor whose tasks all watch `cancel`.
    pub fn new(cancel: CancellationToken) -> Self {
        Self {
            tasks: JoinSet::new(),
            cancel,
        }
    }

    /// The token every task must watch.
    pub fn token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Spawns a named task.
    pub fn spawn<F>(&mut self, name: impl Into<String>, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let name = name.into();
        tracing::debug!(task = %name, "task started");
        self.tasks.spawn(async move { (name, task.await) });
    }

    /// Runs until a task fails or `cancel` fires, then waits up to `grace` for the rest.
    pub async fn run(mut self, grace: Duration) -> Outcome {
        let mut outcome = None;
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => break,
                joined = self.tasks.join_next() => match joined {
                    None => break,
                    Some(Ok((name, Ok(())))) if self.cancel.is_cancelled() => {
                        tracing::debug!(task = %name, "task ended");
                    }
                    Some(Ok((name, Ok(())))) => {
                        outcome = Some(Outcome::Failed { task: name, error: "ended unexpectedly".into() });
                        break;
                    }
                    Some(Ok((name, Err(err)))) => {
                        outcome = Some(Outcome::Failed { task: name, error: format!("{err:#}") });
                        break;
                    }
                    Some(Err(join)) => {
                        outcome = Some(Outcome::Failed { task: "unknown".into(), error: join.to_string() });
                        break;
                    }
                }
            }
        }
        self.cancel.cancel();
        let deadline = tokio::time::Instant::now() + grace;
        let mut stuck = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(None) => break,
                Ok(Some(Ok((name, Err(err))))) => {
                    tracing::warn!(task = %name, error = %format!("{err:#}"), "task failed while stopping");
                }
                Ok(Some(_)) => {}
                Err(_) => {
                    stuck.push(format!("{} task(s)", self.tasks.len()));
                    self.tasks.abort_all();
                    break;
                }
            }
        }
        match outcome {
            Some(failed) => failed,
            None if stuck.is_empty() => Outcome::Clean,
            None => Outcome::Timeout(stuck),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failing_task_stops_the_others() {
        let cancel = CancellationToken::new();
        let mut s = Supervisor::new(cancel.clone());
        let token = s.token();
        s.spawn("waits", async move {
            token.cancelled().await;
            Ok(())
        });
        s.spawn("fails", async { anyhow::bail!("boom") });
        match s.run(Duration::from_secs(1)).await {
            Outcome::Failed { task, error } => {
                assert_eq!(task, "fails");
                assert!(error.contains("boom"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(cancel.is_cancelled());
    }

    #[tokio::test]
    async fn shutdown_is_clean_or_bounded() {
        let cancel = CancellationToken::new();
        let mut s = Supervisor::new(cancel.clone());
        let token = s.token();
        s.spawn("polite", async move {
            token.cancelled().await;
            Ok(())
        });
        s.spawn("stubborn", async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        });
        cancel.cancel();
        match s.run(Duration::from_millis(100)).await {
            Outcome::Timeout(stuck) => assert_eq!(stuck.len(), 1),
            other => panic!("unexpected {other:?}"),
        }
    }
}
