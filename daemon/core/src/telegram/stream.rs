//! Splitting a JMA code-telegram byte stream into telegrams.
//!
//! A dedicated line (TCP or serial) carries code telegrams back to back, with whatever
//! the line adds between them: a JMBSC title line in half-width katakana (Shift_JIS /
//! JIS X 0201 bytes, or UTF-8 after a relay re-encoded it), blank lines, CR/LF or LF line
//! ends, and now and then noise. [`StreamSplitter`] turns that stream into [`Frame`]s:
//!
//! - A telegram starts at a line that begins with the code-telegram header
//!   `aa bb nn yymmddhhmmss Cnf` (the shape [`super::jma_code::find_header`] looks for)
//!   and ends with the `9999=` terminator (`9999=` not preceded by a digit). The frame
//!   holds exactly those bytes, plus the title line and the blank lines between it and
//!   the header when there is one: the parser accepts (and skips) them, and history keeps
//!   what came in. Nothing after the terminator belongs to the telegram.
//! - A *title line* is a line of at most [`TITLE_MAX`] bytes with at least one non-ASCII
//!   byte and no control character, followed by at most [`BLANK_MAX`] bytes of blank
//!   lines before the header. ASCII-only lines before a header are never titles: they are
//!   garbage, so noise is reported rather than silently attached to the next telegram.
//! - Everything else between telegrams that is not whitespace becomes
//!   [`Frame::Garbage`] with reason [`GARBAGE`]. Whitespace alone is dropped.
//! - A header line inside an unterminated telegram starts the next telegram: the cut-off
//!   one becomes garbage with reason [`TRUNCATED`] (a lost terminator never swallows the
//!   telegram after it).
//! - A telegram that grows past [`MAX_INPUT_BYTES`] without a terminator becomes garbage
//!   with reason [`TOO_LARGE`]; the splitter then drops bytes until the next header line
//!   (or terminator) and resynchronises there.
//! - [`StreamSplitter::flush`] ends the stream: a telegram in progress becomes garbage with
//!   reason [`TRUNCATED`], pending noise becomes garbage.
//!
//! Memory is bounded: the splitter holds at most one telegram ([`MAX_INPUT_BYTES`]) or
//! [`GARBAGE_KEEP`] bytes of noise, and every garbage frame keeps at most [`GARBAGE_KEEP`]
//! bytes (a longer run of noise yields one frame per [`GARBAGE_KEEP`] bytes; an oversized
//! or truncated telegram keeps its first [`GARBAGE_KEEP`] bytes).
//!
//! The result depends only on the bytes, never on how they were chunked: the splitter
//! works byte by byte, and a telegram is emitted by the `push` that delivers its `=`.
//!
//! ```
//! use eew_core::telegram::stream::{Frame, StreamSplitter};
//!
//! let mut splitter = StreamSplitter::new();
//! // The noise is reported once the next line is sure to be a header.
//! let mut frames = splitter.push(b"noise\r\n37 03 00 110311144645 C11 110311144619 ");
//! assert!(matches!(&frames[..], [Frame::Garbage { reason: "garbage", .. }]));
//! frames.extend(splitter.push(b"ND20110311144640 NCN001 JD////////////// JN/// 287 N382 "));
//! frames.extend(splitter.push(b"E1427 010 43 01 RK6620/ RT10/// RC///// 9999=\r\n"));
//! let Frame::Telegram(bytes) = &frames[1] else { panic!() };
//! assert!(eew_core::parse(bytes).is_ok());
//! ```

use super::MAX_INPUT_BYTES;

/// Most bytes kept in one garbage frame.
pub const GARBAGE_KEEP: usize = 64 * 1024;
/// Longest title line (without its line end), bytes. JMBSC titles are a few dozen bytes.
pub const TITLE_MAX: usize = 128;
/// Most whitespace between a title line and the header it belongs to, bytes.
pub const BLANK_MAX: usize = 256;

/// Garbage reason: bytes between telegrams that are not a telegram.
pub const GARBAGE: &str = "garbage";
/// Garbage reason: a telegram cut short (the next header came, or the stream ended,
/// before its terminator).
pub const TRUNCATED: &str = "truncated";
/// Garbage reason: a telegram longer than [`MAX_INPUT_BYTES`] without a terminator.
pub const TOO_LARGE: &str = "too_large";

