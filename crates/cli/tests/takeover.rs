//! Issue 14: two servers on one PostgreSQL; the one building a deployment is killed (SIGKILL)
//! mid-build, and the other takes the build over once its lease is stale, builds it and runs it.

use racer_core::api::{Deployment, DeploymentStatus};

use crate::util::{get_ok, git, kill9, postgres_db, Env};

#[test]
fn f14_a_build_whose_server_is_killed_completes_on_the_other_server() {
    let Some(url) = postgres_db() else { return };
    let image = {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../scripts/conda-standin-image.sh");
        let out = std::process::Command::new("bash")
            .arg(script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let (a, b) = (Env::new(), Env::new());
    // Short leases: a stale build is taken over after three TTLs (9 s here, 45 s by default).
    let db = ["--database-url", url.as_str(), "--lease-ttl", "3"];
    let server_a = a.start(&db);
    b.start(&db);

    // A build that takes a while: long enough to kill its server in the middle.
    let dir = a.dir.path().join("slow");
    std::fs::create_dir_all(dir.join("public")).unwrap();
    std::fs::write(dir.join("public/index.html"), "taken over\n").unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {image}\nRUN sleep 6\nWORKDIR /home/mambauser\nCOPY public public\nEXPOSE 8000\nCMD [\"python\", \"-m\", \"http.server\", \"8000\", \"--directory\", \"public\"]\n"
        ),
    )
    .unwrap();
    // A git source: whichever server builds clones it (an uploaded folder lives in the data
    // directory of the server that received it).
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-qm", "slow"]);
    let repo = format!("file://{}", dir.display());
    let out = a
        .racer(&[
            "run",
            "--project-name",
            "slow",
            "--git",
            &repo,
            "--no-wait",
            "--json",
        ])
        .ok();
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let id = first["deployment"]["id"].as_str().unwrap().to_owned();
    let status = |env: &Env| -> Deployment {
        env.racer(&["status", "--project-name", "slow", "--json"])
            .json::<racer_core::api::AppStatus>()
            .deployment
            .expect("a deployment")
    };
    crate::util::eventually(30, "server a building the deployment", || {
        status(&a).status == DeploymentStatus::Building
    });
    kill9(server_a.pid);

    // b notices the stale lease (three TTLs untouched), builds it again and runs it.
    crate::util::eventually(150, "the build taken over and the app running", || {
        let d = status(&b);
        assert_ne!(d.status, DeploymentStatus::Failed, "{d:?}");
        d.status == DeploymentStatus::Running
    });
    let d = status(&b);
    assert_eq!(d.id.to_string(), id, "the same deployment, not a new one");
    let info: racer_core::api::AppStatus = serde_json::from_str(
        &b.racer(&["status", "--project-name", "slow", "--json"])
            .ok(),
    )
    .unwrap();
    let body = get_ok(&info.urls[1]);
    assert!(body.contains("taken over"), "{body}");
    let events = b
        .racer(&["events", "--kind", "deployment.resumed", "--json"])
        .ok();
    assert!(events.contains("stopped answering"), "{events}");
}
