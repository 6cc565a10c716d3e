//! JMA socket framing: messages survive any chunking, health checks are answered,
//! checkpoints acknowledged, telegrams come out of `BI`/`AN` bodies with or without a
//! BCH, and a broken length or type stops the connection instead of guessing.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "a test crate: helpers outside #[test] fns slice known wire bytes"
)]

use eew_core::telegram::framing::{
    self, BAD_KIND, BAD_LENGTH, COMPRESSED, Framing, FramingKind, HEALTH_ANSWER, HEALTH_CHECK,
    MAX_BODY, Message, MessageKind, MessageType, NO_TELEGRAM, Output, SocketDecoder,
    UNKNOWN_CONTROL, UNSUPPORTED_KIND, checkpoint_ack, encode, encode_bch, encode_telegram,
};
use eew_core::telegram::stream::{Frame, TRUNCATED};
use proptest::prelude::*;

const TOHOKU_9: &[u8] = include_bytes!("fixtures/telegrams/20110311_tohoku_ncn009_warning.txt");
const CANCEL: &[u8] = include_bytes!("fixtures/telegrams/20120108_ncn003_cancel.txt");

fn trimmed(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

fn socket() -> Framing {
    Framing::new(FramingKind::JmaSocket)
}

fn push_bytewise(framing: &mut Framing, bytes: &[u8]) -> Vec<Output> {
    bytes.iter().flat_map(|b| framing.push(&[*b])).collect()
}

#[test]
fn a_health_check_is_answered_on_the_spot() {
    let out = socket().push(HEALTH_CHECK);
    assert_eq!(
        out,
        vec![Output::Reply(HEALTH_ANSWER.to_vec()), Output::Alive]
    );
    assert_eq!(HEALTH_ANSWER, b"00000003ENCHK");
    // an answer to our own check, or an acknowledgement, is liveness only
    assert_eq!(socket().push(HEALTH_ANSWER), vec![Output::Alive]);
}

#[test]
fn a_telegram_in_a_bi_message_comes_out_whole_even_byte_by_byte() {
    let wire = encode_telegram(trimmed(TOHOKU_9), false).unwrap();
    assert_eq!(&wire[8..10], b"BI");
    let whole = socket().push(&wire);
    assert_eq!(
        whole,
        vec![Output::Frame(Frame::Telegram(trimmed(TOHOKU_9).to_vec()))]
    );
    let mut framing = socket();
    assert_eq!(push_bytewise(&mut framing, &wire), whole);
    assert!(framing.finish().is_empty());
    let Output::Frame(Frame::Telegram(t)) = &whole[0] else {
        unreachable!()
    };
    assert_eq!(
        eew_core::parse(t).unwrap(),
        eew_core::parse(TOHOKU_9).unwrap()
    );
}

#[test]
fn a_checkpoint_message_is_acknowledged_after_its_telegram() {
    let wire = encode_telegram(trimmed(CANCEL), true).unwrap();
    assert_eq!(&wire[8..10], b"bI");
    let out = socket().push(&wire);
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0],
        Output::Frame(Frame::Telegram(trimmed(CANCEL).to_vec()))
    );
    let Output::Reply(ack) = &out[1] else {
        panic!("no acknowledgement: {out:?}")
    };
    assert_eq!(&ack[..13], b"00000033ENACK");
    assert_eq!(&ack[13..], &wire[..30]);
    // and the acknowledgement decodes as an EN ACK record
    let decoded = SocketDecoder::new().push(ack);
    let Some(Ok(message)) = decoded.first() else {
        panic!("{decoded:?}")
    };
    assert_eq!(message.control(), Some(&b"ACK"[..]));
}

#[test]
fn health_checks_between_and_inside_reads_keep_their_order() {
    let t1 = encode_telegram(trimmed(TOHOKU_9), false).unwrap();
    let t2 = encode_telegram(trimmed(CANCEL), false).unwrap();
    let stream = [&t1[..], HEALTH_CHECK, &t2[..], HEALTH_CHECK].concat();
    let expected = vec![
        Output::Frame(Frame::Telegram(trimmed(TOHOKU_9).to_vec())),
        Output::Reply(HEALTH_ANSWER.to_vec()),
        Output::Alive,
        Output::Frame(Frame::Telegram(trimmed(CANCEL).to_vec())),
        Output::Reply(HEALTH_ANSWER.to_vec()),
        Output::Alive,
    ];
    assert_eq!(socket().push(&stream), expected);
    for cut in 0..stream.len() {
        let mut framing = socket();
        let mut out = framing.push(&stream[..cut]);
        out.extend(framing.push(&stream[cut..]));
        assert_eq!(out, expected, "cut at {cut}");
    }
}

