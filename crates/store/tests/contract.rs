use racer_core::{AppName, AppRef};
use racer_store::{page_limit, Error, EventFilter, NewDeployment};

use crate::contract;

fn name(s: &str) -> AppName {
    AppName::parse(s).unwrap()
}

contract!(migrations_are_idempotent, |db| {
    db.store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();
    db.store.ping().await.unwrap();
});

contract!(create_get_by_name_and_id_delete, |db| {
    let apps = db.store.apps();
    let web = apps.create(&name("web"), "default", "admin").await.unwrap();
    assert_eq!(web.name, "web");
    let by_name = apps.get(&AppRef::Name("web".into())).await.unwrap();
    let by_id = apps.get(&AppRef::Id(web.id)).await.unwrap();
    assert_eq!(by_name, web);
    assert_eq!(by_id, web);
    assert_eq!(apps.count().await.unwrap(), 1);

    let gone = apps.delete(&AppRef::Id(web.id), "admin").await.unwrap();
    assert_eq!(gone.id, web.id);
    assert!(matches!(
        apps.get(&AppRef::Name("web".into())).await,
        Err(Error::NotFound { what: "app", .. })
    ));
    assert!(matches!(
        apps.delete(&AppRef::Name("web".into()), "admin").await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(apps.count().await.unwrap(), 0);
});

contract!(duplicate_name_is_a_conflict_and_changes_nothing, |db| {
    let apps = db.store.apps();
    let first = apps.create(&name("api"), "default", "admin").await.unwrap();
    let err = apps
        .create(&name("api"), "default", "admin")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict { field: "name", .. }),
        "{err:?}"
    );
    assert_eq!(err.kind(), racer_core::ErrorKind::Conflict);
    assert_eq!(apps.count().await.unwrap(), 1);
    assert_eq!(apps.get(&AppRef::Name("api".into())).await.unwrap(), first);
    // the refused create left no event behind
    let events = db
        .store
        .events()
        .list(&EventFilter::default(), 50, None)
        .await
        .unwrap();
    assert_eq!(events.items.len(), 1);
});

contract!(concurrent_creates_of_one_name_have_one_winner, |db| {
    let mut handles = Vec::new();
    for _ in 0..8 {
        let store = db.store.clone();
        handles.push(tokio::spawn(async move {
            store.apps().create(&name("race"), "default", "admin").await
        }));
    }
    let mut ok = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(_) => ok += 1,
            Err(Error::Conflict { .. }) => {}
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(db.store.apps().count().await.unwrap(), 1);
});

contract!(pagination_walks_every_app_once_in_order, |db| {
    let apps = db.store.apps();
    let mut names: Vec<String> = (0..7).map(|i| format!("app-{i}")).collect();
    for n in names.iter().rev() {
        apps.create(&name(n), "default", "admin").await.unwrap();
    }
    names.sort();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = apps.list(None, 3, cursor.as_deref()).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 3);
        seen.extend(page.items.into_iter().map(|a| a.name));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, names);
    assert!(matches!(
        apps.list(None, 3, Some("not-a-cursor!")).await,
        Err(Error::BadCursor)
    ));
    assert_eq!(page_limit(None), 50);
    assert_eq!(page_limit(Some(0)), 1);
    assert_eq!(page_limit(Some(10_000)), 200);
});

contract!(events_record_every_change_and_filter, |db| {
    let apps = db.store.apps();
    let a = apps.create(&name("a"), "default", "alice").await.unwrap();
    let b = apps.create(&name("b"), "default", "bob").await.unwrap();
    apps.delete(&AppRef::Id(a.id), "alice").await.unwrap();
    let events = db.store.events();

    let all = events
        .list(&EventFilter::default(), 50, None)
        .await
        .unwrap();
    let kinds: Vec<_> = all.items.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["app.created", "app.created", "app.deleted"]);
    assert!(all.items.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(all.items[1].actor, "bob");
    // The newest first, as many as asked (the dashboard's view).
    let recent = events.recent(&EventFilter::default(), 2).await.unwrap();
    let kinds: Vec<_> = recent.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["app.deleted", "app.created"]);
    assert_eq!(recent[1].actor, "bob");

    let only_a = EventFilter {
        app_id: Some(a.id),
        ..Default::default()
    };
    let for_a = events.list(&only_a, 50, None).await.unwrap();
    assert_eq!(for_a.items.len(), 2);
    assert!(for_a.items.iter().all(|e| e.app_id == Some(a.id)));

    let deleted = EventFilter {
        kind: Some("app.deleted".into()),
        ..Default::default()
    };
    assert_eq!(
        events.list(&deleted, 50, None).await.unwrap().items.len(),
        1
    );
    let prefix = EventFilter {
        kind: Some("app.".into()),
        ..Default::default()
    };
    assert_eq!(events.list(&prefix, 50, None).await.unwrap().items.len(), 3);
    let future = EventFilter {
        since_ms: Some(chrono::Utc::now().timestamp_millis() + 60_000),
        ..Default::default()
    };
    assert!(events
        .list(&future, 50, None)
        .await
        .unwrap()
        .items
        .is_empty());

    let p1 = events.list(&EventFilter::default(), 2, None).await.unwrap();
    assert_eq!(p1.items.len(), 2);
    let p2 = events
        .list(&EventFilter::default(), 2, p1.next_cursor.as_deref())
        .await
        .unwrap();
    assert_eq!(p2.items.len(), 1);
    assert!(p2.next_cursor.is_none());
    assert_eq!(p2.items[0].app_name.as_deref(), Some("a"));
    let _ = b;
});

