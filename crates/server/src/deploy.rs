//! Deploy endpoints: uploads, validate, dockerfile, deployments, status, logs, rerun, scale, and
//! the operator's container endpoints. Write handlers record desired state and wake a loop;
//! reads of live state (status, logs) go through the runtime.

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::StreamExt;
use racer_build::Detected;
use racer_control::builder::{generate_dockerfile, upload_path};
use racer_control::Ctx;
use racer_core::api::{
    App, AppStatus, ApplyResult, ContainerAction, ContainerInfo, DeployRequest, Deployed,
    Deployment, DockerfileReport, InspectRequest, Page, Problem, Release, RerunRequest,
    RollbackRequest, RunConfig, ScaleRequest, Source, Upload, ValidateReport, MAX_CONCURRENCY,
};
use racer_core::{AppName, AppRef, ErrorKind};
use racer_runtime::Observed;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::api::{Json, Query};
use crate::auth::{Actor, Principal};
use crate::error::chain;
use crate::state::AppState;
use crate::ApiError;
use racer_store::NewDeployment;

/// The largest build context accepted.
pub(crate) const MAX_UPLOAD: u64 = 2 * 1024 * 1024 * 1024;

pub(crate) fn control(state: &AppState) -> Result<&Ctx, ApiError> {
    state.0.control.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorKind::Unavailable,
            "no docker engine is configured (DOCKER_HOST); deploys are unavailable",
        )
    })
}

/// Receives a build-context tarball, streamed to disk, never held in memory.
#[utoipa::path(post, path = "/api/v1/uploads", request_body(content = Vec<u8>, content_type = "application/x-tar"),
    responses((status = 201, body = Upload), (status = 413, body = racer_core::api::ErrorBody)))]
pub(crate) async fn upload(
    State(state): State<AppState>,
    body: Body,
) -> Result<(StatusCode, Json<Upload>), ApiError> {
    let ctx = control(&state)?;
    let dir = ctx.uploads_dir();
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| io_error(&dir, e))?;
    let id = Uuid::new_v4().to_string();
    let path = upload_path(ctx, &id);
    let part = path.with_extension("part");
    let mut file = tokio::fs::File::create(&part)
        .await
        .map_err(|e| io_error(&part, e))?;
    let mut stream = body.into_data_stream();
    let mut bytes: u64 = 0;
    let result: Result<(), ApiError> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::with_status(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("upload interrupted: {e}"),
                )
            })?;
            bytes += chunk.len() as u64;
            if bytes > MAX_UPLOAD {
                return Err(ApiError::with_status(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("build context is larger than {MAX_UPLOAD} bytes; add a .dockerignore"),
                ));
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| io_error(&part, e))?;
        }
        file.flush().await.map_err(|e| io_error(&part, e))?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(e);
    }
    tokio::fs::rename(&part, &path)
        .await
        .map_err(|e| io_error(&path, e))?;
    Ok((StatusCode::CREATED, Json(Upload { id, bytes })))
}

fn io_error(path: &FsPath, e: std::io::Error) -> ApiError {
    tracing::error!(path = %path.display(), error = %e, "data directory i/o failed");
    ApiError::new(
        ErrorKind::Internal,
        format!("cannot use {}", path.display()),
    )
}

/// A source checked out into a scratch directory, removed on drop.
struct Checkout {
    dir: PathBuf,
    src: PathBuf,
    commit: Option<String>,
}

impl Drop for Checkout {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Unpacks an upload or clones a repository into a scratch directory.
async fn checkout(ctx: &Ctx, source: &Source) -> Result<Checkout, ApiError> {
    let dir = ctx.builds_dir().join(format!("inspect-{}", Uuid::new_v4()));
    let src = dir.join("src");
    let co = Checkout {
        dir,
        src: src.clone(),
        commit: None,
    };
    match source {
        Source::Path { upload, .. } => {
            let tar = upload_path(ctx, upload);
            if !tar.exists() {
                return Err(ApiError::new(
                    ErrorKind::Invalid,
                    format!("no upload {upload:?}: send the folder first (POST /api/v1/uploads)"),
                )
                .field("source.upload"));
            }
            tokio::task::spawn_blocking(move || -> Result<(), racer_build::Error> {
                std::fs::create_dir_all(&src).map_err(|source| racer_build::Error::Read {
                    path: src.clone(),
                    source,
                })?;
                let f = std::fs::File::open(&tar).map_err(|source| racer_build::Error::Read {
                    path: tar.clone(),
                    source,
                })?;
                racer_build::context::unpack(
                    std::io::BufReader::new(f),
                    &src,
                    &racer_build::context::Limits::default(),
                )?;
                Ok(())
            })
            .await
            .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))??;
            Ok(co)
        }
        Source::Git { url, reference } => {
            let (u, r) = (url.clone(), reference.clone());
            let sha = tokio::task::spawn_blocking(move || {
                racer_build::git::checkout(&u, r.as_deref(), &src)
            })
            .await
            .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?
            .map_err(|e| ApiError::from(e).field("source.url"))?;
            let mut co = co;
            co.commit = Some(sha);
            Ok(co)
        }
        Source::Image { .. } => Err(ApiError::new(
            ErrorKind::Invalid,
            "an image source has no project to inspect; use a path or git source",
        )
        .field("source")),
    }
}

