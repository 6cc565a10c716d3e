//! Transport framing of JMA code-telegram links: [`Framing`] turns the bytes a link reads
//! into [`Output`]s — frames for the merger, replies to write back on the same
//! connection, liveness signals, and a verdict that the transport is broken.
//!
//! Two framings, chosen per link with [`FramingKind`]:
//!
//! - [`Framing::Plain`]: the bytes are the telegram stream itself, split by
//!   [`StreamSplitter`] (header line … `9999=`). Serial lines and most distributors.
//! - [`Framing::JmaSocket`]: JMA's socket procedure (「JMAソケット手順」, the one JMBSC uses
//!   on its EEW dedicated lines). Every message is a 10-byte header — 8 ASCII digits
//!   giving the length of what follows, then a 2-letter message type — and its body.
//!   Types: `AN` text, `BI` binary, `FX` fax, `JL` J-ALERT; the same in lower case on the
//!   first letter (`aN`, `bI`, `fX`, `jL`) asks for a *checkpoint* acknowledgement; `EN`
//!   is a control record whose first 3 bytes say what it is: `chk` a health-check request
//!   (answered with [`HEALTH_ANSWER`], `00000003ENCHK`), `CHK` the answer to one, `ACK` a
//!   checkpoint acknowledgement (`00000033ENACK` + the first 30 bytes of the
//!   acknowledged message). Data bodies start with a 20-byte binary control header (BCH,
//!   [`parse_bch`]) whose checksum is verified; for `BI` its A/N length says how many
//!   heading bytes follow it. What remains goes through a [`StreamSplitter`] of its own,
//!   so a body with a title line, a heading, or no BCH at all still yields its telegram.
//!
//! The public description of the socket procedure is thin: what is implemented here, the
//! sources it rests on and what could not be confirmed are in `docs/jma-socket-framing.md`.
//! A length field that is not 8 digits, or larger than [`MAX_BODY`], or an unknown
//! message type means the byte stream can no longer be trusted to be in step:
//! [`Output::Broken`] tells the link to close the connection and reconnect, which is the
//! only reliable resynchronisation for a length-prefixed stream.

use std::fmt;
use std::str::FromStr;

use super::MAX_INPUT_BYTES;
use super::stream::{self, Frame, GARBAGE_KEEP, StreamSplitter};

/// Length of the socket header: 8 digits of length and 2 letters of message type.
pub const HEADER_LEN: usize = 10;
/// Largest message body accepted: one telegram at the parser's limit, plus room for the
/// BCH and a heading. A larger length field is a broken stream, not a telegram.
pub const MAX_BODY: usize = MAX_INPUT_BYTES + 64 * 1024;
/// Largest body the 8-digit length field can express.
pub const MAX_ENCODABLE: usize = 99_999_999;
/// A health-check request.
pub const HEALTH_CHECK: &[u8] = b"00000003ENchk";
/// The answer to a health-check request.
pub const HEALTH_ANSWER: &[u8] = b"00000003ENCHK";
/// Length of the binary control header (BCH) this implementation writes.
pub const BCH_LEN: usize = 20;
/// Largest run of non-telegram bytes before the telegram in one data message that is
/// taken as the message's envelope (an unrecognised BCH, a heading) and not reported.
pub const ENVELOPE_MAX: usize = 1024;

/// Output reason: the length field is not 8 digits, or is absurdly large.
pub const BAD_LENGTH: &str = "bad_length";
/// Output reason: the message type is not one of the procedure's.
pub const BAD_KIND: &str = "bad_kind";
/// Garbage reason: a fax or J-ALERT message on a telegram link.
pub const UNSUPPORTED_KIND: &str = "unsupported_kind";
/// Garbage reason: a control record other than `chk`, `CHK` or `ACK`.
pub const UNKNOWN_CONTROL: &str = "unknown_control";
/// Garbage reason: a data message with no code telegram in it.
pub const NO_TELEGRAM: &str = "no_telegram";
/// Garbage reason: a gzip-compressed body (JMA XML), which this link does not decode.
pub const COMPRESSED: &str = "compressed";

/// Which framing a link uses (configuration value: `plain` or `jma_socket`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FramingKind {
    /// The raw telegram stream.
    #[default]
    Plain,
    /// JMA's socket procedure (length-prefixed messages with health checks).
    JmaSocket,
}

