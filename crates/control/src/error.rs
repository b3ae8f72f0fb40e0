use racer_core::ErrorKind;

/// Why a step of a loop failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing desired state failed.
    #[error("store step failed")]
    Store(#[from] racer_store::Error),
    /// The engine refused or failed.
    #[error("engine step failed")]
    Runtime(#[from] racer_runtime::Error),
    /// Preparing the source failed (unpack, clone, detect, validate, generate).
    #[error("preparing the source failed")]
    Build(#[from] racer_build::Error),
    /// Every host port in the configured ranges is taken.
    #[error("no free host port in {ranges}; free one or widen --host-ports")]
    PortsExhausted {
        /// The ranges, as `8000-8999, 9000-9999`.
        ranges: String,
    },
    /// A file in the data directory could not be used.
    #[error("cannot use {path}")]
    Io {
        /// The file or directory.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A blocking task panicked or was cancelled.
    #[error("background task failed")]
    Join(#[from] tokio::task::JoinError),
    /// An upload was larger than the server accepts.
    #[error("build context is larger than {limit} bytes; add a .dockerignore")]
    TooLarge {
        /// The limit, bytes.
        limit: u64,
    },
    /// The client's upload stopped before its end.
    #[error("upload interrupted: {reason}")]
    Interrupted {
        /// What the connection said.
        reason: String,
    },
    /// `--cluster swarm`, but the engine is not a swarm manager.
    #[error("this Docker engine is not a Swarm manager ({state}); run `racerctl swarm init` first, or start the server without --cluster swarm")]
    NotSwarmManager {
        /// The engine's swarm state, in words.
        state: String,
    },
    /// The engine refused to leave its swarm (without `--force`).
    #[error("the engine did not leave the swarm; if it is the last manager, `racerctl swarm leave --force` leaves and removes every service of the swarm")]
    SwarmLeave {
        /// The engine's refusal.
        #[source]
        source: racer_runtime::Error,
    },
    /// A service refused a request: bad input, something missing, a conflict with what exists.
    #[error("{message}")]
    Refused {
        /// What kind of refusal (invalid, not found, conflict, unavailable).
        kind: ErrorKind,
        /// What is wrong and what to do instead.
        message: String,
        /// The request field at fault, when one is.
        field: Option<String>,
    },
    /// A step failed because of one request field (a git URL that cannot be cloned, an image
    /// that cannot be pulled).
    #[error("{field} is at fault")]
    At {
        /// The request field.
        field: String,
        /// What failed.
        #[source]
        source: Box<Error>,
    },
}

impl From<racer_core::FieldError> for Error {
    fn from(e: racer_core::FieldError) -> Error {
        Error::Refused {
            kind: ErrorKind::Invalid,
            message: e.message,
            field: Some(e.field),
        }
    }
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Store(e) => e.kind(),
            Error::Runtime(e) => e.kind(),
            Error::Build(e) => e.kind(),
            Error::PortsExhausted { .. } => ErrorKind::Unavailable,
            Error::Io { .. } | Error::Join(_) => ErrorKind::Internal,
            Error::Refused { kind, .. } => *kind,
            Error::TooLarge { .. } | Error::Interrupted { .. } => ErrorKind::Invalid,
            Error::NotSwarmManager { .. } | Error::SwarmLeave { .. } => ErrorKind::Conflict,
            Error::At { source, .. } => source.kind(),
        }
    }

    /// A refusal of kind `kind`.
    pub fn refused(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::Refused {
            kind,
            message: message.into(),
            field: None,
        }
    }

    /// Invalid input.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::refused(ErrorKind::Invalid, message)
    }

    /// Blames `field` of the request for this error.
    pub fn at(self, field: impl Into<String>) -> Error {
        match self {
            Error::Refused { kind, message, .. } => Error::Refused {
                kind,
                message,
                field: Some(field.into()),
            },
            other => Error::At {
                field: field.into(),
                source: Box::new(other),
            },
        }
    }

    /// The request field at fault, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Refused { field, .. } => field.as_deref(),
            Error::At { field, .. } => Some(field),
            Error::Store(e) => e.field(),
            _ => None,
        }
    }

    /// The chain of what this error wraps (a store, engine or build error), without this
    /// error's own step: what a user is shown.
    pub fn source_chain(&self) -> String {
        match self {
            Error::Store(e) => chain_of(e),
            Error::Runtime(e) => chain_of(e),
            Error::Build(e) => chain_of(e),
            Error::At { source, .. } => source.source_chain(),
            other => other.chain(),
        }
    }

    /// What to show a user: for an invalid project or spec, the message followed by every
    /// problem with its field path; otherwise [`Error::source_chain`].
    pub fn detail(&self) -> String {
        let problems = self.problems();
        match self {
            Error::Build(e) if !problems.is_empty() => {
                let list: Vec<String> = problems
                    .iter()
                    .map(|p| format!("{}: {}", p.field, p.message))
                    .collect();
                format!("{}:\n  {}", e, list.join("\n  "))
            }
            Error::At { source, .. } => source.detail(),
            other => other.source_chain(),
        }
    }

    /// Every problem with its field path, when the error is an invalid project or spec.
    pub fn problems(&self) -> Vec<racer_core::api::Problem> {
        match self {
            Error::Build(e) => e
                .problems()
                .iter()
                .map(|p| racer_core::api::Problem {
                    field: p.field.clone(),
                    message: p.message.clone(),
                })
                .collect(),
            Error::At { source, .. } => source.problems(),
            _ => Vec::new(),
        }
    }

    /// The whole chain on one line, for deployment records and logs.
    pub fn chain(&self) -> String {
        racer_core::error_chain(self)
    }
}

/// Every message of an error and its sources, joined by `: ` ([`racer_core::error_chain`]).
pub fn chain_of(e: &dyn std::error::Error) -> String {
    racer_core::error_chain(e)
}
