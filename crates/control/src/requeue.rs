//! The re-queue worker (issue 14): takes the `requeue` jobs of preempted apps off the durable
//! queue as each one's delay runs out, and wakes the app so the scheduler places its replicas
//! again at once (or they wait, highest priority first, for room). A job is claimed under a
//! lease, so with several servers on one database each is done once; one whose server died is
//! claimed again when its lease runs out.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::schedule::REQUEUE_KIND;
use crate::Ctx;

/// How long a claimed re-queue job is leased.
const LEASE: Duration = Duration::from_secs(30);
/// The longest sleep between looks at the queue.
const IDLE: Duration = Duration::from_secs(1);

/// Runs until `shutdown`.
pub async fn run(ctx: Ctx, shutdown: CancellationToken) {
    let owner = format!("requeue:{}", ctx.settings.builder_id);
    loop {
        let jobs = ctx.store.jobs();
        let sleep = match jobs.claim(&owner, &[REQUEUE_KIND], LEASE).await {
            Ok(Some(job)) => {
                let app = serde_json::from_str::<serde_json::Value>(&job.payload)
                    .ok()
                    .and_then(|v| v["app"].as_str().and_then(|s| Uuid::parse_str(s).ok()));
                match app {
                    Some(app) => {
                        tracing::info!(%app, "re-queue delay over: placing the preempted app again");
                        ctx.reconcile_wake.app(app);
                    }
                    None => tracing::warn!(job = %job.id, "re-queue job without an app"),
                }
                if let Err(e) = jobs.complete(&job.id, &owner).await {
                    tracing::warn!(error = %e, "cannot complete a re-queue job");
                }
                Duration::ZERO
            }
            Ok(None) => next_due(&ctx).await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the re-queue jobs");
                IDLE
            }
        };
        if sleep.is_zero() {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

/// How long until the next re-queue job is due, at most [`IDLE`].
async fn next_due(ctx: &Ctx) -> Duration {
    let now = chrono::Utc::now().timestamp_millis();
    match ctx.store.jobs().pending(REQUEUE_KIND).await {
        Ok(pending) => pending
            .iter()
            .map(|(_, at)| Duration::from_millis(u64::try_from((at - now).max(50)).unwrap_or(50)))
            .min()
            .unwrap_or(IDLE)
            .min(IDLE),
        Err(_) => IDLE,
    }
}
