//! Swarm: an app's Swarm service (status, log, removal), the start-up check of `--cluster
//! swarm`, and the local engine's swarm membership (`racerctl swarm init|leave|status`).

use futures_util::StreamExt;
use racer_core::api::swarm::{SwarmNode, SwarmRemoved, SwarmService, SwarmStatus, SwarmTask};
use racer_core::{AppRef, ErrorKind};
use racer_runtime::{Runtime, SwarmState};

use super::{Caller, Services, Text};
use crate::{ClusterKind, Ctx, Error};

/// What to tell people whose engine is not a swarm manager.
const NOT_A_MANAGER: &str = "this Docker engine is not a Swarm manager; run `racerctl swarm init` first (it makes this engine a single-node swarm)";

/// Fails unless the local engine is a swarm manager: the check of `racer-server --cluster swarm`.
pub async fn require_manager() -> Result<SwarmState, Error> {
    let runtime = Runtime::connect_local()?;
    let state = runtime.swarm_state().await?;
    if state.is_manager() {
        Ok(state)
    } else {
        Err(Error::NotSwarmManager {
            state: describe(&state),
        })
    }
}

fn describe(s: &SwarmState) -> String {
    match (&s.error, s.state.as_str(), s.manager) {
        (Some(e), state, _) => format!("swarm state {state}: {e}"),
        (None, "active", false) => "it is a worker node of a swarm".to_owned(),
        (None, state, _) => format!("swarm state {state}"),
    }
}

impl Services {
    /// The loops' context when this server runs apps on Swarm and the engine is still a manager.
    async fn swarm_ctx(&self, app: &str) -> Result<&Ctx, Error> {
        let ctx = self.engine()?;
        if ctx.settings.cluster != ClusterKind::Swarm {
            return Err(Error::refused(
                ErrorKind::Conflict,
                format!(
                    "app {app} runs on the local engine (containers), not on Swarm: this server was started with --cluster local; run `racerctl swarm init`, then restart it with `racerctl server start --cluster swarm`"
                ),
            ));
        }
        let s = ctx.runtime.swarm_state().await?;
        if !s.is_manager() {
            return Err(Error::refused(
                ErrorKind::Conflict,
                format!("{NOT_A_MANAGER} ({})", describe(&s)),
            ));
        }
        Ok(ctx)
    }

    /// An app's Swarm service (version, image, replicas desired and running) and its tasks.
    pub async fn swarm_status(&self, who: &Caller, app: &str) -> Result<SwarmStatus, Error> {
        let app = self.find_app(who, app).await?;
        let ctx = self.swarm_ctx(&app.name).await?;
        let service = ctx
            .runtime
            .services(Some(app.id))
            .await?
            .into_iter()
            .max_by_key(|s| s.version);
        let tasks = match &service {
            Some(s) => ctx.runtime.tasks(&s.id).await?,
            None => Vec::new(),
        };
        let running = tasks.iter().filter(|t| t.running()).count() as u64;
        // The health checker's view of each running task (thresholds applied).
        let health = match &service {
            Some(s) => ctx.health.healthy_under(&format!("swarm:{}:", s.id)),
            None => Default::default(),
        };
        Ok(SwarmStatus {
            app: app.name.clone(),
            app_id: app.id,
            instances: app.instances,
            release: app.release,
            service: service.map(|s| SwarmService {
                id: s.id,
                name: s.name,
                version: s.version,
                image: s.image,
                release: s.release,
                replicas_desired: s.replicas,
                replicas_running: running,
                update_state: s.update_state,
                update_message: s.update_message,
            }),
            tasks: tasks
                .into_iter()
                .map(|t| SwarmTask {
                    health: t.running().then(|| {
                        match health.get(&t.id) {
                            Some(true) => "healthy",
                            Some(false) => "unhealthy",
                            None => "starting",
                        }
                        .to_owned()
                    }),
                    id: t.id,
                    slot: t.slot,
                    node: t.node_id,
                    release: t.release,
                    state: t.state,
                    desired_state: t.desired_state,
                    message: t.message,
                    error: t.error,
                    container_id: t.container_id,
                })
                .collect(),
            urls: self.urls.of(&app.name),
        })
    }

    /// An app's Swarm service log (every task, merged); with `follow`, streamed. `tail`: lines
    /// from the end of each task's log (default 50), or `all`.
    pub async fn swarm_logs(
        &self,
        who: &Caller,
        app: &str,
        tail: Option<String>,
        follow: bool,
    ) -> Result<Text, Error> {
        let app = self.find_app(who, app).await?;
        let ctx = self.swarm_ctx(&app.name).await?;
        let tail = tail.unwrap_or_else(|| "50".into());
        if tail != "all" && tail.parse::<u32>().is_err() {
            return Err(Error::invalid(format!(
                "tail must be a number of lines or `all`, not {tail:?}"
            ))
            .at("tail"));
        }
        let Some(service) = ctx
            .runtime
            .services(Some(app.id))
            .await?
            .into_iter()
            .max_by_key(|s| s.version)
        else {
            return Err(Error::refused(
                ErrorKind::NotFound,
                format!(
                    "app {} has no swarm service (not deployed yet, or removed); `racer up --project-name {}` starts it again",
                    app.name, app.name
                ),
            ));
        };
        let stream = ctx
            .runtime
            .service_logs(&service.id, &tail, follow)
            .map(|r| Ok::<_, std::io::Error>(r.unwrap_or_else(|e| format!("[{e}]\n"))));
        Ok(Text::Stream(stream.boxed()))
    }

