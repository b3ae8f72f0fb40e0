use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use racer_core::api::ServerFile;

/// A binary of the workspace. `racer-server` lives in another package, so it is found next to
/// `racer` in the target directory (the test script builds every binary first).
pub fn bin(name: &str) -> PathBuf {
    let racer = PathBuf::from(env!("CARGO_BIN_EXE_racer"));
    let p = racer.parent().unwrap().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the tests",
        p.display()
    );
    p
}

/// A fresh data directory and the CLIs pointed at it. The server is force-stopped on drop.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub data_dir: PathBuf,
    pub extra_env: Vec<(String, String)>,
    /// The install id of the server, once started: its containers and images carry it.
    pub install: std::cell::RefCell<Option<String>>,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("racer-test-")
            .tempdir()
            .unwrap();
        let data_dir = dir.path().join("data");
        Env {
            dir,
            data_dir,
            extra_env: Vec::new(),
            install: std::cell::RefCell::new(None),
        }
    }

    fn cmd(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new(bin(program));
        // Nothing of the caller's racer settings, nor the seeds' names for them (but the engine
        // the suite uses, DOCKER_HOST), reaches the binaries unless a test sets it.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("RACER_") {
                c.env_remove(&*k);
            }
        }
        for s in racer_core::settings::SEED_ENV {
            if s.seed != "DOCKER_HOST" {
                c.env_remove(s.seed);
            }
        }
        c.args(args)
            .env("RACER_DATA_DIR", &self.data_dir)
            .env("RACER_SERVER_BIN", bin("racer-server"))
            .env("RACER_CONFIG_DIR", self.dir.path().join("config"))
            .current_dir(self.dir.path());
        for (k, v) in &self.extra_env {
            c.env(k, v);
        }
        c
    }

    pub fn racerctl(&self, args: &[&str]) -> Run {
        Run::of(self.cmd("racerctl", args), "racerctl", args)
    }

    pub fn racer(&self, args: &[&str]) -> Run {
        Run::of(self.cmd("racer", args), "racer", args)
    }

    /// `racer` as a person: with their own config directory (saved login), extra environment
    /// and, if given, `stdin` fed to it (a password).
    pub fn racer_as(
        &self,
        who: &str,
        env: &[(&str, &str)],
        stdin: Option<&str>,
        args: &[&str],
    ) -> Run {
        self.program_as("racer", who, env, stdin, args)
    }

    /// Like [`Env::racer_as`] for any of the CLIs.
    pub fn program_as(
        &self,
        program: &str,
        who: &str,
        env: &[(&str, &str)],
        stdin: Option<&str>,
        args: &[&str],
    ) -> Run {
        use std::io::Write;
        let mut c = self.cmd(program, args);
        c.env(
            "RACER_CONFIG_DIR",
            self.dir.path().join(format!("config-{who}")),
        );
        for (k, v) in env {
            c.env(k, v);
        }
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(mut pipe) = child.stdin.take() {
            if let Some(text) = stdin {
                pipe.write_all(text.as_bytes()).unwrap();
                pipe.write_all(b"\n").unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        Run {
            what: format!("{program} {} (as {who})", args.join(" ")),
            out,
        }
    }

    /// Starts the server on a free port and returns its file.
    pub fn start(&self, extra: &[&str]) -> ServerFile {
        self.start_with_env(extra, &[])
    }

    /// Like [`Env::start`], with extra environment for the server (its `RACER_*` settings).
    pub fn start_with_env(&self, extra: &[&str], env: &[(&str, &str)]) -> ServerFile {
        let mut args = vec!["server", "start", "--port", "0", "--proxy-port", "0"];
        args.extend_from_slice(extra);
        let mut c = self.cmd("racerctl", &args);
        for (k, v) in env {
            c.env(k, v);
        }
        Run::of(c, "racerctl", &args).ok();
        let f = self.server_file().expect("server.json after start");
        let info: racer_core::api::ServerInfo = self.racerctl(&["info", "--json"]).json();
        *self.install.borrow_mut() = info.install_id;
        f
    }

    /// Names of this install's containers (running or not).
    pub fn containers(&self) -> Vec<String> {
        let Some(id) = self.install.borrow().clone() else {
            return Vec::new();
        };
        docker_lines(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=racer.install={id}"),
            "--format",
            "{{.Names}}",
        ])
    }

    /// Tags of this install's images.
    pub fn images(&self) -> Vec<String> {
        let Some(id) = self.install.borrow().clone() else {
            return Vec::new();
        };
        docker_lines(&[
            "images",
            "--filter",
            &format!("label=racer.install={id}"),
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ])
    }

    pub fn server_file(&self) -> Option<ServerFile> {
        let bytes = std::fs::read(self.data_dir.join("server.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.token"))
            .unwrap()
            .trim()
            .to_owned()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self
            .cmd("racerctl", &["server", "stop", "--force"])
            .output();
        // Leave nothing on the engine: this install's containers, then its images. Twice for
        // containers: a create the force-stopped server had in flight can land after the first
        // sweep.
        if let Some(id) = self.install.borrow().clone() {
            let filter = format!("label=racer.install={id}");
            for round in 0..2 {
                if round == 1 {
                    std::thread::sleep(Duration::from_millis(300));
                }
                for c in docker_lines(&["ps", "-aq", "--filter", &filter]) {
                    let _ = Command::new("docker").args(["rm", "-f", &c]).output();
                }
            }
            for i in docker_lines(&["images", "-q", "--filter", &filter]) {
                let _ = Command::new("docker").args(["rmi", "-f", &i]).output();
            }
        }
        if std::env::var_os("RACER_KEEP_TEST_DIRS").is_some() {
            let kept = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
            eprintln!("kept test dir {}", kept.keep().display());
        }
    }
}

