//! Transport framing of JMA socket links.
