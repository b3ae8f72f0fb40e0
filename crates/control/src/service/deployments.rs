//! Deployments: deploy, rerun, rollback; one deployment and its build log.

use racer_core::api::{
    check_instances, DeployRequest, Deployed, Deployment, DeploymentStatus, RerunRequest,
    RollbackRequest, Source,
};
use racer_core::{AppName, AppRef, ErrorKind};
use racer_store::NewDeployment;
use uuid::Uuid;

use super::{Caller, Services, Text};
use crate::Error;

impl Services {
    /// Deploys: checks everything that can be checked now (name, count, config, source, image),
    /// so bad input is refused with nothing recorded, then records a deployment (and the app, if
    /// new) and wakes the builder.
    pub async fn deploy(&self, who: &Caller, req: &DeployRequest) -> Result<Deployed, Error> {
        let ctx = self.engine()?;
        let name = AppName::parse(&req.app).map_err(|e| {
            Error::invalid(format!("invalid app name {:?}: {e}", req.app)).at("app")
        })?;
        if let Some(i) = req.instances {
            check_instances(i, false)?;
        }
        super::inspect::owns_upload(ctx, who, &req.source).await?;
        self.preflight(ctx, &req.source, &req.config).await?;
        self.record(
            ctx,
            &NewDeployment {
                name: &name,
                source: &req.source,
                config: &req.config,
                instances: req.instances,
                image_from_release: None,
                org: who.home_org(),
            },
            &who.actor,
        )
        .await
    }