contract!(state_survives_a_reopen, |db| {
    let web = db
        .store
        .apps()
        .create(&name("web"), "default", "admin")
        .await
        .unwrap();
    let again = db.reopen().await;
    assert_eq!(
        again.apps().get(&AppRef::Name("web".into())).await.unwrap(),
        web
    );
    again.close().await;
});

contract!(a_listed_page_sees_every_write_at_once, |db| {
    let apps = db.store.apps();
    apps.create(&name("one"), "default", "admin").await.unwrap();
    assert_eq!(apps.list(None, 50, None).await.unwrap().items.len(), 1);
    let two = apps.create(&name("two"), "default", "admin").await.unwrap();
    let page = apps.list(None, 50, None).await.unwrap();
    assert_eq!(
        page.items.len(),
        2,
        "the cached page was invalidated by the create"
    );
    apps.set_instances(&AppRef::Id(two.id), 3, "admin")
        .await
        .unwrap();
    let page = apps.list(None, 50, None).await.unwrap();
    assert_eq!(page.items[1].instances, 3, "and by a scale");
    apps.delete(&AppRef::Id(two.id), "admin").await.unwrap();
    assert_eq!(
        apps.list(None, 50, None).await.unwrap().items.len(),
        1,
        "and by a delete"
    );
});

contract!(rollouts_in_progress_and_deployment_outcomes, |db| {
    use racer_core::api::{DeploymentStatus, RunConfig, Source};
    let deployments = db.store.deployments();
    let source = Source::Image {
        image: "img:1".into(),
    };
    let config = RunConfig::default();
    let (app, d1) = deployments
        .create(&NewDeployment::of(&name("web"), &source, &config), "admin")
        .await
        .unwrap();
    assert!(deployments.latest_rolling_out().await.unwrap().is_empty());
    assert!(deployments.outcomes().await.unwrap().is_empty());
    let building = deployments.claim_next("server-a").await.unwrap().unwrap();
    assert_eq!(building.id, d1.id);
    let release = racer_store::NewRelease {
        number: 1,
        config: config.clone(),
        image: "img:1".into(),
        image_id: "sha256:1".into(),
        commit: None,
    };
    deployments.release(&building, &release).await.unwrap();
    let rolling = deployments.latest_rolling_out().await.unwrap();
    assert_eq!(rolling.len(), 1);
    assert_eq!((rolling[0].id, rolling[0].app_id), (d1.id, app.id));
    assert_eq!(rolling[0].status, DeploymentStatus::RollingOut);
    // A newer deployment of the app hides the older rollout, as `latest` does.
    let (_, d2) = deployments
        .create(&NewDeployment::of(&name("web"), &source, &config), "admin")
        .await
        .unwrap();
    assert!(deployments.latest_rolling_out().await.unwrap().is_empty());
    assert_eq!(deployments.latest(app.id).await.unwrap().unwrap().id, d2.id);
    deployments
        .set_status(&rolling[0], DeploymentStatus::Running, None)
        .await
        .unwrap();
    // A third deployment supersedes the pending second one.
    deployments
        .create(&NewDeployment::of(&name("web"), &source, &config), "admin")
        .await
        .unwrap();
    deployments
        .create(&NewDeployment::of(&name("api"), &source, &config), "admin")
        .await
        .unwrap();
    assert_eq!(
        deployments.outcomes().await.unwrap(),
        [
            ("web".to_owned(), DeploymentStatus::Running, 1),
            ("web".to_owned(), DeploymentStatus::Superseded, 1),
        ]
    );
});

contract!(concurrent_writers_all_succeed, |db| {
    // 16 deployments of 16 apps recorded at once (16 API requests in parallel): each one
    // transaction that reads, then writes. On SQLite a read transaction that has to become a
    // write one fails at once with "database is locked"; write transactions take the lock first.
    use racer_core::api::{RunConfig, Source};
    let source = Source::Image {
        image: "img:1".into(),
    };
    let config = RunConfig::default();
    let names: Vec<AppName> = (0..16).map(|i| name(&format!("app-{i}"))).collect();
    let results = futures_util::future::join_all(names.iter().map(|n| {
        let deployments = db.store.deployments();
        let (source, config) = (&source, &config);
        async move {
            deployments
                .create(&NewDeployment::of(n, source, config), "admin")
                .await
        }
    }))
    .await;
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(db.store.apps().all().await.unwrap().len(), 16);
});

