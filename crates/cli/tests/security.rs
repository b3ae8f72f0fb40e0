//! Issue 19 (containers confined): a replica keeps only `NET_BIND_SERVICE` of the Linux
//! capabilities, cannot gain privileges, runs under the engine's default seccomp profile; an app
//! asks for more capabilities by name and for a read-only root; a capability that does not
//! exist is refused naming the field, and nothing is recorded.

use crate::util::{docker, eventually, Env};

/// A FROM scratch busybox image that prints what it may do, then serves HTTP on 8000.
fn introspecting_image(env: &Env) -> String {
    let bb = std::path::Path::new("/bin/busybox");
    assert!(
        bb.exists(),
        "busybox-static is missing: scripts/ensure-tools.sh installs it"
    );
    let ctx = env.dir.path().join("introspect");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(bb, ctx.join("busybox")).unwrap();
    let script = "grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; \
        (busybox touch /rootfile 2>/dev/null && echo ROOT=writable) || echo ROOT=read-only; \
        (busybox touch /tmp/x && echo TMP=writable) || echo TMP=read-only; \
        exec busybox httpd -f -p 8000 -h /";
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nENTRYPOINT [\"/bin/sh\", \"-c\"]\nCMD [\"{script}\"]\n"
        ),
    )
    .unwrap();
    let tag = format!("racer-test-introspect:{}", uuid::Uuid::new_v4().simple());
    docker(&["build", "-q", "-t", &tag, ctx.to_str().unwrap()]);
    tag
}

/// The lines the container printed about itself, once they are all there.
fn facts(env: &Env, app: &str) -> String {
    let mut logs = String::new();
    eventually(60, "the container printed what it may do", || {
        logs = env.racer(&["logs", "--project-name", app]).stdout();
        logs.contains("TMP=")
    });
    logs
}

fn line<'a>(logs: &'a str, key: &str) -> &'a str {
    logs.lines()
        .find_map(|l| l.split_once(key).map(|(_, v)| v.trim()))
        .unwrap_or_else(|| panic!("no {key} in {logs}"))
}

#[test]
fn f19_containers_keep_only_the_capabilities_they_ask_for() {
    let env = Env::new();
    env.start(&[]);
    let image = introspecting_image(&env);
    let run = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "run",
            "--project-name",
            name,
            "--image",
            &image,
            "--app-port",
            "8000",
        ];
        args.extend_from_slice(extra);
        env.racer(&args)
    };

    // The defaults.
    run("plain", &[]).ok();
    let logs = facts(&env, "plain");
    // NET_BIND_SERVICE is capability 10.
    assert_eq!(line(&logs, "CapEff:"), "0000000000000400", "{logs}");
    assert_eq!(
        line(&logs, "Seccomp:"),
        "2",
        "the engine's seccomp filter: {logs}"
    );
    assert_eq!(line(&logs, "NoNewPrivs:"), "1", "{logs}");
    assert!(logs.contains("ROOT=writable"), "{logs}");
    let id = docker(&["ps", "-q", "--filter", "name=^plain-1-0$"]);
    let inspect = docker(&[
        "inspect",
        "--format",
        "{{json .HostConfig.CapDrop}} {{json .HostConfig.CapAdd}} {{json .HostConfig.SecurityOpt}} {{.HostConfig.PidsLimit}}",
        id.trim(),
    ]);
    assert_eq!(
        inspect.trim(),
        r#"["ALL"] ["CAP_NET_BIND_SERVICE"] ["no-new-privileges:true"] 1024"#
    );

    // What an app asks for: two capabilities back (any spelling) and a read-only root.
    run("asks", &["--cap-add", "chown,CAP_SETUID", "--read-only"]).ok();
    let logs = facts(&env, "asks");
    // CHOWN (0) + SETUID (7) + NET_BIND_SERVICE (10).
    assert_eq!(line(&logs, "CapEff:"), "0000000000000481", "{logs}");
    assert!(logs.contains("ROOT=read-only"), "{logs}");
    assert!(logs.contains("TMP=writable"), "{logs}");

    // A capability that does not exist: refused, naming the field; nothing recorded.
    let bad = run("typo", &["--cap-add", "CHOWM"]);
    let err = bad.code(1);
    assert!(
        err.contains("config.cap_add[0]") && err.contains("CHOWM"),
        "{err}"
    );
    let missing = env.racer(&["status", "--project-name", "typo"]);
    assert!(!missing.out.status.success(), "no app was recorded");
    drop(env);
    let _ = std::process::Command::new("docker")
        .args(["rmi", "-f", &image])
        .output();
}
