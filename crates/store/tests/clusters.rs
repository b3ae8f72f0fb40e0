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
        tls: None,
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

contract!(
    a_cluster_over_tls_keeps_the_paths_of_its_three_files,
    |db| {
        let clusters = db.store.clusters();
        let c = ClusterRecord {
            name: "remote".into(),
            docker_host: Some("tcp://10.0.0.2:2376".into()),
            tls: Some(racer_core::api::ClusterTls {
                ca: "/etc/racer/tls/ca.pem".into(),
                cert: "/etc/racer/tls/cert.pem".into(),
                key: "/etc/racer/tls/key.pem".into(),
            }),
            swarm: false,
            cpu_milli: None,
            memory_mb: None,
            gpu: 0,
            labels: BTreeMap::new(),
            drained: false,
        };
        assert_eq!(clusters.create(&c).await.unwrap(), c);
        let listed = clusters.list().await.unwrap();
        let local = listed.iter().find(|r| r.name == "local").unwrap();
        assert_eq!(local.tls, None, "local has no TLS files");
        assert_eq!(
            db.reopen().await.clusters().get("remote").await.unwrap(),
            c,
            "survives a restart"
        );
    }
);