fn problems_of(e: &racer_build::Error) -> Vec<Problem> {
    e.problems()
        .iter()
        .map(|p| Problem {
            field: p.field.clone(),
            message: p.message.clone(),
        })
        .collect()
}

/// Validates a project: what racer would build, and every problem with its field path.
#[utoipa::path(post, path = "/api/v1/validate", request_body = InspectRequest,
    responses((status = 200, body = ValidateReport), (status = 422, body = racer_core::api::ErrorBody)))]
pub(crate) async fn validate(
    State(state): State<AppState>,
    Json(req): Json<InspectRequest>,
) -> Result<Json<ValidateReport>, ApiError> {
    let ctx = control(&state)?;
    let co = checkout(ctx, &req.source).await?;
    let src = co.src.clone();
    let env = req.config.env.clone();
    let detected = tokio::task::spawn_blocking(move || racer_build::detect(&src))
        .await
        .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
    forget_upload(ctx, &req.source).await;
    let report = match detected {
        Ok(Detected::Dockerfile) => ValidateReport {
            kind: Some("dockerfile".into()),
            valid: true,
            problems: vec![],
            project_name: None,
            environments: vec![],
            commands: vec![],
            commit: co.commit.clone(),
        },
        Ok(Detected::CondaProject(p)) => {
            let missing: Vec<Problem> = p
                .missing_variables(req.config.command.as_deref(), &env)
                .iter()
                .map(|x| Problem {
                    field: x.field.clone(),
                    message: x.message.clone(),
                })
                .collect();
            ValidateReport {
                kind: Some("conda-project".into()),
                valid: missing.is_empty(),
                problems: missing,
                project_name: Some(p.name.clone()),
                environments: p.environment_order.clone(),
                commands: p.command_order.clone(),
                commit: co.commit.clone(),
            }
        }
        Err(e) if e.kind() == ErrorKind::Invalid || e.kind() == ErrorKind::NotFound => {
            let problems = problems_of(&e);
            let kind = matches!(e, racer_build::Error::InvalidProject(_))
                .then(|| "conda-project".to_owned());
            ValidateReport {
                kind,
                valid: false,
                problems: if problems.is_empty() {
                    vec![Problem {
                        field: "source".into(),
                        message: chain(&e),
                    }]
                } else {
                    problems
                },
                project_name: None,
                environments: vec![],
                commands: vec![],
                commit: co.commit.clone(),
            }
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Json(report))
}

async fn forget_upload(ctx: &Ctx, source: &Source) {
    if let Source::Path { upload, .. } = source {
        let _ = tokio::fs::remove_file(upload_path(ctx, upload)).await;
    }
}

/// The Dockerfile a deploy of this source would build.
#[utoipa::path(post, path = "/api/v1/dockerfile", request_body = InspectRequest,
    responses((status = 200, body = DockerfileReport), (status = 422, body = racer_core::api::ErrorBody)))]
pub(crate) async fn dockerfile(
    State(state): State<AppState>,
    Json(req): Json<InspectRequest>,
) -> Result<Json<DockerfileReport>, ApiError> {
    let ctx = control(&state)?;
    let co = checkout(ctx, &req.source).await?;
    forget_upload(ctx, &req.source).await;
    let src = co.src.clone();
    let base = req
        .config
        .base_image
        .clone()
        .unwrap_or_else(|| ctx.settings.conda_base_image.clone());
    let config = req.config.clone();
    let report = tokio::task::spawn_blocking(move || -> Result<DockerfileReport, ApiError> {
        match racer_build::detect(&src)? {
            Detected::Dockerfile => {
                let text = std::fs::read_to_string(src.join("Dockerfile")).map_err(|e| {
                    ApiError::new(
                        ErrorKind::Invalid,
                        format!("cannot read the Dockerfile: {e}"),
                    )
                })?;
                Ok(DockerfileReport {
                    kind: "dockerfile".into(),
                    dockerfile: text,
                })
            }
            Detected::CondaProject(p) => Ok(DockerfileReport {
                kind: "conda-project".into(),
                dockerfile: generate_dockerfile(&p, &config, &base)?,
            }),
        }
    })
    .await
    .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))??;
    Ok(Json(report))
}

fn check_config(config: &RunConfig) -> Result<(), ApiError> {
    for k in config.env.keys() {
        let ok = !k.is_empty()
            && !k.starts_with(|c: char| c.is_ascii_digit())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(ApiError::new(
                ErrorKind::Invalid,
                format!("invalid environment variable name {k:?}: use letters, digits and '_'"),
            )
            .field(format!("config.env.{k}")));
        }
    }
    if config.app_port == Some(0) {
        return Err(
            ApiError::new(ErrorKind::Invalid, "app port must be 1-65535").field("config.app_port"),
        );
    }
    if let Some(c) = config.cpus {
        if !(c > 0.0 && c <= 256.0) {
            return Err(ApiError::new(ErrorKind::Invalid, "cpus must be > 0").field("config.cpus"));
        }
    }
    if let Some(m) = config.memory_mb {
        if m < 6 {
            return Err(
                ApiError::new(ErrorKind::Invalid, "memory must be at least 6 MiB")
                    .field("config.memory_mb"),
            );
        }
    }
    if config.concurrency.is_some_and(|c| c > MAX_CONCURRENCY) {
        return Err(ApiError::new(
            ErrorKind::Invalid,
            format!("concurrency must be 0-{MAX_CONCURRENCY} (0: no limit)"),
        )
        .field("config.concurrency"));
    }
    if let Some(c) = &config.command {
        racer_build::conda::split_command(c).map_err(|reason| {
            ApiError::new(
                ErrorKind::Invalid,
                format!("cannot parse the command: {reason}"),
            )
            .field("config.command")
        })?;
    }
    Ok(())
}