/// Bytes of a header line needed to tell whether it is one: `aa bb nn yymmddhhmmss Cnf`
/// is 25 bytes, and the 26th must end the token.
const HEADER_PROBE: usize = 26;
const TERMINATOR: &[u8] = b"9999=";

/// One piece of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete telegram: optional title line and blank lines, the header line, …,
    /// `9999=`.
    Telegram(Vec<u8>),
    /// Bytes that are not a telegram, bounded to [`GARBAGE_KEEP`].
    Garbage {
        /// The bytes (the first [`GARBAGE_KEEP`] of them).
        bytes: Vec<u8>,
        /// Why they were set aside: [`GARBAGE`], [`TRUNCATED`] or [`TOO_LARGE`].
        reason: &'static str,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Between telegrams: `buf` holds noise, blank lines and a possible title.
    Hunting,
    /// Inside a telegram whose header line starts at `header_at` in `buf`.
    Telegram { header_at: usize },
    /// After an oversized telegram: bytes are dropped until a header line or terminator.
    Discarding,
}

/// Splits a byte stream into telegrams and garbage. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct StreamSplitter {
    mode: Mode,
    /// Hunting / Telegram: the bytes held since the last frame.
    buf: Vec<u8>,
    /// Start of the current line in `buf`.
    line_start: usize,
    /// Whether the current line may still turn out to be a header line.
    probing: bool,
    /// Hunting: `buf` starts in the middle of a line (noise was cut off at the cap).
    mid_line: bool,
    /// Discarding: the start of the current line, while it may be a header.
    probe: Vec<u8>,
    /// Discarding: the last bytes seen, to spot a terminator.
    tail: [u8; 6],
}

impl Default for StreamSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamSplitter {
    /// A splitter at the start of a stream.
    pub fn new() -> Self {
        Self {
            mode: Mode::Hunting,
            buf: Vec::new(),
            line_start: 0,
            probing: true,
            mid_line: false,
            probe: Vec::new(),
            tail: [0; 6],
        }
    }

