//! Authentication cost (issue 7): the per-request overhead of checking a credential (lookup +
//! role check) with the real store (SQLite in a temp dir) and the real `Auth`, and the cost of
//! one login (argon2id verify with racer's parameters). Prints a table with targets.
//!
//! `cargo bench -p racer-server --bench auth` (add `-- --quick` for fewer samples).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use racer_core::auth::{Role, DEFAULT_ORG};
use racer_server::auth::{digest_hex, random_secret, Auth, API_TOKEN_PREFIX};
use racer_store::{NewToken, NewUser, Store};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Stats {
    p50: Duration,
    p99: Duration,
    max: Duration,
    n: usize,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    Stats {
        p50: percentile(&v, 0.50),
        p99: percentile(&v, 0.99),
        max: *v.last().unwrap(),
        n: v.len(),
    }
}

async fn measure<F, Fut>(n: usize, mut f: F) -> Stats
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    // Warm up (caches, connections).
    for _ in 0..100.min(n) {
        f().await;
    }
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        v.push(t.elapsed());
    }
    stats(v)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(quick));
}

async fn run(quick: bool) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("racer.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let install = store.install_id().await.unwrap();
    let admin_token = random_secret("racer_admin_");
    let auth = Auth::new(
        dir.path(),
        &admin_token,
        None,
        &install,
        Duration::from_secs(3600),
    )
    .unwrap();

    let password = "correct horse battery staple";
    let phc = racer_server::auth::hash_password(&racer_server::auth::argon2(), password).unwrap();
    let user = store
        .users()
        .create(
            &NewUser {
                email: "dev@example.com".into(),
                org: DEFAULT_ORG.into(),
                role: Role::Developer,
                password_hash: Some(phc.clone()),
            },
            "bench",
        )
        .await
        .unwrap();
    let secret = random_secret(API_TOKEN_PREFIX);
    let token = store
        .tokens()
        .create(
            &NewToken {
                user_id: user.id,
                name: "bench".into(),
                token_hash: digest_hex(&secret),
                expires_at_ms: None,
            },
            "bench",
        )
        .await
        .unwrap();
    let (jwt, _) = auth.issue(&user).unwrap();

    let n = if quick { 20_000 } else { 200_000 };
    let check = |cred: String| {
        let auth = &auth;
        let store = &store;
        async move {
            let p = auth.authenticate(store, &cred).await.unwrap();
            assert!(p.role.allows(Role::Viewer));
        }
    };
    let api_token = measure(n, || check(secret.clone())).await;
    let session = measure(n, || check(jwt.clone())).await;
    let admin = measure(n, || check(admin_token.clone())).await;
    // The cache miss: every lookup reads the store (what the first request of a token costs,
    // and every request after the 2 s cache lifetime).
    let cold = measure(if quick { 2_000 } else { 10_000 }, || {
        auth.forget_token(token.id);
        check(secret.clone())
    })
    .await;

    // Revocation is immediate: revoke through the store, drop the cache entry as the API
    // handler does, and the very next request fails.
    store.tokens().revoke(token.id, "bench").await.unwrap();
    auth.forget_token(token.id);
    let refused = auth.authenticate(&store, &secret).await.is_err();

    let logins = if quick { 5 } else { 20 };
    let mut v = Vec::new();
    for _ in 0..logins {
        let t = Instant::now();
        assert!(auth
            .verify(password.to_owned(), Some(phc.clone()))
            .await
            .unwrap());
        v.push(t.elapsed());
    }
    let login = stats(v);

    println!("racer auth benchmark ({} samples per credential kind)", n);
    println!(
        "{:<44} {:>10} {:>10} {:>10} {:>8}  target",
        "what", "p50", "p99", "max", "n"
    );
    let row = |what: &str, s: &Stats, target: &str| {
        println!(
            "{what:<44} {:>8.1}µs {:>8.1}µs {:>8.1}µs {:>8}  {target}",
            us(s.p50),
            us(s.p99),
            us(s.max),
            s.n
        );
    };
    let pass = |ok: bool| if ok { "PASS" } else { "MISS" };
    row(
        "API token (cached digest) + role check",
        &api_token,
        &format!("p99 <= 50µs {}", pass(us(api_token.p99) <= 50.0)),
    );
    row(
        "session JWT (HS256 verify) + role check",
        &session,
        &format!("p99 <= 50µs {}", pass(us(session.p99) <= 50.0)),
    );
    row("install admin token + role check", &admin, "");
    row(
        "API token, cache miss (SQLite lookup)",
        &cold,
        "(first use)",
    );
    println!(
        "{:<44} {:>8.1}ms {:>8.1}ms {:>8.1}ms {:>8}  50-250 ms {}",
        "login: argon2id verify (m=64MiB,t=2,p=1)",
        ms(login.p50),
        ms(login.p99),
        ms(login.max),
        login.n,
        pass(ms(login.p50) >= 50.0 && ms(login.p99) <= 250.0)
    );
    println!(
        "revocation: next request after revoke refused: {}",
        if refused { "yes PASS" } else { "no MISS" }
    );
}
