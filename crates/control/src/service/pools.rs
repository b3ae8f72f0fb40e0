//! Warm pools and claims (issue 15): create, list, show, resize and delete a pool; claim a
//! container (warm from the pool, else cold), list, show and release claims.
//!
//! A pool is desired state: the maintainer ([`crate::pools`]) keeps `size` containers ready. A
//! claim is one store transaction (a ready member becomes claimed) plus a route in the proxy.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use racer_core::api::{ClaimInfo, ClaimRequest, NewPool, PoolInfo};
use racer_core::ErrorKind;
use racer_store::{ClaimRecord, NewClaim, NewEvent, PoolRecord};

use super::{Caller, Services};
use crate::Error;

/// How long a cold start may take to answer before the claim fails.
const COLD_START_DEADLINE: Duration = Duration::from_secs(60);
/// The largest pool.
const MAX_POOL_SIZE: u32 = 200;

fn at(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::refused(ErrorKind::Invalid, message).at(field)
}

fn seconds(field: &str, v: Option<&str>, default: Option<u64>) -> Result<Option<u64>, Error> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => match racer_core::auth::parse_lifetime(v) {
            Ok(s) if s > 0 => Ok(Some(s.unsigned_abs())),
            Ok(_) => Err(invalid(field, format!("{field} must be more than 0"))),
            Err(e) => Err(invalid(field, e)),
        },
    }
}

/// `name=port` pairs, in order; default `web=8080`.
fn parse_ports(ports: &[String]) -> Result<Vec<(String, u16)>, Error> {
    if ports.is_empty() {
        return Ok(vec![("web".into(), 8080)]);
    }
    let mut out: Vec<(String, u16)> = Vec::new();
    for p in ports {
        let Some((name, port)) = p.split_once('=') else {
            return Err(invalid(
                "ports",
                format!("{p:?} is not name=port, e.g. code=8080"),
            ));
        };
        if let Err(e) = racer_core::names::AppName::parse(name) {
            return Err(invalid("ports", format!("port name {name:?}: {e}")));
        }
        if matches!(name, "apps" | "api" | "ui") {
            return Err(invalid(
                "ports",
                format!("port name {name:?} is racer's own path; choose another"),
            ));
        }
        let Ok(port) = port.parse::<u16>() else {
            return Err(invalid("ports", format!("{p:?}: the port must be 1-65535")));
        };
        if port == 0 || out.iter().any(|(n, _)| n == name) {
            return Err(invalid(
                "ports",
                format!("{p:?}: a port of 1-65535, each name once"),
            ));
        }
        out.push((name.to_owned(), port));
    }
    Ok(out)
}

