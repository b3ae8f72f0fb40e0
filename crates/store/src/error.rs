use racer_core::ErrorKind;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database URL names a backend racer does not support.
    #[error("unsupported database url: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl,
    /// Opening the database (file or server) failed.
    #[error("cannot connect to the database")]
    Connect {
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Applying migrations failed.
    #[error("cannot apply database migrations")]
    Migrate {
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// The row asked for does not exist.
    #[error("{what} {key:?} not found")]
    NotFound {
        /// `app`, `event`, ...
        what: &'static str,
        /// The name or id that was looked up.
        key: String,
    },
    /// A unique value is already taken.
    #[error("{what} {value:?} already exists")]
    Conflict {
        /// `app`, ...
        what: &'static str,
        /// The field whose value is taken.
        field: &'static str,
        /// The taken value.
        value: String,
    },
    /// An invite code that is unknown, used, expired or for another email (one answer for all,
    /// so it reveals nothing).
    #[error("invite code is invalid, already used, expired, or was made for another email")]
    InviteUnusable,
    /// A pagination cursor was not one this store handed out.
    #[error("invalid cursor: pass back the next_cursor of a previous page")]
    BadCursor,
    /// A stored value could not be decoded (a corrupted row).
    #[error("stored {what} is corrupt")]
    Corrupt {
        /// What was being decoded.
        what: &'static str,
    },
    /// The database could not be reached (pool timeout, closed, I/O).
    #[error("the database is unavailable")]
    Unavailable {
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A query failed.
    #[error("database query failed")]
    Query {
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
}

impl Error {
    pub(crate) fn query(source: sqlx::Error) -> Error {
        match source {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::WorkerCrashed => Error::Unavailable { source },
            source => Error::Query { source },
        }
    }

    /// A unique violation becomes a conflict on `field`; anything else a query error.
    pub(crate) fn unique_or_query(
        e: sqlx::Error,
        what: &'static str,
        field: &'static str,
        value: &str,
    ) -> Error {
        if Error::is_unique_violation(&e) {
            Error::Conflict {
                what,
                field,
                value: value.to_owned(),
            }
        } else {
            Error::query(e)
        }
    }

    pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
        match e {
            sqlx::Error::Database(db) => db.is_unique_violation(),
            _ => false,
        }
    }

    /// The kind of failure, for the API's status mapping.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::BadCursor | Error::UnsupportedUrl | Error::InviteUnusable => ErrorKind::Invalid,
            Error::Connect { .. } | Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Migrate { .. } | Error::Corrupt { .. } | Error::Query { .. } => {
                ErrorKind::Internal
            }
        }
    }

    /// The input field the error is about, when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Error::Conflict { field, .. } => Some(field),
            Error::BadCursor => Some("cursor"),
            Error::InviteUnusable => Some("invite"),
            _ => None,
        }
    }
}
