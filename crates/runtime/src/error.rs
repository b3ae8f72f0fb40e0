use std::path::{Path, PathBuf};

use racer_core::ErrorKind;

/// One of the three files of an engine reached over mutual TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    /// The CA certificate the engine's certificate must be signed by.
    Ca,
    /// racer's client certificate.
    Cert,
    /// The client certificate's private key.
    Key,
}

impl TlsFile {
    /// Its field in `POST /api/v1/clusters` (`--tls-ca`, ... on the command line).
    pub fn field(self) -> &'static str {
        match self {
            TlsFile::Ca => "tls_ca",
            TlsFile::Cert => "tls_cert",
            TlsFile::Key => "tls_key",
        }
    }
}

impl std::fmt::Display for TlsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self {
            TlsFile::Ca => "CA certificate",
            TlsFile::Cert => "client certificate",
            TlsFile::Key => "client key",
        };
        write!(f, "the TLS {what} ({})", self.field())
    }
}

/// Everything that can go wrong talking to the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine's address could not be used (bad `DOCKER_HOST`).
    #[error("cannot set up a connection to the docker engine")]
    Connect {
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// A file of an engine reached over TLS cannot be used (missing, unreadable, not PEM, a key
    /// that is not the certificate's). Never carries the file's contents.
    #[error("{file} {}: {problem}", path.display())]
    Tls {
        /// Which file.
        file: TlsFile,
        /// Its path.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// TLS was asked for an engine address that is not `tcp://`.
    #[error("{host:?}: TLS is for engines reached over TCP (tcp://host:port)")]
    TlsHost {
        /// The address.
        host: String,
    },
    /// The engine is not reachable (socket missing, daemon down).
    #[error("docker engine unreachable while trying to {step}")]
    Unreachable {
        /// What racer was doing.
        step: &'static str,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// The engine says the object does not exist.
    #[error("{step}: not found: {message}")]
    NotFound {
        /// What racer was doing.
        step: &'static str,
        /// The engine's message.
        message: String,
    },
    /// The engine refused because of a conflict (name in use, port taken).
    #[error("{step}: conflict: {message}")]
    Conflict {
        /// What racer was doing.
        step: &'static str,
        /// The engine's message.
        message: String,
    },
    /// The engine refused the request as malformed (400): what racer passed on from its input
    /// is not something the engine takes, e.g. an image reference it cannot parse.
    #[error("{step}: refused by the engine: {message}")]
    BadRequest {
        /// What racer was doing.
        step: &'static str,
        /// The engine's message.
        message: String,
    },
    /// An image could not be pulled (on an engine without a registry, always).
    #[error("image {image:?} is not present locally and cannot be pulled: {message}")]
    Pull {
        /// The image reference.
        image: String,
        /// The engine's reason.
        message: String,
    },
    /// The build failed inside the engine (a failing step, a bad Dockerfile).
    #[error("image build failed: {message}")]
    Build {
        /// The engine's message, naming the failing step.
        message: String,
    },
    /// The build context file could not be read.
    #[error("cannot read the build context")]
    Context {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file for a container could not be packed.
    #[error("cannot pack a file for the container: {message}")]
    Archive {
        /// What failed.
        message: String,
    },
    /// Any other engine failure.
    #[error("docker engine failed to {step}")]
    Engine {
        /// What racer was doing.
        step: &'static str,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
}

impl Error {
    pub(crate) fn tls(file: TlsFile, path: &Path, problem: impl Into<String>) -> Error {
        Error::Tls {
            file,
            path: path.to_owned(),
            problem: problem.into(),
        }
    }

    pub(crate) fn from_engine(step: &'static str, source: bollard::errors::Error) -> Error {
        use bollard::errors::Error as B;
        match source {
            B::DockerResponseServerError {
                status_code: 404,
                message,
            } => Error::NotFound { step, message },
            B::DockerResponseServerError {
                status_code: 409,
                message,
            } => Error::Conflict { step, message },
            B::DockerResponseServerError {
                status_code: 400,
                message,
            } => Error::BadRequest { step, message },
            B::IOError { .. }
            | B::HyperResponseError { .. }
            | B::RequestTimeoutError
            | B::SocketNotFoundError(_) => Error::Unreachable { step, source },
            source => Error::Engine { step, source },
        }
    }

    /// The kind of failure, for the API's status mapping.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::Connect { .. } | Error::Unreachable { .. } => ErrorKind::Unavailable,
            Error::Pull { .. } | Error::Build { .. } | Error::BadRequest { .. } => {
                ErrorKind::Invalid
            }
            Error::Tls { .. } | Error::TlsHost { .. } => ErrorKind::Invalid,
            Error::Engine { .. } | Error::Context { .. } | Error::Archive { .. } => {
                ErrorKind::Internal
            }
        }
    }
}
