//! The clusters repository on SQLite and PostgreSQL: local exists, names are unique, drain
//! round-trips, delete removes.

use std::collections::BTreeMap;

use racer_store::{ClusterRecord, Error};

use crate::contract;

contract!(clusters_start_with_local_and_keep_what_was_declared, |db| {
    let clusters = db.store.clusters();
    let all = clusters.list().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].name.as_str(), all[0].docker_host.as_deref()),
        ("local", None)
    );
    let b = ClusterRecord {
        name: "gpu-a".into(),
        docker_host: Some("unix:///run/b.sock".into()),
        swarm: false,
        cpu_milli: Some(32_000),
        memory_mb: None,
        gpu: 4,
        labels: BTreeMap::from([("zone".to_string(), "eu".to_string())]),
        drained: false,
    };
    assert_eq!(clusters.create(&b).await.unwrap(), b);
    assert!(matches!(
        clusters.create(&b).await,
        Err(Error::Conflict {
            what: "cluster",
            ..
        })
    ));
    let d = clusters.set_drained("gpu-a", true).await.unwrap();
    assert!(d.drained);
    assert_eq!(
        db.reopen().await.clusters().get("gpu-a").await.unwrap(),
        d,
        "survives a restart"
    );
    clusters.delete("gpu-a").await.unwrap();
    assert!(matches!(
        clusters.get("gpu-a").await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        clusters.delete("gpu-a").await,
        Err(Error::NotFound { .. })
    ));
});
