//! Specs: apply a spec document idempotently (returns the diff), replace a scaling policy.

use racer_core::api::{App, ApplyResult, Source};
use racer_core::spec::{AppDocument, Scaling, SpecSource};
use racer_core::{AppName, AppRef, ErrorKind};
use racer_store::NewDeployment;

use super::{Caller, Services};
use crate::builder::forget_upload;
use crate::Error;

/// A spec or policy parse error, blaming the first problem's field (under `prefix`).
fn parse_error(e: racer_build::Error, prefix: &str) -> Error {
    let field = e
        .problems()
        .first()
        .map(|p| p.field.clone())
        .filter(|f| !f.is_empty());
    let err = Error::Build(e);
    match field {
        Some(f) => err.at(format!("{prefix}{f}")),
        None => err,
    }
}

impl Services {
    /// Creates or updates an app from a spec document (YAML or JSON), idempotently: the same
    /// document changes nothing; a change to anything but scaling makes a new release; a change
    /// to scaling only changes the replica count. With `expect` (`PUT /apps/{app}/spec`), the
    /// document must name that app.
    pub async fn apply_spec(
        &self,
        who: &Caller,
        body: &str,
        expect: Option<&str>,
    ) -> Result<ApplyResult, Error> {
        let ctx = self.engine()?;
        let doc = racer_build::spec::parse(body).map_err(|e| parse_error(e, ""))?;
        let name = AppName::parse(&doc.metadata.name)
            .map_err(|e| Error::invalid(e.to_string()).at("metadata.name"))?;
        let store = &self.store;
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
                return Err(Error::refused(
                    ErrorKind::Conflict,
                    format!("app {name:?} already exists; pick another name"),
                )
                .at("metadata.name"))
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
                return Err(Error::invalid(format!(
                    "metadata.name {:?} does not name app {expected:?}",
                    doc.metadata.name
                ))
                .at("metadata.name"));
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
            let app =
                existing.ok_or_else(|| Error::refused(ErrorKind::Internal, "app vanished"))?;
            return Ok(ApplyResult {
                app,
                changed: false,
                diff: vec![],
                deployment: None,
                notes: doc.notes(),
            });
        }
        let previous_doc: Option<AppDocument> = previous
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
            let source = spec_source(&doc)?;
            self.preflight(ctx, &source, &config).await?;
            let deployed = self
                .record(
                    ctx,
                    &NewDeployment {
                        name: &name,
                        source: &source,
                        config: &config,
                        instances: Some(instances),
                        image_from_release: None,
                        org: who.home_org(),
                    },
                    &who.actor,
                )
                .await?;
            deployment = Some(deployed.deployment);
        } else if let Some(s) = &sent_upload {
            forget_upload(ctx, s).await;
        }
        let app = store.apps().get(&AppRef::Name(name.to_string())).await?;
        let app = store
            .apps()
            .set_spec(&app, &identity, instances, &diff, &who.actor)
            .await?;
        self.wake_app(app.id);
        Ok(ApplyResult {
            app,
            changed: true,
            diff,
            deployment,
            notes: doc.notes(),
        })
    }

    /// Replaces an app's scaling policy (`spec.scaling.policy`, with optional min/max replicas),
    /// applied like the whole spec.
    pub async fn set_policy(
        &self,
        who: &Caller,
        app: &str,
        body: &str,
    ) -> Result<ApplyResult, Error> {
        let found = self.find_app(who, app).await?;
        let Some(spec) = self.store.apps().spec(found.id).await? else {
            return Err(Error::invalid(format!(
                "app {} has no spec; create it with racer apply -f first",
                found.name
            )));
        };
        let policy =
            racer_build::spec::parse_policy(body).map_err(|e| parse_error(e, "policy."))?;
        let mut doc: AppDocument = serde_json::from_value(spec)
            .map_err(|e| Error::refused(ErrorKind::Internal, e.to_string()))?;
        set_scaling(&mut doc, &found, policy);
        let text = serde_json::to_string(&doc)
            .map_err(|e| Error::refused(ErrorKind::Internal, e.to_string()))?;
        self.apply_spec(who, &text, Some(&found.name)).await
    }
}

/// Puts a policy file's policy and bounds into a document, keeping the bounds it does not set.
fn set_scaling(doc: &mut AppDocument, app: &App, policy: racer_build::spec::PolicyFile) {
    let scaling = doc.spec.scaling.get_or_insert(Scaling {
        min_replicas: app.instances.max(1),
        max_replicas: app.instances.max(1),
        policy: None,
    });
    if let Some(min) = policy.min_replicas {
        scaling.min_replicas = min;
    }
    if let Some(max) = policy.max_replicas {
        scaling.max_replicas = max;
    }
    scaling.policy = Some(policy.policy);
}

/// Where a spec's release comes from.
fn spec_source(doc: &AppDocument) -> Result<Source, Error> {
    match doc.source() {
        Some(SpecSource::Image(i)) => Ok(Source::Image { image: i }),
        Some(SpecSource::Git(url, reference)) => Ok(Source::Git { url, reference }),
        Some(SpecSource::Path(path, Some(upload))) => Ok(Source::Path { path, upload }),
        Some(SpecSource::Path(_, None)) => Err(Error::invalid(
            "spec.build.path names a folder on your machine: `racer apply -f` uploads it",
        )
        .at("spec.build.upload")),
        None => Err(Error::invalid("give spec.image or spec.build").at("spec")),
    }
}