#[test]
fn bodies_without_a_bch_with_a_title_or_a_heading_still_yield_the_telegram() {
    // No BCH at all: header-less text.
    let title = b"\xB7\xDD\xB7\xAD\xB3\xBC\xDE\xBC\xDD\xBF\xB8\xCE\xB3\r\n\r\n";
    let body = [&title[..], trimmed(CANCEL), b"\r\n"].concat();
    let out = socket().push(&encode(MessageType::TEXT, &body).unwrap());
    assert_eq!(
        out,
        vec![Output::Frame(Frame::Telegram(
            [&title[..], trimmed(CANCEL)].concat()
        ))]
    );
    // A BCH with a 12-byte A/N heading: the heading is skipped.
    let mut body = encode_bch(12).to_vec();
    body.extend_from_slice(b"WXXX40 RJTD ");
    body.extend_from_slice(trimmed(CANCEL));
    let out = socket().push(&encode(MessageType::BINARY, &body).unwrap());
    assert_eq!(
        out,
        vec![Output::Frame(Frame::Telegram(trimmed(CANCEL).to_vec()))]
    );
    // A BCH whose checksum does not match, and a WMO-style heading line in an AN body:
    // both are the message's envelope, not garbage.
    let mut bch = encode_bch(0);
    bch[4] ^= 1;
    let mut body = bch.to_vec();
    body.extend_from_slice(b"\nWEPA40 RJTD 110546\n");
    body.extend_from_slice(trimmed(CANCEL));
    let out = socket().push(&encode(MessageType::TEXT, &body).unwrap());
    assert_eq!(
        out,
        vec![Output::Frame(Frame::Telegram(trimmed(CANCEL).to_vec()))]
    );
}

#[test]
fn messages_that_are_not_telegrams_are_garbage_with_a_reason() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            encode(
                MessageType::BINARY,
                &[&encode_bch(0)[..], b"no telegram here"].concat(),
            )
            .unwrap(),
            "garbage",
        ),
        (encode(MessageType::TEXT, b"   \r\n").unwrap(), NO_TELEGRAM),
        (
            encode(
                MessageType::BINARY,
                &[&encode_bch(0)[..], &[0x1f, 0x8b, 8, 0][..]].concat(),
            )
            .unwrap(),
            COMPRESSED,
        ),
        (
            encode(
                MessageType {
                    kind: MessageKind::Fax,
                    checkpoint: false,
                },
                b"chart",
            )
            .unwrap(),
            UNSUPPORTED_KIND,
        ),
        (
            encode(MessageType::CONTROL, b"xyz").unwrap(),
            UNKNOWN_CONTROL,
        ),
        (encode(MessageType::CONTROL, b"").unwrap(), UNKNOWN_CONTROL),
    ];
    for (wire, reason) in cases {
        let out = socket().push(&wire);
        assert!(
            matches!(out.as_slice(), [Output::Frame(Frame::Garbage { reason: r, .. })] if *r == reason),
            "{reason}: {out:?}"
        );
    }
}

#[test]
fn a_truncated_telegram_in_a_message_is_reported_truncated() {
    let cut = &trimmed(TOHOKU_9)[..100];
    let out = socket().push(&encode_telegram(cut, false).unwrap());
    assert!(
        matches!(out.as_slice(), [Output::Frame(Frame::Garbage { reason, .. })] if *reason == TRUNCATED),
        "{out:?}"
    );
}

#[test]
fn bad_lengths_and_kinds_break_the_connection_and_nothing_after_is_trusted() {
    for (wire, reason) in [
        (&b"0000x003ENchk"[..], BAD_LENGTH),
        (&b"-0000003ENchk"[..], BAD_LENGTH),
        (&b"99999999BIxxxx"[..], BAD_LENGTH),
        (&b"00000003XXchk"[..], BAD_KIND),
        (&b"00000003enchk"[..], BAD_KIND),
        (&b"37 03 00 110311144645 C11"[..], BAD_LENGTH),
    ] {
        let mut framing = socket();
        let out = framing.push(wire);
        assert!(
            matches!(out.as_slice(), [Output::Broken { reason: r, bytes }] if *r == reason && !bytes.is_empty()),
            "{}: {out:?}",
            String::from_utf8_lossy(wire)
        );
        assert!(framing.push(HEALTH_CHECK).is_empty(), "broken stays broken");
    }
    // The largest acceptable length is waited for, not refused.
    let mut decoder = SocketDecoder::new();
    let header = format!("{MAX_BODY:08}BI");
    assert!(decoder.push(header.as_bytes()).is_empty());
    assert!(!decoder.is_broken());
    let over = format!("{:08}BI", MAX_BODY + 1);
    let mut decoder = SocketDecoder::new();
    assert!(matches!(
        decoder.push(over.as_bytes()).as_slice(),
        [Err(e)] if e.reason == BAD_LENGTH
    ));
}

