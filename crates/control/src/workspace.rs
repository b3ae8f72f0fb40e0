//! Workspaces of claims (issue 15): an S3 prefix restored into the claimed container before the
//! claim answers, then synced both ways every interval (`core::workspace::plan` decides each
//! path: one-sided changes cross over, conflicts go to the newer side and are events), and
//! pushed a last time when the claim is released. What both sides held after each sync is kept
//! with the claim in the store, so a server that restarts resumes where it stopped.
//!
//! A failed sync (storage down) keeps the last good state, shows its error on the claim, and is
//! retried with a growing delay (interval × 2ⁿ, at most 5 minutes); nothing in the container is
//! lost, since the next sync compares against the last good state.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use racer_core::workspace::{plan, Step, Synced, Version};
use racer_store::{ClaimRecord, NewEvent, PoolRecord};

use crate::s3::{parse_url, S3};
use crate::{Ctx, Error};

/// The longest delay between retries of a failing sync.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// When each claim's workspace syncs next, and how many syncs in a row failed.
#[derive(Debug, Default)]
pub struct Schedule(Mutex<HashMap<String, (Instant, u32, bool)>>);

impl Schedule {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, u32, bool)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the claim for a sync if it is due and none runs.
    fn take(&self, claim: &str) -> bool {
        let mut m = self.lock();
        let e = m
            .entry(claim.to_owned())
            .or_insert((Instant::now(), 0, false));
        if e.2 || Instant::now() < e.0 {
            return false;
        }
        e.2 = true;
        true
    }

    fn done(&self, claim: &str, ok: bool, interval: Duration) {
        let mut m = self.lock();
        let e = m
            .entry(claim.to_owned())
            .or_insert((Instant::now(), 0, false));
        e.1 = if ok { 0 } else { e.1.saturating_add(1) };
        let delay = if ok {
            interval
        } else {
            (interval * 2u32.saturating_pow(e.1.min(16))).min(MAX_BACKOFF)
        };
        e.0 = Instant::now() + delay;
        e.2 = false;
    }

    /// Forgets claims that ended.
    pub fn retain(&self, live: &std::collections::HashSet<String>) {
        self.lock().retain(|k, _| live.contains(k));
    }
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Credentials given with claims (claim id → access key, secret key): in memory only.
#[derive(Default)]
pub struct ClaimCredentials(Mutex<HashMap<String, (String, String)>>);

impl std::fmt::Debug for ClaimCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClaimCredentials(<hidden>)")
    }
}

impl ClaimCredentials {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, String)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a claim's credentials.
    pub fn insert(&self, claim: &str, access: String, secret: String) {
        self.lock().insert(claim.to_owned(), (access, secret));
    }

    /// Forgets a claim's credentials.
    pub fn remove(&self, claim: &str) {
        self.lock().remove(claim);
    }

    fn get(&self, claim: &str) -> Option<(String, String)> {
        self.lock().get(claim).cloned()
    }
}

/// Keys of a claim's record (its `env` map) that are not environment variables: the workspace's
/// region, and whether the claim brought credentials of its own.
pub const REGION_KEY: &str = "\u{0}s3_region";
/// See [`REGION_KEY`].
pub const OWN_CREDENTIALS_KEY: &str = "\u{0}s3_own_credentials";

fn client(ctx: &Ctx, c: &ClaimRecord, url: &str) -> Result<(S3, String), String> {
    let (bucket, prefix) = parse_url(url)?;
    let mut config = ctx.settings.s3.clone();
    if let Some(region) = c.env.get(REGION_KEY) {
        config.region = Some(region.clone());
    }
    if c.env.contains_key(OWN_CREDENTIALS_KEY) {
        let Some((access, secret)) = ctx.claim_credentials.get(&c.id) else {
            return Err("the credentials given with this claim are gone (the server restarted and never keeps them): release it with --no-sync, or claim again".into());
        };
        config.access_key = Some(access);
        config.secret_key = Some(secret);
    }
    Ok((S3::new(&config, &bucket)?, prefix))
}

