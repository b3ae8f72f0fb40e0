//! The use cases, end to end on the engine: what each service records, and what the loops make
//! of it.

use std::time::Duration;

use racer_core::api::{
    DeployRequest, DeploymentStatus, RerunRequest, RollbackRequest, RunConfig, Source,
};
use racer_core::ErrorKind;

use crate::util::{admin, eventually, member, Plane};

const WAIT: Duration = Duration::from_secs(60);

fn image_deploy(app: &str, image: &str, instances: u32) -> DeployRequest {
    DeployRequest {
        app: app.into(),
        source: Source::Image {
            image: image.into(),
        },
        config: RunConfig::default(),
        instances: Some(instances),
    }
}

/// The running replicas of an app, by release.
async fn running(plane: &Plane, app: uuid::Uuid) -> Vec<(Option<i64>, String)> {
    let mut v: Vec<_> = plane
        .ctx
        .runtime
        .list(Some(app))
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.running())
        .map(|c| (c.release, c.id))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_scale_rerun_rollback_and_delete_converge_on_the_engine() {
    let mut plane = Plane::start().await;
    let image = plane.hello_image();
    let who = admin();
    let s = &plane.services;

    let deployed = s
        .deploy(&who, &image_deploy("svc-web", &image, 1))
        .await
        .unwrap();
    assert_eq!(deployed.deployment.status, DeploymentStatus::Pending);
    let id = deployed.deployment.id.to_string();
    eventually("the first deployment to run", WAIT, || async {
        let d = s.deployment(&who, &id).await.unwrap();
        assert!(
            !matches!(
                d.status,
                DeploymentStatus::Failed | DeploymentStatus::RolledBack
            ),
            "{d:?}"
        );
        (d.status == DeploymentStatus::Running).then_some(())
    })
    .await;
    let app = deployed.app.id;
    assert_eq!(running(&plane, app).await.len(), 1);
    // The health checker found it healthy: the status says so.
    let status = s.app_status(&who, "svc-web").await.unwrap();
    assert_eq!(status.containers.len(), 1);
    assert_eq!(status.containers[0].health, "healthy");
    assert_eq!(status.release.as_ref().map(|r| r.number), Some(1));

    // Scale: desired state only; the runner converges.
    let scaled = s.scale(&who, "svc-web", 3).await.unwrap();
    assert_eq!(scaled.instances, 3);
    eventually("3 replicas", WAIT, || async {
        (running(&plane, app).await.len() == 3).then_some(())
    })
    .await;

    // Rerun without a rebuild: release 2 from the same image, rolled out over the old one.
    let rerun = s
        .rerun(
            &who,
            "svc-web",
            &RerunRequest {
                no_rebuild: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let rid = rerun.deployment.id.to_string();
    eventually("release 2 to replace release 1", WAIT, || async {
        let d = s.deployment(&who, &rid).await.unwrap();
        let on_engine = running(&plane, app).await;
        (d.status == DeploymentStatus::Running
            && on_engine.len() == 3
            && on_engine.iter().all(|(r, _)| *r == Some(2)))
        .then_some(())
    })
    .await;

    // Roll back: to release 1 (a new release, 3, with release 1's image and config).
    let rb = s
        .rollback(&who, "svc-web", &RollbackRequest { to: Some(1) })
        .await
        .unwrap();
    let bid = rb.deployment.id.to_string();
    eventually("the rollback to run", WAIT, || async {
        let d = s.deployment(&who, &bid).await.unwrap();
        let on_engine = running(&plane, app).await;
        (d.status == DeploymentStatus::Running
            && on_engine.len() == 3
            && on_engine.iter().all(|(r, _)| *r == Some(3)))
        .then_some(())
    })
    .await;
    let refused = s
        .rollback(&who, "svc-web", &RollbackRequest { to: Some(3) })
        .await
        .unwrap_err();
    assert_eq!(refused.field(), Some("to"), "{refused:?}");

    // Down and up: no replica, then the same count again.
    s.set_running(&who, "svc-web", false).await.unwrap();
    eventually("no replica while down", WAIT, || async {
        running(&plane, app).await.is_empty().then_some(())
    })
    .await;
    s.set_running(&who, "svc-web", true).await.unwrap();
    eventually("3 replicas again", WAIT, || async {
        (running(&plane, app).await.len() == 3).then_some(())
    })
    .await;

    // Delete: the record goes at once; the reconciler removes every container.
    s.delete_app(&who, "svc-web").await.unwrap();
    assert_eq!(
        s.find_app(&who, "svc-web").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    eventually("no container of the deleted app", WAIT, || async {
        plane
            .ctx
            .runtime
            .list(Some(app))
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    plane.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_deploys_name_their_field_and_record_nothing() {
    let plane = Plane::start().await;
    let who = admin();
    let s = &plane.services;
    let cases = [
        (image_deploy("Bad_Name", "x", 1), "app"),
        (image_deploy("svc-zero", "x", 0), "instances"),
        (image_deploy("svc-many", "x", 101), "instances"),
        (image_deploy("svc-empty", " ", 1), "source.image"),
        // Nothing can be pulled here: the image is refused before anything is recorded.
        (
            image_deploy("svc-missing", "racer-no-such-image:nope", 1),
            "source.image",
        ),
        (
            DeployRequest {
                config: RunConfig {
                    app_port: Some(0),
                    ..Default::default()
                },
                ..image_deploy("svc-port", "x", 1)
            },
            "config.app_port",
        ),
        (
            DeployRequest {
                source: Source::Path {
                    path: "/somewhere".into(),
                    upload: "0000".into(),
                },
                ..image_deploy("svc-upload", "x", 1)
            },
            "source.upload",
        ),
    ];
    for (req, field) in cases {
        let e = s.deploy(&who, &req).await.unwrap_err();
        assert_eq!(e.field(), Some(field), "{}: {e:?}", req.app);
        assert_ne!(e.kind(), ErrorKind::Internal, "{e:?}");
    }
    let apps = s.list_apps(&who, None, None).await.unwrap();
    assert!(apps.items.is_empty(), "{:?}", apps.items);
    plane.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organisations_app_is_not_found() {
    let plane = Plane::start().await;
    let s = &plane.services;
    let (a, b) = (member("org-a"), member("org-b"));
    let app = s.create_app(&a, "svc-mine").await.unwrap();
    assert_eq!(app.org, "org-a");
    assert_eq!(s.find_app(&a, "svc-mine").await.unwrap().id, app.id);
    for by in ["svc-mine".to_owned(), app.id.to_string()] {
        let e = s.find_app(&b, &by).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e:?}");
        let e = s.scale(&b, &by, 2).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e:?}");
    }
    assert!(s.list_apps(&b, None, None).await.unwrap().items.is_empty());
    // The install's admin token sees every organisation.
    assert_eq!(s.find_app(&admin(), "svc-mine").await.unwrap().id, app.id);
    // A name taken in another organisation is a conflict on the name, not a leak of the app.
    let e = s.create_app(&b, "svc-mine").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e:?}");
    plane.stop().await;
}