/// A finished command with helpers that fail with everything needed to debug.
pub struct Run {
    pub what: String,
    pub out: Output,
}

impl Run {
    fn of(mut c: Command, program: &str, args: &[&str]) -> Run {
        let out = c.output().unwrap();
        Run {
            what: format!("{program} {}", args.join(" ")),
            out,
        }
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    fn describe(&self) -> String {
        format!(
            "`{}` exited {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.what,
            self.out.status.code(),
            self.stdout(),
            self.stderr()
        )
    }

    /// Asserts exit 0; returns stdout.
    #[track_caller]
    pub fn ok(&self) -> String {
        assert!(self.out.status.success(), "{}", self.describe());
        self.stdout()
    }

    /// Asserts the exit code; returns stderr.
    #[track_caller]
    pub fn code(&self, code: i32) -> String {
        assert_eq!(self.out.status.code(), Some(code), "{}", self.describe());
        self.stderr()
    }

    /// Decodes stdout as JSON of type T (a `racer_core::api` type).
    #[track_caller]
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        let s = self.ok();
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}: {}", self.describe()))
    }
}

pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next());
            !matches!(state, Some(Some('Z')) | Some(Some('X')))
        }
        Err(_) => false,
    }
}

pub fn wait_dead(pid: u32) {
    for _ in 0..500 {
        if !pid_alive(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("pid {pid} still alive");
}

pub fn kill9(pid: u32) {
    let st = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    wait_dead(pid);
}

/// A fresh PostgreSQL database URL from the test script's server, if there is one.
pub fn postgres_db() -> Option<String> {
    let Ok(base) = std::env::var("RACER_TEST_DATABASE_URL") else {
        if std::env::var("RACER_REQUIRE_POSTGRES").as_deref() == Ok("1") {
            panic!("RACER_REQUIRE_POSTGRES=1 but RACER_TEST_DATABASE_URL is not set");
        }
        eprintln!("skipping the PostgreSQL part: RACER_TEST_DATABASE_URL is not set");
        return None;
    };
    let db = format!("racer_cli_{}", uuid::Uuid::new_v4().simple());
    let psql = Command::new("psql")
        .args([base.as_str(), "-qc", &format!("CREATE DATABASE {db}")])
        .output()
        .unwrap();
    assert!(
        psql.status.success(),
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );
    let (head, _) = base.rsplit_once('/').unwrap();
    Some(format!("{head}/{db}"))
}

pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// `GET /metrics` with the admin token: the Prometheus text (the answer must be a 2xx).
pub async fn metrics_text(env: &Env) -> String {
    let url = format!("{}/metrics", env.server_file().unwrap().api_url);
    let r = http()
        .get(url)
        .bearer_auth(env.token())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.text().await.unwrap()
}

#[allow(dead_code)]
pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn docker_lines(args: &[&str]) -> Vec<String> {
    let out = Command::new("docker").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect()
}

pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The bundled example, copied into the test's directory (built by scripts/build-example.sh).
pub fn hello_app(env: &Env, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello");
    let bin = src.join("hello");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/build-example.sh first",
        bin.display()
    );
    let dir = env.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["Dockerfile", ".dockerignore", "hello"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    dir
}

/// GET with a few retries; returns the body of a 200.
pub fn get_ok(url: &str) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        match Command::new("curl")
            .args(["-fsS", "--max-time", "2", url])
            .output()
        {
            Ok(o) if o.status.success() => return String::from_utf8_lossy(&o.stdout).into_owned(),
            Ok(o) => last = String::from_utf8_lossy(&o.stderr).into_owned(),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("GET {url} never answered 200: {last}");
}

/// Waits until `f` holds (up to `secs`).
pub fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out after {secs}s waiting for: {what}");
}

/// Copies a folder of plain files.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