impl FramingKind {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FramingKind::Plain => "plain",
            FramingKind::JmaSocket => "jma_socket",
        }
    }
}

impl fmt::Display for FramingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FramingKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "plain" => Ok(FramingKind::Plain),
            "jma_socket" | "jma-socket" => Ok(FramingKind::JmaSocket),
            other => Err(format!(
                "unknown framing {other:?}: expected plain or jma_socket"
            )),
        }
    }
}

/// What the link must do with what it read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// A telegram or garbage, for the merger.
    Frame(Frame),
    /// Bytes to write back on the same connection (a health-check answer, a checkpoint
    /// acknowledgement), in order with the frames around them.
    Reply(Vec<u8>),
    /// A liveness signal that is not a telegram (a health check).
    Alive,
    /// The transport framing is broken: report, close the connection, reconnect.
    Broken {
        /// [`BAD_LENGTH`] or [`BAD_KIND`].
        reason: &'static str,
        /// The 10 bytes that should have been a socket header.
        bytes: Vec<u8>,
    },
}

/// A link's framing state: one per connection.
#[derive(Clone, Debug)]
pub enum Framing {
    /// The raw telegram stream.
    Plain(StreamSplitter),
    /// JMA's socket procedure.
    JmaSocket(JmaSocket),
}

impl Framing {
    /// Fresh state for a new connection.
    pub fn new(kind: FramingKind) -> Self {
        match kind {
            FramingKind::Plain => Framing::Plain(StreamSplitter::new()),
            FramingKind::JmaSocket => Framing::JmaSocket(JmaSocket::new()),
        }
    }

    /// Which framing this is.
    pub fn kind(&self) -> FramingKind {
        match self {
            Framing::Plain(_) => FramingKind::Plain,
            Framing::JmaSocket(_) => FramingKind::JmaSocket,
        }
    }

    /// Feeds bytes as read; returns what they complete, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Output> {
        match self {
            Framing::Plain(splitter) => splitter
                .push(bytes)
                .into_iter()
                .map(Output::Frame)
                .collect(),
            Framing::JmaSocket(socket) => socket.push(bytes),
        }
    }

    /// The connection ended: what was pending becomes garbage.
    pub fn finish(&mut self) -> Vec<Output> {
        match self {
            Framing::Plain(splitter) => splitter.flush().into_iter().map(Output::Frame).collect(),
            Framing::JmaSocket(socket) => socket.finish(),
        }
    }
}

/// The kind of a socket message (its type letters, case aside).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// `AN`: text data.
    Text,
    /// `BI`: binary data (what carries telegrams with a BCH).
    Binary,
    /// `FX`: a fax chart.
    Fax,
    /// `JL`: J-ALERT data.
    JAlert,
    /// `EN`: a control record (health check, checkpoint acknowledgement).
    Control,
}

/// A socket message type: its kind and whether it asks for a checkpoint acknowledgement
/// (lower-case first letter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MessageType {
    /// The kind.
    pub kind: MessageKind,
    /// The sender wants an `ENACK` for this message.
    pub checkpoint: bool,
}

impl MessageType {
    /// `BI`.
    pub const BINARY: MessageType = MessageType {
        kind: MessageKind::Binary,
        checkpoint: false,
    };
    /// `AN`.
    pub const TEXT: MessageType = MessageType {
        kind: MessageKind::Text,
        checkpoint: false,
    };
    /// `EN`.
    pub const CONTROL: MessageType = MessageType {
        kind: MessageKind::Control,
        checkpoint: false,
    };

    /// Decodes the two type letters.
    pub fn from_code(code: &[u8]) -> Option<MessageType> {
        let (kind, checkpoint) = match code {
            b"AN" => (MessageKind::Text, false),
            b"aN" => (MessageKind::Text, true),
            b"BI" => (MessageKind::Binary, false),
            b"bI" => (MessageKind::Binary, true),
            b"FX" => (MessageKind::Fax, false),
            b"fX" => (MessageKind::Fax, true),
            b"JL" => (MessageKind::JAlert, false),
            b"jL" => (MessageKind::JAlert, true),
            b"EN" => (MessageKind::Control, false),
            _ => return None,
        };
        Some(MessageType { kind, checkpoint })
    }

