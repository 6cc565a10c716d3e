//! Why an input did not become a [`Report`](crate::Report).

use std::fmt;

use serde::Serialize;

/// Machine-readable reason for a rejection. The snake_case spelling ([`Reason::code`])
/// is part of the public schema and documented in the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Nothing but whitespace.
    Empty,
    /// Larger than [`MAX_INPUT_BYTES`](super::MAX_INPUT_BYTES).
    TooLarge,
    /// Not recognisable as any supported format.
    UnknownFormat,
    /// A recognised format carrying a product eewgate does not act on (real-time
    /// intensity, a third-party derivative, …).
    UnsupportedProduct,
    /// Text that is not valid in the format's character set.
    InvalidEncoding,
    /// The structure is broken: XML/JSON syntax, a missing header or block, a field of
    /// the wrong shape.
    Malformed,
    /// The telegram ends before its terminator (`9999=`) or before a required part.
    Truncated,
    /// A fixed-length code-telegram line has the wrong length.
    BadLineLength,
    /// One telegram split over several parts (Cnf ≠ C11); reassemble before parsing.
    SplitTelegram,
    /// A required field is absent.
    MissingField,
    /// A field has a value that is not a valid value of its kind (a date that does not
    /// exist, a digit where a code table has none).
    InvalidField,
    /// A code not found in JMA's code tables (area, epicentre, region, prefecture).
    UnknownCode,
    /// A value outside its physical or documented range (latitude outside JMA's area of
    /// responsibility, depth > 700 km, magnitude outside 0.1–9.9, …).
    OutOfRange,
    /// Fields that contradict each other (type 39 without cancel status, a warning flag
    /// without warned areas, issued before the origin time, …).
    Inconsistent,
}

impl Reason {
    /// Every reason, for documentation and tests.
    pub const ALL: [Reason; 14] = [
        Reason::Empty,
        Reason::TooLarge,
        Reason::UnknownFormat,
        Reason::UnsupportedProduct,
        Reason::InvalidEncoding,
        Reason::Malformed,
        Reason::Truncated,
        Reason::BadLineLength,
        Reason::SplitTelegram,
        Reason::MissingField,
        Reason::InvalidField,
        Reason::UnknownCode,
        Reason::OutOfRange,
        Reason::Inconsistent,
    ];

    /// The stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Empty => "empty",
            Reason::TooLarge => "too_large",
            Reason::UnknownFormat => "unknown_format",
            Reason::UnsupportedProduct => "unsupported_product",
            Reason::InvalidEncoding => "invalid_encoding",
            Reason::Malformed => "malformed",
            Reason::Truncated => "truncated",
            Reason::BadLineLength => "bad_line_length",
            Reason::SplitTelegram => "split_telegram",
            Reason::MissingField => "missing_field",
            Reason::InvalidField => "invalid_field",
            Reason::UnknownCode => "unknown_code",
            Reason::OutOfRange => "out_of_range",
            Reason::Inconsistent => "inconsistent",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An input that did not become a report: a reason code and a sentence for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct Rejection {
    /// Machine-readable reason.
    pub reason: Reason,
    /// One human sentence naming the field and what was wrong with it.
    pub message: String,
}

impl Rejection {
    /// A rejection with its sentence.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// Shorthand for building an `Err(Rejection)`.
pub(crate) fn reject<T>(reason: Reason, message: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(reason, message))
}
