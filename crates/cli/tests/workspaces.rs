//! Issue 15: claims' workspaces against a real S3-compatible server (moto in server mode, which
//! `scripts/s3.sh` installs from PyPI and starts; the test script sets RACER_TEST_S3_ENDPOINT).
//! The prefix is restored into the container before the claim answers; a file written in the
//! container reaches the bucket within the interval; an object changed in the bucket reaches the
//! container; after a SIGKILL of the server a restarted one resumes the sync and loses nothing;
//! a release pushes last; a container killed behind racer's back fails its claim and the pool
//! refills.

use std::process::Command;

use racer_core::api::{ClaimInfo, PoolInfo};

use crate::util::{docker, eventually, hello_app, kill9, Env};

fn endpoint() -> Option<String> {
    match std::env::var("RACER_TEST_S3_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            assert!(
                std::env::var("RACER_REQUIRE_S3").as_deref() != Ok("1"),
                "RACER_REQUIRE_S3=1 but RACER_TEST_S3_ENDPOINT is not set (scripts/s3.sh starts one)"
            );
            eprintln!(
                "skipping: RACER_TEST_S3_ENDPOINT is not set (scripts/s3.sh starts an S3 server)"
            );
            None
        }
    }
}

/// `curl` against the S3 server, signed (SigV4) with the test's credentials.
fn s3(method: &str, url: &str, body: Option<&str>) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args([
        "-sS",
        "--max-time",
        "5",
        "-X",
        method,
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
    ]);
    c.args([
        "--aws-sigv4",
        "aws:amz:us-east-1:s3",
        "--user",
        "testing-key:testing-secret-never-logged",
    ]);
    if let Some(b) = body {
        c.args([
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            b,
        ]);
    }
    let out = c.arg(url).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// A file of the container, through `docker cp` (a tar on stdout).
