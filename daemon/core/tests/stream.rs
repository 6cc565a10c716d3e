//! The code-telegram stream splitter against the real telegrams: every fixture, run
//! together with title lines, blank lines, CR/LF and noise between them, comes back out
//! byte for byte (less the whitespace around it) and still parses the same; how the
//! bytes are chunked never matters; noise never becomes a telegram; memory stays bounded;
//! nothing panics.

#![allow(
    clippy::disallowed_methods,
    reason = "the tests read their fixture files; the ban on I/O is for the library"
)]
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "a test crate: helpers outside #[test] fns build streams from known fixtures"
)]

use std::path::Path;
use std::sync::LazyLock;

use eew_core::telegram::MAX_INPUT_BYTES;
use eew_core::telegram::stream::{
    Frame, GARBAGE, GARBAGE_KEEP, StreamSplitter, TOO_LARGE, TRUNCATED, probe_header,
};
use proptest::prelude::*;

/// A code-telegram fixture, whitespace around it trimmed.
struct Fixture {
    name: String,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl Fixture {
    /// Starts with a header line and ends with the terminator: one whole telegram.
    fn complete(&self) -> bool {
        self.starts_with_header() && self.bytes.ends_with(b"9999=")
    }

    fn starts_with_header(&self) -> bool {
        let first_line = self
            .bytes
            .split(|&b| b == b'\n' || b == b'\r')
            .next()
            .unwrap_or_default();
        probe_header(first_line, true) == Some(true)
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// Every `.txt` fixture (the code telegrams and fragments). The header-less tail fragment
/// goes first: after a fragment without terminator its `9999=` would, rightly, close that
/// fragment, and the test wants each fixture back on its own.
static FIXTURES: LazyLock<Vec<Fixture>> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/telegrams");
    let mut fixtures: Vec<Fixture> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "txt"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {name}: {e}"));
            Fixture {
                name,
                bytes: trim(&bytes).to_vec(),
            }
        })
        .collect();
    fixtures.sort_by_key(|f| (f.starts_with_header(), f.name.clone()));
    assert!(fixtures.len() >= 20, "the fixture corpus looks empty");
    fixtures
});

/// What may come before a telegram on a line, and whether it is a title (kept with the
/// telegram) or noise (reported as garbage).
const SEPARATORS: &[(&[u8], bool)] = &[
    (b"\n", false),
    (b"\r\n\r\n\r\n", false),
    (b"", false),
    // ｷﾝｷｭｳｼﾞｼﾝｿｸﾎｳ in JIS X 0201 (Shift_JIS) bytes, as a JMBSC line sends it
    (
        b"\xB7\xDD\xB7\xAD\xB3\xBC\xDE\xBC\xDD\xBF\xB8\xCE\xB3\r\n\r\n",
        true,
    ),
    ("緊急地震速報\n\n\n".as_bytes(), true),
    ("ﾅｳｷﾔｽﾄ3 ｷｼﾖｳ\r\n".as_bytes(), true),
    (b"LINE NOISE +++ ATH0\r\n", false),
    (b"\x00\x01\x02\xff\xfe binary junk \x1b[2J\n\n", false),
    (b"9999=\n", false),
    (
        b"  \t \n37 03 00 garbage that starts like a header\n",
        false,
    ),
];

fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 64);
    for &b in bytes {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// The stream made of every fixture, separator `i % n` before fixture `i`, every third
/// fixture with CRLF line ends, and the telegrams expected back.
fn corpus_stream(offset: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    let mut after_fragment = false;
    for (i, fixture) in FIXTURES.iter().enumerate() {
        let (mut sep, title) = SEPARATORS[(i + offset) % SEPARATORS.len()];
        if after_fragment && sep.windows(5).any(|w| w == b"9999=") {
            // A stray terminator would, rightly, end the fragment before it.
            sep = b"\n";
        }
        after_fragment = !fixture.complete() && fixture.starts_with_header();
        let body = if (i + offset).is_multiple_of(3) {
            crlf(&fixture.bytes)
        } else {
            fixture.bytes.clone()
        };
        if i > 0 && sep.is_empty() {
            stream.push(b'\n');
        }
        stream.extend_from_slice(sep);
        stream.extend_from_slice(&body);
        stream.extend_from_slice(b"\n");
        if fixture.complete() {
            let mut telegram = if title { sep.to_vec() } else { Vec::new() };
            telegram.extend_from_slice(&body);
            expected.push(telegram);
        }
    }
    stream.extend_from_slice(b"trailing noise without a line end");
    (stream, expected)
}

fn split_whole(bytes: &[u8]) -> Vec<Frame> {
    let mut splitter = StreamSplitter::new();
    let mut frames = splitter.push(bytes);
    frames.extend(splitter.flush());
    frames
}

fn split_at(bytes: &[u8], cuts: &[usize]) -> Vec<Frame> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut splitter = StreamSplitter::new();
    let mut frames = Vec::new();
    let mut from = 0;
    for cut in cuts {
        frames.extend(splitter.push(&bytes[from..cut]));
        from = cut;
    }
    frames.extend(splitter.push(&bytes[from..]));
    frames.extend(splitter.flush());
    frames
}

