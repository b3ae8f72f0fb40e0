//! Apps: find, list, create, delete, up/down, scale, status, releases, metrics, logs.

use futures_util::StreamExt;
use racer_core::api::{
    check_instances, App, AppMetrics, AppStatus, Deployment, Page, Release, ReplicaTraffic,
};
use racer_core::{AppName, AppRef};

use super::containers::{info, Ports};
use super::{Caller, Services, Text};
use crate::Error;

impl Services {
    /// An app by name or UUID among those `who` may see: another organisation's app is "not
    /// found", exactly like one that does not exist, so names never leak across organisations.
    pub async fn find_app(&self, who: &Caller, app: &str) -> Result<App, Error> {
        let r = AppRef::parse(app);
        match self.store.apps().get(&r).await {
            Ok(found) if who.sees(&found.org) => Ok(found),
            Ok(_) => Err(racer_store::Error::NotFound {
                what: "app",
                key: r.to_string(),
            }
            .into()),
            Err(e) => Err(e.into()),
        }
    }

    /// Apps in name order, one page at a time.
    pub async fn list_apps(
        &self,
        who: &Caller,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page<App>, Error> {
        Ok(self
            .store
            .apps()
            .list(who.org(), racer_store::page_limit(limit), cursor)
            .await?)
    }

    /// Creates an app (no release yet) in the caller's organisation.
    pub async fn create_app(&self, who: &Caller, name: &str) -> Result<App, Error> {
        let parsed = AppName::parse(name)
            .map_err(|e| Error::invalid(format!("invalid app name {name:?}: {e}")).at("name"))?;
        Ok(self
            .store
            .apps()
            .create(&parsed, who.home_org(), &who.actor)
            .await?)
    }

    /// Deletes an app's record; the reconciler then removes its containers and images.
    pub async fn delete_app(&self, who: &Caller, app: &str) -> Result<App, Error> {
        let found = self.find_app(who, app).await?;
        let app = self
            .store
            .apps()
            .delete(&AppRef::Id(found.id), &who.actor)
            .await?;
        self.wake_app(app.id);
        Ok(app)
    }

    /// `racer up` (`up`: runs the app again with the instances it had) and `racer down` (stops
    /// every replica, keeping the spec and releases).
    pub async fn set_running(&self, who: &Caller, app: &str, up: bool) -> Result<App, Error> {
        let found = self.find_app(who, app).await?;
        let app = self
            .store
            .apps()
            .set_running(&AppRef::Id(found.id), up, &who.actor)
            .await?;
        self.wake_app(app.id);
        Ok(app)
    }

    /// Sets the desired number of replicas (0 to `MAX_INSTANCES`).
    pub async fn scale(&self, who: &Caller, app: &str, instances: u32) -> Result<App, Error> {
        let found = self.find_app(who, app).await?;
        check_instances(instances, true)?;
        let app = self
            .store
            .apps()
            .set_instances(&AppRef::Id(found.id), instances, &who.actor)
            .await?;
        self.wake_app(app.id);
        Ok(app)
    }

    /// Everything about one app: its release, newest deployment, and every replica.
    pub async fn app_status(&self, who: &Caller, app: &str) -> Result<AppStatus, Error> {
        let ctx = self.engine()?;
        let app = self.find_app(who, app).await?;
        let deployments = self.store.deployments();
        let release = match app.release {
            Some(n) => Some(deployments.release_of(app.id, n).await?),
            None => None,
        };
        let deployment = deployments.latest(app.id).await?;
        let mut ports = Ports::new(&self.store);
        let mut containers = Vec::new();
        let mut observed = ctx.engines.list_all(ctx, Some(app.id)).await?;
        observed.sort_by_key(|c| (c.release, c.replica));
        for c in &observed {
            let port = ports.of(c).await;
            containers.push(info(ctx, c, port).await);
        }
        let urls = self.urls.of(&app.name);
        let waiting = ctx.waiting.get(app.id);
        Ok(AppStatus {
            app,
            release,
            deployment,
            containers,
            urls,
            waiting,
        })
    }

    /// Releases of an app, newest first.
    pub async fn releases(&self, who: &Caller, app: &str) -> Result<Vec<Release>, Error> {
        let app = self.find_app(who, app).await?;
        Ok(self.store.deployments().releases(app.id).await?)
    }

    /// Deployments of an app, newest first.
    pub async fn app_deployments(
        &self,
        who: &Caller,
        app: &str,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page<Deployment>, Error> {
        let app = self.find_app(who, app).await?;
        Ok(self
            .store
            .deployments()
            .list(app.id, racer_store::page_limit(limit), cursor)
            .await?)
    }

    /// An app's traffic (from the proxy), replicas and scaling history (from the event log).
    pub async fn app_metrics(&self, who: &Caller, app: &str) -> Result<AppMetrics, Error> {
        let app = self.find_app(who, app).await?;
        let snap = self
            .traffic
            .as_ref()
            .map(|p| p.snapshot())
            .unwrap_or_default()
            .into_iter()
            .find(|t| t.app == app.name);
        let mut history = Vec::new();
        let filter = racer_store::EventFilter {
            app_id: Some(app.id),
            kind: Some("app.".into()),
            ..Default::default()
        };
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .store
                .events()
                .list(&filter, 200, cursor.as_deref())
                .await?;
            history.extend(page.items.into_iter().filter(|e| {
                e.kind.starts_with("app.autoscaled")
                    || e.kind == "app.scaled"
                    || e.kind == "app.up"
                    || e.kind == "app.down"
            }));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let (requests, active, p95, replicas) = match &snap {
            Some(t) => (
                t.by_class
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (format!("{}xx", i + 1), *n))
                    .collect(),
                t.active as u64,
                racer_proxy::p95_ms(&Default::default(), &t.latency),
                t.replicas
                    .iter()
                    .map(|(addr, n, active, ejected)| ReplicaTraffic {
                        addr: addr.to_string(),
                        requests: *n,
                        active: *active as u64,
                        ejected: *ejected,
                    })
                    .collect::<Vec<_>>(),
            ),
            None => (Default::default(), 0, None, Vec::new()),
        };
        Ok(AppMetrics {
            app: app.name.clone(),
            replicas_desired: app.instances,
            replicas_ready: replicas.len() as u32,
            requests,
            active_requests: active,
            p95_ms: p95,
            replicas,
            scaling_history: history,
        })
    }

    /// An app's container logs, each line prefixed with its container when there are several;
    /// with `follow`, streamed as they come. `tail`: lines from the end to start with, or `all`.
    pub async fn app_logs(
        &self,
        who: &Caller,
        app: &str,
        tail: Option<String>,
        follow: bool,
    ) -> Result<Text, Error> {
        let ctx = self.engine()?;
        let app = self.find_app(who, app).await?;
        let mut containers = ctx.engines.list_all(ctx, Some(app.id)).await?;
        containers.retain(|c| c.release == app.release || app.release.is_none());
        containers.sort_by_key(|c| c.replica);
        let tail = tail.unwrap_or_else(|| "100".into());
        let prefix = containers.len() > 1;
        let streams = containers.iter().map(|c| {
            let name = c.name.clone();
            ctx.engines
                .runtime(ctx, &c.cluster)
                .unwrap_or_else(|_| ctx.runtime.clone())
                .logs(&c.id, &tail, follow)
                .map(move |r| match r {
                    Ok(line) if prefix => Ok::<_, std::io::Error>(format!("{name} | {line}")),
                    Ok(line) => Ok(line),
                    Err(e) => Ok(format!("[{name}: {e}]\n")),
                })
        });
        let merged = futures_util::stream::select_all(streams.collect::<Vec<_>>());
        Ok(Text::Stream(merged.boxed()))
    }
}
