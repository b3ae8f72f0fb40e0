//! racer's only door to the Docker Engine API. Controllers and handlers reach the engine through
//! [`Runtime`]; nothing else in racer speaks to Docker.

mod error;

pub use error::Error;

use bollard::Docker;

/// The engine's identity, as `/health` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineVersion {
    /// e.g. `20.10.24+dfsg1`.
    pub version: String,
    /// e.g. `1.41`.
    pub api_version: String,
    /// e.g. `linux`.
    pub os: String,
}

/// A connection to one Docker engine (the `local` cluster).
#[derive(Clone, Debug)]
pub struct Runtime {
    docker: Docker,
}

impl Runtime {
    /// Connects like the Docker CLI: `DOCKER_HOST`, else the default local socket. Does not talk
    /// to the engine yet; [`Runtime::version`] does.
    pub fn connect_local() -> Result<Runtime, Error> {
        let docker = Docker::connect_with_defaults().map_err(|source| Error::Connect { source })?;
        Ok(Runtime { docker })
    }

    /// Asks the engine for its version; this is the engine health check.
    pub async fn version(&self) -> Result<EngineVersion, Error> {
        let v = self
            .docker
            .version()
            .await
            .map_err(|source| Error::from_engine("read engine version", source))?;
        Ok(EngineVersion {
            version: v.version.unwrap_or_default(),
            api_version: v.api_version.unwrap_or_default(),
            os: v.os.unwrap_or_default(),
        })
    }
}
