//! Warm pools' claims, on SQLite and PostgreSQL: many claimers at once never get the same
//! member; a claim of a pool with nothing ready gets nothing; an ended claim frees nothing twice.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use racer_store::{NewClaim, PoolRecord};

use crate::contract;

fn pool(name: &str) -> PoolRecord {
    PoolRecord {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.into(),
        org: "default".into(),
        image: "img:1".into(),
        size: 10,
        ports: vec![("web".into(), 8080)],
        cpu_milli: 1000,
        memory_mb: 512,
        claim_ttl_s: 3600,
        idle_timeout_s: None,
        health_path: None,
        env: BTreeMap::new(),
        workspace_path: "/workspace".into(),
        created_at: 0,
    }
}

fn new_claim(n: usize) -> NewClaim {
    NewClaim {
        id: uuid::Uuid::new_v4().to_string(),
        org: "default".into(),
        actor: format!("claimer-{n}"),
        token_sha256: "00".repeat(32),
        env: BTreeMap::new(),
        expires_at: i64::MAX,
        workspace: None,
    }
}

contract!(concurrent_claims_never_share_a_member, |db| {
    let p = db.store.pools().create(&pool("ide")).await.unwrap();
    for i in 0..10 {
        let id = format!("m{i}");
        db.store
            .pools()
            .add_member(&p.id, &id, false)
            .await
            .unwrap();
        db.store
            .pools()
            .set_container(&id, &format!("c{i}"), Some("10.0.0.1"))
            .await
            .unwrap();
        db.store.pools().mark_ready(&id).await.unwrap();
    }
    let mut tasks = Vec::new();
    for n in 0..20 {
        let (store, p) = (db.store.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            store
                .pools()
                .claim(&p, None, &new_claim(n), Instant::now())
                .await
                .unwrap()
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        if let Some(c) = t.await.unwrap() {
            got.push(c.member_id);
        }
    }
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(
        got.len(),
        10,
        "every ready member claimed, no more: {got:?}"
    );
    assert_eq!(unique.len(), 10, "no member claimed twice");
    // Nothing left: the next claim gets nothing.
    assert!(db
        .store
        .pools()
        .claim(&p, None, &new_claim(99), Instant::now())
        .await
        .unwrap()
        .is_none());
    // Ending a claim twice ends it once.
    let active = db.store.pools().claims(None, false).await.unwrap();
    assert_eq!(active.len(), 10);
    let first = &active[0].id;
    assert!(db
        .store
        .pools()
        .end_claim(first, "released", None)
        .await
        .unwrap()
        .is_some());
    assert!(db
        .store
        .pools()
        .end_claim(first, "released", None)
        .await
        .unwrap()
        .is_none());
    assert_eq!(db.store.pools().claims(None, false).await.unwrap().len(), 9);
    assert_eq!(
        db.store
            .pools()
            .claims(Some("other-org"), true)
            .await
            .unwrap()
            .len(),
        0
    );
});
