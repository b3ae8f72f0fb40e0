//! Issue 18, the settings half of "speak each seed's language": the seeds' environment variables
//! (`DATABASE_URL`, `API_PORT`, `BASE_DOMAIN`, `DOCKER_HOST`, `JWT_SECRET_KEY`, `API_KEY`,
//! `RESOURCE_CPU_LIMIT`, `RESOURCE_MEMORY_LIMIT`) take effect, `RACER_*` names win, every
//! `racer-server` setting is taken and replayed by `racerctl server start|restart`, the seed-004
//! spec applies as written (`valueFrom: sdk`), and `--log-level`.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use racer_core::api::{ApplyResult, ServerInfo};
use racer_core::auth::LoginResponse;

use crate::util::{bin, docker, eventually, get_ok, hello_app, postgres_db, Env, Run};

/// The long options a `--help` text lists (`--port <PORT>` → `--port`).
fn long_options(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l
                .strip_prefix("-h, ")
                .or(l.strip_prefix("-V, "))
                .unwrap_or(l);
            l.starts_with("--").then(|| {
                l.split([' ', ',', '='])
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
        })
        .collect()
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The socket of the engine the suite uses (`DOCKER_HOST`, else the default one).
fn engine_socket() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if h.starts_with("unix://") => h.trim_start_matches("unix://").to_owned(),
        _ => "/var/run/docker.sock".to_owned(),
    }
}