/// Checks everything about a deployment that can be checked now, so bad input is refused with
/// nothing recorded: the app name, the config, the source (detected and validated), the image.
async fn preflight(ctx: &Ctx, source: &Source, config: &RunConfig) -> Result<(), ApiError> {
    check_config(config)?;
    match source {
        Source::Image { image } => {
            if image.trim().is_empty() {
                return Err(ApiError::new(ErrorKind::Invalid, "image must not be empty")
                    .field("source.image"));
            }
            if ctx.runtime.image(image).await?.is_none() {
                ctx.runtime
                    .pull(image)
                    .await
                    .map_err(|e| ApiError::from(e).field("source.image"))?;
            }
            Ok(())
        }
        _ => {
            let co = checkout(ctx, source).await?;
            let src = co.src.clone();
            let env = config.env.clone();
            let command = config.command.clone();
            tokio::task::spawn_blocking(move || -> Result<(), ApiError> {
                match racer_build::detect(&src)? {
                    Detected::Dockerfile => Ok(()),
                    Detected::CondaProject(p) => {
                        let missing = p.missing_variables(command.as_deref(), &env);
                        if missing.is_empty() {
                            Ok(())
                        } else {
                            Err(ApiError::from(racer_build::Error::InvalidProject(missing)))
                        }
                    }
                }
            })
            .await
            .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?
        }
    }
}

/// Deploys: records a deployment (and the app, if new) and wakes the builder.
#[utoipa::path(post, path = "/api/v1/deployments", request_body = DeployRequest,
    responses((status = 202, body = Deployed), (status = 422, body = racer_core::api::ErrorBody)))]
pub(crate) async fn deploy(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    Json(req): Json<DeployRequest>,
) -> Result<(StatusCode, Json<Deployed>), ApiError> {
    let ctx = control(&state)?;
    let name = AppName::parse(&req.app).map_err(|e| {
        ApiError::new(
            ErrorKind::Invalid,
            format!("invalid app name {:?}: {e}", req.app),
        )
        .field("app")
    })?;
    if req.instances == Some(0) || req.instances.is_some_and(|i| i > 100) {
        return Err(ApiError::new(ErrorKind::Invalid, "instances must be 1-100").field("instances"));
    }
    if let Err(e) = preflight(ctx, &req.source, &req.config).await {
        forget_upload(ctx, &req.source).await;
        return Err(e);
    }
    let (app, deployment) = state
        .0
        .store
        .deployments()
        .create(
            &NewDeployment {
                name: &name,
                source: &req.source,
                config: &req.config,
                instances: req.instances,
                image_from_release: None,
                org: who.home_org(),
            },
            &actor.0,
        )
        .await?;
    ctx.build_wake.notify_one();
    Ok((StatusCode::ACCEPTED, Json(Deployed { app, deployment })))
}

/// One deployment.
#[utoipa::path(get, path = "/api/v1/deployments/{id}", params(("id" = Uuid, Path)),
    responses((status = 200, body = Deployment), (status = 404, body = racer_core::api::ErrorBody)))]
