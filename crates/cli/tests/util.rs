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
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new().prefix("racer-test-").tempdir().unwrap();
        let data_dir = dir.path().join("data");
        Env {
            dir,
            data_dir,
            extra_env: Vec::new(),
        }
    }

    fn cmd(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new(bin(program));
        c.args(args)
            .env("RACER_DATA_DIR", &self.data_dir)
            .env_remove("RACER_URL")
            .env_remove("RACER_TOKEN")
            .env_remove("RACER_DATABASE_URL")
            .env("RACER_SERVER_BIN", bin("racer-server"))
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

    /// Starts the server on a free port and returns its file.
    pub fn start(&self, extra: &[&str]) -> ServerFile {
        let mut args = vec!["server", "start", "--port", "0"];
        args.extend_from_slice(extra);
        self.racerctl(&args).ok();
        self.server_file().expect("server.json after start")
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
            let state = s.rsplit_once(')').map(|(_, r)| r.trim_start().chars().next());
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
    let st = Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
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
    assert!(psql.status.success(), "{}", String::from_utf8_lossy(&psql.stderr));
    let (head, _) = base.rsplit_once('/').unwrap();
    Some(format!("{head}/{db}"))
}

pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}

#[allow(dead_code)]
pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}