    /// Feeds bytes; returns the frames they complete, in stream order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Frame> {
        let mut out = Vec::new();
        for &b in bytes {
            self.step(b, &mut out);
        }
        out
    }

    /// Ends the stream: whatever is pending becomes a frame (an unterminated telegram is
    /// garbage with reason [`TRUNCATED`]), and the splitter starts afresh.
    pub fn flush(&mut self) -> Vec<Frame> {
        let mut out = Vec::new();
        if self.mode == Mode::Hunting
            && self.probing
            && probe_header(self.buf.get(self.line_start..).unwrap_or_default(), true) == Some(true)
        {
            self.start_telegram(self.line_start, &mut out);
        }
        match self.mode {
            Mode::Hunting => emit_garbage(&self.buf, GARBAGE, &mut out),
            Mode::Telegram { .. } => emit_garbage(&self.buf, TRUNCATED, &mut out),
            Mode::Discarding => {}
        }
        *self = Self::new();
        out
    }

    /// Bytes currently held (a telegram in progress, or noise); at most
    /// [`MAX_INPUT_BYTES`].
    pub fn pending(&self) -> usize {
        self.buf.len() + self.probe.len()
    }

    fn step(&mut self, b: u8, out: &mut Vec<Frame>) {
        if self.mode == Mode::Discarding {
            self.step_discarding(b);
            return;
        }
        self.buf.push(b);
        if is_line_end(b) {
            if self.probing {
                let end = self.buf.len().saturating_sub(1);
                let line = self.buf.get(self.line_start..end).unwrap_or_default();
                if probe_header(line, true) == Some(true) {
                    self.start_telegram(self.line_start, out);
                }
            }
            self.line_start = self.buf.len();
            self.probing = true;
        } else if self.probing && self.buf.len() - self.line_start >= HEADER_PROBE {
            let line = self.buf.get(self.line_start..).unwrap_or_default();
            if probe_header(line, false) == Some(true) {
                self.start_telegram(self.line_start, out);
            }
            self.probing = false;
        }
        match self.mode {
            Mode::Telegram { header_at } => {
                if self.buf.len() > MAX_INPUT_BYTES {
                    self.too_large(out);
                } else if b == b'=' && self.ends_with_terminator(header_at) {
                    out.push(Frame::Telegram(std::mem::take(&mut self.buf)));
                    self.mode = Mode::Hunting;
                    self.line_start = 0;
                    self.probing = true;
                    self.mid_line = false;
                }
            }
            Mode::Hunting => {
                if self.buf.len() >= GARBAGE_KEEP {
                    self.trim_noise(out);
                }
            }
            Mode::Discarding => {}
        }
    }

    /// Whether `buf` ends with a terminator that lies after the header line's start.
    fn ends_with_terminator(&self, header_at: usize) -> bool {
        let n = self.buf.len();
        n > header_at + TERMINATOR.len()
            && self.buf.ends_with(TERMINATOR)
            && self
                .buf
                .get(n - TERMINATOR.len() - 1)
                .is_some_and(|p| !p.is_ascii_digit())
    }

    /// A header line starts at `at` in `buf`: what precedes it becomes garbage (noise, or
    /// a truncated telegram), except its title line.
    fn start_telegram(&mut self, at: usize, out: &mut Vec<Frame>) {
        let prefix = self.buf.get(..at).unwrap_or_default();
        let title = title_start(prefix, self.mode == Mode::Hunting && self.mid_line);
        let reason = match self.mode {
            Mode::Telegram { .. } => TRUNCATED,
            Mode::Hunting | Mode::Discarding => GARBAGE,
        };
        emit_garbage(self.buf.get(..title).unwrap_or_default(), reason, out);
        self.buf.drain(..title);
        self.line_start = at - title;
        self.mode = Mode::Telegram {
            header_at: self.line_start,
        };
        self.probing = false;
        self.mid_line = false;
    }

    /// Hunting and `buf` reached [`GARBAGE_KEEP`]: report the noise so far, keeping only
    /// what may still be a title or a header.
    fn trim_noise(&mut self, out: &mut Vec<Frame>) {
        let line_len = self.buf.len() - self.line_start;
        let keep_from = if self.probing || (line_len <= TITLE_MAX && !self.mid_line_now()) {
            title_start(
                self.buf.get(..self.line_start).unwrap_or_default(),
                self.mid_line,
            )
        } else {
            self.buf.len()
        };
        let keep_from = if keep_from == 0 {
            self.buf.len()
        } else {
            keep_from
        };
        emit_garbage(self.buf.get(..keep_from).unwrap_or_default(), GARBAGE, out);
        self.buf.drain(..keep_from);
        if keep_from > self.line_start {
            // Cut inside the current line: what follows of it is noise.
            self.line_start = 0;
            self.mid_line = true;
            self.probing = false;
        } else {
            self.line_start -= keep_from;
            self.mid_line = false;
        }
    }

    /// Whether the current line started before `buf` (it was cut at the cap).
    fn mid_line_now(&self) -> bool {
        self.mid_line && self.line_start == 0
    }

    /// The telegram in progress passed [`MAX_INPUT_BYTES`].
    fn too_large(&mut self, out: &mut Vec<Frame>) {
        emit_garbage(&self.buf, TOO_LARGE, out);
        let n = self.buf.len();
        for (i, slot) in self.tail.iter_mut().enumerate() {
            *slot = self.buf.get((n + i).wrapping_sub(6)).copied().unwrap_or(0);
        }
        self.probe.clear();
        if self.probing {
            self.probe
                .extend_from_slice(self.buf.get(self.line_start..).unwrap_or_default());
        }
        self.buf = Vec::new();
        self.line_start = 0;
        self.mode = Mode::Discarding;
        if self.tail_is_terminator() {
            self.resume_hunting();
        }
    }

    fn step_discarding(&mut self, b: u8) {
        self.tail.rotate_left(1);
        if let Some(last) = self.tail.last_mut() {
            *last = b;
        }
        if is_line_end(b) {
            if self.probing && probe_header(&self.probe, true) == Some(true) {
                self.buf = std::mem::take(&mut self.probe);
                self.buf.push(b);
                self.mode = Mode::Telegram { header_at: 0 };
                self.line_start = self.buf.len();
                self.probing = true;
                return;
            }
            self.probe.clear();
            self.probing = true;
        } else if self.probing {
            self.probe.push(b);
            if self.probe.len() >= HEADER_PROBE {
                if probe_header(&self.probe, false) == Some(true) {
                    self.buf = std::mem::take(&mut self.probe);
                    self.mode = Mode::Telegram { header_at: 0 };
                    self.line_start = 0;
                    self.probing = false;
                    return;
                }
                self.probe.clear();
                self.probing = false;
            }
        }
        if self.tail_is_terminator() {
            self.resume_hunting();
        }
    }

    fn tail_is_terminator(&self) -> bool {
        self.tail.get(1..) == Some(TERMINATOR)
            && self.tail.first().is_some_and(|p| !p.is_ascii_digit())
    }

    fn resume_hunting(&mut self) {
        self.mode = Mode::Hunting;
        self.buf.clear();
        self.probe.clear();
        self.line_start = 0;
        self.probing = true;
        self.mid_line = false;
    }
}