pub(crate) async fn get_deployment(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Deployment>, ApiError> {
    Ok(Json(find_deployment(&state, &who, &id).await?))
}

/// A deployment `who` may see (another organisation's is "not found").
async fn find_deployment(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> Result<Deployment, ApiError> {
    let uuid = parse_id(id)?;
    let d = state.0.store.deployments().get(uuid).await?;
    if who.org().is_some() {
        match state.0.store.apps().get(&AppRef::Id(d.app_id)).await {
            Ok(app) if who.sees(&app.org) => {}
            Ok(_) | Err(racer_store::Error::NotFound { .. }) => {
                return Err(ApiError::new(
                    ErrorKind::NotFound,
                    format!("deployment {id:?} not found"),
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(d)
}

fn parse_id(s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(s)
        .map_err(|_| ApiError::new(ErrorKind::NotFound, format!("deployment {s:?} not found")))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogParams {
    /// Keep the response open and send new output as it comes.
    #[serde(default)]
    follow: bool,
    /// Lines from the end to start with (container logs), or `all`.
    tail: Option<String>,
}

/// A deployment's build log as plain text; with `follow`, streamed until the build ends.
#[utoipa::path(get, path = "/api/v1/deployments/{id}/log", params(("id" = Uuid, Path), LogParams),
    responses((status = 200, body = String, content_type = "text/plain")))]
pub(crate) async fn deployment_log(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(p): Query<LogParams>,
) -> Result<Response, ApiError> {
    let id = find_deployment(&state, &who, &id).await?.id;
    let store = state.0.store.clone();
    if !p.follow {
        let text = store.deployments().log(id, 0).await?;
        return Ok(text_response(Body::from(text)));
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
                    racer_core::api::DeploymentStatus::Pending
                        | racer_core::api::DeploymentStatus::Building
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
    Ok(text_response(Body::from_stream(stream)))
}

pub(crate) fn text_response(body: Body) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// Finds an app by name or UUID among those `who` may see: another organisation's app is "not
/// found", exactly like one that does not exist, so names never leak across organisations.
pub(crate) async fn find_app(
    state: &AppState,
    who: &Principal,
    app: &str,
) -> Result<App, ApiError> {
    let r = AppRef::parse(app);
    match state.0.store.apps().get(&r).await {
        Ok(found) if who.sees(&found.org) => Ok(found),
        Ok(_) => Err(racer_store::Error::NotFound {
            what: "app",
            key: r.to_string(),
        }
        .into()),
        Err(e) => Err(e.into()),
    }
}

/// Live information on one container.
pub(crate) async fn container_info(
    ctx: &Ctx,
    c: &Observed,
    app_port: Option<u16>,
) -> ContainerInfo {
    let inspected = ctx.runtime.inspect(&c.id).await.ok();
    // The reconciler's view (thresholds applied), not a probe of our own.
    let known = ctx
        .health
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&c.id)
        .map(|(s, _)| *s);
    let draining = ctx
        .draining
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains_key(&c.id);
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
    }
}

/// App ports of releases, looked up once per request.
struct Ports<'a> {
    state: &'a AppState,
    cache: HashMap<(Uuid, i64), Option<u16>>,
}

impl Ports<'_> {
    async fn of(&mut self, c: &Observed) -> Option<u16> {
        let (app, rel) = (c.app_id?, c.release?);
        if let Some(p) = self.cache.get(&(app, rel)) {
            return *p;
        }
        let p = self
            .state
            .0
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

/// Everything about one app: its release, newest deployment, and every replica.
#[utoipa::path(get, path = "/api/v1/apps/{app}/status", params(("app" = String, Path)),
    responses((status = 200, body = AppStatus), (status = 404, body = racer_core::api::ErrorBody)))]
pub(crate) async fn app_status(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(app): Path<String>,
) -> Result<Json<AppStatus>, ApiError> {
    let ctx = control(&state)?;
    let app = find_app(&state, &who, &app).await?;
    let deployments = state.0.store.deployments();
    let release = match app.release {
        Some(n) => Some(deployments.release_of(app.id, n).await?),
        None => None,
    };
    let deployment = deployments.latest(app.id).await?;
    let mut ports = Ports {
        state: &state,
        cache: HashMap::new(),
    };
    let mut containers = Vec::new();
    let mut observed = ctx.runtime.list(Some(app.id)).await?;
    observed.sort_by_key(|c| (c.release, c.replica));
    for c in &observed {
        let port = ports.of(c).await;
        containers.push(container_info(ctx, c, port).await);
    }
    let urls = state.0.proxy.urls(&app.name);
    Ok(Json(AppStatus {
        app,
        release,
        deployment,
        containers,
        urls,
    }))
}

/// Releases of an app, newest first.
#[utoipa::path(get, path = "/api/v1/apps/{app}/releases", params(("app" = String, Path)),
    responses((status = 200, body = Vec<Release>)))]
pub(crate) async fn releases(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(app): Path<String>,
) -> Result<Json<Vec<Release>>, ApiError> {
    let app = find_app(&state, &who, &app).await?;
    Ok(Json(state.0.store.deployments().releases(app.id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageParams {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Deployments of an app, newest first.
#[utoipa::path(get, path = "/api/v1/apps/{app}/deployments", params(("app" = String, Path), PageParams),
    responses((status = 200, body = Page<Deployment>)))]
pub(crate) async fn app_deployments(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(app): Path<String>,
    Query(p): Query<PageParams>,
) -> Result<Json<Page<Deployment>>, ApiError> {
    let app = find_app(&state, &who, &app).await?;
    Ok(Json(
        state
            .0
            .store
            .deployments()
            .list(
                app.id,
                racer_store::page_limit(p.limit),
                p.cursor.as_deref(),
            )
            .await?,
    ))
}

/// A new release from the recorded source (rebuilt), or from the current image (`no_rebuild`).
#[utoipa::path(post, path = "/api/v1/apps/{app}/rerun", params(("app" = String, Path)), request_body = RerunRequest,
    responses((status = 202, body = Deployed), (status = 422, body = racer_core::api::ErrorBody)))]
pub(crate) async fn rerun(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    Path(app): Path<String>,
    Json(req): Json<RerunRequest>,
) -> Result<(StatusCode, Json<Deployed>), ApiError> {
    let ctx = control(&state)?;
    let app = find_app(&state, &who, &app).await?;
    let deployments = state.0.store.deployments();
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
        return Err(ApiError::new(
            ErrorKind::Invalid,
            format!("app {} was never deployed; use racer run", app.name),
        ));
    };
    let name =
        AppName::parse(&app.name).map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
    let (source, from) = if req.no_rebuild {
        let Some(r) = &current else {
            return Err(ApiError::new(
                ErrorKind::Invalid,
                format!(
                    "app {} has no release to reuse; rerun without --no-rebuild",
                    app.name
                ),
            )
            .field("no_rebuild"));
        };
        check_config(&config)?;
        (r.source.clone(), Some(r.number))
    } else {
        let source = match (req.source.clone(), recorded) {
            (Some(s), _) => s,
            (None, Source::Path { path, .. }) => {
                return Err(ApiError::new(
                    ErrorKind::Invalid,
                    format!("app {} was deployed from the folder {path}; send it again (racer rerun does)", app.name),
                )
                .field("source"));
            }
            (None, other) => other,
        };
        // A rebuild may pick a new app port from the image: do not pin the old one.
        if let Err(e) = preflight(ctx, &source, &config).await {
            forget_upload(ctx, &source).await;
            return Err(e);
        }
        (source, None)
    };
    let (app, deployment) = deployments
        .create(
            &NewDeployment {
                name: &name,
                source: &source,
                config: &config,
                instances: None,
                image_from_release: from,
                org: &app.org,
            },
            &actor.0,
        )
        .await?;
    ctx.build_wake.notify_one();
    Ok((StatusCode::ACCEPTED, Json(Deployed { app, deployment })))
}

/// Rolls back: a new release from an earlier release's image and config, no rebuild, rolled out
/// like any other (the current release serves until the old one answers).
#[utoipa::path(post, path = "/api/v1/apps/{app}/rollback", params(("app" = String, Path)), request_body = RollbackRequest,
    responses((status = 202, body = Deployed), (status = 422, body = racer_core::api::ErrorBody)))]