    /// Removes an app's Swarm service and sets the app down (0 instances), keeping its spec and
    /// releases; `racer up` creates the service again.
    pub async fn swarm_remove(&self, who: &Caller, app: &str) -> Result<SwarmRemoved, Error> {
        let found = self.find_app(who, app).await?;
        let ctx = self.swarm_ctx(&found.name).await?;
        // Desired state first: with 0 instances the reconciler creates no service again.
        let app = if found.instances > 0 {
            self.store
                .apps()
                .set_running(&AppRef::Id(found.id), false, &who.actor)
                .await?
        } else {
            found
        };
        // Removing a live object is an operator action, like removing a container.
        let mut removed = Vec::new();
        for s in ctx.runtime.services(Some(app.id)).await? {
            ctx.runtime.remove_service(&s.id).await?;
            removed.push(s.id);
        }
        ctx.routes.set(&app.name, Vec::new());
        self.wake_app(app.id);
        let message = if removed.is_empty() {
            format!(
                "app {} had no swarm service; it is down (racer up starts it)",
                app.name
            )
        } else {
            format!(
                "removed the swarm service of {}; the app is down, its spec and releases are kept (racer up starts it)",
                app.name
            )
        };
        self.event(racer_store::NewEvent {
            actor: who.actor.clone(),
            kind: "swarm.service.removed".to_owned(),
            app_id: Some(app.id),
            app_name: Some(app.name.clone()),
            message: message.clone(),
            org: Some(app.org.clone()),
        })
        .await;
        Ok(SwarmRemoved {
            app,
            services: removed,
            message,
        })
    }
}

fn node(s: SwarmState, action: Option<String>) -> SwarmNode {
    SwarmNode {
        state: s.state,
        manager: s.manager,
        node_id: s.node_id,
        node_addr: s.node_addr,
        nodes: s.nodes,
        managers: s.managers,
        error: s.error,
        action,
    }
}

/// What `racer-server swarm ...` does with the local engine.
#[derive(Debug, Clone)]
pub enum SwarmCommand {
    /// Make the engine a single-node swarm (if it is in none).
    Init {
        /// The address other nodes would reach it on.
        advertise_addr: String,
        /// Where it listens for other nodes.
        listen_addr: String,
    },
    /// Leave the swarm (its services go with it when this is the last manager).
    Leave {
        /// Needed for the last manager.
        force: bool,
    },
    /// Show the engine's swarm membership.
    Status,
}

/// Runs a swarm command against the local engine (`DOCKER_HOST` or the default socket) and
/// returns the engine's membership afterwards, with what was done.
pub async fn swarm_command(cmd: SwarmCommand) -> Result<SwarmNode, Error> {
    let runtime = Runtime::connect_local()?;
    let engine = Error::Runtime;
    let before = runtime.swarm_state().await.map_err(engine)?;
    let action = match cmd {
        SwarmCommand::Status => None,
        SwarmCommand::Init { .. } if before.state == "active" => Some(if before.manager {
            "already a swarm manager; nothing to do".to_owned()
        } else {
            "already a worker of a swarm; nothing to do (racer needs a manager)".to_owned()
        }),
        SwarmCommand::Init {
            advertise_addr,
            listen_addr,
        } => {
            let id = runtime
                .swarm_init(&advertise_addr, &listen_addr)
                .await
                .map_err(engine)?;
            Some(format!(
                "initialised a single-node swarm (node {id}, advertising {advertise_addr}, listening on {listen_addr})"
            ))
        }
        SwarmCommand::Leave { .. } if before.state == "inactive" => {
            Some("not in a swarm; nothing to do".to_owned())
        }
        SwarmCommand::Leave { force } => {
            runtime
                .swarm_leave(force)
                .await
                .map_err(|source| match &source {
                    racer_runtime::Error::Engine { .. }
                    | racer_runtime::Error::Conflict { .. }
                    | racer_runtime::Error::BadRequest { .. }
                        if !force =>
                    {
                        Error::SwarmLeave { source }
                    }
                    _ => Error::Runtime(source),
                })?;
            Some("left the swarm".to_owned())
        }
    };
    let after = runtime.swarm_state().await.map_err(engine)?;
    Ok(node(after, action))
}
