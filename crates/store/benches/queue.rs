//! The durable queue's throughput (issue 14): `cargo bench -p racer-store --bench queue`.
//!
//! 4 workers on one store claim and complete 4,000 jobs, 1 and then 16 at a time, each call
//! completing what the worker holds and claiming the next in one commit; prints jobs/s and the
//! latency of one call (p50/p99) on SQLite (a file in a temporary directory) and,
//! when `RACER_TEST_DATABASE_URL` names a PostgreSQL server (`scripts/postgres.sh` starts one),
//! on a fresh database there. Goal on PostgreSQL: ≥ 2,000 jobs/s.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use racer_store::{NewJob, Store};
use sqlx::{Connection, Executor};

const JOBS: usize = 4_000;
const WORKERS: usize = 4;

/// Workers take `batch` jobs at a time: each call completes the jobs it holds and claims the
/// next ones in one commit (`complete_and_claim_many`; with 1, what `complete_and_claim` does).
async fn run(label: &str, store: &Store, batch: usize) {
    let kind = format!("bench-{batch}");
    for n in 0..JOBS {
        store
            .jobs()
            .enqueue(&NewJob::new(&kind, format!("{{\"n\":{n}}}")))
            .await
            .unwrap();
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let (store, kind) = (store.clone(), kind.clone());
        tasks.push(tokio::spawn(async move {
            let owner = format!("worker-{w}");
            let mut held: Vec<String> = Vec::new();
            let (mut claimed, mut calls) = (0usize, Vec::new());
            loop {
                let done: Vec<&str> = held.iter().map(String::as_str).collect();
                let t0 = Instant::now();
                let got = store
                    .jobs()
                    .complete_and_claim_many(
                        &done,
                        &owner,
                        &[&kind],
                        Duration::from_secs(30),
                        batch,
                    )
                    .await
                    .unwrap();
                calls.push(t0.elapsed());
                if got.is_empty() {
                    break;
                }
                claimed += got.len();
                held = got.into_iter().map(|j| j.id).collect();
            }
            (claimed, calls)
        }));
    }
    let (mut claimed, mut calls) = (0, Vec::new());
    for t in tasks {
        let (c, l) = t.await.unwrap();
        claimed += c;
        calls.extend(l);
    }
    let took = start.elapsed();
    assert_eq!(claimed, JOBS, "every job claimed once");
    let counts = store.jobs().counts().await.unwrap();
    let done = counts.iter().find(|k| k.kind == kind).unwrap().done;
    assert_eq!(done, JOBS as i64, "every job done");
    calls.sort();
    let pct = |p: f64| calls[((calls.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    let rate = JOBS as f64 / took.as_secs_f64();
    let goal = if label == "postgres" {
        format!(
            "; goal >= 2000 jobs/s: {}",
            if rate >= 2000.0 { "PASS" } else { "FAIL" }
        )
    } else {
        String::new()
    };
    println!(
        "queue on {label}, {batch} at a time: {WORKERS} workers, {JOBS} jobs in {:.0} ms: {rate:.0} jobs/s; one call (complete what it holds, claim the next) p50 {:.2} ms, p99 {:.2} ms{goal}",
        took.as_secs_f64() * 1000.0,
        pct(0.5),
        pct(0.99),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("racer.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    for batch in [1, 16] {
        run("sqlite", &store, batch).await;
    }
    store.close().await;

    let Ok(base) = std::env::var("RACER_TEST_DATABASE_URL") else {
        println!("queue on postgres: skipped (RACER_TEST_DATABASE_URL is not set; scripts/postgres.sh starts a server)");
        return;
    };
    sqlx::any::install_default_drivers();
    let db = format!("racer_bench_{}", std::process::id());
    let mut admin = sqlx::AnyConnection::connect(&base).await.unwrap();
    admin
        .execute(format!("CREATE DATABASE {db}").as_str())
        .await
        .unwrap();
    let (head, _) = base.rsplit_once('/').unwrap();
    let store = Store::connect(&format!("{head}/{db}")).await.unwrap();
    store.migrate().await.unwrap();
    for batch in [1, 16] {
        run("postgres", &store, batch).await;
    }
    store.close().await;
    admin
        .execute(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str())
        .await
        .unwrap();
}
