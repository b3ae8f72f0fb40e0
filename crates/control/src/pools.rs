//! The pool maintainer (issue 15): keeps each warm pool at its size of ready, unclaimed
//! containers, and ends claims whose time is up.
//!
//! One pass ([`reconcile`]) reads the pools, their members (store) and the containers (engine):
//! a starting member that answers becomes ready; a member whose container is gone or stopped is
//! forgotten (a claimed one's claim fails, keeping its record); containers of no member are
//! removed; a pool below its size is refilled unless the resource guard says no (host memory in
//! use above `MAX_MEMORY_PERCENT`: the pool says why, with the numbers, and an event records
//! it); one above its size loses its newest ready members. Claims past their TTL, or idle past
//! the pool's idle timeout (no proxied request), end like a release.
//!
//! Acting is the controller lease holder's ([`crate::lease`]); every process keeps its proxy's
//! claim routes current from the store, so any server answers for any claim.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use racer_core::ErrorKind;
use racer_runtime::pool::MemberSpec;
use racer_store::{ClaimRecord, MemberRecord, NewEvent, PoolRecord};
use tokio_util::sync::CancellationToken;

use crate::{Ctx, Error};

/// Time between passes when nothing wakes the maintainer.
const INTERVAL: Duration = Duration::from_millis(500);
/// Time between passes while containers are starting.
const STARTING: Duration = Duration::from_millis(30);
/// A starting member that does not answer within this is replaced.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// Containers a pass starts at most, for all pools.
const STARTS_PER_PASS: usize = 4;

/// Why each pool is held below its size by the resource guard, by pool id.
#[derive(Debug, Default)]
pub struct Guard(Mutex<HashMap<String, String>>);

impl Guard {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why the pool is held, if it is.
    pub fn get(&self, pool: &str) -> Option<String> {
        self.lock().get(pool).cloned()
    }

    /// Records why (or, `None`, that it is not); returns whether the reason is new.
    fn set(&self, pool: &str, why: Option<String>) -> bool {
        let mut m = self.lock();
        match why {
            Some(w) => m.insert(pool.to_owned(), w.clone()).as_deref() != Some(w.as_str()),
            None => {
                m.remove(pool);
                false
            }
        }
    }
}