/// Restores a claim's workspace into its container; returns (bytes, ms).
pub async fn restore(ctx: &Ctx, pool: &PoolRecord, c: &ClaimRecord) -> Result<(i64, i64), Error> {
    let started = Instant::now();
    let refuse = |m: String| {
        Error::refused(
            racer_core::ErrorKind::Unavailable,
            format!(
                "cannot restore the workspace {}: {m}",
                c.workspace.as_deref().unwrap_or_default()
            ),
        )
    };
    let (Some(url), Some(cid)) = (c.workspace.as_deref(), c.container_id.as_deref()) else {
        return Ok((0, 0));
    };
    let (s3, prefix) = client(ctx, c, url).map_err(refuse)?;
    let objects = s3.list(&prefix).await.map_err(refuse)?;
    let mut files = Vec::new();
    let mut state = BTreeMap::new();
    let mut bytes = 0i64;
    for o in objects.iter().filter(|o| !o.key.ends_with('/')) {
        let rel = o.key.strip_prefix(&prefix).unwrap_or(&o.key).to_owned();
        let body = s3.get(&o.key).await.map_err(refuse)?;
        bytes += body.len() as i64;
        state.insert(
            rel.clone(),
            Synced {
                local: md5_hex(&body),
                remote: o.etag.clone(),
            },
        );
        files.push((rel, body));
    }
    ctx.runtime
        .write_files(cid, &pool.workspace_path, &files)
        .await?;
    let ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let pools = ctx.store.pools();
    pools
        .record_sync(
            &c.id,
            Some(&serde_json::to_string(&state).unwrap_or_default()),
            None,
        )
        .await?;
    pools.record_restore(&c.id, bytes, ms).await?;
    Ok((bytes, ms))
}

/// What one sync did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Files uploaded.
    pub pushed: usize,
    /// Objects downloaded into the container.
    pub pulled: usize,
    /// Objects deleted.
    pub deleted: usize,
    /// Bytes moved either way.
    pub bytes: u64,
}

/// Syncs a claim's workspace once, both ways. Records the outcome on the claim.
pub async fn sync(ctx: &Ctx, pool: &PoolRecord, c: &ClaimRecord) -> Result<Report, String> {
    let outcome = sync_once(ctx, pool, c).await;
    let pools = ctx.store.pools();
    let recorded = match &outcome {
        Ok((_, state)) => pools.record_sync(&c.id, Some(state), None).await,
        Err(e) => pools.record_sync(&c.id, None, Some(e)).await,
    };
    if let Err(e) = recorded {
        tracing::warn!(claim = %c.id, error = %e, "cannot record the workspace sync");
    }
    outcome.map(|(r, _)| r)
}