fn is_line_end(b: u8) -> bool {
    b == b'\n' || b == b'\r'
}

/// Pushes a garbage frame of at most [`GARBAGE_KEEP`] bytes, unless `bytes` is only
/// whitespace.
fn emit_garbage(bytes: &[u8], reason: &'static str, out: &mut Vec<Frame>) {
    if bytes.iter().any(|b| !b.is_ascii_whitespace()) {
        let kept = bytes.get(..GARBAGE_KEEP).unwrap_or(bytes);
        out.push(Frame::Garbage {
            bytes: kept.to_vec(),
            reason,
        });
    }
}

/// Whether `line` (without its line end) starts with a code-telegram header:
/// `Some(true)` / `Some(false)` once that is sure, `None` while more bytes are needed.
/// `complete` says the line has ended. The separator after `Cnf` may also be a
/// backslash, for text whose line breaks arrived escaped as `\n` (which the parser
/// unescapes).
pub fn probe_header(line: &[u8], complete: bool) -> Option<bool> {
    for i in 0..HEADER_PROBE {
        let Some(&b) = line.get(i) else {
            // The line ended (or no more bytes yet).
            return if complete { Some(i == 25) } else { None };
        };
        let ok = match i {
            2 | 5 | 8 | 21 => b == b' ' || b == b'\t',
            22 => b == b'C',
            25 => b == b' ' || b == b'\t' || b == b'\\',
            _ => b.is_ascii_digit(),
        };
        if !ok {
            return Some(false);
        }
    }
    Some(true)
}

/// Where the title part (a title line and the blank lines after it) of `prefix` starts;
/// `prefix.len()` when `prefix` does not end with one. `prefix` ends at a line start.
/// `starts_mid_line`: the first line of `prefix` is only the tail of a line.
fn title_start(prefix: &[u8], starts_mid_line: bool) -> usize {
    let none = prefix.len();
    let mut i = prefix.len();
    let mut blanks = 0;
    while let Some(&b) = i.checked_sub(1).and_then(|j| prefix.get(j)) {
        if !b.is_ascii_whitespace() {
            break;
        }
        i -= 1;
        blanks += 1;
        if blanks > BLANK_MAX {
            return none;
        }
    }
    let head = prefix.get(..i).unwrap_or_default();
    let line_start = head
        .iter()
        .rposition(|&b| is_line_end(b))
        .map_or(0, |p| p + 1);
    if line_start == 0 && starts_mid_line {
        return none;
    }
    let line = head.get(line_start..).unwrap_or_default();
    if is_title(line) { line_start } else { none }
}

