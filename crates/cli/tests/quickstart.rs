//! The README's quick start as a new user runs it (issue 18): `scripts/quickstart` with a home
//! directory of their own (no data directory, no ~/.local/bin), then each `next:` command it
//! prints, in a plain shell with a plain PATH. CI runs this in its fresh clone.
//!
//! Two differences from a new user, both settings the script documents: the debug binaries the
//! suite already built (RACER_QUICKSTART_PROFILE=debug, not a second, release build), and free
//! ports (RACER_PORT=0, RACER_PROXY_PORT=0: the suite's replicas use host ports near 8001).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use racer_core::api::ServerInfo;

use crate::util::{docker_lines, wait_dead};

/// The PATH of a plain shell, as Debian's login shell sets it.
const PLAIN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A new user's home: on drop, their server is stopped and its containers and images removed.
struct NewUser {
    home: tempfile::TempDir,
    install: Option<String>,
}

impl NewUser {
    fn bin(&self, name: &str) -> PathBuf {
        self.home.path().join(".local/bin").join(name)
    }

    /// `sh -c line` with only HOME and a plain PATH.
    fn shell(&self, line: &str) -> Output {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", line])
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", PLAIN_PATH)
            .current_dir(self.home.path());
        if let Ok(h) = std::env::var("DOCKER_HOST") {
            c.env("DOCKER_HOST", h);
        }
        c.output().unwrap()
    }
}

impl Drop for NewUser {
    fn drop(&mut self) {
        let data = self.home.path().join(".local/share/racer/server.json");
        let pid = std::fs::read(&data)
            .ok()
            .and_then(|b| serde_json::from_slice::<racer_server_file::File>(&b).ok())
            .map(|f| f.pid);
        let _ = self.shell(&format!(
            "{} server stop --force",
            self.bin("racerctl").display()
        ));
        if let Some(pid) = pid {
            wait_dead(pid);
        }
        if let Some(id) = &self.install {
            let filter = format!("label=racer.install={id}");
            for c in docker_lines(&["ps", "-aq", "--filter", &filter]) {
                let _ = Command::new("docker").args(["rm", "-f", &c]).output();
            }
            for i in docker_lines(&["images", "-q", "--filter", &filter]) {
                let _ = Command::new("docker").args(["rmi", "-f", &i]).output();
            }
        }
    }
}

/// Just the pid of the server file (the rest is the server's business).
mod racer_server_file {
    #[derive(serde::Deserialize)]
    pub struct File {
        pub pid: u32,
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Where the toolchain lives for the user running the suite: a new user's rustup sets these
/// up in their own home; here the home is new, so point at the installed one.
fn toolchain_env(c: &mut Command) {
    let real_home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let cargo_home = std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{real_home}/.cargo"));
    let rustup_home =
        std::env::var("RUSTUP_HOME").unwrap_or_else(|_| format!("{real_home}/.rustup"));
    let cargo = which("cargo").expect("cargo on the suite's PATH");
    let cargo_dir = cargo.parent().unwrap().display().to_string();
    c.env("CARGO_HOME", cargo_home)
        .env("RUSTUP_HOME", rustup_home)
        .env("PATH", format!("{cargo_dir}:{PLAIN_PATH}"));
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(program))
            .find(|f| f.is_file())
    })
}

#[test]
fn f18_readme_quick_start_works_for_a_new_user_and_its_next_commands_run_in_a_plain_shell() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let repo = repo.canonicalize().unwrap();
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo.join("target"));
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    assert!(
        readme.contains("scripts/quickstart"),
        "the README's quick start runs scripts/quickstart"
    );

    let mut user = NewUser {
        home: tempfile::Builder::new()
            .prefix("racer-newuser-")
            .tempdir()
            .unwrap(),
        install: None,
    };
    let mut c = Command::new("bash");
    c.arg(repo.join("scripts/quickstart"))
        .env_clear()
        .env("HOME", user.home.path())
        .env("CARGO_TARGET_DIR", &target)
        .env("RACER_QUICKSTART_PROFILE", "debug")
        .env("RACER_PORT", "0")
        .env("RACER_PROXY_PORT", "0")
        .current_dir(&repo);
    toolchain_env(&mut c);
    if let Ok(h) = std::env::var("DOCKER_HOST") {
        c.env("DOCKER_HOST", h);
    }
    let out = c.output().unwrap();
    // Whatever happens next, the server it started is stopped and its containers removed.
    let info = user.shell(&format!("{} info --json", user.bin("racerctl").display()));
    if let Ok(i) = serde_json::from_slice::<ServerInfo>(&info.stdout) {
        user.install = i.install_id;
    }
    assert!(out.status.success(), "scripts/quickstart: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("hello from"),
        "the app answered: {}",
        text(&out)
    );
    for b in ["racer", "racerctl", "racer-server"] {
        assert!(user.bin(b).exists(), "{b} installed in ~/.local/bin");
    }

    let next: Vec<String> = stdout
        .lines()
        .skip_while(|l| *l != "next:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.trim().to_owned())
        .collect();
    assert_eq!(next.len(), 3, "three next: commands: {stdout}");
    assert!(next[0].contains("status --project-name hello"), "{next:?}");
    for line in &next {
        let run = user.shell(line);
        assert!(
            run.status.success(),
            "`{line}` in a plain shell: {}",
            text(&run)
        );
        let said = String::from_utf8_lossy(&run.stdout);
        if line.contains(" status ") {
            assert!(
                said.contains("app:        hello") && said.contains(" running "),
                "{said}"
            );
        }
        if line.ends_with("server stop") {
            assert!(said.contains("racer server stopped"), "{said}");
        }
    }
}