pub(crate) async fn rollback(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    Path(app): Path<String>,
    Json(req): Json<RollbackRequest>,
) -> Result<(StatusCode, Json<Deployed>), ApiError> {
    let ctx = control(&state)?;
    let app = find_app(&state, &who, &app).await?;
    let deployments = state.0.store.deployments();
    let Some(current) = app.release else {
        return Err(ApiError::new(
            ErrorKind::Invalid,
            format!("app {} has no release yet", app.name),
        ));
    };
    let releases = deployments.releases(app.id).await?;
    let target = match req.to {
        Some(n) => releases.iter().find(|r| r.number == n).ok_or_else(|| {
            ApiError::new(
                ErrorKind::Invalid,
                format!("app {} has no release {n}", app.name),
            )
            .field("to")
        })?,
        None => releases
            .iter()
            .find(|r| r.number < current)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::Invalid,
                    format!("app {} has no release before {current}", app.name),
                )
            })?,
    };
    if target.number == current {
        return Err(ApiError::new(
            ErrorKind::Invalid,
            format!("release {current} is already the current release"),
        )
        .field("to"));
    }
    let name =
        AppName::parse(&app.name).map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
    let (app, deployment) = deployments
        .create(
            &NewDeployment {
                name: &name,
                source: &target.source,
                config: &target.config,
                instances: None,
                image_from_release: Some(target.number),
                org: &app.org,
            },
            &actor.0,
        )
        .await?;
    ctx.build_wake.notify_one();
    Ok((StatusCode::ACCEPTED, Json(Deployed { app, deployment })))
}

/// Creates or updates an app from a spec document (YAML or JSON), idempotently: the same
/// document changes nothing; a change to anything but scaling makes a new release; a change to
/// scaling only changes the replica count.
#[utoipa::path(post, path = "/api/v1/apps/register", request_body(content = String, content_type = "application/yaml"),
    responses((status = 200, body = ApplyResult), (status = 422, body = racer_core::api::ErrorBody)))]
pub(crate) async fn register(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    body: String,
) -> Result<Json<ApplyResult>, ApiError> {
    apply(&state, &who, &actor, &body, None).await.map(Json)
}

/// Replaces an app's spec (same document as `register`; `metadata.name` must match).
#[utoipa::path(put, path = "/api/v1/apps/{app}/spec", params(("app" = String, Path)), request_body(content = String, content_type = "application/yaml"),
    responses((status = 200, body = ApplyResult), (status = 422, body = racer_core::api::ErrorBody)))]
pub(crate) async fn put_spec(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    Path(app): Path<String>,
    body: String,
) -> Result<Json<ApplyResult>, ApiError> {
    apply(&state, &who, &actor, &body, Some(&app))
        .await
        .map(Json)
}