contract!(
    deployments_across_apps_newest_first_and_by_organisation,
    |db| {
        use racer_core::api::{RunConfig, Source};
        let deployments = db.store.deployments();
        let source = Source::Image {
            image: "img:1".into(),
        };
        let config = RunConfig::default();
        let mut made = Vec::new();
        for (app, org) in [("web", "default"), ("api", "default"), ("other", "org-b")] {
            let n = name(app);
            let (_, d) = deployments
                .create(
                    &NewDeployment {
                        org,
                        ..NewDeployment::of(&n, &source, &config)
                    },
                    "admin",
                )
                .await
                .unwrap();
            made.push(d.id);
            // Distinct creation times: the cursor is the time of the last item.
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
        let all = deployments.list_all(None, 50, None).await.unwrap();
        let ids: Vec<_> = all.items.iter().map(|d| d.id).collect();
        made.reverse();
        assert_eq!(ids, made, "every app's, newest first");
        let mine = deployments
            .list_all(Some("default"), 50, None)
            .await
            .unwrap();
        assert_eq!(mine.items.len(), 2);
        assert!(mine.items.iter().all(|d| d.app_name != "other"));
        // Pages of one.
        let first = deployments.list_all(None, 1, None).await.unwrap();
        assert_eq!(first.items[0].id, made[0]);
        let second = deployments
            .list_all(None, 1, first.next_cursor.as_deref())
            .await
            .unwrap();
        assert_eq!(second.items[0].id, made[1]);
    }
);

contract!(
    a_stopped_build_is_queued_again_by_its_restarted_server_or_once_its_lease_is_stale,
    |db| {
        use racer_core::api::DeploymentStatus;
        use std::time::Duration;
        let deployments = db.store.deployments();
        let source = racer_core::api::Source::Image {
            image: "img:1".into(),
        };
        let config = racer_core::api::RunConfig::default();
        let stale = Duration::from_millis(300);
        let (_, a) = deployments
            .create(&NewDeployment::of(&name("web"), &source, &config), "admin")
            .await
            .unwrap();
        let (_, b) = deployments
            .create(&NewDeployment::of(&name("api"), &source, &config), "admin")
            .await
            .unwrap();
        assert_eq!(
            deployments
                .claim_next("server-a")
                .await
                .unwrap()
                .unwrap()
                .id,
            a.id
        );
        assert_eq!(
            deployments
                .claim_next("server-b")
                .await
                .unwrap()
                .unwrap()
                .id,
            b.id
        );
        // Server b (re)starts: only its own interrupted build goes back; a's is fresh and a's.
        assert_eq!(
            deployments
                .requeue_interrupted(Some("server-b"), stale)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            deployments.get(b.id).await.unwrap().status,
            DeploymentStatus::Pending
        );
        assert_eq!(
            deployments.get(a.id).await.unwrap().status,
            DeploymentStatus::Building
        );
        // a keeps touching its build: still not stale.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(deployments.touch_building(a.id, "server-a").await.unwrap());
        assert!(
            !deployments.touch_building(a.id, "server-b").await.unwrap(),
            "not b's"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            deployments.requeue_interrupted(None, stale).await.unwrap(),
            0
        );
        // a dies: after the stale time any server queues it again, with a line saying why.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            deployments.requeue_interrupted(None, stale).await.unwrap(),
            1
        );
        let again = deployments.get(a.id).await.unwrap();
        assert_eq!(again.status, DeploymentStatus::Pending);
        let log = deployments.log(a.id, 0).await.unwrap();
        assert!(log.contains("stopped answering"), "{log}");
        assert!(
            !deployments.touch_building(a.id, "server-a").await.unwrap(),
            "a lost it"
        );
    }
);

contract!(
    servers_claiming_builds_at_once_take_each_deployment_once,
    |db| {
        let source = racer_core::api::Source::Image {
            image: "img:1".into(),
        };
        let config = racer_core::api::RunConfig::default();
        let mut ids = std::collections::HashSet::new();
        for i in 0..12 {
            let (_, d) = db
                .store
                .deployments()
                .create(
                    &NewDeployment::of(&name(&format!("app-{i}")), &source, &config),
                    "admin",
                )
                .await
                .unwrap();
            ids.insert(d.id);
        }
        // Three servers (three handles on the database), claiming until nothing is left.
        let mut servers = Vec::new();
        for s in 0..3 {
            let store = db.reopen().await;
            servers.push(tokio::spawn(async move {
                let me = format!("server-{s}");
                let mut got = Vec::new();
                for _ in 0..40 {
                    match store.deployments().claim_next(&me).await.unwrap() {
                        Some(d) => got.push(d.id),
                        None => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
                    }
                }
                got
            }));
        }
        let mut claimed = Vec::new();
        for s in servers {
            claimed.extend(s.await.unwrap());
        }
        let unique: std::collections::HashSet<_> = claimed.iter().copied().collect();
        assert_eq!(
            claimed.len(),
            unique.len(),
            "a deployment claimed twice: {claimed:?}"
        );
        assert_eq!(unique, ids, "every deployment claimed");
    }
);