fn container_file(cid: &str, path: &str) -> String {
    let out = Command::new("docker")
        .args(["cp", &format!("{cid}:{path}"), "-"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes a file into the container, as its user would.
fn write_in_container(env: &Env, cid: &str, name: &str, text: &str) {
    let local = env.dir.path().join(name);
    std::fs::write(&local, text).unwrap();
    docker(&[
        "cp",
        local.to_str().unwrap(),
        &format!("{cid}:/workspace/{name}"),
    ]);
}

#[test]
fn f15_workspaces_restore_sync_both_ways_survive_a_server_kill_and_push_on_release() {
    let Some(endpoint) = endpoint() else { return };
    let env = Env::new();
    let dir = hello_app(&env, "wsimg");
    let image = format!("racer-test-pool-ws:{}", std::process::id());
    docker(&["build", "-q", "-t", &image, dir.to_str().unwrap()]);
    let bucket = format!("racer-ws-{}", std::process::id());
    let base = format!("{endpoint}/{bucket}");
    assert!(
        matches!(s3("PUT", &base, None).0, 200 | 409),
        "bucket created"
    );
    assert_eq!(
        s3(
            "PUT",
            &format!("{base}/alice/hello.txt"),
            Some("restored text")
        )
        .0,
        200
    );
    assert_eq!(
        s3("PUT", &format!("{base}/alice/sub/deep.txt"), Some("deep")).0,
        200
    );

    let args = [
        "--s3-endpoint",
        endpoint.as_str(),
        "--workspace-sync-interval",
        "1",
    ];
    let creds = [
        ("AWS_ACCESS_KEY_ID", "testing-key"),
        ("AWS_SECRET_ACCESS_KEY", "testing-secret-never-logged"),
    ];
    let server = env.start_with_env(&args, &creds);
    env.racer(&[
        "pools",
        "create",
        "ws",
        "--image",
        &image,
        "--size",
        "1",
        "--port",
        "web=8000",
        "--health-path",
        "/health",
    ])
    .ok();
    eventually(60, "a ready container", || {
        env.racer(&["pools", "show", "ws", "--json"])
            .json::<PoolInfo>()
            .ready
            == 1
    });
    // A bad workspace URL names the field.
    let err = env
        .racer(&["claim", "ws", "--workspace", "http://nope"])
        .code(1);
    assert!(err.contains("workspace"), "{err}");

    let c: ClaimInfo = env
        .racer(&[
            "claim",
            "ws",
            "--workspace",
            &format!("s3://{bucket}/alice"),
            "--json",
        ])
        .json();
    let w = c.workspace.clone().expect("the claim's workspace");
    assert_eq!(
        w.restored_bytes,
        Some(("restored text".len() + "deep".len()) as i64)
    );
    eprintln!(
        "restore: {:?} bytes in {:?} ms",
        w.restored_bytes, w.restore_ms
    );
    let cid = c.container.clone().unwrap();
    assert!(container_file(&cid, "/workspace/hello.txt").contains("restored text"));
    assert!(container_file(&cid, "/workspace/sub/deep.txt").contains("deep"));

    // Container → bucket within the interval.
    write_in_container(&env, &cid, "new.txt", "written in the container");
    eventually(15, "new.txt in the bucket", || {
        s3("GET", &format!("{base}/alice/new.txt"), None).1 == "written in the container"
    });
    // Bucket → container.
    assert_eq!(
        s3(
            "PUT",
            &format!("{base}/alice/hello.txt"),
            Some("changed in the bucket")
        )
        .0,
        200
    );
    eventually(15, "the bucket's change in the container", || {
        container_file(&cid, "/workspace/hello.txt").contains("changed in the bucket")
    });

    // SIGKILL the server with a write not yet pushed; a restarted server resumes the sync.
    write_in_container(&env, &cid, "late.txt", "written before the kill");
    kill9(server.pid);
    env.start_with_env(&args, &creds);
    eventually(30, "late.txt in the bucket after the restart", || {
        s3("GET", &format!("{base}/alice/late.txt"), None).1 == "written before the kill"
    });
    let shown: ClaimInfo = env.racer(&["claims", "show", &c.id, "--json"]).json();
    assert_eq!(shown.state, "active", "the claim was adopted: {shown:?}");

    // Release: the last push completes before the container goes.
    write_in_container(&env, &cid, "final.txt", "pushed on release");
    env.racer(&["claims", "release", &c.id]).ok();
    assert_eq!(
        s3("GET", &format!("{base}/alice/final.txt"), None).1,
        "pushed on release",
        "in the bucket as soon as the release answers"
    );
    let log = std::fs::read_to_string(env.data_dir.join("server.log")).unwrap_or_default();
    assert!(
        !log.contains("testing-secret-never-logged"),
        "the secret key stays out of the log"
    );

    // Credentials and region given with the claim (kept in the server's memory only).
    eventually(
        60,
        "a ready container for the claim with its own credentials",
        || {
            env.racer(&["pools", "show", "ws", "--json"])
                .json::<PoolInfo>()
                .ready
                == 1
        },
    );
    let err = env
        .racer(&[
            "claim",
            "ws",
            "--workspace",
            &format!("s3://{bucket}/carol"),
            "--s3-access-key",
            "claim-key",
        ])
        .code(1);
    assert!(err.contains("s3_secret_key"), "{err}");
    let own: ClaimInfo = env
        .racer(&[
            "claim",
            "ws",
            "--workspace",
            &format!("s3://{bucket}/alice"),
            "--s3-region",
            "us-east-1",
            "--s3-access-key",
            "testing-key",
            "--s3-secret-key",
            "claim-secret-never-logged",
            "--json",
        ])
        .json();
    assert_eq!(
        own.workspace.as_ref().and_then(|w| w.restored_bytes),
        Some(
            [
                "changed in the bucket",
                "deep",
                "written in the container",
                "written before the kill",
                "pushed on release"
            ]
            .iter()
            .map(|t| t.len() as i64)
            .sum()
        ),
        "the claim's own credentials restored alice's workspace"
    );
    env.racer(&["claims", "release", &own.id]).ok();
    let log = std::fs::read_to_string(env.data_dir.join("server.log")).unwrap_or_default();
    assert!(!log.contains("claim-secret-never-logged"));

    // A claimed container killed behind racer's back: the claim fails, the pool refills.
    eventually(60, "a ready container again", || {
        env.racer(&["pools", "show", "ws", "--json"])
            .json::<PoolInfo>()
            .ready
            == 1
    });
    let c2: ClaimInfo = env.racer(&["claim", "ws", "--json"]).json();
    docker(&["rm", "-f", c2.container.as_deref().unwrap()]);
    eventually(20, "the claim failed", || {
        env.racer(&["claims", "show", &c2.id, "--json"])
            .json::<ClaimInfo>()
            .state
            == "failed"
    });
    eventually(60, "the pool refilled", || {
        env.racer(&["pools", "show", "ws", "--json"])
            .json::<PoolInfo>()
            .ready
            == 1
    });
    env.racer(&["pools", "delete", "ws"]).ok();
    docker(&["rmi", "-f", &image]);
}

#[test]
fn f15_storage_down_during_a_push_is_retried_and_nothing_is_lost() {
    if endpoint().is_none() {
        return;
    }
    // A storage server of this test's own, to stop and start again.
    let port = 59100 + std::process::id() % 400;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/s3.sh");
    let start = || {
        let out = Command::new("bash")
            .arg(&script)
            .env("RACER_S3_PORT", port.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let stop = || {
        let _ = Command::new("pkill")
            .args(["-f", &format!("moto_server -H 127.0.0.1 -p {port}")])
            .status();
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    let own = start();
    let base = format!("{own}/down-test");
    assert!(matches!(s3("PUT", &base, None).0, 200 | 409));
    let env = Env::new();
    let dir = hello_app(&env, "wsdown");
    let image = format!("racer-test-pool-wsdown:{}", std::process::id());
    docker(&["build", "-q", "-t", &image, dir.to_str().unwrap()]);
    env.start_with_env(
        &[
            "--s3-endpoint",
            own.as_str(),
            "--workspace-sync-interval",
            "1",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "testing-key"),
            ("AWS_SECRET_ACCESS_KEY", "testing-secret-never-logged"),
        ],
    );
    env.racer(&[
        "pools", "create", "down", "--image", &image, "--size", "1", "--port", "web=8000",
    ])
    .ok();
    let c: ClaimInfo = env
        .racer(&[
            "claim",
            "down",
            "--workspace",
            "s3://down-test/bob",
            "--json",
        ])
        .json();
    let cid = c.container.clone().unwrap();

    stop();
    write_in_container(
        &env,
        &cid,
        "during.txt",
        "written while the storage was down",
    );
    eventually(20, "the claim showing the sync error", || {
        env.racer(&["claims", "show", &c.id, "--json"])
            .json::<ClaimInfo>()
            .workspace
            .and_then(|w| w.sync_error)
            .is_some()
    });
    let text = env.racer(&["claims", "show", &c.id]).ok();
    assert!(text.contains("sync error:"), "{text}");
    // A release now cannot push: it is refused and the claim (and its data) stay.
    let err = env.racer(&["claims", "release", &c.id]).code(1);
    assert!(err.contains("last push"), "{err}");

    // The storage is back (empty: moto keeps nothing across restarts); the retry pushes.
    start();
    assert!(matches!(s3("PUT", &base, None).0, 200 | 409));
    eventually(60, "during.txt in the bucket after the retry", || {
        s3("GET", &format!("{base}/bob/during.txt"), None).1 == "written while the storage was down"
    });
    eventually(20, "the sync error cleared", || {
        env.racer(&["claims", "show", &c.id, "--json"])
            .json::<ClaimInfo>()
            .workspace
            .is_some_and(|w| w.sync_error.is_none())
    });
    // Down again: a release cannot push and is refused; with --no-sync it ends the claim anyway.
    stop();
    write_in_container(&env, &cid, "lost.txt", "never pushed");
    let err = env.racer(&["claims", "release", &c.id]).code(1);
    assert!(err.contains("last push"), "{err}");
    env.racer(&["claims", "release", &c.id, "--no-sync"]).ok();
    let ended: ClaimInfo = env.racer(&["claims", "show", &c.id, "--json"]).json();
    assert_eq!(ended.state, "released");
    start();
    env.racer(&["pools", "delete", "down"]).ok();
    stop();
    docker(&["rmi", "-f", &image]);
}
