use racer_core::ErrorKind;

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
            Error::Pull { .. } | Error::Build { .. } => ErrorKind::Invalid,
            Error::Engine { .. } | Error::Context { .. } | Error::Archive { .. } => {
                ErrorKind::Internal
            }
        }
    }
}
