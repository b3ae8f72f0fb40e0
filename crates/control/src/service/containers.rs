//! The operator's view of containers: list, one, logs, stop, remove, cleanup.

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt;
use racer_core::api::{ContainerAction, ContainerInfo, Page};
use racer_core::ErrorKind;
use racer_runtime::Observed;
use racer_store::Store;
use uuid::Uuid;

use super::{Caller, Services, Text};
use crate::{Ctx, Error};

impl Services {
    /// The containers `who` may see: those of their organisation's apps (every container for the
    /// install's admin token).
    async fn visible_containers(&self, who: &Caller) -> Result<Vec<Observed>, Error> {
        let ctx = self.engine()?;
        let mut all = ctx.engines.list_all(ctx, None).await?;
        if let Some(org) = who.org() {
            let mine: HashSet<Uuid> = self
                .store
                .apps()
                .all()
                .await?
                .into_iter()
                .filter(|a| a.org == org)
                .map(|a| a.id)
                .collect();
            all.retain(|c| c.app_id.is_some_and(|id| mine.contains(&id)));
        }
        Ok(all)
    }

    /// One container by id, unique id prefix, or name, among those `who` may see.
    async fn find_container(&self, who: &Caller, id: &str) -> Result<Observed, Error> {
        let all = self.visible_containers(who).await?;
        let mut matches: Vec<_> = all
            .into_iter()
            .filter(|c| c.id.starts_with(id) || c.name == id)
            .collect();
        if matches.len() > 1 {
            return Err(Error::refused(
                ErrorKind::Conflict,
                format!(
                    "{id:?} matches {} containers; give more of the id",
                    matches.len()
                ),
            ));
        }
        matches.pop().ok_or_else(|| {
            Error::refused(ErrorKind::NotFound, format!("no racer container {id:?}"))
        })
    }