#[test]
fn a_message_cut_by_the_end_of_the_connection_is_truncated_garbage() {
    let wire = encode_telegram(trimmed(TOHOKU_9), false).unwrap();
    let mut framing = socket();
    assert!(framing.push(&wire[..wire.len() - 1]).is_empty());
    assert!(matches!(
        framing.finish().as_slice(),
        [Output::Frame(Frame::Garbage { reason, bytes })] if *reason == TRUNCATED && bytes.len() == wire.len() - 1
    ));
}

#[test]
fn plain_framing_is_the_stream_splitter() {
    let mut framing = Framing::new(FramingKind::Plain);
    assert_eq!(framing.kind(), FramingKind::Plain);
    let out = framing.push(&[b"noise\n", TOHOKU_9].concat());
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[1],
        Output::Frame(Frame::Telegram(trimmed(TOHOKU_9).to_vec()))
    );
    // The JMA socket health check is just noise on a plain link.
    let mut framing = Framing::new(FramingKind::Plain);
    assert!(framing.push(HEALTH_CHECK).is_empty());
    assert_eq!(framing.finish().len(), 1);
}

#[test]
fn framing_kind_spellings() {
    assert_eq!("plain".parse::<FramingKind>(), Ok(FramingKind::Plain));
    assert_eq!(
        "jma_socket".parse::<FramingKind>(),
        Ok(FramingKind::JmaSocket)
    );
    assert_eq!(
        "jma-socket".parse::<FramingKind>(),
        Ok(FramingKind::JmaSocket)
    );
    assert!("jma".parse::<FramingKind>().is_err());
    assert_eq!(FramingKind::JmaSocket.to_string(), "jma_socket");
    let kind: FramingKind = serde_json::from_str("\"jma_socket\"").unwrap();
    assert_eq!(kind, FramingKind::JmaSocket);
}

fn message_type() -> impl Strategy<Value = MessageType> {
    let kinds = [
        MessageKind::Text,
        MessageKind::Binary,
        MessageKind::Fax,
        MessageKind::JAlert,
        MessageKind::Control,
    ];
    (prop::sample::select(kinds.to_vec()), any::<bool>()).prop_map(|(kind, checkpoint)| {
        MessageType {
            kind,
            checkpoint: checkpoint && kind != MessageKind::Control,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encode_decode_round_trips_under_any_chunking(
        messages in prop::collection::vec(
            (message_type(), prop::collection::vec(any::<u8>(), 0..300)),
            0..8,
        ),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let wire: Vec<u8> = messages
            .iter()
            .flat_map(|(ty, body)| encode(*ty, body).unwrap())
            .collect();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (wire.len() + 1)).collect();
        cuts.sort_unstable();
        let mut decoder = SocketDecoder::new();
        let mut decoded = Vec::new();
        let mut from = 0;
        for cut in cuts {
            decoded.extend(decoder.push(&wire[from..cut]));
            from = cut;
        }
        decoded.extend(decoder.push(&wire[from..]));
        prop_assert_eq!(decoder.pending(), 0);
        let expected: Vec<Result<Message, framing::SocketError>> = messages
            .into_iter()
            .map(|(ty, body)| Ok(Message { ty, body }))
            .collect();
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn every_checkpoint_message_gets_exactly_one_ack(
        messages in prop::collection::vec(
            (message_type(), prop::collection::vec(any::<u8>(), 0..64)),
            0..8,
        ),
    ) {
        let wire: Vec<u8> = messages
            .iter()
            .flat_map(|(ty, body)| encode(*ty, body).unwrap())
            .collect();
        let out = socket().push(&wire);
        let acks: Vec<&Vec<u8>> = out
            .iter()
            .filter_map(|o| match o {
                Output::Reply(r) if r.get(8..13) == Some(b"ENACK") => Some(r),
                _ => None,
            })
            .collect();
        let expected: Vec<Vec<u8>> = messages
            .iter()
            .filter(|(ty, _)| ty.checkpoint)
            .map(|(ty, body)| checkpoint_ack(&Message { ty: *ty, body: body.clone() }))
            .collect();
        prop_assert_eq!(acks.len(), expected.len());
        for (got, want) in acks.iter().zip(&expected) {
            prop_assert_eq!(*got, want);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        digits_first in any::<bool>(),
    ) {
        let bytes = if digits_first {
            [format!("{:08}BI", bytes.len() / 2).as_bytes(), &bytes[..]].concat()
        } else {
            bytes
        };
        let mut framing = socket();
        let mut out = framing.push(&bytes);
        out.extend(framing.finish());
        for o in out {
            if let Output::Frame(Frame::Telegram(t)) = o {
                prop_assert!(t.len() <= MAX_BODY);
            }
        }
    }
}