    /// The two type letters (a control record never asks for a checkpoint).
    pub fn code(self) -> [u8; 2] {
        let upper = match self.kind {
            MessageKind::Text => *b"AN",
            MessageKind::Binary => *b"BI",
            MessageKind::Fax => *b"FX",
            MessageKind::JAlert => *b"JL",
            MessageKind::Control => return *b"EN",
        };
        let [first, second] = upper;
        if self.checkpoint {
            [first.to_ascii_lowercase(), second]
        } else {
            upper
        }
    }
}

/// One decoded socket message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its type.
    pub ty: MessageType,
    /// What followed the 10-byte header.
    pub body: Vec<u8>,
}

impl Message {
    /// The message as sent on the wire.
    pub fn encode(&self) -> Result<Vec<u8>, TooLong> {
        encode(self.ty, &self.body)
    }

    /// The control record's 3-letter name (`chk`, `CHK`, `ACK`), for `EN` messages.
    pub fn control(&self) -> Option<&[u8]> {
        (self.ty.kind == MessageKind::Control)
            .then(|| self.body.get(..3))
            .flatten()
    }
}

/// A body too long for the 8-digit length field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a JMA socket message body of {0} bytes does not fit the 8-digit length field")]
pub struct TooLong(pub usize);

/// Encodes one socket message.
pub fn encode(ty: MessageType, body: &[u8]) -> Result<Vec<u8>, TooLong> {
    if body.len() > MAX_ENCODABLE {
        return Err(TooLong(body.len()));
    }
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(format!("{:08}", body.len()).as_bytes());
    out.extend_from_slice(&ty.code());
    out.extend_from_slice(body);
    Ok(out)
}

/// Encodes a code telegram as JMBSC sends one: a `BI` message (`bI` with `checkpoint`)
/// whose body is a BCH (A/N length 0) followed by the telegram bytes.
pub fn encode_telegram(telegram: &[u8], checkpoint: bool) -> Result<Vec<u8>, TooLong> {
    let mut body = Vec::with_capacity(BCH_LEN + telegram.len());
    body.extend_from_slice(&encode_bch(0));
    body.extend_from_slice(telegram);
    encode(
        MessageType {
            kind: MessageKind::Binary,
            checkpoint,
        },
        &body,
    )
}

/// The `ENACK` acknowledging `message`: `ACK` followed by the first 30 bytes of the
/// message as it was on the wire (its header and the start of its body, i.e. the BCH).
pub fn checkpoint_ack(message: &Message) -> Vec<u8> {
    let mut head = Vec::with_capacity(3 + 30);
    head.extend_from_slice(b"ACK");
    head.extend_from_slice(format!("{:08}", message.body.len()).as_bytes());
    head.extend_from_slice(&message.ty.code());
    head.extend_from_slice(message.body.get(..20).unwrap_or(&message.body));
    let mut out = Vec::with_capacity(HEADER_LEN + head.len());
    out.extend_from_slice(format!("{:08}", head.len()).as_bytes());
    out.extend_from_slice(b"EN");
    out.extend_from_slice(&head);
    out
}

/// The transport is broken (see [`Output::Broken`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketError {
    /// [`BAD_LENGTH`] or [`BAD_KIND`].
    pub reason: &'static str,
    /// The 10 bytes that should have been a socket header.
    pub bytes: Vec<u8>,
}

/// Decodes socket messages from a byte stream, however it is chunked. Holds at most one
/// message ([`MAX_BODY`]) plus the chunk being pushed. After a [`SocketError`] it is
/// broken: it ignores everything until [`SocketDecoder::reset`].
#[derive(Clone, Debug, Default)]
pub struct SocketDecoder {
    buf: Vec<u8>,
    broken: bool,
}

