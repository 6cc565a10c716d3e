//! [`StoreError`]: what went wrong with the history database, precise enough for the
//! status model to say "disk full" rather than "storage error".

use serde::Serialize;

/// Primary SQLite result codes (<https://www.sqlite.org/rescode.html>); sqlx reports the
/// extended code, whose low byte is the primary one.
mod code {
    pub const PERM: i64 = 3;
    pub const BUSY: i64 = 5;
    pub const LOCKED: i64 = 6;
    pub const READONLY: i64 = 8;
    pub const IOERR: i64 = 10;
    pub const CORRUPT: i64 = 11;
    pub const FULL: i64 = 13;
    pub const CANTOPEN: i64 = 14;
    pub const NOTADB: i64 = 26;
}

/// `ENOSPC` (Linux): no space left on the device.
const ENOSPC: i32 = 28;

/// A history database failure, by what an operator must do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The disk (or the configured size cap) is full: `SQLITE_FULL`, `ENOSPC`.
    #[error("storage full: {0}")]
    Full(String),
    /// Another connection holds the lock beyond the busy timeout: `SQLITE_BUSY`,
    /// `SQLITE_LOCKED`, or no pooled connection became free.
    #[error("database busy: {0}")]
    Busy(String),
    /// The file is damaged or not a database at all: `SQLITE_CORRUPT`, `SQLITE_NOTADB`.
    #[error("database corrupt: {0}")]
    Corrupt(String),
    /// The file cannot be opened, read or written: `SQLITE_IOERR`, `SQLITE_CANTOPEN`,
    /// `SQLITE_READONLY`, `SQLITE_PERM`, or an OS error (permissions, missing directory).
    #[error("storage I/O error: {0}")]
    Io(String),
    /// Anything else (a schema from an incompatible version, a bug).
    #[error("database error: {0}")]
    Other(String),
}

/// [`StoreError`] without its message: what the status model and [`super::StoreHealth`]
/// carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreErrorKind {
    /// See [`StoreError::Full`].
    Full,
    /// See [`StoreError::Busy`].
    Busy,
    /// See [`StoreError::Corrupt`].
    Corrupt,
    /// See [`StoreError::Io`].
    Io,
    /// See [`StoreError::Other`].
    Other,
}

impl StoreErrorKind {
    /// Stable code: `full`, `busy`, `corrupt`, `io`, `other`.
    pub fn code(self) -> &'static str {
        match self {
            StoreErrorKind::Full => "full",
            StoreErrorKind::Busy => "busy",
            StoreErrorKind::Corrupt => "corrupt",
            StoreErrorKind::Io => "io",
            StoreErrorKind::Other => "other",
        }
    }
}

impl StoreError {
    /// Which kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::Full(_) => StoreErrorKind::Full,
            StoreError::Busy(_) => StoreErrorKind::Busy,
            StoreError::Corrupt(_) => StoreErrorKind::Corrupt,
            StoreError::Io(_) => StoreErrorKind::Io,
            StoreError::Other(_) => StoreErrorKind::Other,
        }
    }

    /// The message without the kind's prefix.
    pub fn message(&self) -> &str {
        match self {
            StoreError::Full(m)
            | StoreError::Busy(m)
            | StoreError::Corrupt(m)
            | StoreError::Io(m)
            | StoreError::Other(m) => m,
        }
    }

    pub(crate) fn from_io(err: &std::io::Error, what: &str) -> Self {
        let message = format!("{what}: {err}");
        if err.raw_os_error() == Some(ENOSPC) || err.kind() == std::io::ErrorKind::StorageFull {
            StoreError::Full(message)
        } else {
            StoreError::Io(message)
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::Database(db) => {
                let primary = db
                    .code()
                    .and_then(|c| c.parse::<i64>().ok())
                    .map(|c| c & 0xff);
                let message = db.message().to_owned();
                match primary {
                    Some(code::FULL) => StoreError::Full(message),
                    Some(code::BUSY | code::LOCKED) => StoreError::Busy(message),
                    Some(code::CORRUPT | code::NOTADB) => StoreError::Corrupt(message),
                    Some(code::IOERR | code::CANTOPEN | code::READONLY | code::PERM) => {
                        StoreError::Io(message)
                    }
                    _ => StoreError::Other(message),
                }
            }
            sqlx::Error::Io(io) => StoreError::from_io(&io, "I/O"),
            sqlx::Error::PoolTimedOut => {
                StoreError::Busy("no database connection became free in time".to_owned())
            }
            sqlx::Error::Migrate(migrate) => StoreError::from(*migrate),
            other => StoreError::Other(other.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        use sqlx::migrate::MigrateError;
        match err {
            MigrateError::Execute(e) => StoreError::from(e),
            MigrateError::ExecuteMigration(e, version) => match StoreError::from(e) {
                StoreError::Other(m) => StoreError::Other(format!("migration {version}: {m}")),
                precise => precise,
            },
            other => StoreError::Other(format!("schema migration: {other}")),
        }
    }
}