async fn apply(
    state: &AppState,
    who: &Principal,
    actor: &Actor,
    body: &str,
    expect: Option<&str>,
) -> Result<ApplyResult, ApiError> {
    let ctx = control(state)?;
    let doc = racer_build::spec::parse(body).map_err(|e| {
        let field = e.problems().first().map(|p| p.field.clone());
        let err = ApiError::from(e);
        match field {
            Some(f) if !f.is_empty() => err.field(f),
            _ => err,
        }
    })?;
    let name = AppName::parse(&doc.metadata.name)
        .map_err(|e| ApiError::new(ErrorKind::Invalid, e.to_string()).field("metadata.name"))?;
    let store = &state.0.store;
    let existing = match store.apps().get(&AppRef::Name(name.to_string())).await {
        Ok(a) if who.sees(&a.org) => Some(a),
        // Another organisation's app: a path naming it is "not found", a new spec naming it
        // takes a name that is taken.
        Ok(_) if expect.is_some() => {
            return Err(racer_store::Error::NotFound {
                what: "app",
                key: expect.unwrap_or_default().to_owned(),
            }
            .into())
        }
        Ok(_) => {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                format!("app {name:?} already exists; pick another name"),
            )
            .field("metadata.name"))
        }
        Err(racer_store::Error::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(expected) = expect {
        let matches = existing
            .as_ref()
            .is_some_and(|a| a.name == expected || a.id.to_string() == expected)
            || (existing.is_none() && expected == name.as_str());
        if !matches {
            return Err(ApiError::new(
                ErrorKind::Invalid,
                format!(
                    "metadata.name {:?} does not name app {expected:?}",
                    doc.metadata.name
                ),
            )
            .field("metadata.name"));
        }
    }
    let previous = match &existing {
        Some(a) => store.apps().spec(a.id).await?,
        None => None,
    };
    let identity = doc.identity();
    let diff = racer_core::spec::diff(
        previous.as_ref().unwrap_or(&serde_json::json!({})),
        &identity,
    );
    // An upload the CLI sent for a spec that needs no build is not kept.
    let sent_upload = doc
        .spec
        .build
        .as_ref()
        .and_then(|b| b.upload.clone())
        .map(|upload| Source::Path {
            path: String::new(),
            upload,
        });
    if previous.as_ref() == Some(&identity) {
        if let Some(s) = &sent_upload {
            forget_upload(ctx, s).await;
        }
        let app = existing.ok_or_else(|| ApiError::new(ErrorKind::Internal, "app vanished"))?;
        return Ok(ApplyResult {
            app,
            changed: false,
            diff: vec![],
            deployment: None,
        });
    }
    let previous_doc: Option<racer_core::spec::AppDocument> = previous
        .as_ref()
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let needs_release = match (&previous_doc, &existing) {
        (Some(p), Some(a)) => p.needs_release(&doc) || a.release.is_none(),
        _ => true,
    };
    let config = doc.run_config();
    let instances = doc.instances();
    let mut deployment = None;
    if needs_release {
        let source =
            match doc.source() {
                Some(racer_core::spec::SpecSource::Image(i)) => Source::Image { image: i },
                Some(racer_core::spec::SpecSource::Git(url, reference)) => {
                    Source::Git { url, reference }
                }
                Some(racer_core::spec::SpecSource::Path(path, Some(upload))) => {
                    Source::Path { path, upload }
                }
                Some(racer_core::spec::SpecSource::Path(_, None)) => return Err(ApiError::new(
                    ErrorKind::Invalid,
                    "spec.build.path names a folder on your machine: `racer apply -f` uploads it",
                )
                .field("spec.build.upload")),
                None => {
                    return Err(
                        ApiError::new(ErrorKind::Invalid, "give spec.image or spec.build")
                            .field("spec"),
                    )
                }
            };
        if let Err(e) = preflight(ctx, &source, &config).await {
            forget_upload(ctx, &source).await;
            return Err(e);
        }
        let (_, d) = store
            .deployments()
            .create(
                &NewDeployment {
                    name: &name,
                    source: &source,
                    config: &config,
                    instances: Some(instances),
                    image_from_release: None,
                    org: who.home_org(),
                },
                &actor.0,
            )
            .await?;
        ctx.build_wake.notify_one();
        deployment = Some(d);
    } else if let Some(s) = &sent_upload {
        forget_upload(ctx, s).await;
    }
    let app = store.apps().get(&AppRef::Name(name.to_string())).await?;
    let app = store
        .apps()
        .set_spec(&app, &identity, instances, &diff, &actor.0)
        .await?;
    ctx.reconcile_wake.notify_one();
    Ok(ApplyResult {
        app,
        changed: true,
        diff,
        deployment,
    })
}

/// An app's traffic, replicas and scaling history.
#[utoipa::path(get, path = "/api/v1/apps/{app}/metrics", params(("app" = String, Path)), responses((status = 200, body = racer_core::api::AppMetrics)))]
pub(crate) async fn app_metrics(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(app): Path<String>,
) -> Result<Json<racer_core::api::AppMetrics>, ApiError> {
    let app = find_app(&state, &who, &app).await?;
    let snap = state
        .0
        .traffic
        .get()
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
        let page = state
            .0
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
            racer_proxy::p95_ms(&[0; 13], &t.latency),
            t.replicas
                .iter()
                .map(
                    |(addr, n, active, ejected)| racer_core::api::ReplicaTraffic {
                        addr: addr.to_string(),
                        requests: *n,
                        active: *active as u64,
                        ejected: *ejected,
                    },
                )
                .collect::<Vec<_>>(),
        ),
        None => (Default::default(), 0, None, Vec::new()),
    };
    Ok(Json(racer_core::api::AppMetrics {
        app: app.name.clone(),
        replicas_desired: app.instances,
        replicas_ready: replicas.len() as u32,
        requests,
        active_requests: active,
        p95_ms: p95,
        replicas,
        scaling_history: history,
    }))
}

/// Replaces an app's scaling policy (`spec.scaling.policy`), applied like the whole spec.
#[utoipa::path(put, path = "/api/v1/apps/{app}/policy", params(("app" = String, Path)), request_body(content = String, content_type = "application/yaml"),
    responses((status = 200, body = ApplyResult), (status = 422, body = racer_core::api::ErrorBody)))]