/// Hex SHA-256 of a claim token, as the store keeps it.
pub fn digest_hex(token: &str) -> String {
    racer_proxy::token_digest(token)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn digest_of_hex(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Host memory in use, percent, from `/proc/meminfo` (the engine's host is this machine for
/// the local cluster).
pub fn memory_in_use_percent() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let (total, available) = (field("MemTotal:")?, field("MemAvailable:")?);
    (total > 0.0).then(|| (total - available) / total * 100.0)
}

/// Why no new pool container may start now, if the resource guard says so.
pub fn guard_says_no(ctx: &Ctx) -> Option<String> {
    let limit = ctx.settings.max_memory_percent;
    let used = memory_in_use_percent()?;
    (used > limit).then(|| {
        format!(
            "the resource guard holds new containers: host memory in use {used:.0}% is above MAX_MEMORY_PERCENT {limit:.0}%"
        )
    })
}

/// Routes a claim's ports in this process's proxy.
pub fn route_claim(ctx: &Ctx, pool: &PoolRecord, c: &ClaimRecord) {
    let (Some(ip), Some(digest)) = (
        c.ip.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok()),
        digest_of_hex(&c.token_sha256),
    ) else {
        return;
    };
    let route = racer_proxy::ClaimRoute {
        claim: c.id.clone(),
        token_sha256: digest,
        ports: pool
            .ports
            .iter()
            .map(|(n, p)| (n.clone(), SocketAddr::new(ip, *p)))
            .collect(),
    };
    if let Err(e) = ctx.routes.set_claim(route) {
        tracing::warn!(claim = %c.id, error = %e, "cannot route the claim");
    }
}

/// Starts one member of `pool` (recorded first, so a crash leaves a record, not an orphan).
pub async fn start_member(
    ctx: &Ctx,
    pool: &PoolRecord,
    reserved: bool,
) -> Result<MemberRecord, Error> {
    let short = &uuid::Uuid::new_v4().simple().to_string()[..12];
    let id = format!("racer-pool-{}-{short}", pool.name);
    ctx.store
        .pools()
        .add_member(&pool.id, &id, reserved)
        .await?;
    let spec = MemberSpec {
        name: id.clone(),
        image: pool.image.clone(),
        pool_id: pool.id.clone(),
        env: pool.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        ports: pool.ports.iter().map(|(_, p)| *p).collect(),
        memory_bytes: i64::try_from(pool.memory_mb.saturating_mul(1 << 20)).unwrap_or(i64::MAX),
        nano_cpus: i64::try_from(pool.cpu_milli.saturating_mul(1_000_000)).unwrap_or(i64::MAX),
    };
    match ctx.runtime.run_member(&spec).await {
        Ok((cid, ip)) => {
            ctx.store
                .pools()
                .set_container(&id, &cid, ip.as_deref())
                .await?;
            Ok(MemberRecord {
                id,
                pool_id: pool.id.clone(),
                container_id: Some(cid),
                ip,
                state: if reserved { "reserved" } else { "starting" }.into(),
                claim_id: None,
                created_at: chrono::Utc::now().timestamp_millis(),
                ready_at: None,
            })
        }
        Err(e) => {
            let _ = ctx.store.pools().remove_member(&id).await;
            Err(e.into())
        }
    }
}

/// Whether a member answers: an HTTP 2xx/3xx on the pool's health path, else a TCP connection,
/// on its first port.
async fn answers(pool: &PoolRecord, m: &MemberRecord) -> bool {
    let (Some(ip), Some((_, port))) = (
        m.ip.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok()),
        pool.ports.first(),
    ) else {
        return false;
    };
    let addr = SocketAddr::new(ip, *port);
    let check = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let Some(path) = &pool.health_path else {
            return Some(true);
        };
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf).await.ok()?;
        let head = std::str::from_utf8(buf.get(..n)?).ok()?;
        Some(
            head.starts_with("HTTP/1.1 2")
                || head.starts_with("HTTP/1.0 2")
                || head.starts_with("HTTP/1.1 3"),
        )
    };
    tokio::time::timeout(Duration::from_millis(500), check)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Waits until a member answers (then marks it ready), up to `deadline`.