fn telegrams(frames: &[Frame]) -> Vec<Vec<u8>> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Telegram(t) => Some(t.clone()),
            Frame::Garbage { .. } => None,
        })
        .collect()
}

#[test]
fn every_fixture_comes_back_whole_and_parses_as_before() {
    for offset in 0..SEPARATORS.len() {
        let (stream, expected) = corpus_stream(offset);
        let frames = split_whole(&stream);
        let got = telegrams(&frames);
        assert_eq!(
            got.len(),
            expected.len(),
            "offset {offset}: {} telegrams for {} complete fixtures",
            got.len(),
            expected.len()
        );
        for (got, want) in got.iter().zip(&expected) {
            assert_eq!(
                String::from_utf8_lossy(got),
                String::from_utf8_lossy(want),
                "offset {offset}"
            );
        }
        let complete: Vec<&Fixture> = FIXTURES.iter().filter(|f| f.complete()).collect();
        for (fixture, telegram) in complete.iter().zip(&got) {
            assert_eq!(
                eew_core::parse(telegram),
                eew_core::parse(&fixture.bytes),
                "{fixture:?} parses differently after the splitter"
            );
        }
        // The noise, the fragments and the trailing bytes are all reported.
        let garbage: Vec<&Frame> = frames
            .iter()
            .filter(|f| matches!(f, Frame::Garbage { .. }))
            .collect();
        assert!(garbage.len() >= 4, "offset {offset}: {garbage:?}");
        assert!(matches!(
            frames.last(),
            Some(Frame::Garbage { reason: GARBAGE, bytes }) if bytes.ends_with(b"without a line end")
        ));
        for frame in &frames {
            if let Frame::Garbage { bytes, reason } = frame {
                assert!(bytes.len() <= GARBAGE_KEEP);
                assert!([GARBAGE, TRUNCATED].contains(reason), "{reason}");
            }
        }
    }
}

#[test]
fn the_parsing_fixtures_are_all_among_the_complete_ones() {
    for fixture in FIXTURES.iter() {
        if eew_core::parse(&fixture.bytes).is_ok() {
            assert!(fixture.complete(), "{fixture:?}");
        }
    }
}

#[test]
fn fragments_are_truncated_garbage() {
    let head_only = FIXTURES
        .iter()
        .find(|f| f.name == "malformed_fragment_head_only.txt")
        .unwrap();
    let complete = FIXTURES.iter().find(|f| f.complete()).unwrap();
    let stream = [&head_only.bytes[..], b"\n", &complete.bytes[..]].concat();
    let frames = split_whole(&stream);
    assert_eq!(
        frames,
        vec![
            Frame::Garbage {
                bytes: [&head_only.bytes[..], b"\n"].concat(),
                reason: TRUNCATED
            },
            Frame::Telegram(complete.bytes.clone()),
        ]
    );
}

#[test]
fn huge_noise_is_reported_in_bounded_frames_and_never_held_beyond_the_cap() {
    let mut splitter = StreamSplitter::new();
    let chunk: Vec<u8> = (0..4096u32)
        .map(|i| b"noise \x01\xff\n"[(i % 9) as usize])
        .collect();
    let mut frames = Vec::new();
    for _ in 0..(3 * MAX_INPUT_BYTES / chunk.len()) {
        frames.extend(splitter.push(&chunk));
        assert!(splitter.pending() <= GARBAGE_KEEP);
    }
    frames.extend(splitter.flush());
    assert!(frames.len() >= 3 * MAX_INPUT_BYTES / GARBAGE_KEEP);
    for frame in &frames {
        let Frame::Garbage { bytes, reason } = frame else {
            panic!("noise became a telegram")
        };
        assert!(bytes.len() <= GARBAGE_KEEP && *reason == GARBAGE);
    }
}

