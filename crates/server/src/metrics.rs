//! `GET /metrics`: the Prometheus text format (version 0.0.4). Per app: replicas desired and
//! ready, proxy requests and latency, deployment outcomes, build durations, autoscaler
//! decisions; for the server: reconcile pass durations.

use std::collections::HashSet;
use std::fmt::Write;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use racer_control::metrics::{HistogramSnapshot, DURATION_BUCKETS_S};

use crate::state::AppState;
use crate::ApiError;

/// Escapes a label value.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes a family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Writes one histogram's `_bucket`, `_sum` and `_count` samples; `labels` is `k="v",...` or
/// empty.
fn histogram(out: &mut String, name: &str, labels: &str, h: &HistogramSnapshot) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (bound, n) in DURATION_BUCKETS_S.iter().zip(h.cumulative) {
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
        h.count()
    );
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", h.sum_seconds);
    let _ = writeln!(out, "{name}_count{braces} {}", h.count());
}

/// Prometheus text format: apps, replicas desired and ready, proxy traffic per app and replica,
/// deployment outcomes, build and reconcile durations, autoscaler decisions.
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let apps = state.0.store.apps().all().await?;
    let outcomes = state.0.store.deployments().outcomes().await?;
    let traffic = state.0.traffic.snapshot();
    let live: HashSet<&str> = apps.iter().map(|a| a.name.as_str()).collect();
    let mut out = String::new();

    family(
        &mut out,
        "racer_apps",
        "gauge",
        "Apps known to this install.",
    );
    let _ = writeln!(out, "racer_apps {}", apps.len());
    family(
        &mut out,
        "racer_app_replicas_desired",
        "gauge",
        "Replicas an app should run.",
    );
    for a in &apps {
        let _ = writeln!(
            out,
            "racer_app_replicas_desired{{app=\"{}\"}} {}",
            esc(&a.name),
            a.instances
        );
    }
    family(
        &mut out,
        "racer_app_replicas_ready",
        "gauge",
        "Replicas in the proxy's rotation.",
    );
    for t in &traffic {
        let _ = writeln!(
            out,
            "racer_app_replicas_ready{{app=\"{}\"}} {}",
            esc(&t.app),
            t.replicas.len()
        );
    }
    family(
        &mut out,
        "racer_proxy_requests_total",
        "counter",
        "Requests answered by the proxy, by status class.",
    );
    for t in &traffic {
        for (i, n) in t.by_class.iter().enumerate() {
            let _ = writeln!(
                out,
                "racer_proxy_requests_total{{app=\"{}\",class=\"{}xx\"}} {n}",
                esc(&t.app),
                i + 1
            );
        }
    }
    family(
        &mut out,
        "racer_proxy_active_requests",
        "gauge",
        "Requests in flight.",
    );
    for t in &traffic {
        let _ = writeln!(
            out,
            "racer_proxy_active_requests{{app=\"{}\"}} {}",
            esc(&t.app),
            t.active
        );
    }
    family(
        &mut out,
        "racer_proxy_queued_requests",
        "gauge",
        "Requests waiting for a replica under its concurrency limit (--replica-concurrency).",
    );
    for t in &traffic {
        let _ = writeln!(
            out,
            "racer_proxy_queued_requests{{app=\"{}\"}} {}",
            esc(&t.app),
            t.queued
        );
    }
    family(
        &mut out,
        "racer_proxy_request_duration_seconds",
        "histogram",
        "Time from request to response headers.",
    );
    for t in &traffic {
        let mut cumulative = 0;
        for (i, bound) in racer_proxy::LATENCY_BUCKETS_MS.iter().enumerate() {
            cumulative += t.latency[i];
            let _ = writeln!(
                out,
                "racer_proxy_request_duration_seconds_bucket{{app=\"{}\",le=\"{}\"}} {cumulative}",
                esc(&t.app),
                *bound as f64 / 1000.0
            );
        }
        cumulative += t.latency[racer_proxy::LATENCY_BUCKETS_MS.len()];
        let _ = writeln!(
            out,
            "racer_proxy_request_duration_seconds_bucket{{app=\"{}\",le=\"+Inf\"}} {cumulative}",
            esc(&t.app)
        );
        let _ = writeln!(
            out,
            "racer_proxy_request_duration_seconds_sum{{app=\"{}\"}} {}",
            esc(&t.app),
            t.latency_sum_seconds
        );
        let _ = writeln!(
            out,
            "racer_proxy_request_duration_seconds_count{{app=\"{}\"}} {cumulative}",
            esc(&t.app)
        );
    }
    family(
        &mut out,
        "racer_proxy_replica_requests_total",
        "counter",
        "Requests sent to each replica.",
    );
    for t in &traffic {
        for (addr, n, _, _) in &t.replicas {
            let _ = writeln!(
                out,
                "racer_proxy_replica_requests_total{{app=\"{}\",replica=\"{addr}\"}} {n}",
                esc(&t.app)
            );
        }
    }

    family(
        &mut out,
        "racer_deployments_total",
        "counter",
        "Deployments that ended, by app and outcome (running, failed, rolled_back, superseded). \
         Read from the store: it survives restarts, and every server of an install reports the \
         same numbers.",
    );
    for (app, status, n) in &outcomes {
        let _ = writeln!(
            out,
            "racer_deployments_total{{app=\"{}\",outcome=\"{}\"}} {n}",
            esc(app),
            status.as_str()
        );
    }

    let control = state.0.control.as_ref().map(|c| &c.metrics);
    family(
        &mut out,
        "racer_build_duration_seconds",
        "histogram",
        "Time from a build being claimed to its image being built (or the build failing), by \
         app and result, since this server started.",
    );
    for (app, result, h) in control.map(|m| m.builds()).unwrap_or_default() {
        if live.contains(app.as_str()) {
            let labels = format!("app=\"{}\",result=\"{}\"", esc(&app), result.as_str());
            histogram(&mut out, "racer_build_duration_seconds", &labels, &h);
        }
    }
    family(
        &mut out,
        "racer_reconcile_pass_duration_seconds",
        "histogram",
        "Duration of one reconcile pass over every app (list containers, converge each app, \
         remove orphans).",
    );
    let pass = control
        .map(|m| m.reconcile_pass.snapshot())
        .unwrap_or_default();
    histogram(&mut out, "racer_reconcile_pass_duration_seconds", "", &pass);
    family(
        &mut out,
        "racer_reconcile_errors_total",
        "counter",
        "Reconcile passes that failed as a whole (the engine or the store did not answer).",
    );
    let _ = writeln!(
        out,
        "racer_reconcile_errors_total {}",
        control.map_or(0, |m| m
            .reconcile_errors
            .load(std::sync::atomic::Ordering::Relaxed))
    );
    family(
        &mut out,
        "racer_reconcile_apps",
        "gauge",
        "Apps the last reconcile pass went over.",
    );
    let _ = writeln!(
        out,
        "racer_reconcile_apps {}",
        control.map_or(0, |m| m
            .reconcile_apps
            .load(std::sync::atomic::Ordering::Relaxed))
    );
    type Read = fn(&racer_control::metrics::Metrics) -> u64;
    let counters: [(&str, &str, Read); 6] = [
        (
            "racer_observer_lists_total",
            "Full lists of the install's containers (the first reconcile pass, the 30 s resync, \
             every pass while the engine's event stream is down).",
            |m| m.observer_lists.load(std::sync::atomic::Ordering::Relaxed),
        ),
        (
            "racer_observer_reads_total",
            "Single containers read again after an engine event or racer's own change.",
            |m| m.observer_reads.load(std::sync::atomic::Ordering::Relaxed),
        ),
        (
            "racer_observer_events_total",
            "Engine events about the install's containers.",
            |m| m.observer_events.load(std::sync::atomic::Ordering::Relaxed),
        ),
        (
            "racer_health_checks_total",
            "Health checks run against replicas.",
            |m| m.health_checks.load(std::sync::atomic::Ordering::Relaxed),
        ),
        (
            "racer_health_check_failures_total",
            "Health checks that failed.",
            |m| {
                m.health_check_failures
                    .load(std::sync::atomic::Ordering::Relaxed)
            },
        ),
        (
            "racer_replica_start_failures_total",
            "Replica starts the engine refused; each is tried again after a back-off (250 ms, \
             doubling to 8 s).",
            |m| {
                m.replica_start_failures
                    .load(std::sync::atomic::Ordering::Relaxed)
            },
        ),
    ];
    for (name, help, read) in counters {
        family(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", control.map_or(0, |m| read(m)));
    }
    family(
        &mut out,
        "racer_autoscaler_decisions_total",
        "counter",
        "Replica changes the autoscaler made, by app and direction (out, in), since this server \
         started. Each one is also an app.autoscaled.<direction> event.",
    );
    for (app, direction, n) in control.map(|m| m.scaling()).unwrap_or_default() {
        if live.contains(app.as_str()) {
            let _ = writeln!(
                out,
                "racer_autoscaler_decisions_total{{app=\"{}\",direction=\"{direction}\"}} {n}",
                esc(&app)
            );
        }
    }

    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_render_cumulative_buckets_sum_and_count() {
        let h = racer_control::metrics::Histogram::default();
        h.observe(std::time::Duration::from_millis(3));
        h.observe(std::time::Duration::from_secs(2));
        let mut out = String::new();
        histogram(&mut out, "x_seconds", "", &h.snapshot());
        assert!(out.contains("x_seconds_bucket{le=\"0.001\"} 0\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.005\"} 1\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"2.5\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_sum 2.003\n"), "{out}");
        assert!(out.contains("x_seconds_count 2\n"), "{out}");
        let mut out = String::new();
        histogram(&mut out, "y", "app=\"a\"", &h.snapshot());
        assert!(out.contains("y_bucket{app=\"a\",le=\"1\"} 1\n"), "{out}");
        assert!(out.contains("y_count{app=\"a\"} 2\n"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
