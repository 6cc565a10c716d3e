//! A hardware watchdog device (`/dev/watchdog`) held directly, for systems where systemd's
//! watchdog is not used. Opening it arms it; every keepalive postpones the reset; on a clean
//! exit the magic close (`V`) disarms it, so only a hang or crash reboots the box.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;

nix::ioctl_readwrite!(wdioc_settimeout, b'W', 6, nix::libc::c_int);

/// An open, armed watchdog device.
#[derive(Debug)]
pub struct HardwareWatchdog {
    file: Option<File>,
    timeout_s: u32,
}

impl HardwareWatchdog {
    /// Opens (arms) the device and asks for `timeout_s`; the driver may round it, and the
    /// value it settled on is kept.
    pub fn open(device: &Path, timeout_s: u32) -> std::io::Result<Self> {
        let file = OpenOptions::new().write(true).open(device)?;
        let mut timeout = nix::libc::c_int::try_from(timeout_s).unwrap_or(nix::libc::c_int::MAX);
        let fd = file.as_raw_fd();
        // SAFETY: `fd` is an open watchdog device for the duration of the call, and
        // WDIOC_SETTIMEOUT reads and writes exactly one `int`, which `timeout` is.
        #[allow(unsafe_code, reason = "the watchdog ioctl; see ADR 0007")]
        let set = unsafe { wdioc_settimeout(fd, &raw mut timeout) };
        let timeout_s = match set {
            Ok(_) => u32::try_from(timeout).unwrap_or(timeout_s),
            Err(err) => {
                // Not fatal: the device keeps its default timeout; keepalives still work.
                tracing::warn!(error = %err, "the watchdog driver refused the timeout");
                timeout_s
            }
        };
        Ok(Self {
            file: Some(file),
            timeout_s,
        })
    }

    /// The timeout in force (s).
    pub fn timeout_s(&self) -> u32 {
        self.timeout_s
    }

    /// Postpones the reset (any write is a keepalive).
    pub fn keepalive(&mut self) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.write_all(b"\0"),
            None => Ok(()),
        }
    }

    /// Disarms and closes (clean shutdown only).
    pub fn magic_close(mut self) -> std::io::Result<()> {
        match self.file.take() {
            Some(mut f) => f.write_all(b"V"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_and_magic_close_write_what_the_driver_expects() {
        // A regular file stands in for the device: the ioctl fails (logged, not fatal),
        // writes land in the file.
        let path = std::env::temp_dir().join(format!("eewgate-wd-{}", std::process::id()));
        std::fs::write(&path, b"").expect("temp file");
        let mut wd = HardwareWatchdog::open(&path, 15).expect("opens");
        assert_eq!(wd.timeout_s(), 15);
        wd.keepalive().expect("keepalive");
        wd.keepalive().expect("keepalive");
        wd.magic_close().expect("close");
        assert_eq!(std::fs::read(&path).expect("read back"), b"\0\0V");
    }
}