fn parse_env(field: &str, env: &[String]) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for kv in env {
        match kv.split_once('=') {
            Some((k, v))
                if !k.is_empty()
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !k.starts_with(|c: char| c.is_ascii_digit()) =>
            {
                out.insert(k.to_owned(), v.to_owned());
            }
            _ => {
                return Err(invalid(
                    field,
                    format!(
                        "{:?} is not KEY=value (letters, digits and _ in the key)",
                        kv.split('=').next().unwrap_or_default()
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// A fresh access token and its hex SHA-256.
fn new_token() -> (String, String) {
    // Two v4 UUIDs: 244 random bits from the system's generator.
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let digest = crate::pools::digest_hex(&token);
    (token, digest)
}

impl Services {
    fn pool_info(&self, p: &PoolRecord, members: &[racer_store::MemberRecord]) -> PoolInfo {
        let count = |state: &str| {
            members
                .iter()
                .filter(|m| m.pool_id == p.id && m.state == state)
                .count() as u32
        };
        PoolInfo {
            id: p.id.clone(),
            name: p.name.clone(),
            org: p.org.clone(),
            image: p.image.clone(),
            size: p.size,
            ports: p.ports.iter().cloned().collect(),
            cpus: p.cpu_milli as f64 / 1000.0,
            memory_mb: p.memory_mb,
            claim_ttl_seconds: p.claim_ttl_s,
            idle_timeout_seconds: p.idle_timeout_s,
            health_path: p.health_path.clone(),
            workspace_path: p.workspace_path.clone(),
            ready: count("ready"),
            starting: count("starting"),
            claimed: count("claimed"),
            held: self
                .engine
                .as_ref()
                .and_then(|ctx| ctx.pool_guard.get(&p.id)),
            created_at: at(p.created_at),
        }
    }

    fn claim_info(&self, c: &ClaimRecord, token: Option<String>) -> Result<ClaimInfo, Error> {
        let pool_ports: Vec<String> = c
            .env
            .get("\u{0}ports")
            .map(|p| p.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        let base = self.urls.url.trim_end_matches('/');
        Ok(ClaimInfo {
            id: c.id.clone(),
            pool: c.pool_name.clone(),
            state: c.state.clone(),
            warm: c.warm,
            claim_ms: c.claim_ms,
            urls: pool_ports
                .iter()
                .map(|p| (p.clone(), format!("{base}/{p}/{}/", c.id)))
                .collect(),
            token,
            container: c.container_id.clone(),
            actor: c.actor.clone(),
            org: c.org.clone(),
            error: c.error.clone(),
            created_at: at(c.created_at),
            expires_at: at(c.expires_at),
            ended_at: c.ended_at.map(at),
            workspace: c
                .workspace
                .as_ref()
                .map(|url| racer_core::api::WorkspaceInfo {
                    url: url.clone(),
                    restored_bytes: c.restored_bytes,
                    restore_ms: c.restore_ms,
                    synced_at: c.synced_at.map(at),
                    sync_error: c.sync_error.clone(),
                }),
        })
    }

    /// A pool the caller may see, by name or id.
    async fn visible_pool(&self, who: &Caller, pool: &str) -> Result<PoolRecord, Error> {
        let p = self.store().pools().get(pool).await?;
        if !who.sees(&p.org) {
            return Err(racer_store::Error::NotFound {
                what: "pool",
                key: pool.to_owned(),
            }
            .into());
        }
        Ok(p)
    }

    /// Creates a pool; the maintainer starts its containers.
    pub async fn create_pool(&self, who: &Caller, req: &NewPool) -> Result<PoolInfo, Error> {
        let ctx = self.engine()?;
        if let Err(e) = racer_core::names::AppName::parse(&req.name) {
            return Err(invalid("name", format!("pool name {:?}: {e}", req.name)));
        }
        let image = match (req.image.as_deref(), req.app.as_deref()) {
            (Some(i), None) if !i.trim().is_empty() => i.trim().to_owned(),
            (None, Some(app)) => {
                let a = self.find_app(who, app).await.map_err(|e| e.at("app"))?;
                let Some(n) = a.release else {
                    return Err(invalid(
                        "app",
                        format!("app {app:?} has no release yet: deploy it first"),
                    ));
                };
                self.store().deployments().release_of(a.id, n).await?.image
            }
            _ => return Err(invalid("image", "give an image or an app, not both")),
        };
        let present = ctx
            .runtime
            .image(&image)
            .await
            .map_err(|e| Error::from(e).at("image"))?;
        if present.is_none() {
            return Err(invalid(
                "image",
                format!(
                    "image {image:?} is not on the engine; racer does not pull (build or load it first, or use --app)"
                ),
            ));
        }
        let size = req.size.unwrap_or(ctx.settings.pool_size);
        if size > MAX_POOL_SIZE {
            return Err(invalid(
                "size",
                format!("size {size} is more than {MAX_POOL_SIZE}"),
            ));
        }
        let cpus = req.cpus.unwrap_or(ctx.settings.default_cpus);
        if !(cpus > 0.0 && cpus <= 256.0) {
            return Err(invalid("cpus", "cpus must be more than 0 and at most 256"));
        }
        let memory_mb = match req.memory.as_deref() {
            None => ctx.settings.default_memory_mb,
            Some(m) => match racer_core::spec::memory_mib(m) {
                Some(mb) if mb >= 6 => mb,
                _ => {
                    return Err(invalid(
                        "memory",
                        format!("{m:?} is not a size of at least 6Mi, e.g. 512Mi or 4Gi"),
                    ))
                }
            },
        };
        let health_path = match req.health_path.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) if p.starts_with('/') && !p.contains(char::is_whitespace) => Some(p.to_owned()),
            Some(p) => {
                return Err(invalid(
                    "health_path",
                    format!("{p:?} must start with / and have no spaces"),
                ))
            }
        };
        let record = PoolRecord {
            id: uuid::Uuid::new_v4().to_string(),
            name: req.name.clone(),
            org: who.home_org().to_owned(),
            image,
            size,
            ports: parse_ports(&req.ports)?,
            cpu_milli: (cpus * 1000.0).round() as u64,
            memory_mb: u64::from(memory_mb),
            claim_ttl_s: seconds("claim_ttl", req.claim_ttl.as_deref(), Some(8 * 3600))?
                .unwrap_or(8 * 3600),
            idle_timeout_s: seconds("idle_timeout", req.idle_timeout.as_deref(), None)?,
            health_path,
            env: parse_env("env", &req.env)?,
            workspace_path: match req.workspace_path.as_deref().map(str::trim) {
                None | Some("") => "/workspace".into(),
                Some(p)
                    if p.starts_with('/') && p.len() > 1 && !p.split('/').any(|s| s == "..") =>
                {
                    p.trim_end_matches('/').to_owned()
                }
                Some(p) => {
                    return Err(invalid(
                        "workspace_path",
                        format!("{p:?} must be an absolute path below /, without .."),
                    ))
                }
            },
            created_at: 0,
        };
        let p = self.store().pools().create(&record).await?;
        self.pool_event(
            who,
            "pool.created",
            &p,
            format!("pool {} of {} created, size {}", p.name, p.image, p.size),
        )
        .await;
        ctx.pools_wake.notify_one();
        Ok(self.pool_info(&p, &[]))
    }

    async fn pool_event(&self, who: &Caller, kind: &str, p: &PoolRecord, message: String) {
        let e = NewEvent {
            actor: who.actor.clone(),
            kind: kind.into(),
            app_id: None,
            app_name: None,
            message,
            org: Some(p.org.clone()),
        };
        if let Err(e) = self.store().events().append(&e).await {
            tracing::warn!(error = %e, "cannot record a pool event");
        }
    }

    /// The pools the caller sees, with their containers now.
    pub async fn pools(&self, who: &Caller) -> Result<Vec<PoolInfo>, Error> {
        let members = self.store().pools().members().await?;
        Ok(self
            .store()
            .pools()
            .list()
            .await?
            .iter()
            .filter(|p| who.sees(&p.org))
            .map(|p| self.pool_info(p, &members))
            .collect())
    }

    /// One pool.
    pub async fn pool(&self, who: &Caller, pool: &str) -> Result<PoolInfo, Error> {
        let p = self.visible_pool(who, pool).await?;
        let members = self.store().pools().members().await?;
        Ok(self.pool_info(&p, &members))
    }

    /// Sets a pool's size; the maintainer starts or removes containers.
    pub async fn resize_pool(
        &self,
        who: &Caller,
        pool: &str,
        size: u32,
    ) -> Result<PoolInfo, Error> {
        let ctx = self.engine()?;
        let p = self.visible_pool(who, pool).await?;
        if size > MAX_POOL_SIZE {
            return Err(invalid(
                "size",
                format!("size {size} is more than {MAX_POOL_SIZE}"),
            ));
        }
        self.store().pools().resize(&p.id, size).await?;
        self.pool_event(
            who,
            "pool.resized",
            &p,
            format!("pool {} resized from {} to {size}", p.name, p.size),
        )
        .await;
        ctx.pools_wake.notify_one();
        self.pool(who, &p.id).await
    }

    /// Deletes a pool: its claims end and its containers are removed. Returns it as it was.
    pub async fn delete_pool(&self, who: &Caller, pool: &str) -> Result<PoolInfo, Error> {
        let ctx = self.engine()?;
        let p = self.visible_pool(who, pool).await?;
        let before = self.pool(who, &p.id).await?;
        for c in self.store().pools().claims(None, false).await? {
            if c.pool_id == p.id {
                crate::pools::end_claim(
                    ctx,
                    &c,
                    "released",
                    Some("its pool was deleted"),
                    &who.actor,
                    true,
                )
                .await?;
            }
        }
        self.store().pools().delete(&p.id).await?;
        self.pool_event(who, "pool.deleted", &p, format!("pool {} deleted", p.name))
            .await;
        ctx.pools_wake.notify_one();
        Ok(before)
    }

    /// Claims a container of `pool`: a ready one at once, else one started now (`warm: false`).
    /// Answers once its routes are in the proxy, with the access token (shown only here).
    pub async fn claim(
        &self,
        who: &Caller,
        pool: &str,
        req: &ClaimRequest,
    ) -> Result<ClaimInfo, Error> {
        let started = Instant::now();
        let ctx = self.engine()?;
        let p = self.visible_pool(who, pool).await?;
        let mut env = parse_env("env", &req.env)?;
        let workspace = match req.workspace.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(url) => {
                crate::s3::parse_url(url).map_err(|e| invalid("workspace", e))?;
                Some(url.to_owned())
            }
        };
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let own = match (given(&req.s3_access_key), given(&req.s3_secret_key)) {
            (Some(a), Some(s)) => Some((a, s)),
            (None, None) => None,
            (None, Some(_)) => {
                return Err(invalid(
                    "s3_access_key",
                    "give s3_access_key with s3_secret_key",
                ))
            }
            (Some(_), None) => {
                return Err(invalid(
                    "s3_secret_key",
                    "give s3_secret_key with s3_access_key",
                ))
            }
        };
        let region = given(&req.s3_region);
        if workspace.is_none() && (own.is_some() || region.is_some()) {
            return Err(invalid(
                "workspace",
                "S3 settings were given without a workspace",
            ));
        }
        if let Some(r) = &region {
            if !r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(invalid(
                    "s3_region",
                    format!("{r:?} is not a region such as us-east-1"),
                ));
            }
            env.insert(crate::workspace::REGION_KEY.into(), r.clone());
        }
        if own.is_some() {
            env.insert(crate::workspace::OWN_CREDENTIALS_KEY.into(), "yes".into());
        }
        let (token, digest) = new_token();
        let id = uuid::Uuid::new_v4().to_string();

        let names: Vec<String> = p.ports.iter().map(|(n, _)| n.clone()).collect();
        // The pool's port names ride along in the claim's record (a key no variable can have).
        env.insert("\u{0}ports".into(), names.join(","));
        let new = NewClaim {
            id: id.clone(),
            org: who.home_org().to_owned(),
            actor: who.actor.clone(),
            token_sha256: digest,
            env: env.clone(),
            expires_at: chrono::Utc::now().timestamp_millis()
                + i64::try_from(p.claim_ttl_s.saturating_mul(1000)).unwrap_or(i64::MAX),
            workspace,
        };
        let pools = self.store().pools();
        let claimed = match pools.claim(&p, None, &new, started).await? {
            Some(c) => c,
            None => {
                // Nothing ready: start one now (if the guard allows) and claim it as it answers.
                if let Some(why) = crate::pools::guard_says_no(ctx) {
                    return Err(Error::refused(
                        ErrorKind::Unavailable,
                        format!("pool {} has no ready container, and {why}", p.name),
                    ));
                }
                let member = crate::pools::start_member(ctx, &p, true).await?;
                let ready = crate::pools::wait_ready(ctx, &p, &member, COLD_START_DEADLINE).await;
                if let Err(e) = ready {
                    let _ = crate::pools::discard(ctx, &member).await;
                    return Err(e);
                }
                match pools.claim(&p, Some(&member.id), &new, started).await? {
                    Some(c) => c,
                    None => {
                        let _ = crate::pools::discard(ctx, &member).await;
                        return Err(Error::refused(
                            ErrorKind::Conflict,
                            "the container started for this claim went away; claim again",
                        ));
                    }
                }
            }
        };
        let user_env: BTreeMap<&String, &String> = env
            .iter()
            .filter(|(k, _)| !k.starts_with('\u{0}'))
            .collect();
        if !user_env.is_empty() {
            if let Some(cid) = &claimed.container_id {
                let text: String = user_env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
                if let Err(e) = ctx
                    .runtime
                    .put_file(cid, "/", "racer-claim.env", text.as_bytes())
                    .await
                {
                    tracing::warn!(claim = %id, error = %e, "cannot write the claim's environment");
                }
            }
        }
        if let Some((a, s)) = own {
            ctx.claim_credentials.insert(&claimed.id, a, s);
        }
        // The workspace is in place before the claim answers.
        let claimed = if claimed.workspace.is_some() {
            if let Err(e) = crate::workspace::restore(ctx, &p, &claimed).await {
                let why = e.chain();
                let _ =
                    crate::pools::end_claim(ctx, &claimed, "failed", Some(&why), &who.actor, false)
                        .await;
                return Err(e);
            }
            self.store().pools().claim_by_id(&claimed.id).await?
        } else {
            claimed
        };
        crate::pools::route_claim(ctx, &p, &claimed);
        ctx.pools_wake.notify_one();
        let e = NewEvent {
            actor: who.actor.clone(),
            kind: "claim.created".into(),
            app_id: None,
            app_name: None,
            message: format!(
                "claim {} of pool {} ({}, {} ms)",
                claimed.id,
                p.name,
                if claimed.warm { "warm" } else { "cold start" },
                claimed.claim_ms
            ),
            org: Some(claimed.org.clone()),
        };
        if let Err(e) = self.store().events().append(&e).await {
            tracing::warn!(error = %e, "cannot record the claim event");
        }
        let mut info = self.claim_info(&claimed, Some(token))?;
        info.claim_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        Ok(info)
    }

    /// The caller's organisation's claims (active ones unless `all`).
    pub async fn claims(&self, who: &Caller, all: bool) -> Result<Vec<ClaimInfo>, Error> {
        self.store()
            .pools()
            .claims(who.org(), all)
            .await?
            .iter()
            .map(|c| self.claim_info(c, None))
            .collect()
    }

    async fn visible_claim(&self, who: &Caller, id: &str) -> Result<ClaimRecord, Error> {
        let c = self.store().pools().claim_by_id(id).await?;
        if !who.sees(&c.org) {
            return Err(racer_store::Error::NotFound {
                what: "claim",
                key: id.to_owned(),
            }
            .into());
        }
        Ok(c)
    }

    /// One claim.
    pub async fn claim_of(&self, who: &Caller, id: &str) -> Result<ClaimInfo, Error> {
        let c = self.visible_claim(who, id).await?;
        self.claim_info(&c, None)
    }

    /// Releases a claim: its workspace is pushed a last time (unless `no_sync`), its routes go
    /// at once, its container is removed, the pool refills.
    pub async fn release_claim(
        &self,
        who: &Caller,
        id: &str,
        no_sync: bool,
    ) -> Result<ClaimInfo, Error> {
        let ctx = self.engine()?;
        let c = self.visible_claim(who, id).await?;
        if c.state != "active" {
            return Err(Error::refused(
                ErrorKind::Conflict,
                format!("claim {id} already ended ({})", c.state),
            ));
        }
        let ended =
            crate::pools::end_claim(ctx, &c, "released", None, &who.actor, !no_sync).await?;
        self.claim_info(&ended.unwrap_or(c), None)
    }
}
