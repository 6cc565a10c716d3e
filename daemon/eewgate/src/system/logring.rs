//! The last log lines in memory, for the web UI's log download: an installer with a
//! laptop gets what the daemon said without a shell on the appliance. Bounded (lines and
//! bytes), filled by a `tracing` layer of its own at `info` whatever `EEWGATE_LOG` says,
//! and never waited on for long (one short lock per line).

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

/// Lines kept.
pub const MAX_LINES: usize = 5000;
/// A longer line is cut (a whole telegram logged by mistake must not evict the rest).
pub const MAX_LINE_BYTES: usize = 2000;

/// The ring.
#[derive(Debug, Default)]
pub struct LogRing {
    lines: Mutex<VecDeque<String>>,
}

static RING: OnceLock<LogRing> = OnceLock::new();

/// The process's ring.
pub fn ring() -> &'static LogRing {
    RING.get_or_init(LogRing::default)
}

impl LogRing {
    /// Appends one line (the oldest goes when full).
    pub fn push(&self, line: &str) {
        let mut line = line.trim_end_matches(['\n', '\r']).to_owned();
        if line.len() > MAX_LINE_BYTES {
            let mut cut = MAX_LINE_BYTES;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push_str(" …");
        }
        let mut lines = self
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if lines.len() >= MAX_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// Every line kept, oldest first, one per line.
    pub fn text(&self) -> String {
        let lines = self
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for l in lines.iter() {
            out.push_str(l);
            out.push('\n');
        }
        out
    }
}

/// A `tracing_subscriber` writer into the ring: each formatted event arrives in one write.
#[derive(Clone, Copy, Debug, Default)]
pub struct RingWriter;

impl Write for RingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for line in String::from_utf8_lossy(buf).lines() {
            ring().push(line);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RingWriter {
    type Writer = RingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RingWriter
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;

    #[test]
    fn the_ring_is_bounded_in_lines_and_line_length() {
        let r = LogRing::default();
        for i in 0..(MAX_LINES + 10) {
            r.push(&format!("line {i}\n"));
        }
        let text = r.text();
        assert_eq!(text.lines().count(), MAX_LINES);
        assert!(text.starts_with("line 10\n"), "the oldest went first");
        r.push(&"日".repeat(MAX_LINE_BYTES));
        let last = r.text().lines().last().unwrap().to_owned();
        assert!(last.len() <= MAX_LINE_BYTES + 4, "{}", last.len());
        assert!(last.ends_with(" …"));
    }
}