#[test]
fn a_telegram_without_terminator_is_cut_at_the_size_limit_and_the_next_one_is_found() {
    let complete = FIXTURES.iter().find(|f| f.complete()).unwrap();
    let mut splitter = StreamSplitter::new();
    let mut frames = splitter.push(&complete.bytes[..40]);
    let filler = vec![b'/'; 8192];
    for _ in 0..(3 * MAX_INPUT_BYTES / filler.len()) {
        frames.extend(splitter.push(&filler));
        assert!(splitter.pending() <= MAX_INPUT_BYTES);
    }
    frames.extend(splitter.push(b"\r\n"));
    frames.extend(splitter.push(&complete.bytes));
    frames.extend(splitter.flush());
    assert_eq!(
        frames.len(),
        2,
        "{:?}",
        frames.iter().map(frame_summary).collect::<Vec<_>>()
    );
    assert!(
        matches!(&frames[0], Frame::Garbage { reason: TOO_LARGE, bytes } if bytes.len() == GARBAGE_KEEP)
    );
    assert_eq!(frames[1], Frame::Telegram(complete.bytes.clone()));
}

#[test]
fn a_telegram_at_exactly_the_size_limit_is_still_a_telegram() {
    let complete = FIXTURES.iter().find(|f| f.complete()).unwrap();
    let body = &complete.bytes[..complete.bytes.len() - b" 9999=".len()];
    let pad = MAX_INPUT_BYTES - body.len() - b" 9999=".len();
    let telegram = [body, &vec![b' '; pad][..], b" 9999="].concat();
    assert_eq!(telegram.len(), MAX_INPUT_BYTES);
    assert_eq!(
        split_whole(&telegram),
        vec![Frame::Telegram(telegram.clone())]
    );
    let over = [body, &vec![b' '; pad + 1][..], b" 9999="].concat();
    assert!(matches!(
        split_whole(&over).as_slice(),
        [Frame::Garbage {
            reason: TOO_LARGE,
            ..
        }]
    ));
}

fn frame_summary(frame: &Frame) -> String {
    match frame {
        Frame::Telegram(t) => format!("telegram({})", t.len()),
        Frame::Garbage { bytes, reason } => format!("{reason}({})", bytes.len()),
    }
}

fn non_whitespace(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect()
}

/// Noise that cannot hold a header line: anything, with every digit replaced.
fn noise() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048),
        prop::collection::vec(
            prop::sample::select(b"ABC xyz/=9\r\n\t\xb7\xdd\x00".to_vec()),
            0..2048
        ),
    ]
    .prop_map(|mut v| {
        for b in &mut v {
            if b.is_ascii_digit() && *b != b'9' {
                *b = b'x';
            }
        }
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn chunking_never_changes_the_frames(
        offset in 0..SEPARATORS.len(),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let (stream, _) = corpus_stream(offset);
        prop_assert_eq!(split_at(&stream, &cuts), split_whole(&stream));
    }

    #[test]
    fn noise_never_yields_a_telegram_and_is_all_reported(
        bytes in noise(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let frames = split_at(&bytes, &cuts);
        let mut reported = Vec::new();
        for frame in &frames {
            match frame {
                Frame::Telegram(_) => prop_assert!(false, "noise became a telegram"),
                Frame::Garbage { bytes, reason } => {
                    prop_assert_eq!(*reason, GARBAGE);
                    prop_assert!(bytes.len() <= GARBAGE_KEEP);
                    reported.extend_from_slice(bytes);
                }
            }
        }
        prop_assert_eq!(non_whitespace(&reported), non_whitespace(&bytes));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_frames_stay_bounded(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        for frame in split_at(&bytes, &cuts) {
            match frame {
                Frame::Telegram(t) => prop_assert!(t.len() <= MAX_INPUT_BYTES),
                Frame::Garbage { bytes, .. } => prop_assert!(bytes.len() <= GARBAGE_KEEP),
            }
        }
    }

    #[test]
    fn damaged_streams_never_panic_and_chunking_still_does_not_matter(
        offset in 0..SEPARATORS.len(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..20),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let (mut stream, _) = corpus_stream(offset);
        for (at, byte) in edits {
            let at = at % stream.len();
            if byte % 3 == 0 {
                stream.remove(at);
            } else {
                stream[at] = byte;
            }
        }
        prop_assert_eq!(split_at(&stream, &cuts), split_whole(&stream));
    }
}