    /// Creates an app and its first deployment from a git repository (`POST /api/v1/apps` with
    /// a `repo_url`, the PaaS seed's flow). An app of that name is a conflict, as a plain create
    /// is; fields are named as in that body (`name`, `repo_url`).
    pub async fn create_app_from_repo(
        &self,
        who: &Caller,
        name: &str,
        repo_url: &str,
        branch: Option<&str>,
    ) -> Result<Deployed, Error> {
        match self.find_app(who, name).await {
            Ok(_) => {
                return Err(Error::refused(
                    ErrorKind::Conflict,
                    format!(
                        "app {name:?} already exists; deploy to it with POST /api/v1/deployments"
                    ),
                )
                .at("name"))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if repo_url.trim().is_empty() {
            return Err(Error::invalid("repo_url must not be empty").at("repo_url"));
        }
        let req = DeployRequest {
            app: name.to_owned(),
            source: Source::Git {
                url: repo_url.to_owned(),
                reference: branch.map(str::to_owned),
            },
            config: Default::default(),
            instances: None,
        };
        self.deploy(who, &req).await.map_err(|e| {
            let field = e.field().map(str::to_owned);
            match field.as_deref() {
                Some("app") => e.at("name"),
                Some("source.url") => e.at("repo_url"),
                _ => e,
            }
        })
    }

    /// Deployments of every app `who` may see, newest first, one page at a time.
    pub async fn list_deployments(
        &self,
        who: &Caller,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<racer_core::api::Page<Deployment>, Error> {
        Ok(self
            .store
            .deployments()
            .list_all(who.org(), racer_store::page_limit(limit), cursor)
            .await?)
    }

    /// A deployment `who` may see (another organisation's is "not found").
    pub async fn deployment(&self, who: &Caller, id: &str) -> Result<Deployment, Error> {
        let not_found =
            || Error::refused(ErrorKind::NotFound, format!("deployment {id:?} not found"));
        let uuid = Uuid::parse_str(id).map_err(|_| not_found())?;
        let d = self.store.deployments().get(uuid).await?;
        if who.org().is_some() {
            match self.store.apps().get(&AppRef::Id(d.app_id)).await {
                Ok(app) if who.sees(&app.org) => {}
                Ok(_) | Err(racer_store::Error::NotFound { .. }) => return Err(not_found()),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(d)
    }

    /// A deployment's build log; with `follow`, streamed until the build ends.
    pub async fn deployment_log(
        &self,
        who: &Caller,
        id: &str,
        follow: bool,
    ) -> Result<Text, Error> {
        let id = self.deployment(who, id).await?.id;
        let store = self.store.clone();
        if !follow {
            return Ok(Text::Whole(store.deployments().log(id, 0).await?));
        }
        let stream = futures_util::stream::unfold(
            (store, 0usize, false),
            move |(store, offset, done)| async move {
                if done {
                    return None;
                }
                loop {
                    let d = store.deployments().get(id).await.ok()?;
                    let chunk = store.deployments().log(id, offset).await.ok()?;
                    // Building is over once the deployment left pending/building.
                    let finished = !matches!(
                        d.status,
                        DeploymentStatus::Pending | DeploymentStatus::Building
                    );
                    if !chunk.is_empty() {
                        let next = offset + chunk.len();
                        return Some((Ok::<_, std::io::Error>(chunk), (store, next, false)));
                    }
                    if finished {
                        return None;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        );
        Ok(Text::Stream(Box::pin(stream)))
    }

    /// A new release from the recorded source (rebuilt), or from the current image
    /// (`no_rebuild`), with `env` merged over the current config.
    pub async fn rerun(
        &self,
        who: &Caller,
        app: &str,
        req: &RerunRequest,
    ) -> Result<Deployed, Error> {
        let ctx = self.engine()?;
        let app = self.find_app(who, app).await?;
        let deployments = self.store.deployments();
        let current = match app.release {
            Some(n) => Some(deployments.release_of(app.id, n).await?),
            None => None,
        };
        let mut config = current
            .as_ref()
            .map(|r| r.config.clone())
            .unwrap_or_default();
        config.env.extend(req.env.clone());
        let Some(recorded) = app.source.clone() else {
            return Err(Error::invalid(format!(
                "app {} was never deployed; use racer run",
                app.name
            )));
        };
        let name = AppName::parse(&app.name)
            .map_err(|e| Error::refused(ErrorKind::Internal, e.to_string()))?;
        let (source, from) = if req.no_rebuild {
            let Some(r) = &current else {
                return Err(Error::invalid(format!(
                    "app {} has no release to reuse; rerun without --no-rebuild",
                    app.name
                ))
                .at("no_rebuild"));
            };
            config.check()?;
            (r.source.clone(), Some(r.number))
        } else {
            let source = match (req.source.clone(), recorded) {
                (Some(s), _) => s,
                (None, Source::Path { path, .. }) => {
                    return Err(Error::invalid(format!(
                        "app {} was deployed from the folder {path}; send it again (racer rerun does)",
                        app.name
                    ))
                    .at("source"));
                }
                (None, other) => other,
            };
            // A rebuild may pick a new app port from the image: do not pin the old one.
            self.preflight(ctx, &source, &config).await?;
            (source, None)
        };
        self.record(
            ctx,
            &NewDeployment {
                name: &name,
                source: &source,
                config: &config,
                instances: None,
                image_from_release: from,
                org: &app.org,
            },
            &who.actor,
        )
        .await
    }

    /// Rolls back: a new release from an earlier release's image and config, no rebuild, rolled
    /// out like any other (the current release serves until the old one answers).
    pub async fn rollback(
        &self,
        who: &Caller,
        app: &str,
        req: &RollbackRequest,
    ) -> Result<Deployed, Error> {
        let ctx = self.engine()?;
        let app = self.find_app(who, app).await?;
        let releases = self.store.deployments().releases(app.id).await?;
        let numbers: Vec<i64> = releases.iter().map(|r| r.number).collect();
        let target =
            racer_core::rollout::rollback_target(app.release, &numbers, req.to).map_err(|e| {
                let err = Error::invalid(e.message(&app.name));
                match e.field() {
                    Some(f) => err.at(f),
                    None => err,
                }
            })?;
        let target = releases
            .iter()
            .find(|r| r.number == target)
            .ok_or_else(|| Error::refused(ErrorKind::Internal, "release vanished"))?;
        let name = AppName::parse(&app.name)
            .map_err(|e| Error::refused(ErrorKind::Internal, e.to_string()))?;
        self.record(
            ctx,
            &NewDeployment {
                name: &name,
                source: &target.source,
                config: &target.config,
                instances: None,
                image_from_release: Some(target.number),
                org: &app.org,
            },
            &who.actor,
        )
        .await
    }
}