impl SocketDecoder {
    /// A decoder at the start of a connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the messages they complete (and at most one error, last).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Result<Message, SocketError>> {
        let mut out = Vec::new();
        if self.broken {
            return out;
        }
        self.buf.extend_from_slice(bytes);
        let mut pos = 0;
        loop {
            let rest = self.buf.get(pos..).unwrap_or_default();
            let Some(header) = rest.get(..HEADER_LEN) else {
                break;
            };
            let (digits, code) = header.split_at(8);
            let len = if digits.iter().all(u8::is_ascii_digit) {
                std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse::<usize>().ok())
                    .filter(|&n| n <= MAX_BODY)
            } else {
                None
            };
            let Some(len) = len else {
                out.push(Err(self.fail(pos, BAD_LENGTH)));
                return out;
            };
            let Some(ty) = MessageType::from_code(code) else {
                out.push(Err(self.fail(pos, BAD_KIND)));
                return out;
            };
            let Some(body) = rest.get(HEADER_LEN..HEADER_LEN + len) else {
                break;
            };
            out.push(Ok(Message {
                ty,
                body: body.to_vec(),
            }));
            pos += HEADER_LEN + len;
        }
        self.buf.drain(..pos);
        out
    }

    /// The connection ended: the bytes of an incomplete message, if any.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let pending = std::mem::take(&mut self.buf);
        self.broken = false;
        (!pending.is_empty()).then_some(pending)
    }

    /// Whether a [`SocketError`] has stopped decoding.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Starts afresh (a new connection).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Bytes held for an incomplete message.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    fn fail(&mut self, pos: usize, reason: &'static str) -> SocketError {
        // Only the header: what follows it depends on how the bytes were chunked.
        let rest = self.buf.get(pos..).unwrap_or_default();
        let bytes = rest.get(..HEADER_LEN).unwrap_or(rest).to_vec();
        self.buf = Vec::new();
        self.broken = true;
        SocketError { reason, bytes }
    }
}

/// A binary control header (BCH), as far as this link needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bch {
    /// Version (high nibble of the first byte).
    pub version: u8,
    /// Length in bytes (low nibble of the first byte × 4).
    pub len: usize,
    /// Byte 9: length of the alphanumeric heading that follows a binary message's BCH.
    pub an_len: usize,
    /// Whether the checksum (bytes 10–11) matches.
    pub checksum_ok: bool,
}

/// Reads the BCH at the start of a data message's body; `None` when the body cannot
/// hold one (too short, or a length below 20 bytes).
pub fn parse_bch(body: &[u8]) -> Option<Bch> {
    let &first = body.first()?;
    let len = usize::from(first & 0x0f) * 4;
    if len < BCH_LEN {
        return None;
    }
    let bch = body.get(..len)?;
    let stored = u16::from_be_bytes([*bch.get(10)?, *bch.get(11)?]);
    Some(Bch {
        version: first >> 4,
        len,
        an_len: usize::from(*bch.get(9)?),
        checksum_ok: bch_checksum(bch) == stored,
    })
}

/// The BCH checksum: the one's-complement sum of the BCH's 16-bit big-endian words,
/// leaving out word 5 (bytes 10–11, where the checksum is stored), complemented.
pub fn bch_checksum(bch: &[u8]) -> u16 {
    let mut sum: u32 = bch
        .chunks(2)
        .enumerate()
        .filter(|&(i, _)| i != 5)
        .map(|(_, w)| {
            let hi = w.first().copied().unwrap_or(0);
            let lo = w.get(1).copied().unwrap_or(0);
            u32::from(u16::from_be_bytes([hi, lo]))
        })
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap_or(u16::MAX)
}

/// A 20-byte BCH as the simulator sends it: version 1, length 20, the given A/N length,
/// other fields zero, checksum set. (Field meanings beyond these are not public; see
/// `docs/jma-socket-framing.md`.)
pub fn encode_bch(an_len: u8) -> [u8; BCH_LEN] {
    let mut bch = [0u8; BCH_LEN];
    if let Some(first) = bch.first_mut() {
        *first = 0x10 | u8::try_from(BCH_LEN / 4).unwrap_or(5);
    }
    if let Some(b) = bch.get_mut(9) {
        *b = an_len;
    }
    let [hi, lo] = bch_checksum(&bch).to_be_bytes();
    if let Some(b) = bch.get_mut(10) {
        *b = hi;
    }
    if let Some(b) = bch.get_mut(11) {
        *b = lo;
    }
    bch
}

/// The telegram part of a data message body: after a valid BCH (and, for `BI`, its A/N
/// heading); the whole body when there is no valid BCH. `Err(COMPRESSED)` for a gzip
/// body.
pub fn payload(ty: MessageType, body: &[u8]) -> Result<&[u8], &'static str> {
    let start = match parse_bch(body) {
        Some(bch) if bch.checksum_ok => {
            bch.len
                + if ty.kind == MessageKind::Binary {
                    bch.an_len
                } else {
                    0
                }
        }
        _ => 0,
    };
    let rest = body.get(start..).unwrap_or_default();
    if rest.starts_with(&[0x1f, 0x8b]) {
        return Err(COMPRESSED);
    }
    Ok(rest)
}

