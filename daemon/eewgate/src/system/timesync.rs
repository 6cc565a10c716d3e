//! Time quality: the kernel's synchronisation status (adjtimex) and the offset between
//! upstream timestamps and the local clock. JMA's guideline requires terminals to keep
//! within ±1 s of JST; an unsynchronised clock or a larger offset is a fault.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::config::TimeConfig;

/// What the kernel says about the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelTime {
    /// Not flagged `STA_UNSYNC` and the clock state is not `TIME_ERROR`.
    pub synchronised: bool,
    /// Estimated error (µs).
    pub est_error_us: i64,
    /// Maximum error (µs).
    pub max_error_us: i64,
}

/// Reads the kernel's time status with a read-only `adjtimex` (modes = 0).
#[cfg(target_os = "linux")]
#[allow(
    unsafe_code,
    reason = "the one reviewed unsafe call of the shell; see ADR 0007"
)]
pub fn kernel_time() -> std::io::Result<KernelTime> {
    use nix::libc;
    // SAFETY: `timex` is a plain C struct for which all-zero bytes are a valid value;
    // with `modes == 0` adjtimex only reads the kernel's state into the struct, which is
    // a live, exclusively borrowed local for the duration of the call.
    let (state, tx) = unsafe {
        let mut tx: libc::timex = std::mem::zeroed();
        let state = libc::adjtimex(&raw mut tx);
        (state, tx)
    };
    if state < 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::useless_conversion, reason = "c_long is i32 on 32-bit ARM")]
    Ok(KernelTime {
        synchronised: tx.status & libc::STA_UNSYNC == 0 && state != libc::TIME_ERROR,
        est_error_us: i64::from(tx.esterror),
        max_error_us: i64::from(tx.maxerror),
    })
}

/// Not available off Linux.
#[cfg(not(target_os = "linux"))]
pub fn kernel_time() -> std::io::Result<KernelTime> {
    Err(std::io::Error::other("adjtimex is Linux-only"))
}

/// Time since systemd-timesyncd last synchronised (it touches this file on every sync);
/// `None` with another NTP client.
pub fn since_last_sync() -> Option<Duration> {
    let modified = std::fs::metadata(Path::new("/run/systemd/timesync/synchronized"))
        .and_then(|m| m.modified())
        .ok()?;
    SystemTime::now().duration_since(modified).ok()
}

/// Assesses clock quality: `(fault, why)`.
///
/// `upstream_offset_ms` is receive time minus the report's issue time, from live links
/// only. Issue times are whole seconds and delivery takes up to about a second, so a
/// healthy clock sees 0 … ~2000 ms; below `-max_offset_ms` the local clock is behind,
/// above `max_offset_ms + 3000` it is ahead (or delivery is badly late — either way the
/// countdowns are wrong).
///
/// `kernel` is the kernel's state, or why it could not be read: with `require_sync` an
/// unreadable state is a fault too (a system-call filter that denies the read must not
/// hide an unsynchronised clock).
pub fn assess(
    kernel: Result<&KernelTime, &str>,
    upstream_offset_ms: Option<i64>,
    cfg: &TimeConfig,
) -> (bool, Option<String>) {
    let limit_ms = i64::from(cfg.max_offset_ms);
    match kernel {
        Err(why) if cfg.require_sync => {
            return (
                true,
                Some(format!(
                    "cannot read the kernel's clock state ({why}): synchronisation is unknown"
                )),
            );
        }
        Err(_) => {}
        Ok(k) => {
            if cfg.require_sync && !k.synchronised {
                return (
                    true,
                    Some("the kernel reports the clock unsynchronised (no NTP sync)".to_owned()),
                );
            }
            if cfg.require_sync && k.est_error_us > limit_ms * 1000 {
                return (
                    true,
                    Some(format!(
                        "the kernel's estimated clock error is {} ms (limit {limit_ms} ms)",
                        k.est_error_us / 1000
                    )),
                );
            }
        }
    }
    match upstream_offset_ms {
        Some(off) if off < -limit_ms => (
            true,
            Some(format!(
                "the local clock is {} ms behind the upstream's timestamps (limit {limit_ms} ms)",
                -off
            )),
        ),
        Some(off) if off > limit_ms + 3000 => (
            true,
            Some(format!(
                "reports arrive {off} ms after their issue time: the local clock is ahead or delivery is late"
            )),
        ),
        _ => (false, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> TimeConfig {
        TimeConfig {
            max_offset_ms: 1000,
            check_interval_s: 10,
            require_sync: true,
        }
    }

    #[test]
    fn unsynchronised_or_offset_clocks_are_faults() {
        let good = KernelTime {
            synchronised: true,
            est_error_us: 2_000,
            max_error_us: 20_000,
        };
        assert_eq!(assess(Ok(&good), Some(400), &cfg()), (false, None));
        let unsync = KernelTime {
            synchronised: false,
            ..good
        };
        assert!(assess(Ok(&unsync), None, &cfg()).0);
        let mut lax = cfg();
        lax.require_sync = false;
        assert!(!assess(Ok(&unsync), None, &lax).0);
        assert!(assess(Ok(&good), Some(-1500), &cfg()).0);
        assert!(assess(Ok(&good), Some(4500), &cfg()).0);
        // An unreadable kernel state is a fault where sync is required, not otherwise.
        let denied = assess(Err("Operation not permitted"), Some(1800), &cfg());
        assert!(denied.0);
        assert!(denied.1.unwrap().contains("Operation not permitted"));
        assert!(!assess(Err("Operation not permitted"), Some(1800), &lax).0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_kernel_answers() {
        let k = kernel_time().expect("adjtimex read-only works unprivileged");
        assert!(k.max_error_us >= 0);
    }
}
