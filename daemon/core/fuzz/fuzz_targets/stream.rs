//! Fuzzes the link framing: `telegram::stream::StreamSplitter` and the JMA socket
//! `telegram::framing::Framing`. The first byte picks where the input is cut in two; the
//! frames must be the same as for the whole input pushed at once (the result never
//! depends on chunking), every garbage frame stays within its bound, every telegram within
//! the parser's limit, and nothing panics.
#![no_main]

use eew_core::telegram::MAX_INPUT_BYTES;
use eew_core::telegram::framing::{Framing, FramingKind, MAX_BODY, Output};
use eew_core::telegram::stream::{Frame, GARBAGE_KEEP, StreamSplitter};
use libfuzzer_sys::fuzz_target;

fn split(parts: &[&[u8]]) -> Vec<Frame> {
    let mut splitter = StreamSplitter::new();
    let mut frames: Vec<Frame> = parts.iter().flat_map(|p| splitter.push(p)).collect();
    frames.extend(splitter.flush());
    frames
}

fn socket(parts: &[&[u8]]) -> Vec<Output> {
    let mut framing = Framing::new(FramingKind::JmaSocket);
    let mut out: Vec<Output> = parts.iter().flat_map(|p| framing.push(p)).collect();
    out.extend(framing.finish());
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(cut) * rest.len() / 256;
    let (a, b) = rest.split_at(at);

    let whole = split(&[rest]);
    assert_eq!(split(&[a, b]), whole, "chunking changed the frames");
    for frame in &whole {
        match frame {
            Frame::Telegram(t) => assert!(t.len() <= MAX_INPUT_BYTES),
            Frame::Garbage { bytes, .. } => assert!(bytes.len() <= GARBAGE_KEEP),
        }
    }

    let whole = socket(&[rest]);
    assert_eq!(
        socket(&[a, b]),
        whole,
        "chunking changed the socket outputs"
    );
    for output in &whole {
        match output {
            Output::Frame(Frame::Telegram(t)) => assert!(t.len() <= MAX_BODY),
            Output::Frame(Frame::Garbage { bytes, .. }) => assert!(bytes.len() <= GARBAGE_KEEP),
            Output::Reply(_) | Output::Alive | Output::Broken { .. } => {}
        }
    }
});
