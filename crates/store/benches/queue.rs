//! The durable queue's throughput (issue 14): `cargo bench -p racer-store --bench queue`.
//!
//! 4 workers on one store claim and complete 4,000 jobs, each worker completing the job it holds
//! and claiming the next in one transaction (`complete_and_claim`: one commit per job);
//! prints jobs/s and the claim latency (p50/p99) on SQLite (a file in a temporary directory) and,
//! when `RACER_TEST_DATABASE_URL` names a PostgreSQL server (`scripts/postgres.sh` starts one),
//! on a fresh database there. Goal on PostgreSQL: ≥ 2,000 jobs/s.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use racer_store::{NewJob, Store};
use sqlx::{Connection, Executor};

const JOBS: usize = 4_000;
const WORKERS: usize = 4;

async fn run(label: &str, store: &Store) {
    for n in 0..JOBS {
        store
            .jobs()
            .enqueue(&NewJob::new("bench", format!("{{\"n\":{n}}}")))
            .await
            .unwrap();
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("worker-{w}");
            // A worker's loop: complete the job it holds and claim the next in one commit.
            let mut claims = Vec::new();
            let mut held: Option<String> = None;
            loop {
                let t0 = Instant::now();
                let job = store
                    .jobs()
                    .complete_and_claim(
                        held.as_deref(),
                        &owner,
                        &["bench"],
                        Duration::from_secs(30),
                    )
                    .await
                    .unwrap();
                let Some(job) = job else { break };
                claims.push(t0.elapsed());
                held = Some(job.id);
            }
            claims
        }));
    }
    let mut claims = Vec::new();
    for t in tasks {
        claims.extend(t.await.unwrap());
    }
    let took = start.elapsed();
    assert_eq!(claims.len(), JOBS, "every job claimed once");
    let done = store.jobs().counts().await.unwrap()[0].done;
    assert_eq!(done, JOBS as i64, "every job done");
    claims.sort();
    let pct = |p: f64| claims[((claims.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
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
        "queue on {label}: {WORKERS} workers, {JOBS} jobs claimed and completed in {:.0} ms: {rate:.0} jobs/s; claim p50 {:.2} ms, p99 {:.2} ms{goal}",
        took.as_secs_f64() * 1000.0,
        pct(0.5),
        pct(0.99),
    );
}

/// Workers that take `BATCH` jobs at a time (`complete_and_claim_many`): one commit per batch.
const BATCH: usize = 16;

async fn run_batched(label: &str, store: &Store) {
    for n in 0..JOBS {
        store
            .jobs()
            .enqueue(&NewJob::new("batch", format!("{{\"n\":{n}}}")))
            .await
            .unwrap();
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("batcher-{w}");
            let mut held: Vec<String> = Vec::new();
            let mut claimed = 0usize;
            let mut calls = Vec::new();
            loop {
                let done: Vec<&str> = held.iter().map(String::as_str).collect();
                let t0 = Instant::now();
                let batch = store
                    .jobs()
                    .complete_and_claim_many(
                        &done,
                        &owner,
                        &["batch"],
                        Duration::from_secs(30),
                        BATCH,
                    )
                    .await
                    .unwrap();
                calls.push(t0.elapsed());
                if batch.is_empty() {
                    break;
                }
                claimed += batch.len();
                held = batch.into_iter().map(|j| j.id).collect();
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
    assert_eq!(claimed, JOBS);
    let done = store
        .jobs()
        .counts()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kind == "batch")
        .unwrap()
        .done;
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
        "queue on {label}, batches of {BATCH}: {WORKERS} workers, {JOBS} jobs in {:.0} ms: {rate:.0} jobs/s; one call (complete a batch, claim the next) p50 {:.2} ms, p99 {:.2} ms{goal}",
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
    run("sqlite", &store).await;
    run_batched("sqlite", &store).await;
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
    run("postgres", &store).await;
    run_batched("postgres", &store).await;
    store.close().await;
    admin
        .execute(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str())
        .await
        .unwrap();
}
