//! Issue 7 through the CLIs: bootstrap → invite → register → login → deploy as a developer →
//! a viewer cannot deploy → a revoked token stops working at once; login limits; and no
//! password, token or secret in the server log, the database, events or `--json` output.

use std::os::unix::fs::PermissionsExt;

use racer_core::auth::{ApiToken, CreatedToken, WhoAmI};

use crate::util::{hello_app, path_str, Env};

const ALICE_PW: &str = "alice-long-password-1";
const BOB_PW: &str = "bob-long-password-22";
const CAROL_PW: &str = "carol-long-password-333";

#[test]
fn bootstrap_invite_register_login_deploy_revoke() {
    let env = Env::new();
    let server = env.start(&[]);
    let mut secrets: Vec<String> = vec![ALICE_PW.into(), BOB_PW.into(), CAROL_PW.into()];

    // Bootstrap: the operator creates the first admin with the install's admin token.
    let out = env
        .program_as(
            "racerctl",
            "operator",
            &[],
            Some(ALICE_PW),
            &[
                "users",
                "create",
                "alice@acme.io",
                "--org",
                "acme",
                "--role",
                "admin",
                "--password-stdin",
            ],
        )
        .ok();
    assert!(out.contains("created user alice@acme.io"), "{out}");
    // A short password is refused with the rule, and creates nothing.
    let err = env
        .program_as(
            "racerctl",
            "operator",
            &[],
            Some("short"),
            &[
                "users",
                "create",
                "eve@acme.io",
                "--org",
                "acme",
                "--password-stdin",
            ],
        )
        .code(1);
    assert!(err.contains("at least 10 characters"), "{err}");

    // Alice logs in; the session is saved 0600 in her config directory.
    let out = env
        .racer_as(
            "alice",
            &[],
            Some(ALICE_PW),
            &["login", "--email", "alice@acme.io", "--password-stdin"],
        )
        .ok();
    assert!(out.contains("logged in"), "{out}");
    let cred = env.dir.path().join("config-alice/credentials.json");
    let mode = std::fs::metadata(&cred).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", cred.display());
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&cred).unwrap()).unwrap();
    secrets.push(
        saved["servers"][&server.api_url]["token"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let me: WhoAmI = env
        .racer_as("alice", &[], None, &["whoami", "--json"])
        .json();
    assert_eq!(me.user.as_ref().unwrap().email, "alice@acme.io");
    assert_eq!(
        (me.org.as_deref(), me.role.as_str()),
        (Some("acme"), "admin")
    );
    assert!(!me.superuser);

    // Invites: a developer (bob) and a viewer (carol).
    let invite = |email: &str, role: &str| {
        let code = env
            .racer_as(
                "alice",
                &[],
                None,
                &["invites", "create", email, "--role", role],
            )
            .ok()
            .trim()
            .to_owned();
        assert!(code.starts_with("racer_inv_"), "{code}");
        code
    };
    let bob_code = invite("bob@acme.io", "developer");
    let carol_code = invite("carol@acme.io", "viewer");
    secrets.push(bob_code.clone());
    secrets.push(carol_code.clone());
    // The wrong email cannot use an invite; the right one can, once.
    let err = env
        .racer_as(
            "eve",
            &[],
            Some(BOB_PW),
            &[
                "register",
                "--invite",
                &bob_code,
                "--email",
                "eve@acme.io",
                "--password-stdin",
            ],
        )
        .code(1);
    assert!(err.contains("invite code is invalid"), "{err}");
    env.racer_as(
        "bob",
        &[],
        Some(BOB_PW),
        &[
            "register",
            "--invite",
            &bob_code,
            "--email",
            "bob@acme.io",
            "--password-stdin",
        ],
    )
    .ok();
    let err = env
        .racer_as(
            "bob",
            &[],
            Some(BOB_PW),
            &[
                "register",
                "--invite",
                &bob_code,
                "--email",
                "bob@acme.io",
                "--password-stdin",
            ],
        )
        .code(1);
    assert!(err.contains("already used"), "{err}");
    // Inviting someone who already has an account is refused up front.
    let err = env
        .racer_as("alice", &[], None, &["invites", "create", "bob@acme.io"])
        .code(1);
    assert!(err.contains("already has an account"), "{err}");
    env.racer_as(
        "carol",
        &[],
        Some(CAROL_PW),
        &[
            "register",
            "--invite",
            &carol_code,
            "--email",
            "carol@acme.io",
            "--password-stdin",
        ],
    )
    .ok();
    for (who, email, pw) in [
        ("bob", "bob@acme.io", BOB_PW),
        ("carol", "carol@acme.io", CAROL_PW),
    ] {
        env.racer_as(
            who,
            &[],
            Some(pw),
            &["login", "--email", email, "--password-stdin"],
        )
        .ok();
    }

    // Bob deploys; the app belongs to acme and answers through the proxy.
    let dir = hello_app(&env, "blog");
    env.racer_as(
        "bob",
        &[],
        None,
        &["run", "--path", path_str(&dir), "--project-name", "blog"],
    )
    .ok();
    let status = env
        .racer_as(
            "carol",
            &[],
            None,
            &["status", "--project-name", "blog", "--json"],
        )
        .ok();
    assert!(status.contains("\"org\": \"acme\""), "{status}");
    crate::util::get_ok(&format!("{}/apps/blog/", server.proxy_url.clone().unwrap()));

    // Carol (viewer) reads but cannot deploy or scale.
    let err = env
        .racer_as(
            "carol",
            &[],
            None,
            &["run", "--path", path_str(&dir), "--project-name", "blog"],
        )
        .code(1);
    assert!(err.contains("developer role"), "{err}");
    let err = env
        .racer_as(
            "carol",
            &[],
            None,
            &["scale", "--project-name", "blog", "--instances", "2"],
        )
        .code(1);
    assert!(err.contains("developer role"), "{err}");

    // Bob's API token works until he revokes it, then fails on the very next request.
    let created: CreatedToken = env
        .racer_as(
            "bob",
            &[],
            None,
            &["tokens", "create", "--name", "ci", "--json"],
        )
        .json();
    secrets.push(created.secret.clone());
    let with_token = [("RACER_TOKEN", created.secret.as_str())];
    let me: WhoAmI = env
        .racer_as("ci", &with_token, None, &["whoami", "--json"])
        .json();
    assert_eq!(me.via, "api-token");
    let listed: Vec<ApiToken> = env
        .racer_as("bob", &[], None, &["tokens", "list", "--json"])
        .json();
    assert_eq!(listed.len(), 1);
    env.racer_as(
        "bob",
        &[],
        None,
        &["tokens", "revoke", &created.token.id.to_string()],
    )
    .ok();
    let err = env.racer_as("ci", &with_token, None, &["whoami"]).code(1);
    assert!(err.contains("invalid or revoked token"), "{err}");

    // Logins: a wrong password and an unknown email get the same answer; after 5 failures the
    // account is locked out for a while, even with the right password; failures are events.
    for email in ["bob@acme.io", "nobody@acme.io"] {
        let err = env
            .racer_as(
                "x",
                &[],
                Some("wrong-password-123"),
                &["login", "--email", email, "--password-stdin"],
            )
            .code(1);
        assert!(err.contains("invalid email or password"), "{err}");
    }
    for _ in 0..4 {
        env.racer_as(
            "x",
            &[],
            Some("wrong-password-123"),
            &["login", "--email", "bob@acme.io", "--password-stdin"],
        )
        .code(1);
    }
    let err = env
        .racer_as(
            "x",
            &[],
            Some(BOB_PW),
            &["login", "--email", "bob@acme.io", "--password-stdin"],
        )
        .code(1);
    assert!(err.contains("too many login attempts"), "{err}");
    let events = env.racer(&["events", "--json", "--kind", "auth."]).ok();
    assert!(events.contains("auth.login.failed"), "{events}");

    // Secrets never appear in the server log, the database, events or --json output.
    secrets.push(env.token());
    secrets.push(
        std::fs::read_to_string(env.data_dir.join("jwt.secret"))
            .unwrap()
            .trim()
            .to_owned(),
    );
    let mut haystacks = vec![
        ("server log", env.log()),
        (
            "events",
            env.racer(&["events", "--json", "--limit", "200"]).ok(),
        ),
        (
            "users --json",
            env.racerctl(&["users", "list", "--json"]).ok(),
        ),
        (
            "tokens --json",
            env.racer_as("bob", &[], None, &["tokens", "list", "--json"])
                .ok(),
        ),
        (
            "invites --json",
            env.racer_as("alice", &[], None, &["invites", "list", "--json"])
                .ok(),
        ),
    ];
    for f in ["racer.db", "racer.db-wal"] {
        if let Ok(bytes) = std::fs::read(env.data_dir.join(f)) {
            haystacks.push((f, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    for (what, text) in &haystacks {
        assert!(
            !text.is_empty() || *what == "racer.db-wal",
            "{what} is empty"
        );
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "a secret ({}…) is in the {what}",
                &s[..6]
            );
        }
    }
}
