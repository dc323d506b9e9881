//! How redb's errors become [`StoreError`]s.
//!
//! Every engine error is kept as the [`source`](std::error::Error::source)
//! of a `StoreError` whose message says what the store was doing, so a log
//! line reads "storage backend failed: committing 312 appends: <redb's
//! words>". redb's corruption reports become [`ErrorKind::Corrupt`]; the rest
//! are [`ErrorKind::Backend`]. Exposing `redb::Error` in the public API was
//! rejected: it would tie every caller to one engine's major version.

use std::path::Path;

use herald_store::{ErrorKind, StoreError};

/// Wraps an engine error with what the store was doing.
pub(crate) fn engine<E: Into<redb::Error>>(doing: impl Into<String>, error: E) -> StoreError {
    let error: redb::Error = error.into();
    let kind = match &error {
        redb::Error::Corrupted(_) | redb::Error::TableTypeMismatch { .. } => ErrorKind::Corrupt,
        _ => ErrorKind::Backend,
    };
    StoreError::new(kind).with_message(doing).with_source(error)
}

/// Shorthand for `map_err(|e| engine(doing, e))`.
pub(crate) fn context<E: Into<redb::Error>>(doing: &'static str) -> impl FnOnce(E) -> StoreError {
    move |error| engine(doing, error)
}

/// The error for a database file that cannot be opened, with the words an
/// operator needs: which file, and what to do about it.
pub(crate) fn open_failed(file: &Path, error: redb::DatabaseError) -> StoreError {
    let file = file.display();
    match error {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::new(ErrorKind::Backend)
            .with_message(format!(
                "{file} is already open (locked by another process, or by another DiskStore in \
                 this one); only one hub may use a data directory at a time"
            ))
            .with_source(error),
        // redb reports a wrong magic number as an `InvalidData` I/O error.
        redb::DatabaseError::UpgradeRequired(_)
        | redb::DatabaseError::Storage(redb::StorageError::Corrupted(_)) => {
            not_a_store(file, error)
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(ref io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            not_a_store(file, error)
        }
        error => StoreError::new(ErrorKind::Backend)
            .with_message(format!("opening {file}"))
            .with_source(error),
    }
}

fn not_a_store(file: std::path::Display<'_>, error: redb::DatabaseError) -> StoreError {
    StoreError::new(ErrorKind::Corrupt)
        .with_message(format!(
            "{file} is not a Herald disk store (not a redb database of a supported format, or \
             damaged)"
        ))
        .with_source(error)
}

/// The error every call gets once the store is closed or its writer gone.
pub(crate) fn closed() -> StoreError {
    StoreError::new(ErrorKind::Closed)
}