pub(crate) async fn put_policy(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    Path(app): Path<String>,
    body: String,
) -> Result<Json<ApplyResult>, ApiError> {
    let found = find_app(&state, &who, &app).await?;
    let Some(spec) = state.0.store.apps().spec(found.id).await? else {
        return Err(ApiError::new(
            ErrorKind::Invalid,
            format!(
                "app {} has no spec; create it with racer apply -f first",
                found.name
            ),
        ));
    };
    let policy = racer_build::spec::parse_policy(&body).map_err(|e| {
        let field = e.problems().first().map(|p| format!("policy.{}", p.field));
        let err = ApiError::from(e);
        match field {
            Some(f) => err.field(f),
            None => err,
        }
    })?;
    let mut doc: racer_core::spec::AppDocument = serde_json::from_value(spec)
        .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
    let scaling = doc.spec.scaling.get_or_insert(racer_core::spec::Scaling {
        min_replicas: found.instances.max(1),
        max_replicas: found.instances.max(1),
        policy: None,
    });
    if let Some(min) = policy.min_replicas {
        scaling.min_replicas = min;
    }
    if let Some(max) = policy.max_replicas {
        scaling.max_replicas = max;
    }
    scaling.policy = Some(policy.policy);
    let text = serde_json::to_string(&doc)
        .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
    apply(&state, &who, &actor, &text, Some(&found.name))
        .await
        .map(Json)
}

/// `racer up`: runs the app again with the instances it had.
#[utoipa::path(post, path = "/api/v1/apps/{app}/up", params(("app" = String, Path)), responses((status = 200, body = App)))]
pub(crate) async fn up(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    Path(app): Path<String>,
) -> Result<Json<App>, ApiError> {
    set_running(&state, &who, &actor, &app, true).await
}

/// `racer down`: stops every replica, keeping the spec and releases.
#[utoipa::path(post, path = "/api/v1/apps/{app}/down", params(("app" = String, Path)), responses((status = 200, body = App)))]
pub(crate) async fn down(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    Path(app): Path<String>,
) -> Result<Json<App>, ApiError> {
    set_running(&state, &who, &actor, &app, false).await
}

async fn set_running(
    state: &AppState,
    who: &Principal,
    actor: &Actor,
    app: &str,
    up: bool,
) -> Result<Json<App>, ApiError> {
    let found = find_app(state, who, app).await?;
    let app = state
        .0
        .store
        .apps()
        .set_running(&AppRef::Id(found.id), up, &actor.0)
        .await?;
    wake_reconcile(state);
    Ok(Json(app))
}

/// Sets the desired number of replicas.
#[utoipa::path(post, path = "/api/v1/apps/{app}/scale", params(("app" = String, Path)), request_body = ScaleRequest,
    responses((status = 200, body = App), (status = 422, body = racer_core::api::ErrorBody)))]
pub(crate) async fn scale(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    Path(app): Path<String>,
    Json(req): Json<ScaleRequest>,
) -> Result<Json<App>, ApiError> {
    let found = find_app(&state, &who, &app).await?;
    if req.instances > 100 {
        return Err(ApiError::new(ErrorKind::Invalid, "instances must be 0-100").field("instances"));
    }
    let app = state
        .0
        .store
        .apps()
        .set_instances(&AppRef::Id(found.id), req.instances, &actor.0)
        .await?;
    if let Some(ctx) = &state.0.control {
        ctx.reconcile_wake.notify_one();
    }
    Ok(Json(app))
}

/// An app's container logs as plain text, each line prefixed with its container when there are
/// several; with `follow`, streamed.
#[utoipa::path(get, path = "/api/v1/apps/{app}/logs", params(("app" = String, Path), LogParams),
    responses((status = 200, body = String, content_type = "text/plain")))]
pub(crate) async fn app_logs(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(app): Path<String>,
    Query(p): Query<LogParams>,
) -> Result<Response, ApiError> {
    let ctx = control(&state)?;
    let app = find_app(&state, &who, &app).await?;
    let mut containers = ctx.runtime.list(Some(app.id)).await?;
    containers.retain(|c| c.release == app.release || app.release.is_none());
    containers.sort_by_key(|c| c.replica);
    let tail = p.tail.unwrap_or_else(|| "100".into());
    let prefix = containers.len() > 1;
    let streams = containers.iter().map(|c| {
        let name = c.name.clone();
        ctx.runtime
            .logs(&c.id, &tail, p.follow)
            .map(move |r| match r {
                Ok(line) if prefix => Ok::<_, std::io::Error>(format!("{name} | {line}")),
                Ok(line) => Ok(line),
                Err(e) => Ok(format!("[{name}: {e}]\n")),
            })
    });
    let merged = futures_util::stream::select_all(streams.collect::<Vec<_>>());
    Ok(text_response(Body::from_stream(merged)))
}

/// Deletes an app's record; the reconciler then removes its containers and images.
pub(crate) fn wake_reconcile(state: &AppState) {
    if let Some(ctx) = &state.0.control {
        ctx.reconcile_wake.notify_one();
    }
}

// ---- operator endpoints: containers ----

/// The containers `who` may see: those of their organisation's apps (every container for the
/// install's admin token).
async fn visible_containers(state: &AppState, who: &Principal) -> Result<Vec<Observed>, ApiError> {
    let ctx = control(state)?;
    let mut all = ctx.runtime.list(None).await?;
    if let Some(org) = who.org() {
        let mine: std::collections::HashSet<Uuid> = state
            .0
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

async fn find_container(state: &AppState, who: &Principal, id: &str) -> Result<Observed, ApiError> {
    let all = visible_containers(state, who).await?;
    let mut matches: Vec<_> = all
        .into_iter()
        .filter(|c| c.id.starts_with(id) || c.name == id)
        .collect();
    if matches.len() > 1 {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            format!(
                "{id:?} matches {} containers; give more of the id",
                matches.len()
            ),
        ));
    }
    matches
        .pop()
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, format!("no racer container {id:?}")))
}

