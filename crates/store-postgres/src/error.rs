//! The one mapping from sqlx/PostgreSQL errors to [`StoreError`].
//!
//! The server message (which may quote SQL or values) only travels as the
//! error's `source`, for logs; the messages of `Conflict`, `NotFound` and
//! `Corrupt` built here are fixed texts.

use creditops_store::StoreError;

/// Maps a sqlx error to the store's error type:
/// unique/primary-key violation -> `Conflict`; serialization failure or
/// deadlock (a concurrent transaction won) -> `Conflict`; foreign-key
/// violation -> `NotFound`; pool timeout/closed, IO (connection refused...),
/// connection exceptions, server shutdown or overload -> `Unavailable`;
/// undecodable rows -> `Corrupt`; everything else -> `Database`.
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
            _ => match db.code().as_deref() {
                Some("40001" | "40P01") => StoreError::Conflict(
                    "the change collided with a concurrent one; try again".into(),
                ),
                Some(code) if is_unavailable(code) => StoreError::Unavailable(Box::new(err)),
                Some("42501") => StoreError::Denied(db.message().to_owned()),
                _ => StoreError::Database(Box::new(err)),
            },
        },
        _ => StoreError::Database(Box::new(err)),
    }
}

/// SQLSTATEs that mean "the server cannot serve us right now".
fn is_unavailable(code: &str) -> bool {
    // 08: connection exception; 53: insufficient resources (too many
    // connections, disk full, out of memory); 57P01-57P03: admin/crash
    // shutdown, cannot connect now.
    code.starts_with("08") || code.starts_with("53") || matches!(code, "57P01" | "57P02" | "57P03")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_and_io_errors_are_unavailable() {
        for err in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        ] {
            assert!(matches!(map_sqlx_error(err), StoreError::Unavailable(_)));
        }
        assert!(is_unavailable("08006"));
        assert!(is_unavailable("53300"));
        assert!(is_unavailable("57P01"));
        assert!(!is_unavailable("23505"));
        assert!(!is_unavailable("42P01"));
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
