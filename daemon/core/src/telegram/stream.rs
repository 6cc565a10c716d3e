//! Splitting a JMA code-telegram byte stream into telegrams.
