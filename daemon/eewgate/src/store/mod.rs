//! History in SQLite.