/// `racerctl server start` on free ports with only `env` (the seeds' names) for settings.
fn start_seeded(env: &Env, extra: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut args = vec!["server", "start", "--proxy-port", "0"];
    args.extend_from_slice(extra);
    let mut c = Command::new(bin("racerctl"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("RACER_") {
            c.env_remove(&k);
        }
    }
    for s in racer_core::settings::SEED_ENV {
        c.env_remove(s.seed);
    }
    c.args(&args)
        .env("RACER_DATA_DIR", &env.data_dir)
        .env("RACER_SERVER_BIN", bin("racer-server"))
        .current_dir(env.dir.path());
    for (k, v) in vars {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    Run {
        what: format!("racerctl {} with {vars:?}", args.join(" ")),
        out,
    }
}

fn info(env: &Env) -> ServerInfo {
    let info: ServerInfo = env.racerctl(&["info", "--json"]).json();
    *env.install.borrow_mut() = info.install_id.clone();
    info
}

#[test]
fn f18_server_start_takes_every_racer_server_setting_and_restart_replays_them() {
    let env = Env::new();
    let server_help = Command::new(bin("racer-server"))
        .arg("--help")
        .output()
        .unwrap();
    let server_opts = long_options(&String::from_utf8_lossy(&server_help.stdout));
    let start_opts = long_options(&env.racerctl(&["server", "start", "--help"]).ok());
    assert!(server_opts.contains("--session-ttl"), "{server_opts:?}");
    let missing: Vec<_> = server_opts
        .iter()
        .filter(|o| !["--help", "--version", "--data-dir"].contains(&o.as_str()))
        .filter(|o| !start_opts.contains(*o))
        .collect();
    assert!(
        missing.is_empty(),
        "racerctl server start lacks racer-server's {missing:?}"
    );

    // A bad value is racer-server's own message, and nothing runs.
    let err = env
        .racerctl(&["server", "start", "--port", "0", "--balance", "fastest"])
        .code(1);
    assert!(
        err.contains("fastest") && err.contains("--balance"),
        "{err}"
    );
    assert!(env.server_file().is_none());

    env.start(&[
        "--domain",
        "replayed.test",
        "--session-ttl",
        "2h",
        "--balance",
        "least-connections",
        "--proxy-bind",
        "127.0.0.1",
        "--container-memory",
        "256Mi",
        "--container-cpus",
        "0.25",
        "--log-level",
        "info",
    ]);
    let recorded = env.data_dir.join("start-args.json");
    let mode = std::fs::metadata(&recorded).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "start-args.json is 0600");
    let before = info(&env);
    assert_eq!(before.domain.as_deref(), Some("replayed.test"));

    // A bare restart replays every setting; one given to restart wins over the recorded one.
    let out = env.racerctl(&["server", "restart"]).ok();
    assert!(out.contains("racer server started"), "{out}");
    let after = info(&env);
    assert_ne!(after.pid, before.pid, "a new process");
    assert_eq!(after.domain.as_deref(), Some("replayed.test"));
    assert_eq!(after.container_memory_mb, Some(256));
    assert_eq!(after.container_cpus, Some(0.25));
    env.racerctl(&["server", "restart", "--domain", "again.test"])
        .ok();
    let again = info(&env);
    assert_eq!(again.domain.as_deref(), Some("again.test"));
    assert_eq!(again.container_memory_mb, Some(256), "the rest is kept");
}

#[test]
fn f18_seed_env_names_take_effect_and_racer_names_win() {
    let env = Env::new();
    let port = free_port();
    let link = env.dir.path().join("engine.sock");
    std::os::unix::fs::symlink(engine_socket(), &link).unwrap();
    let docker_host = format!("unix://{}", link.display());
    let port_s = port.to_string();
    start_seeded(
        &env,
        &[],
        &[
            ("API_PORT", &port_s),
            ("BASE_DOMAIN", "seed.test"),
            ("RACER_DOMAIN", "racer.test"),
            ("DOCKER_HOST", &docker_host),
            ("RESOURCE_CPU_LIMIT", "0.5"),
            ("RESOURCE_MEMORY_LIMIT", "192Mi"),
        ],
    )
    .ok();
    let file = env.server_file().unwrap();
    assert_eq!(file.api_url, format!("http://127.0.0.1:{port}"), "API_PORT");
    let i = info(&env);
    assert_eq!(
        i.domain.as_deref(),
        Some("racer.test"),
        "RACER_DOMAIN wins over BASE_DOMAIN"
    );
    assert_eq!(i.docker_host.as_deref(), Some(docker_host.as_str()));
    assert!(i.docker_version.is_some(), "the engine answers: {i:?}");
    assert_eq!(i.container_cpus, Some(0.5));
    assert_eq!(i.container_memory_mb, Some(192));

    // The defaults reach a container whose release sets no limits.
    let dir = hello_app(&env, "limits");
    env.racer(&[
        "run",
        "--project-name",
        "limits",
        "--path",
        dir.to_str().unwrap(),
    ])
    .ok();
    let id = env.containers().into_iter().next().expect("a replica");
    let limits = docker(&[
        "inspect",
        "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}",
        &id,
    ]);
    assert_eq!(
        limits.trim(),
        format!("{} {}", 192u64 << 20, 500_000_000u64),
        "RESOURCE_MEMORY_LIMIT and RESOURCE_CPU_LIMIT"
    );
    env.racerctl(&["server", "stop"]).ok();

    // A DOCKER_HOST nothing answers at: the server runs, degraded, and says why.
    let env2 = Env::new();
    start_seeded(
        &env2,
        &["--port", "0"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    )
    .ok();
    let health = env2.racerctl(&["health", "--json"]);
    let h: serde_json::Value = serde_json::from_slice(&health.out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", health.stdout()));
    assert_eq!(h["status"], "degraded", "{h}");
    let docker = &h["components"][1];
    assert_eq!(docker["name"], "docker", "{h}");
    assert_eq!(docker["healthy"], false, "{h}");
}

#[test]
fn f18_database_url_is_the_store() {
    let Some(url) = postgres_db() else { return };
    let env = Env::new();
    start_seeded(&env, &["--port", "0"], &[("DATABASE_URL", &url)]).ok();
    assert_eq!(info(&env).store, "postgres");
    assert!(!env.data_dir.join("racer.db").exists(), "no SQLite file");
}

#[tokio::test(flavor = "multi_thread")]
async fn f18_api_key_is_the_admin_token_never_written_nor_logged() {
    let key = "seed-api-key-0123456789abcdef";
    let mut env = Env::new();
    // Too short: refused with the rule, nothing runs.
    let err = start_seeded(&env, &["--port", "0"], &[("API_KEY", "short")]).code(1);
    assert!(
        err.contains("too short") && err.contains("API_KEY"),
        "{err}"
    );
    assert!(env.server_file().is_none());

    let out = start_seeded(&env, &["--port", "0"], &[("API_KEY", key)]).ok();
    assert!(out.contains("the one you gave"), "{out}");
    assert!(!env.data_dir.join("admin.token").exists(), "no admin.token");
    let api = env.server_file().unwrap().api_url;
    let http = reqwest::Client::new();
    let anon = http.get(format!("{api}/api/v1/info")).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    let ok = http
        .get(format!("{api}/api/v1/info"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let i: ServerInfo = ok.json().await.unwrap();
    assert_eq!(i.admin_token.as_deref(), Some("operator"));
    *env.install.borrow_mut() = i.install_id;
    // The CLIs in the shell that holds API_KEY use it; without it there is no token.
    env.racerctl(&["info"]).code(1);
    env.extra_env.push(("API_KEY".into(), key.into()));
    let seen = env.racerctl(&["info", "--json"]).json::<ServerInfo>();
    assert_eq!(seen.pid, i.pid);
    env.racer(&["list-projects", "--json"]).ok();
    env.extra_env.clear();
    // restart without the key refuses (it is not recorded), and the server keeps running.
    let err = env.racerctl(&["server", "restart"]).code(1);
    assert!(
        err.contains("admin token") && err.contains("API_KEY"),
        "{err}"
    );
    assert!(env.server_file().is_some_and(|f| f.pid == i.pid));
    let recorded = std::fs::read_to_string(env.data_dir.join("start-args.json")).unwrap();
    assert!(!recorded.contains(key), "the key is not recorded");
    let log = env.log();
    assert!(!log.contains(key), "the key is not in the log");
    assert!(!log.contains("seed-api-key"), "nor a prefix of it");
}

#[tokio::test(flavor = "multi_thread")]
async fn f18_jwt_secret_key_lets_servers_on_one_database_accept_each_others_sessions() {
    let Some(url) = postgres_db() else { return };
    let secret = "0123456789abcdef0123456789abcdef-shared";
    let (a, b, c) = (Env::new(), Env::new(), Env::new());
    let pg: &[(&str, &str)] = &[("DATABASE_URL", &url), ("JWT_SECRET_KEY", secret)];
    start_seeded(&a, &["--port", "0"], pg).ok();
    start_seeded(&b, &["--port", "0"], pg).ok();
    start_seeded(&c, &["--port", "0"], &[("DATABASE_URL", &url)]).ok();
    for e in [&a, &b, &c] {
        info(e);
    }
    let err = start_seeded(
        &Env::new(),
        &["--port", "0"],
        &[("JWT_SECRET_KEY", "too-short")],
    )
    .code(1);
    assert!(
        err.contains("JWT_SECRET_KEY") && err.contains("32"),
        "{err}"
    );

    let pw = "dana-long-password-1";
    let out = a
        .program_as(
            "racerctl",
            "operator",
            &[],
            Some(pw),
            &[
                "users",
                "create",
                "dana@acme.io",
                "--org",
                "acme",
                "--role",
                "admin",
                "--password-stdin",
            ],
        )
        .ok();
    assert!(out.contains("created user"), "{out}");

    let http = reqwest::Client::new();
    let api = |e: &Env| e.server_file().unwrap().api_url;
    let login: LoginResponse = http
        .post(format!("{}/auth/login", api(&a)))
        .json(&serde_json::json!({"email": "dana@acme.io", "password": pw}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let whoami = |e: &Env| {
        http.get(format!("{}/api/v1/whoami", api(e)))
            .bearer_auth(&login.token)
            .send()
    };
    assert_eq!(whoami(&a).await.unwrap().status(), 200);
    assert_eq!(
        whoami(&b).await.unwrap().status(),
        200,
        "b shares the secret"
    );
    assert_eq!(
        whoami(&c).await.unwrap().status(),
        401,
        "c signs with its own secret"
    );
    for e in [&a, &b, &c] {
        assert!(!e.log().contains(secret), "the secret is not logged");
    }
}

/// The AutoServe seed's full example spec (seed 004, "Application Specification"), as written:
/// only the image it names is built here, from the bundled example.
const SEED_004_SPEC: &str = include_str!("fixtures/seed-004-app.yaml");

#[test]
fn f18_seed_004_spec_applies_as_written_and_sdk_values_are_set() {
    let env = Env::new();
    env.start(&[]);
    let dir = hello_app(&env, "my-app-image");
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY hello /entrypoint\nUSER 65534:65534\nENTRYPOINT [\"/entrypoint\"]\n",
    )
    .unwrap();
    docker(&["build", "-q", "-t", "my-app:latest", dir.to_str().unwrap()]);
    let spec = env.dir.path().join("app.yaml");
    std::fs::write(&spec, SEED_004_SPEC).unwrap();

    let applied = env.racer(&["apply", "-f", spec.to_str().unwrap()]);
    let out = applied.ok();
    assert!(out.contains("my-app: applied"), "{out}");
    let notes = applied.stderr();
    assert!(
        notes.contains("note: spec.env[1].valueFrom") && notes.contains("REDIS_URL"),
        "the note names the variable racer cannot provide: {notes}"
    );
    let result: ApplyResult = env
        .racer(&["apply", "-f", spec.to_str().unwrap(), "--json"])
        .json();
    assert!(
        result.notes.iter().any(|n| n.message.contains("REDIS_URL")),
        "{result:?}"
    );
    let proxy = env.server_file().unwrap().proxy_url.unwrap();
    let body = get_ok(&format!("{proxy}/apps/my-app/"));
    assert!(body.contains("hello"), "{body}");
    let mut containers = Vec::new();
    eventually(30, "a replica of my-app", || {
        containers = env.containers();
        !containers.is_empty()
    });
    let vars = docker(&[
        "inspect",
        "--format",
        "{{range .Config.Env}}{{println .}}{{end}}",
        &containers[0],
    ]);
    let app = env
        .racer(&["status", "--project-name", "my-app", "--json"])
        .json::<racer_core::api::AppStatus>()
        .app;
    for want in [
        "PORT=8080".to_owned(),
        "NODE_ENV=production".to_owned(),
        "RACER_APP=my-app".to_owned(),
        format!("RACER_APP_ID={}", app.id),
        "RACER_RELEASE=".to_owned(),
        "RACER_APP_URL=http://my-app.localhost:".to_owned(),
    ] {
        assert!(vars.lines().any(|l| l.starts_with(&want)), "{want}: {vars}");
    }
    assert!(!vars.contains("REDIS_URL"), "{vars}");
    let _ = Command::new("docker")
        .args(["rmi", "-f", "my-app:latest"])
        .output();
}

#[test]
fn f18_log_level_is_checked_and_takes_effect() {
    let out = Command::new(bin("racer-server"))
        .args(["--log-level", "info,=[", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--log-level"), "{err}");

    let env = Env::new();
    env.start(&["--log-level", "debug"]);
    info(&env);
    eventually(10, "a DEBUG line in server.log", || {
        env.log().contains("DEBUG")
    });
    env.racerctl(&["server", "stop"]).ok();
    let quiet = Env::new();
    quiet.start(&["--log-level", "error"]);
    info(&quiet);
    quiet.racerctl(&["server", "stop"]).ok();
    let log = quiet.log();
    assert!(!log.contains(" INFO "), "{log}");
}

#[test]
fn f18_apply_lists_every_problem_of_a_spec_with_its_field_path() {
    let env = Env::new();
    env.start(&[]);
    let spec = env.dir.path().join("bad.yaml");
    std::fs::write(
        &spec,
        "apiVersion: v1\nkind: App\nmetadata:\n  name: four-problems\nspec:\n  type: grpc\n  image: my-app:latest\n  colour: blue\n  env:\n    - name: TOKEN\n      valueFrom: vault\n  scaling:\n    minReplicas: 5\n    maxReplicas: 2\n",
    )
    .unwrap();
    let err = env.racer(&["apply", "-f", spec.to_str().unwrap()]).code(1);
    for field in [
        "spec.type",
        "spec.colour",
        "spec.env[0].valueFrom",
        "spec.scaling",
    ] {
        assert!(err.contains(field), "{field} named: {err}");
    }
    assert!(err.contains("http"), "the supported type is named: {err}");
    let apps = env.racer(&["list-projects", "--json"]).ok();
    assert!(!apps.contains("four-problems"), "nothing recorded: {apps}");
}
