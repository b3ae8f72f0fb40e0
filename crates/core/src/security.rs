//! What a replica may do on its host: the container security defaults racer applies to every
//! app and pool container (docs/SECURITY.md says why each is so).
//!
//! - every Linux capability is dropped but [`DEFAULT_CAPS`] (`NET_BIND_SERVICE`: a port below
//!   1024 inside the container); an app asks for more by name (`racer run --cap-add`), as a
//!   Kubernetes pod under the "restricted" Pod Security Standard does;
//! - `no-new-privileges`: setuid binaries (sudo, su) cannot raise privileges;
//! - the engine's default seccomp profile (racer never asks for `unconfined`) and its default
//!   AppArmor profile where the host has AppArmor;
//! - at most 1024 processes (a fork bomb stays in its container);
//! - a read-only root filesystem on request (`--read-only`), with a private tmpfs on `/tmp`.

/// The capabilities every replica keeps.
pub const DEFAULT_CAPS: &[&str] = &["NET_BIND_SERVICE"];

/// Processes a container may hold at once.
pub const PIDS_LIMIT: i64 = 1024;

/// The tmpfs a read-only container gets at `/tmp`.
pub const READ_ONLY_TMPFS: (&str, &str) = ("/tmp", "rw,nosuid,nodev,size=64m");

/// The Linux capabilities (capabilities(7)), without the `CAP_` prefix.
pub const CAPABILITIES: &[&str] = &[
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYSLOG",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "WAKE_ALARM",
];

/// The capability `name` names (any case, with or without `CAP_`), as the engine spells it
/// (`CAP_CHOWN`); `None` if it is none.
pub fn capability(name: &str) -> Option<String> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    CAPABILITIES.contains(&bare).then(|| format!("CAP_{bare}"))
}

/// The capabilities a container keeps: [`DEFAULT_CAPS`] and those the app asked for (unknown
/// names left out: they were refused when the release was made), sorted, no repeats.
pub fn kept_capabilities(asked: &[String]) -> Vec<String> {
    let mut caps: Vec<String> = DEFAULT_CAPS
        .iter()
        .map(|c| format!("CAP_{c}"))
        .chain(asked.iter().filter_map(|c| capability(c)))
        .collect();
    caps.sort();
    caps.dedup();
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_any_spelling() {
        assert_eq!(capability("chown").as_deref(), Some("CAP_CHOWN"));
        assert_eq!(capability("CAP_SETUID").as_deref(), Some("CAP_SETUID"));
        assert_eq!(capability(" net_admin ").as_deref(), Some("CAP_NET_ADMIN"));
        assert_eq!(
            capability("ALL"),
            None,
            "every capability is not one capability"
        );
        assert_eq!(capability("CAP_"), None);
        assert_eq!(capability("chown; rm -rf /"), None);
    }

    #[test]
    fn kept_is_the_default_and_what_was_asked() {
        assert_eq!(kept_capabilities(&[]), ["CAP_NET_BIND_SERVICE"]);
        assert_eq!(
            kept_capabilities(&["setuid".into(), "CAP_SETUID".into(), "chown".into()]),
            ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SETUID"]
        );
    }
}
