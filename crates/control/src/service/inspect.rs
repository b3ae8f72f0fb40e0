//! Looking at a source before it is deployed: uploads, validate, the generated Dockerfile, and
//! the preflight every deploy runs so bad input is refused with nothing recorded.

use std::path::PathBuf;

use futures_util::{Stream, StreamExt};
use racer_build::Detected;
use racer_core::api::{
    DockerfileReport, InspectRequest, RunConfig, Source, Upload, ValidateReport,
};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use racer_core::ErrorKind;

use super::{Caller, Services};
use crate::builder::{forget_upload, generate_dockerfile, owner_path, upload_path};
use crate::{Ctx, Error};

/// The largest build context accepted.
pub const MAX_UPLOAD: u64 = 2 * 1024 * 1024 * 1024;

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

fn io_error(path: &std::path::Path, source: std::io::Error) -> Error {
    tracing::error!(path = %path.display(), error = %source, "data directory i/o failed");
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Services {
    /// Receives a build-context tarball, streamed to disk, never held in memory; nothing is kept
    /// when the stream fails or passes [`MAX_UPLOAD`].
    pub async fn upload<S, B, E>(&self, who: &Caller, mut body: S) -> Result<Upload, Error>
    where
        S: Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let ctx = self.engine()?;
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
        let mut bytes: u64 = 0;
        let result: Result<(), Error> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| Error::Interrupted {
                    reason: e.to_string(),
                })?;
                let chunk = chunk.as_ref();
                bytes += chunk.len() as u64;
                if bytes > MAX_UPLOAD {
                    return Err(Error::TooLarge { limit: MAX_UPLOAD });
                }
                file.write_all(chunk)
                    .await
                    .map_err(|e| io_error(&part, e))?;
            }
            file.flush().await.map_err(|e| io_error(&part, e))?;
            Ok(())
        }
        .await;
        // An empty body is no archive: refused now, not when a deploy unpacks it.
        let result = result.and_then(|()| match bytes {
            0 => Err(
                Error::invalid("the upload is empty: send the project as a tar archive").at("body"),
            ),
            _ => Ok(()),
        });
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
        // Bound to its organisation before it can be used: another organisation's id is a 404.
        let owner = owner_path(&path);
        if let Err(e) = tokio::fs::write(&owner, who.home_org()).await {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(io_error(&owner, e));
        }
        tokio::fs::rename(&part, &path)
            .await
            .map_err(|e| io_error(&path, e))?;
        Ok(Upload { id, bytes })
    }

    /// Validates a project: what racer would build, and every problem with its field path.
    pub async fn validate(
        &self,
        who: &Caller,
        req: &InspectRequest,
    ) -> Result<ValidateReport, Error> {
        let ctx = self.engine()?;
        owns_upload(ctx, who, &req.source).await?;
        let co = checkout(ctx, &req.source).await?;
        let src = co.src.clone();
        let env = req.config.env.clone();
        let command = req.config.command.clone();
        let verdict = tokio::task::spawn_blocking(move || {
            racer_build::validate_report(&src, command.as_deref(), &env)
        })
        .await?;
        forget_upload(ctx, &req.source).await;
        let mut report = verdict?;
        report.commit = co.commit.clone();
        Ok(report)
    }

    /// The Dockerfile a deploy of this source would build.
    pub async fn dockerfile(
        &self,
        who: &Caller,
        req: &InspectRequest,
    ) -> Result<DockerfileReport, Error> {
        let ctx = self.engine()?;
        owns_upload(ctx, who, &req.source).await?;
        let co = checkout(ctx, &req.source).await?;
        forget_upload(ctx, &req.source).await;
        let src = co.src.clone();
        let base = req
            .config
            .base_image
            .clone()
            .unwrap_or_else(|| ctx.settings.conda_base_image.clone());
        let config = req.config.clone();
        tokio::task::spawn_blocking(move || -> Result<DockerfileReport, Error> {
            match racer_build::detect(&src)? {
                Detected::Dockerfile => {
                    let text = std::fs::read_to_string(src.join("Dockerfile"))
                        .map_err(|e| Error::invalid(format!("cannot read the Dockerfile: {e}")))?;
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
        .await?
    }

    /// Checks everything about a deployment that can be checked now, so bad input is refused
    /// with nothing recorded: the config, the source (detected and validated), the image. An
    /// upload of a refused deployment is not kept.
    pub(crate) async fn preflight(
        &self,
        ctx: &Ctx,
        source: &Source,
        config: &RunConfig,
    ) -> Result<(), Error> {
        let checked = match self.check_placeable(ctx, config).await {
            Ok(()) => preflight(ctx, source, config).await,
            Err(e) => Err(e),
        };
        if checked.is_err() {
            forget_upload(ctx, source).await;
        }
        checked
    }
}

async fn preflight(ctx: &Ctx, source: &Source, config: &RunConfig) -> Result<(), Error> {
    config.check()?;
    match source {
        Source::Image { image } => {
            if image.trim().is_empty() {
                return Err(Error::invalid("image must not be empty").at("source.image"));
            }
            let present = ctx
                .runtime
                .image(image)
                .await
                .map_err(|e| Error::from(e).at("source.image"))?;
            if present.is_none() {
                ctx.runtime
                    .pull(image)
                    .await
                    .map_err(|e| Error::from(e).at("source.image"))?;
            }
            Ok(())
        }
        _ => {
            let co = checkout(ctx, source).await?;
            let src = co.src.clone();
            let env = config.env.clone();
            let command = config.command.clone();
            tokio::task::spawn_blocking(move || -> Result<(), Error> {
                match racer_build::detect(&src)? {
                    Detected::Dockerfile => Ok(()),
                    Detected::CondaProject(p) => {
                        let missing = p.missing_variables(command.as_deref(), &env);
                        if missing.is_empty() {
                            Ok(())
                        } else {
                            Err(racer_build::Error::InvalidProject(missing).into())
                        }
                    }
                }
            })
            .await?
        }
    }
}

/// Unpacks an upload or clones a repository into a scratch directory.
async fn checkout(ctx: &Ctx, source: &Source) -> Result<Checkout, Error> {
    let dir = ctx.builds_dir().join(format!("inspect-{}", Uuid::new_v4()));
    // Named as the user's folder: a conda-project may be named after it.
    let src = dir.join(source.folder_name());
    let mut co = Checkout {
        dir,
        src: src.clone(),
        commit: None,
    };
    match source {
        Source::Path { upload, .. } => {
            let tar = upload_path(ctx, upload);
            if !tar.exists() {
                return Err(Error::invalid(format!(
                    "no upload {upload:?}: send the folder first (POST /api/v1/uploads)"
                ))
                .at("source.upload"));
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
            .await??;
            Ok(co)
        }
        Source::Git { url, reference } => {
            let (u, r) = (url.clone(), reference.clone());
            let sha = tokio::task::spawn_blocking(move || {
                racer_build::git::checkout(&u, r.as_deref(), &src)
            })
            .await?
            .map_err(|e| Error::from(e).at("source.url"))?;
            co.commit = Some(sha);
            Ok(co)
        }
        Source::Image { .. } => Err(Error::invalid(
            "an image source has no project to inspect; use a path or git source",
        )
        .at("source")),
    }
}

/// Refuses (404, as if it did not exist) an upload of another organisation than the caller's;
/// the install's admin token may use any.
pub(crate) async fn owns_upload(ctx: &Ctx, who: &Caller, source: &Source) -> Result<(), Error> {
    let Source::Path { upload, .. } = source else {
        return Ok(());
    };
    let Some(mine) = who.org() else {
        return Ok(());
    };
    let owner = tokio::fs::read_to_string(owner_path(&upload_path(ctx, upload)))
        .await
        .unwrap_or_default();
    if owner != mine {
        return Err(Error::refused(
            ErrorKind::NotFound,
            format!("no upload {upload:?}: send the folder first (POST /api/v1/uploads)"),
        )
        .at("source.upload"));
    }
    Ok(())
}