/// Every container racer manages.
#[utoipa::path(get, path = "/api/v1/containers", params(PageParams), responses((status = 200, body = Page<ContainerInfo>)))]
pub(crate) async fn list_containers(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(p): Query<PageParams>,
) -> Result<Json<Page<ContainerInfo>>, ApiError> {
    let ctx = control(&state)?;
    let mut all = visible_containers(&state, &who).await?;
    all.sort_by(|a, b| a.name.cmp(&b.name));
    let limit = racer_store::page_limit(p.limit) as usize;
    let start = match p.cursor.as_deref() {
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
    let mut ports = Ports {
        state: &state,
        cache: HashMap::new(),
    };
    let mut items = Vec::new();
    for c in page {
        let port = ports.of(c).await;
        items.push(container_info(ctx, c, port).await);
    }
    Ok(Json(Page { items, next_cursor }))
}

/// One container by id (or unique id prefix, or name).
#[utoipa::path(get, path = "/api/v1/containers/{id}", params(("id" = String, Path)),
    responses((status = 200, body = ContainerInfo), (status = 404, body = racer_core::api::ErrorBody)))]
pub(crate) async fn get_container(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<ContainerInfo>, ApiError> {
    let ctx = control(&state)?;
    let c = find_container(&state, &who, &id).await?;
    let mut ports = Ports {
        state: &state,
        cache: HashMap::new(),
    };
    let port = ports.of(&c).await;
    Ok(Json(container_info(ctx, &c, port).await))
}

/// One container's log.
#[utoipa::path(get, path = "/api/v1/containers/{id}/logs", params(("id" = String, Path), LogParams),
    responses((status = 200, body = String, content_type = "text/plain")))]
pub(crate) async fn container_logs(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(p): Query<LogParams>,
) -> Result<Response, ApiError> {
    let ctx = control(&state)?;
    let c = find_container(&state, &who, &id).await?;
    let tail = p.tail.unwrap_or_else(|| "100".into());
    let s = ctx
        .runtime
        .logs(&c.id, &tail, p.follow)
        .map(|r| Ok::<_, std::io::Error>(r.unwrap_or_else(|e| format!("[{e}]\n"))));
    Ok(text_response(Body::from_stream(s)))
}

/// Stops a container. The reconciler starts it again if its app still wants it: to stop an app,
/// scale it to 0.
#[utoipa::path(post, path = "/api/v1/containers/{id}/stop", params(("id" = String, Path)),
    responses((status = 200, body = ContainerAction)))]
pub(crate) async fn stop_container(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<ContainerAction>, ApiError> {
    let ctx = control(&state)?;
    let c = find_container(&state, &who, &id).await?;
    ctx.runtime
        .stop(&c.id, ctx.settings.stop_grace_secs)
        .await?;
    record(&state, &actor, "container.stopped", &c).await;
    Ok(Json(ContainerAction {
        containers: vec![c.id],
        message: format!(
            "stopped {}; racer starts it again while its app wants it",
            c.name
        ),
    }))
}

/// Removes a container (the reconciler replaces it if its app still wants it).
#[utoipa::path(delete, path = "/api/v1/containers/{id}", params(("id" = String, Path)),
    responses((status = 200, body = ContainerAction)))]
pub(crate) async fn remove_container(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<ContainerAction>, ApiError> {
    let ctx = control(&state)?;
    let c = find_container(&state, &who, &id).await?;
    ctx.runtime.remove(&c.id).await?;
    record(&state, &actor, "container.removed", &c).await;
    ctx.reconcile_wake.notify_one();
    Ok(Json(ContainerAction {
        containers: vec![c.id],
        message: format!("removed {}", c.name),
    }))
}

/// Removes every racer container that is not running.
#[utoipa::path(post, path = "/api/v1/containers/cleanup", responses((status = 200, body = ContainerAction)))]
pub(crate) async fn cleanup(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<ContainerAction>, ApiError> {
    let ctx = control(&state)?;
    let mut removed = Vec::new();
    for c in ctx.runtime.list(None).await? {
        if !c.running() && c.state != "restarting" {
            ctx.runtime.remove(&c.id).await?;
            record(&state, &actor, "container.removed", &c).await;
            removed.push(c.id);
        }
    }
    ctx.reconcile_wake.notify_one();
    let message = format!("removed {} stopped container(s)", removed.len());
    Ok(Json(ContainerAction {
        containers: removed,
        message,
    }))
}

async fn record(state: &AppState, actor: &Actor, kind: &str, c: &Observed) {
    let e = racer_store::NewEvent {
        actor: actor.0.clone(),
        kind: kind.to_owned(),
        app_id: c.app_id,
        app_name: c.app_name.clone(),
        message: format!("{kind} {}", c.name),
        org: None,
    };
    if let Err(err) = state.0.store.events().append(&e).await {
        tracing::error!(error = %err, "cannot record event");
    }
}
