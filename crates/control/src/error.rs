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
        }
    }

    /// The whole chain on one line, for deployment records and logs.
    pub fn chain(&self) -> String {
        let mut s = self.to_string();
        let mut cur = std::error::Error::source(self);
        while let Some(c) = cur {
            let m = c.to_string();
            if !s.ends_with(&m) {
                s.push_str(": ");
                s.push_str(&m);
            }
            cur = c.source();
        }
        s
    }
}