/// A JMBSC-style title: short, some non-ASCII (katakana) bytes, no control characters.
fn is_title(line: &[u8]) -> bool {
    !line.is_empty()
        && line.len() <= TITLE_MAX
        && line.iter().any(|&b| b >= 0x80)
        && line.iter().all(|&b| (b >= 0x20 && b != 0x7f) || b == b'\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &[u8] = b"37 03 00 110311144645 C11 110311144619 ND20110311144640 NCN001 JD////////////// JN/// 287 N382 E1427 010 43 01 RK6620/ RT10/// RC///// 9999=";

    fn split(bytes: &[u8]) -> Vec<Frame> {
        let mut s = StreamSplitter::new();
        let mut frames = s.push(bytes);
        frames.extend(s.flush());
        frames
    }

    #[test]
    fn header_probe() {
        assert_eq!(probe_header(b"37 03 00 110311144645 C11", true), Some(true));
        assert_eq!(probe_header(b"37 03 00 110311144645 C11", false), None);
        assert_eq!(
            probe_header(b"37 03 00 110311144645 C11 1", false),
            Some(true)
        );
        assert_eq!(
            probe_header(b"37 03 00 110311144645 C111", false),
            Some(false)
        );
        assert_eq!(
            probe_header(b"37 03 00 110311144645 C11\\n1", false),
            Some(true)
        );
        assert_eq!(probe_header(b"37 03", true), Some(false));
        assert_eq!(probe_header(b"37 03", false), None);
        assert_eq!(probe_header(b"x", false), Some(false));
        assert_eq!(probe_header(b"", true), Some(false));
    }

    #[test]
    fn one_telegram_alone() {
        assert_eq!(split(T1), vec![Frame::Telegram(T1.to_vec())]);
    }

    #[test]
    fn title_lines_stay_with_their_telegram_but_ascii_noise_does_not() {
        let mut input = b"NOISE LINE\r\n".to_vec();
        let title = [0xB7u8, 0xDD, 0xB7, 0xAD, 0xB3, b'\r', b'\n', b'\r', b'\n'];
        input.extend_from_slice(&title);
        input.extend_from_slice(T1);
        let mut expected = title.to_vec();
        expected.extend_from_slice(T1);
        assert_eq!(
            split(&input),
            vec![
                Frame::Garbage {
                    bytes: b"NOISE LINE\r\n".to_vec(),
                    reason: GARBAGE
                },
                Frame::Telegram(expected)
            ]
        );
        let ascii_title = [b"FAKE TITLE\n\n".as_slice(), T1].concat();
        assert_eq!(split(&ascii_title).len(), 2);
    }

    #[test]
    fn a_header_inside_an_unterminated_telegram_resynchronises() {
        let cut = T1.get(..60).unwrap();
        let input = [cut, b"\n", T1].concat();
        let frames = split(&input);
        assert_eq!(
            frames,
            vec![
                Frame::Garbage {
                    bytes: [cut, b"\n"].concat(),
                    reason: TRUNCATED
                },
                Frame::Telegram(T1.to_vec())
            ]
        );
    }

    #[test]
    fn end_of_stream_truncates() {
        let cut = T1.get(..60).unwrap();
        let frames = split(cut);
        assert_eq!(
            frames,
            vec![Frame::Garbage {
                bytes: cut.to_vec(),
                reason: TRUNCATED
            }]
        );
        // a lone header line at the end is truncated too
        let frames = split(b"37 03 00 110311144645 C11");
        assert!(matches!(
            frames.as_slice(),
            [Frame::Garbage {
                reason: TRUNCATED,
                ..
            }]
        ));
    }

    #[test]
    fn oversized_telegram_is_dropped_and_the_next_one_found() {
        let mut input = T1.get(..30).unwrap().to_vec();
        input.extend(std::iter::repeat_n(b'/', MAX_INPUT_BYTES + 10));
        input.extend_from_slice(b"\n");
        input.extend_from_slice(T1);
        let mut s = StreamSplitter::new();
        let frames = s.push(&input);
        assert!(s.pending() < 100);
        assert_eq!(frames.len(), 2);
        assert!(
            matches!(&frames[0], Frame::Garbage { bytes, reason: TOO_LARGE } if bytes.len() == GARBAGE_KEEP)
        );
        assert_eq!(frames[1], Frame::Telegram(T1.to_vec()));
    }

    #[test]
    fn a_terminator_needs_a_non_digit_before_it() {
        let input = [T1.strip_suffix(b" 9999=").unwrap(), b" 19999= 9999="].concat();
        assert_eq!(split(&input), vec![Frame::Telegram(input.clone())]);
    }
}
