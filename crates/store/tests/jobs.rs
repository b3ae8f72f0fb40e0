//! The durable queue's contract, on SQLite and PostgreSQL: concurrent claimers never share a job,
//! an expired lease is reclaimed (and the old owner can no longer act), failures back off and
//! end dead with their error, priorities and delays order the claims, dedupe keys enqueue once.

use std::collections::HashSet;
use std::time::Duration;

use racer_store::{Failed, NewJob};

use crate::contract;

fn job(kind: &str, n: usize) -> NewJob {
    NewJob::new(kind, format!("{{\"n\":{n}}}"))
}

contract!(concurrent_claimers_never_share_a_job, |db| {
    const JOBS: usize = 120;
    for n in 0..JOBS {
        db.store.jobs().enqueue(&job("build", n)).await.unwrap();
    }
    let mut workers = Vec::new();
    for w in 0..6 {
        let store = db.store.clone();
        workers.push(tokio::spawn(async move {
            let owner = format!("worker-{w}");
            let mut got = Vec::new();
            while let Some(j) = store
                .jobs()
                .claim(&owner, &["build"], Duration::from_secs(30))
                .await
                .unwrap()
            {
                assert_eq!(j.owner, owner);
                assert!(store.jobs().complete(&j.id, &owner).await.unwrap());
                got.push(j.id);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), JOBS, "every job claimed once");
    assert_eq!(unique.len(), JOBS, "no job claimed twice");
    let counts = db.store.jobs().counts().await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].done, JOBS as i64);
    assert_eq!(counts[0].pending + counts[0].running, 0);
});

contract!(
    an_expired_lease_is_reclaimed_and_the_old_owner_loses_it,
    |db| {
        let jobs = db.store.jobs();
        let id = jobs.enqueue(&job("place", 1)).await.unwrap();
        let first = jobs
            .claim("a", &[], Duration::from_millis(150))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((first.id.as_str(), first.attempts), (id.as_str(), 1));
        // Leased: nobody else gets it, and the holder can renew.
        assert!(jobs
            .claim("b", &[], Duration::from_secs(5))
            .await
            .unwrap()
            .is_none());
        assert!(jobs
            .heartbeat(&id, "a", Duration::from_millis(150))
            .await
            .unwrap());
        assert!(!jobs
            .heartbeat(&id, "b", Duration::from_secs(5))
            .await
            .unwrap());
        tokio::time::sleep(Duration::from_millis(300)).await;
        // a died: b takes it over after the lease ran out.
        let second = jobs
            .claim("b", &[], Duration::from_secs(5))
            .await
            .unwrap()
            .expect("the expired job is claimable");
        assert_eq!(
            (second.id.as_str(), second.attempts, second.owner.as_str()),
            (id.as_str(), 2, "b")
        );
        assert!(!jobs.complete(&id, "a").await.unwrap(), "a lost its lease");
        assert!(!jobs
            .heartbeat(&id, "a", Duration::from_secs(5))
            .await
            .unwrap());
        assert_eq!(
            jobs.fail(&id, "a", "late", Duration::ZERO).await.unwrap(),
            Failed::LostLease
        );
        assert!(jobs.complete(&id, "b").await.unwrap());
        assert_eq!(jobs.state(&id).await.unwrap().0, "done");
    }
);

contract!(
    failures_back_off_then_the_job_is_dead_with_its_error,
    |db| {
        let jobs = db.store.jobs();
        let mut j = job("build", 1);
        j.max_attempts = 2;
        let id = jobs.enqueue(&j).await.unwrap();
        let c = jobs
            .claim("w", &[], Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            jobs.fail(&c.id, "w", "engine said no", Duration::from_millis(300))
                .await
                .unwrap(),
            Failed::Retrying
        );
        // Backing off: not claimable yet, and counted as failed.
        assert!(jobs
            .claim("w", &[], Duration::from_secs(5))
            .await
            .unwrap()
            .is_none());
        let counts = jobs.counts().await.unwrap();
        assert_eq!((counts[0].failed, counts[0].pending), (1, 0));
        tokio::time::sleep(Duration::from_millis(400)).await;
        let c = jobs
            .claim("w", &[], Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.attempts, 2);
        assert_eq!(c.last_error.as_deref(), Some("engine said no"));
        assert_eq!(
            jobs.fail(&c.id, "w", "still no", Duration::ZERO)
                .await
                .unwrap(),
            Failed::Dead
        );
        assert_eq!(
            jobs.state(&id).await.unwrap(),
            ("dead".to_string(), 2, Some("still no".to_string()))
        );
        assert!(jobs
            .claim("w", &[], Duration::from_secs(5))
            .await
            .unwrap()
            .is_none());
        assert_eq!(jobs.counts().await.unwrap()[0].dead, 1);

        // A worker that dies on the last attempt leaves a dead job, not an endless one.
        let mut j = job("build", 2);
        j.max_attempts = 1;
        let id = jobs.enqueue(&j).await.unwrap();
        jobs.claim("w", &[], Duration::from_millis(100))
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(jobs
            .claim("w2", &[], Duration::from_secs(5))
            .await
            .unwrap()
            .is_none());
        let (state, _, err) = jobs.state(&id).await.unwrap();
        assert_eq!(state, "dead");
        assert!(err.unwrap().contains("lease"));
    }
);

contract!(
    priority_then_age_orders_claims_and_delays_defer_them,
    |db| {
        let jobs = db.store.jobs();
        let mut low = job("place", 1);
        low.priority = 1;
        let mut high = job("place", 2);
        high.priority = 5;
        let mut later = job("place", 3);
        later.priority = 5;
        later.delay = Duration::from_millis(300);
        let low = jobs.enqueue(&low).await.unwrap();
        let high = jobs.enqueue(&high).await.unwrap();
        let later = jobs.enqueue(&later).await.unwrap();
        let other = jobs.enqueue(&job("build", 4)).await.unwrap();
        let counts = jobs.counts().await.unwrap();
        let place = counts.iter().find(|c| c.kind == "place").unwrap();
        assert_eq!((place.pending, place.deferred), (2, 1));
        let lease = Duration::from_secs(5);
        assert_eq!(
            jobs.claim("w", &["place"], lease)
                .await
                .unwrap()
                .unwrap()
                .id,
            high
        );
        assert_eq!(
            jobs.claim("w", &["place"], lease)
                .await
                .unwrap()
                .unwrap()
                .id,
            low
        );
        assert!(
            jobs.claim("w", &["place"], lease).await.unwrap().is_none(),
            "later is deferred"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            jobs.claim("w", &["place"], lease)
                .await
                .unwrap()
                .unwrap()
                .id,
            later
        );
        assert_eq!(
            jobs.claim("w", &["build", "x"], lease)
                .await
                .unwrap()
                .unwrap()
                .id,
            other
        );
    }
);

contract!(a_dedupe_key_enqueues_once, |db| {
    let jobs = db.store.jobs();
    let mut j = job("build", 1);
    j.dedupe_key = Some("build:deployment-1".into());
    let a = jobs.enqueue(&j).await.unwrap();
    let b = jobs.enqueue(&j).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(jobs.counts().await.unwrap()[0].pending, 1);
});

contract!(
    batch_claimers_never_share_a_job_and_complete_what_they_hold,
    |db| {
        const JOBS: usize = 90;
        for n in 0..JOBS {
            db.store.jobs().enqueue(&job("build", n)).await.unwrap();
        }
        let mut workers = Vec::new();
        for w in 0..3 {
            let store = db.store.clone();
            workers.push(tokio::spawn(async move {
                let owner = format!("batch-{w}");
                let mut got: Vec<String> = Vec::new();
                let mut held: Vec<String> = Vec::new();
                loop {
                    let done: Vec<&str> = held.iter().map(String::as_str).collect();
                    let batch = store
                        .jobs()
                        .complete_and_claim_many(
                            &done,
                            &owner,
                            &["build"],
                            Duration::from_secs(30),
                            8,
                        )
                        .await
                        .unwrap();
                    assert!(batch.len() <= 16);
                    if batch.is_empty() {
                        break;
                    }
                    held = batch.iter().map(|j| j.id.clone()).collect();
                    got.extend(held.iter().cloned());
                }
                got
            }));
        }
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.await.unwrap());
        }
        let unique: HashSet<&String> = all.iter().collect();
        assert_eq!((all.len(), unique.len()), (JOBS, JOBS));
        let counts = db.store.jobs().counts().await.unwrap();
        assert_eq!(
            counts[0].done, JOBS as i64,
            "the last batch was completed too"
        );
    }
);