    /// Every container racer manages that `who` may see, in name order, one page at a time.
    pub async fn list_containers(
        &self,
        who: &Caller,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page<ContainerInfo>, Error> {
        let ctx = self.engine()?;
        let mut all = self.visible_containers(who).await?;
        all.sort_by(|a, b| a.name.cmp(&b.name));
        let limit = racer_store::page_limit(limit) as usize;
        let start = match cursor {
            Some(c) => all
                .iter()
                .position(|x| x.name.as_str() > c)
                .unwrap_or(all.len()),
            None => 0,
        };
        let page: Vec<_> = all.iter().skip(start).take(limit).collect();
        let next_cursor = (start + page.len() < all.len())
            .then(|| page.last().map(|c| c.name.clone()))
            .flatten();
        let mut ports = Ports::new(&self.store);
        let mut items = Vec::new();
        for c in page {
            let port = ports.of(c).await;
            items.push(info(ctx, c, port).await);
        }
        Ok(Page { items, next_cursor })
    }

    /// One container by id (or unique id prefix, or name).
    pub async fn container(&self, who: &Caller, id: &str) -> Result<ContainerInfo, Error> {
        let ctx = self.engine()?;
        let c = self.find_container(who, id).await?;
        let port = Ports::new(&self.store).of(&c).await;
        Ok(info(ctx, &c, port).await)
    }

    /// One container's log; with `follow`, streamed.
    pub async fn container_logs(
        &self,
        who: &Caller,
        id: &str,
        tail: Option<String>,
        follow: bool,
    ) -> Result<Text, Error> {
        let ctx = self.engine()?;
        let c = self.find_container(who, id).await?;
        let tail = tail.unwrap_or_else(|| "100".into());
        let s = ctx
            .engines
            .runtime(ctx, &c.cluster)?
            .logs(&c.id, &tail, follow)
            .map(|r| Ok::<_, std::io::Error>(r.unwrap_or_else(|e| format!("[{e}]\n"))));
        Ok(Text::Stream(s.boxed()))
    }

    /// Stops a container. The reconciler starts it again if its app still wants it: to stop an
    /// app, scale it to 0.
    pub async fn stop_container(&self, who: &Caller, id: &str) -> Result<ContainerAction, Error> {
        let ctx = self.engine()?;
        let c = self.find_container(who, id).await?;
        ctx.engines
            .runtime(ctx, &c.cluster)?
            .stop(&c.id, ctx.settings.stop_grace_secs)
            .await?;
        self.container_event(who, "container.stopped", &c).await;
        Ok(ContainerAction {
            message: format!(
                "stopped {}; racer starts it again while its app wants it",
                c.name
            ),
            containers: vec![c.id],
        })
    }

    /// Removes a container (the reconciler replaces it if its app still wants it).
    pub async fn remove_container(&self, who: &Caller, id: &str) -> Result<ContainerAction, Error> {
        let ctx = self.engine()?;
        let c = self.find_container(who, id).await?;
        ctx.engines.runtime(ctx, &c.cluster)?.remove(&c.id).await?;
        self.container_event(who, "container.removed", &c).await;
        match c.app_id {
            Some(app) => self.wake_app(app),
            None => self.wake_all(),
        }
        Ok(ContainerAction {
            message: format!("removed {}", c.name),
            containers: vec![c.id],
        })
    }

    /// Removes every racer container that is not running.
    pub async fn cleanup(&self, who: &Caller) -> Result<ContainerAction, Error> {
        let ctx = self.engine()?;
        let mut removed = Vec::new();
        for c in ctx.engines.list_all(ctx, None).await? {
            if !c.running() && c.state != "restarting" {
                ctx.engines.runtime(ctx, &c.cluster)?.remove(&c.id).await?;
                self.container_event(who, "container.removed", &c).await;
                removed.push(c.id);
            }
        }
        self.wake_all();
        let message = format!("removed {} stopped container(s)", removed.len());
        Ok(ContainerAction {
            containers: removed,
            message,
        })
    }

    async fn container_event(&self, who: &Caller, kind: &str, c: &Observed) {
        self.event(racer_store::NewEvent {
            actor: who.actor.clone(),
            kind: kind.to_owned(),
            app_id: c.app_id,
            app_name: c.app_name.clone(),
            message: format!("{kind} {}", c.name),
            org: None,
        })
        .await;
    }
}

/// Live information on one container: the engine's view plus the health checker's.
pub(crate) async fn info(ctx: &Ctx, c: &Observed, app_port: Option<u16>) -> ContainerInfo {
    let inspected = match ctx.engines.runtime(ctx, &c.cluster) {
        Ok(rt) => rt.inspect(&c.id).await.ok(),
        Err(_) => None,
    };
    // The health checker's view (thresholds applied), not a probe of our own.
    let known = ctx.health.get(&c.id);
    let draining = ctx.draining.contains(&c.id);
    let health = if !c.running() {
        "stopped"
    } else if draining {
        "draining"
    } else {
        match known {
            Some(s) if s.healthy => "healthy",
            Some(s) if s.failures > 0 && s.successes == 0 && app_port.is_some() => "unhealthy",
            _ => "starting",
        }
    };
    let now = chrono::Utc::now();
    ContainerInfo {
        id: c.id.clone(),
        name: c.name.clone(),
        app_id: c.app_id,
        app_name: c.app_name.clone(),
        release: c.release,
        replica: c.replica,
        state: c.state.clone(),
        health: health.into(),
        host_port: c.host_port,
        url: c.host_port.map(|p| format!("http://127.0.0.1:{p}/")),
        uptime_seconds: inspected
            .as_ref()
            .filter(|i| i.running)
            .and_then(|i| i.started_at)
            .map(|t| (now - t).num_seconds().max(0) as u64),
        image: c.image.clone(),
        restarts: inspected.map(|i| i.restart_count).unwrap_or(0),
        cluster: c.cluster.clone(),
    }
}

/// App ports of releases, looked up once per request.
pub(crate) struct Ports<'a> {
    store: &'a Store,
    cache: HashMap<(Uuid, i64), Option<u16>>,
}

impl<'a> Ports<'a> {
    pub(crate) fn new(store: &'a Store) -> Ports<'a> {
        Ports {
            store,
            cache: HashMap::new(),
        }
    }

    /// The app port of the container's release, if it set one.
    pub(crate) async fn of(&mut self, c: &Observed) -> Option<u16> {
        let (app, rel) = (c.app_id?, c.release?);
        if let Some(p) = self.cache.get(&(app, rel)) {
            return *p;
        }
        let p = self
            .store
            .deployments()
            .release_of(app, rel)
            .await
            .ok()
            .and_then(|r| r.config.app_port);
        self.cache.insert((app, rel), p);
        p
    }
}