async fn sync_once(
    ctx: &Ctx,
    pool: &PoolRecord,
    c: &ClaimRecord,
) -> Result<(Report, String), String> {
    let (Some(url), Some(cid)) = (c.workspace.as_deref(), c.container_id.as_deref()) else {
        return Ok((Report::default(), c.sync_state.clone()));
    };
    let (s3, prefix) = client(ctx, c, url)?;
    let files = ctx
        .runtime
        .read_files(cid, &pool.workspace_path)
        .await
        .map_err(|e| format!("cannot read the container's workspace: {e}"))?
        .unwrap_or_default();
    let objects = s3.list(&prefix).await?;
    let mut synced: BTreeMap<String, Synced> =
        serde_json::from_str(&c.sync_state).unwrap_or_default();
    let mut contents: HashMap<String, Vec<u8>> = HashMap::new();
    let mut local = BTreeMap::new();
    for f in files {
        local.insert(
            f.path.clone(),
            Version {
                tag: md5_hex(&f.contents),
                mtime: i64::try_from(f.mtime).unwrap_or(0),
            },
        );
        contents.insert(f.path, f.contents);
    }
    let remote: BTreeMap<String, Version> = objects
        .iter()
        .filter(|o| !o.key.ends_with('/'))
        .map(|o| {
            (
                o.key.strip_prefix(&prefix).unwrap_or(&o.key).to_owned(),
                Version {
                    tag: o.etag.clone(),
                    mtime: o.modified,
                },
            )
        })
        .collect();
    let p = plan(&local, &remote, &synced);
    let mut report = Report::default();
    let mut pulls = Vec::new();
    for step in &p.steps {
        let path = step.path().to_owned();
        let key = format!("{prefix}{path}");
        match step {
            Step::Push(_) => {
                let body = contents.get(&path).cloned().unwrap_or_default();
                report.bytes += body.len() as u64;
                let md5 = md5_hex(&body);
                let etag = s3.put(&key, body).await?;
                synced.insert(
                    path,
                    Synced {
                        local: md5,
                        remote: etag,
                    },
                );
                report.pushed += 1;
            }
            Step::Pull(_) => {
                let body = s3.get(&key).await?;
                report.bytes += body.len() as u64;
                let etag = remote.get(&path).map(|v| v.tag.clone()).unwrap_or_default();
                synced.insert(
                    path.clone(),
                    Synced {
                        local: md5_hex(&body),
                        remote: etag,
                    },
                );
                pulls.push((path, body));
                report.pulled += 1;
            }
            Step::DeleteRemote(_) => {
                s3.delete(&key).await?;
                synced.remove(&path);
                report.deleted += 1;
            }
            Step::DeleteLocal(_) => {
                // Deleted in the bucket, unchanged in the container: the container keeps it
                // (racer cannot delete files inside a container) and it is not pushed back.
                let l = local.get(&path).map(|v| v.tag.clone()).unwrap_or_default();
                synced.insert(
                    path,
                    Synced {
                        local: l,
                        remote: String::new(),
                    },
                );
            }
        }
    }
    if !pulls.is_empty() {
        ctx.runtime
            .write_files(cid, &pool.workspace_path, &pulls)
            .await
            .map_err(|e| format!("cannot write into the container's workspace: {e}"))?;
    }
    // Paths gone from both sides are forgotten.
    synced
        .retain(|p, _| local.contains_key(p) || remote.contains_key(p) || contents.contains_key(p));
    for (path, winner) in &p.conflicts {
        let e = NewEvent {
            actor: "racer".into(),
            kind: "workspace.conflict".into(),
            app_id: None,
            app_name: None,
            message: format!(
                "claim {}: {path} changed in the container and in the bucket; the {winner}'s newer copy won",
                c.id
            ),
            org: Some(c.org.clone()),
        };
        let _ = ctx.store.events().append(&e).await;
    }
    Ok((report, serde_json::to_string(&synced).unwrap_or_default()))
}

/// Syncs every active claim with a workspace that is due, each in its own task (never two at
/// once for one claim).
pub fn sync_due(ctx: &Ctx, pools: &[PoolRecord], claims: &[ClaimRecord]) {
    let live = claims.iter().map(|c| c.id.clone()).collect();
    ctx.workspace_sync.retain(&live);
    for c in claims.iter().filter(|c| c.workspace.is_some()) {
        let Some(p) = pools.iter().find(|p| p.id == c.pool_id) else {
            continue;
        };
        if !ctx.workspace_sync.take(&c.id) {
            continue;
        }
        let (ctx2, p, c) = (ctx.clone(), p.clone(), c.clone());
        ctx.tasks.spawn(async move {
            let ok = match sync(&ctx2, &p, &c).await {
                Ok(r) => {
                    if r.pushed + r.pulled + r.deleted > 0 {
                        tracing::info!(claim = %c.id, pushed = r.pushed, pulled = r.pulled, deleted = r.deleted, bytes = r.bytes, "workspace synced");
                    }
                    true
                }
                Err(e) => {
                    tracing::warn!(claim = %c.id, error = %e, "workspace sync failed; retrying later");
                    false
                }
            };
            ctx2.workspace_sync
                .done(&c.id, ok, ctx2.settings.workspace_sync_interval);
        });
    }
}