pub async fn wait_ready(
    ctx: &Ctx,
    pool: &PoolRecord,
    m: &MemberRecord,
    deadline: Duration,
) -> Result<(), Error> {
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        if answers(pool, m).await {
            ctx.store.pools().mark_ready(&m.id).await?;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(Error::refused(
        ErrorKind::Unavailable,
        format!(
            "a container of pool {} did not answer on port {} within {}s",
            pool.name,
            pool.ports.first().map_or(0, |p| p.1),
            deadline.as_secs()
        ),
    ))
}

/// Removes a member's container and forgets it.
pub async fn discard(ctx: &Ctx, m: &MemberRecord) -> Result<(), Error> {
    if let Some(cid) = &m.container_id {
        match ctx.runtime.remove(cid).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    ctx.store.pools().remove_member(&m.id).await?;
    Ok(())
}

/// Ends an active claim (`released`, `expired`, `idle`, `failed`): its routes go at once, its
/// container is removed, the pool refills. Returns the claim as it ended (`None`: it had already
/// ended).
pub async fn end_claim(
    ctx: &Ctx,
    c: &ClaimRecord,
    state: &str,
    error: Option<&str>,
    actor: &str,
    last_push: bool,
) -> Result<Option<ClaimRecord>, Error> {
    // A last push of the workspace before the container goes; if it cannot be made, the claim
    // stays (nothing written in it is lost) and says why.
    if last_push && c.workspace.is_some() && matches!(state, "released" | "expired" | "idle") {
        let pool = ctx.store.pools().get(&c.pool_id).await?;
        if let Err(e) = crate::workspace::sync(ctx, &pool, c).await {
            return Err(Error::refused(
                ErrorKind::Unavailable,
                format!(
                    "the last push of claim {}'s workspace failed ({e}); the claim stays and its container keeps running: try again when the storage answers",
                    c.id
                ),
            ));
        }
    }
    ctx.routes.remove_claim(&c.id);
    let ended = ctx.store.pools().end_claim(&c.id, state, error).await?;
    ctx.claim_credentials.remove(&c.id);
    if ended.is_some() {
        if let Some(cid) = &c.container_id {
            match ctx.runtime.remove(cid).await {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(claim = %c.id, error = %e, "cannot remove the claim's container")
                }
            }
        }
        let e = NewEvent {
            actor: actor.to_owned(),
            kind: format!("claim.{state}"),
            app_id: None,
            app_name: None,
            message: format!(
                "claim {} of pool {} {state}{}",
                c.id,
                c.pool_name,
                error.map(|e| format!(": {e}")).unwrap_or_default()
            ),
            org: Some(c.org.clone()),
        };
        if let Err(e) = ctx.store.events().append(&e).await {
            tracing::warn!(error = %e, "cannot record the claim's end");
        }
    }
    ctx.pools_wake.notify_one();
    Ok(ended)
}

/// Runs the maintainer until `shutdown`.
pub async fn run(ctx: Ctx, shutdown: CancellationToken) {
    loop {
        let next = match reconcile(&ctx).await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(error = %e.chain(), "pool pass failed");
                Duration::from_secs(2)
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ctx.pools_wake.notified() => {}
            _ = tokio::time::sleep(next) => {}
        }
    }
}

