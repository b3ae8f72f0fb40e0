//! The autoscaler: once a second, for every app whose spec says `scaling.policy.mode: auto`, it
//! samples CPU and memory from the engine and RPS and p95 latency from the proxy, feeds the
//! pure decision function in `core::autoscale`, and applies a decision by changing the desired
//! replica count (the reconciler and the proxy do the rest). Every decision is an event carrying
//! the metric values that caused it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use racer_core::autoscale::{self, Decision, History, Sample};
use racer_core::spec::AppDocument;
use racer_core::AppRef;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::Ctx;

/// How often the autoscaler samples.
pub const INTERVAL: Duration = Duration::from_secs(1);

#[derive(Default)]
struct AppState {
    history: Option<History>,
    /// Per container: CPU ns at the last reading and when.
    cpu: HashMap<String, (u64, Instant)>,
    /// The proxy's counters at the last reading and when.
    traffic: Option<(u64, [u64; racer_proxy::LATENCY_BUCKETS], Instant)>,
}

/// Runs the autoscaler until `shutdown`.
pub async fn run(ctx: Ctx, shutdown: CancellationToken) {
    let epoch = Instant::now();
    let mut states: HashMap<Uuid, AppState> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
        let apps = match ctx.store.apps().autoscaled().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "autoscaler cannot read apps");
                continue;
            }
        };
        states.retain(|id, _| apps.iter().any(|(a, _)| a.id == *id));
        for (app, spec) in apps {
            let Ok(doc) = serde_json::from_value::<AppDocument>(spec) else {
                continue;
            };
            let Some(policy) = doc.autoscale() else {
                continue;
            };
            let state = states.entry(app.id).or_default();
            let history = state
                .history
                .get_or_insert_with(|| History::new(policy.window));
            if history.window() != policy.window {
                *history = History::new(policy.window);
            }
            let now = epoch.elapsed();
            let sample = sample(&ctx, &app, &doc, state).await;
            let Some(history) = state.history.as_mut() else {
                continue;
            };
            // Each reading describes the tick that just ended (a rate of requests, CPU time
            // over wall time since the last tick), so it is stamped at that tick's start: a
            // metric over target from the moment load arrives has then "stayed above" for the
            // window one tick sooner, i.e. a decision lands window + at most one interval after
            // the load step instead of window + up to two.
            let at = now.saturating_sub(INTERVAL);
            autoscale::record(history, Sample { at, ..sample });
            // Every server keeps its history (a takeover decides from it at once); one
            // decides: the holder of the autoscaler's lease.
            if !ctx.leases.autoscaler.held() {
                continue;
            }
            let decision = autoscale::decide(&policy, history, now, app.instances);
            let (to, why) = match &decision {
                Decision::ScaleOut { to, because } | Decision::ScaleIn { to, because } => {
                    let causes: Vec<String> = because
                        .iter()
                        .map(|c| {
                            format!(
                                "{} {:.1} vs target {:.1} ({:.0}%)",
                                c.metric.as_str(),
                                c.value,
                                c.target,
                                c.pct_of_target
                            )
                        })
                        .collect();
                    (*to, causes.join(", "))
                }
                Decision::Clamp { to } => (*to, "outside minReplicas..maxReplicas".to_owned()),
                Decision::Hold { .. } => continue,
            };
            history.decided(now);
            let verb = if to > app.instances { "out" } else { "in" };
            tracing::info!(app = %app.name, from = app.instances, to, because = %why, "autoscaling");
            if let Err(e) = ctx
                .store
                .apps()
                .set_instances(&AppRef::Id(app.id), to, "autoscaler")
                .await
            {
                tracing::warn!(error = %e, "autoscaler cannot scale");
                continue;
            }
            let event = racer_store::NewEvent {
                actor: "autoscaler".into(),
                kind: format!("app.autoscaled.{verb}"),
                app_id: Some(app.id),
                app_name: Some(app.name.clone()),
                message: format!("scaled {verb} from {} to {to}: {why}", app.instances),
                org: None,
            };
            let _ = ctx.store.events().append(&event).await;
            ctx.metrics.scaled(&app.name, verb);
            ctx.reconcile_wake.app(app.id);
        }
    }
}

/// One sample: average CPU and memory per replica (% of limit), total RPS and p95 since the
/// last sample.
async fn sample(
    ctx: &Ctx,
    app: &racer_core::api::App,
    doc: &AppDocument,
    state: &mut AppState,
) -> Sample {
    let config = doc.run_config();
    let cpus = config.cpus.unwrap_or(ctx.settings.default_cpus).max(0.01);
    let mut cpu = Vec::new();
    let mut mem = Vec::new();
    if let Ok(containers) = ctx.engines.list_all(ctx, Some(app.id)).await {
        for c in containers
            .iter()
            .filter(|c| c.running() && c.release == app.release)
        {
            let Ok(rt) = ctx.engines.runtime(ctx, &c.cluster) else {
                continue;
            };
            let Ok(u) = rt.usage(&c.id).await else {
                continue;
            };
            let now = Instant::now();
            if let Some((prev, at)) = state.cpu.insert(c.id.clone(), (u.cpu_total_ns, now)) {
                let wall = now.duration_since(at).as_nanos() as f64;
                if wall > 0.0 && u.cpu_total_ns >= prev {
                    cpu.push((u.cpu_total_ns - prev) as f64 / (wall * cpus) * 100.0);
                }
            }
            if u.memory_limit > 0 {
                mem.push(u.memory_bytes as f64 / u.memory_limit as f64 * 100.0);
            }
        }
    }
    let avg = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let (mut rps, mut p95) = (None, None);
    if let Some((total, hist)) = ctx.routes.counters(&app.name) {
        let now = Instant::now();
        if let Some((prev_total, prev_hist, at)) = state.traffic.replace((total, hist, now)) {
            let secs = now.duration_since(at).as_secs_f64();
            if secs > 0.0 {
                rps = Some(total.saturating_sub(prev_total) as f64 / secs);
                p95 = racer_proxy::p95_ms(&prev_hist, &hist).or(Some(0.0));
            }
        }
    }
    Sample {
        at: Duration::ZERO,
        replicas: app.instances,
        cpu_pct: avg(&cpu),
        memory_pct: avg(&mem),
        rps,
        p95_ms: p95,
        active_connections: None,
    }
}
