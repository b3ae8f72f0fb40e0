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

    /// Who holds lease `name` (`controller` or `autoscaler`) and whether this process does;
    /// `None` without an engine.
    pub async fn leadership(&self, name: &str) -> Option<racer_core::api::Leadership> {
        let ctx = self.engine.as_ref()?;
        let (mine, contends) = match name {
            crate::lease::CONTROLLER => (&ctx.leases.controller, ctx.settings.worker),
            _ => (&ctx.leases.autoscaler, ctx.settings.autoscaler),
        };
        let now = chrono::Utc::now().timestamp_millis();
        let record = ctx.store.leases().get(name).await.ok().flatten();
        let holder = record.as_ref().filter(|r| r.expires_at > now);
        let role = if mine.held() {
            "leader"
        } else if contends {
            "follower"
        } else {
            "off"
        };
        Some(racer_core::api::Leadership {
            role: role.into(),
            me: ctx.settings.builder_id.clone(),
            holder: holder.map(|r| r.holder.clone()),
            epoch: record.map_or(0, |r| r.epoch),
        })
    }
}
