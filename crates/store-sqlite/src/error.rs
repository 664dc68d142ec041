//! The one mapping from sqlx/SQLite errors to [`StoreError`].
//!
//! The SQLite message (which may quote SQL or values) only travels as the
//! error's `source`, for logs; the messages of `Conflict`, `NotFound` and
//! `Corrupt` built here are fixed texts.

use creditops_store::StoreError;

// Primary SQLite result codes (the low byte of an extended code).
const SQLITE_CORRUPT: i64 = 11;
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_IOERR: i64 = 10;
const SQLITE_FULL: i64 = 13;
const SQLITE_CANTOPEN: i64 = 14;
const SQLITE_NOTADB: i64 = 26;

/// Maps a sqlx error to the store's error type:
/// unique/primary-key violation -> `Conflict`; foreign-key violation ->
/// `NotFound`; pool timeout/closed, IO, locked/busy database, full disk ->
/// `Unavailable`; undecodable rows and damaged files -> `Corrupt`; everything
/// else -> `Database`.
pub fn map_sqlx_error(err: sqlx::Error) -> StoreError {
    use sqlx::error::ErrorKind;
    match &err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(err)),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            // Corrupt carries no source: log the detail here.
            tracing::error!(error = %err, "a stored value could not be decoded");
            StoreError::Corrupt("a stored value could not be decoded".into())
        }
        sqlx::Error::Database(db) => match db.kind() {
            ErrorKind::UniqueViolation => {
                StoreError::Conflict("a record with the same key exists already".into())
            }
            ErrorKind::ForeignKeyViolation => {
                StoreError::NotFound("a record this one refers to does not exist".into())
            }
            _ => {
                let primary = db
                    .code()
                    .and_then(|c| c.parse::<i64>().ok())
                    .map(|c| c & 0xff);
                match primary {
                    Some(
                        SQLITE_BUSY | SQLITE_LOCKED | SQLITE_IOERR | SQLITE_FULL | SQLITE_CANTOPEN,
                    ) => StoreError::Unavailable(Box::new(err)),
                    Some(SQLITE_CORRUPT | SQLITE_NOTADB) => {
                        tracing::error!(error = %err, "the database file is damaged");
                        StoreError::Corrupt("the database file is damaged".into())
                    }
                    _ => StoreError::Database(Box::new(err)),
                }
            }
        },
        _ => StoreError::Database(Box::new(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_errors_are_unavailable() {
        assert!(matches!(
            map_sqlx_error(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            map_sqlx_error(sqlx::Error::PoolClosed),
            StoreError::Unavailable(_)
        ));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            map_sqlx_error(sqlx::Error::Io(refused)),
            StoreError::Unavailable(_)
        ));
    }

    #[test]
    fn decode_errors_are_corrupt_and_other_errors_hide_details() {
        assert!(matches!(
            map_sqlx_error(sqlx::Error::Decode("bad".into())),
            StoreError::Corrupt(_)
        ));
        let other = map_sqlx_error(sqlx::Error::Protocol("SELECT secret".into()));
        assert!(matches!(other, StoreError::Database(_)));
        assert_eq!(other.to_string(), "database error");
    }
}
