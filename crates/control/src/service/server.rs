//! The server's own facts: the engine it drives, for `/health` and `/api/v1/info`.

pub use racer_runtime::EngineVersion;

use super::Services;
use crate::Error;

impl Services {
    /// Asks the engine for its version: `None` when no engine is configured.
    pub async fn engine_version(&self) -> Option<Result<EngineVersion, Error>> {
        let ctx = self.engine.as_ref()?;
        Some(ctx.runtime.version().await.map_err(Error::from))
    }

    /// The install id this server labels its containers with, when an engine is configured.
    pub fn install_id(&self) -> Option<String> {
        self.engine.as_ref().map(|c| c.runtime.install().to_owned())
    }
}