/// One pass over every pool (see the module's text); returns when to look again.
pub async fn reconcile(ctx: &Ctx) -> Result<Duration, Error> {
    let store = ctx.store.pools();
    let pools = store.list().await?;
    let claims = store.claims(None, false).await?;
    // Routes, in every process.
    let by_id: HashMap<&str, &PoolRecord> = pools.iter().map(|p| (p.id.as_str(), p)).collect();
    let live: HashSet<String> = claims.iter().map(|c| c.id.clone()).collect();
    ctx.routes.retain_claims(&live);
    for c in &claims {
        if let Some(p) = by_id.get(c.pool_id.as_str()) {
            if ctx.routes.claim_last_seen(&c.id).is_none() {
                route_claim(ctx, p, c);
            }
        }
    }
    if !ctx.leases.controller.held() {
        return Ok(INTERVAL);
    }
    let members = store.members().await?;
    let observed = ctx.runtime.list_members().await?;
    let running: HashMap<&str, bool> = observed
        .iter()
        .map(|o| (o.member_id.as_str(), o.running))
        .collect();
    let known: HashSet<&str> = members.iter().map(|m| m.id.as_str()).collect();
    // Containers of no member (a deleted pool's, a crashed start's).
    for o in observed
        .iter()
        .filter(|o| !known.contains(o.member_id.as_str()))
    {
        tracing::info!(container = %o.id, pool = %o.pool_id, "removing a pool container no pool owns");
        if let Err(e) = ctx.runtime.remove(&o.id).await {
            tracing::warn!(container = %o.id, error = %e, "cannot remove a pool container");
        }
    }
    let now = chrono::Utc::now().timestamp_millis();
    let mut alive: Vec<&MemberRecord> = Vec::new();
    for m in &members {
        let up = running.get(m.id.as_str()).copied();
        let age = Duration::from_millis(u64::try_from(now - m.created_at).unwrap_or(0));
        let gone = match (m.container_id.is_some(), up) {
            (true, Some(true)) => false,
            (true, _) => true,
            // Being created: give it until the deadline.
            (false, _) => age > START_DEADLINE,
        };
        let pool = by_id.get(m.pool_id.as_str());
        if gone || pool.is_none() {
            if let Some(claim) = m
                .claim_id
                .as_ref()
                .and_then(|id| claims.iter().find(|c| &c.id == id))
            {
                end_claim(
                    ctx,
                    claim,
                    "failed",
                    Some("its container stopped or was removed behind racer's back"),
                    "racer",
                    false,
                )
                .await?;
            }
            discard(ctx, m).await?;
            continue;
        }
        if m.state == "starting" {
            if let Some(p) = pool {
                if answers(p, m).await {
                    store.mark_ready(&m.id).await?;
                } else if age > START_DEADLINE {
                    tracing::warn!(member = %m.id, "pool container never answered: replacing it");
                    discard(ctx, m).await?;
                    continue;
                }
            }
        }
        alive.push(m);
    }
    // Claims past their time.
    for c in &claims {
        let Some(p) = by_id.get(c.pool_id.as_str()) else {
            continue;
        };
        let end = if c.expires_at <= now {
            Some("expired")
        } else {
            match (p.idle_timeout_s, ctx.routes.claim_last_seen(&c.id)) {
                (Some(idle), Some(seen)) if seen.elapsed() >= Duration::from_secs(idle) => {
                    Some("idle")
                }
                _ => None,
            }
        };
        if let Some(state) = end {
            if let Err(e) = end_claim(ctx, c, state, None, "racer", true).await {
                tracing::warn!(claim = %c.id, error = %e.chain(), "cannot end the claim yet");
            }
        }
    }
    // Workspaces due for a sync (claims still active after the steps above).
    let active: Vec<ClaimRecord> = store.claims(None, false).await?;
    crate::workspace::sync_due(ctx, &pools, &active);
    // Sizes.
    let mut budget = STARTS_PER_PASS;
    for p in &pools {
        let unclaimed: Vec<&&MemberRecord> = alive
            .iter()
            .filter(|m| m.pool_id == p.id && matches!(m.state.as_str(), "starting" | "ready"))
            .collect();
        let have = unclaimed.len();
        let want = p.size as usize;
        if have > want {
            // Newest first, starting ones before ready ones.
            let mut extra = unclaimed.clone();
            extra.sort_by_key(|m| (m.state == "ready", std::cmp::Reverse(m.created_at)));
            for m in extra.into_iter().take(have - want) {
                discard(ctx, m).await?;
            }
            ctx.pool_guard.set(&p.id, None);
            continue;
        }
        if have == want {
            ctx.pool_guard.set(&p.id, None);
            continue;
        }
        match guard_says_no(ctx) {
            Some(why) => {
                let why = format!("{why}; {have} of {want} containers kept");
                if ctx.pool_guard.set(&p.id, Some(why.clone())) {
                    tracing::warn!(pool = %p.name, "{why}");
                    let e = NewEvent {
                        actor: "racer".into(),
                        kind: "pool.held".into(),
                        app_id: None,
                        app_name: None,
                        message: format!("pool {}: {why}", p.name),
                        org: Some(p.org.clone()),
                    };
                    let _ = ctx.store.events().append(&e).await;
                }
                continue;
            }
            None => {
                ctx.pool_guard.set(&p.id, None);
            }
        }
        for _ in have..want {
            if budget == 0 {
                break;
            }
            budget -= 1;
            if let Err(e) = start_member(ctx, p, false).await {
                tracing::warn!(pool = %p.name, error = %e.chain(), "cannot start a pool container");
                break;
            }
        }
    }
    // While containers start, look again soon: they answer within a moment.
    let starting = budget < STARTS_PER_PASS || alive.iter().any(|m| m.state == "starting");
    Ok(if starting { STARTING } else { INTERVAL })
}