/// JMA socket framing state for one connection.
#[derive(Clone, Debug, Default)]
pub struct JmaSocket {
    decoder: SocketDecoder,
}

impl JmaSocket {
    /// Fresh state for a new connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes as read.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Output> {
        let mut out = Vec::new();
        for decoded in self.decoder.push(bytes) {
            match decoded {
                Ok(message) => handle_message(&message, &mut out),
                Err(e) => out.push(Output::Broken {
                    reason: e.reason,
                    bytes: e.bytes,
                }),
            }
        }
        out
    }

    /// The connection ended: an incomplete message becomes truncated garbage.
    pub fn finish(&mut self) -> Vec<Output> {
        self.decoder
            .finish()
            .map(|bytes| {
                Output::Frame(Frame::Garbage {
                    bytes: bounded(&bytes),
                    reason: stream::TRUNCATED,
                })
            })
            .into_iter()
            .collect()
    }
}

fn bounded(bytes: &[u8]) -> Vec<u8> {
    bytes.get(..GARBAGE_KEEP).unwrap_or(bytes).to_vec()
}

fn garbage(bytes: &[u8], reason: &'static str) -> Output {
    Output::Frame(Frame::Garbage {
        bytes: bounded(bytes),
        reason,
    })
}

fn handle_message(message: &Message, out: &mut Vec<Output>) {
    match message.ty.kind {
        MessageKind::Control => match message.control() {
            Some(b"chk") => {
                out.push(Output::Reply(HEALTH_ANSWER.to_vec()));
                out.push(Output::Alive);
            }
            Some(b"CHK" | b"ACK") => out.push(Output::Alive),
            _ => out.push(garbage(&message.body, UNKNOWN_CONTROL)),
        },
        MessageKind::Fax | MessageKind::JAlert => {
            out.push(garbage(&message.body, UNSUPPORTED_KIND));
        }
        MessageKind::Text | MessageKind::Binary => match payload(message.ty, &message.body) {
            Err(reason) => out.push(garbage(&message.body, reason)),
            Ok(payload) => {
                let mut splitter = StreamSplitter::new();
                let mut frames = splitter.push(payload);
                frames.extend(splitter.flush());
                if frames.is_empty() {
                    out.push(garbage(&message.body, NO_TELEGRAM));
                }
                let first = frames.iter().position(|f| matches!(f, Frame::Telegram(_)));
                for (i, frame) in frames.into_iter().enumerate() {
                    let envelope = first.is_some_and(|t| i < t)
                        && matches!(&frame, Frame::Garbage { bytes, reason }
                            if *reason == stream::GARBAGE && bytes.len() <= ENVELOPE_MAX);
                    if !envelope {
                        out.push(Output::Frame(frame));
                    }
                }
            }
        },
    }
    if message.ty.checkpoint {
        out.push(Output::Reply(checkpoint_ack(message)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_codes_round_trip() {
        for code in [
            b"AN", b"aN", b"BI", b"bI", b"FX", b"fX", b"JL", b"jL", b"EN",
        ] {
            let ty = MessageType::from_code(code).unwrap();
            assert_eq!(&ty.code(), code);
        }
        assert_eq!(MessageType::from_code(b"XX"), None);
        assert_eq!(MessageType::from_code(b"eN"), None);
    }

    #[test]
    fn bch_checksum_verifies() {
        let bch = encode_bch(7);
        let parsed = parse_bch(&bch).unwrap();
        assert_eq!(
            parsed,
            Bch {
                version: 1,
                len: 20,
                an_len: 7,
                checksum_ok: true
            }
        );
        let mut bad = bch;
        bad[3] ^= 0x40;
        assert!(!parse_bch(&bad).unwrap().checksum_ok);
        assert_eq!(parse_bch(&bch[..19]), None);
        assert_eq!(parse_bch(&[0x14; 30]), None, "16 bytes is below a BCH");
    }

    #[test]
    fn checkpoint_ack_quotes_the_message_head() {
        let wire = encode_telegram(b"37 03 00", true).unwrap();
        let message = Message {
            ty: MessageType::from_code(b"bI").unwrap(),
            body: wire[10..].to_vec(),
        };
        let ack = checkpoint_ack(&message);
        assert_eq!(&ack[..13], b"00000033ENACK");
        assert_eq!(&ack[13..], &wire[..30]);
    }
}
