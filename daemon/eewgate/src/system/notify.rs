//! systemd's notification protocol (`sd_notify`): a datagram to `$NOTIFY_SOCKET`.
//!
//! Written out rather than taken from a crate: it is one `sendto` of `KEY=VALUE` lines,
//! and abstract-namespace sockets (`@…`) are the only subtlety.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A connection to systemd's notification socket, or nothing when not run by systemd.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<(UnixDatagram, String)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET` and `$WATCHDOG_USEC` (honouring `$WATCHDOG_PID`).
    pub fn from_env() -> Self {
        let socket = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|p| !p.is_empty())
            .and_then(|path| {
                let socket = UnixDatagram::unbound().ok()?;
                // Never block a runtime thread on a reader that does not read: a full
                // socket buffer drops the notification instead.
                socket.set_nonblocking(true).ok()?;
                Some((socket, path))
            });
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|pid| pid == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|u| *u > 0 && for_us)
            .map(Duration::from_micros);
        Self { socket, watchdog }
    }

    /// Whether systemd listens.
    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// systemd's watchdog timeout, when it is enabled for this service.
    pub fn watchdog_timeout(&self) -> Option<Duration> {
        self.watchdog.filter(|_| self.enabled())
    }

    /// Sends `state` (e.g. `READY=1\nSTATUS=…`). Errors are logged, never fatal: a
    /// notification lost only delays systemd's view.
    pub fn notify(&self, state: &str) {
        let Some((socket, path)) = &self.socket else {
            return;
        };
        let result = if let Some(abstract_name) = path.strip_prefix('@') {
            send_abstract(socket, abstract_name, state)
        } else {
            socket.send_to(state.as_bytes(), path).map(|_| ())
        };
        match result {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                tracing::debug!("sd_notify: the socket is full; notification dropped");
            }
            Err(err) => tracing::warn!(error = %err, "sd_notify failed"),
        }
    }
}

#[cfg(target_os = "linux")]
fn send_abstract(socket: &UnixDatagram, name: &str, state: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    socket.send_to_addr(state.as_bytes(), &addr).map(|_| ())
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_: &UnixDatagram, _: &str, _: &str) -> std::io::Result<()> {
    Err(std::io::Error::other("abstract sockets are Linux-only"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_a_notify_socket() {
        let dir = std::env::temp_dir().join(format!("eewgate-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).expect("bind");
        let n = Notifier {
            socket: Some((
                UnixDatagram::unbound().expect("socket"),
                path.to_string_lossy().into_owned(),
            )),
            watchdog: Some(Duration::from_secs(10)),
        };
        n.notify("READY=1\nSTATUS=ok");
        let mut buf = [0u8; 64];
        let len = server.recv(&mut buf).expect("received");
        assert_eq!(buf.get(..len), Some(&b"READY=1\nSTATUS=ok"[..]));
        assert_eq!(n.watchdog_timeout(), Some(Duration::from_secs(10)));
        assert!(
            !Notifier {
                socket: None,
                watchdog: None
            }
            .enabled()
        );
    }
}
