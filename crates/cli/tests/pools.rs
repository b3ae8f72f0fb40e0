//! Issue 15: warm pools on the real engine. A pool of 3 keeps 3 ready containers; a claim is
//! warm and answers through its own route with its token (401 without, 404 once released, a
//! WebSocket echo through it); the pool refills; claims beyond the ready ones start cold; 20
//! concurrent claims never share a container; the resource guard, set low, holds refills and
//! says why.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use racer_core::api::{ClaimInfo, PoolInfo};

use crate::util::{bin, docker, docker_lines, eventually, hello_app, Env};

/// The example's image, built once per test under its own tag.
fn pool_image(env: &Env, tag: &str) -> String {
    let dir = hello_app(env, tag);
    let image = format!("racer-test-pool-{tag}:{}", std::process::id());
    docker(&["build", "-q", "-t", &image, dir.to_str().unwrap()]);
    image
}

fn pool(env: &Env, name: &str) -> PoolInfo {
    env.racer(&["pools", "show", name, "--json"]).json()
}

fn claim(env: &Env, name: &str) -> ClaimInfo {
    env.racer(&["claim", name, "--json"]).json()
}

/// `n` claims of `name` at once, each its own `racer claim` process.
fn claims_at_once(env: &Env, name: &str, n: usize) -> Vec<ClaimInfo> {
    let (data, config) = (env.data_dir.clone(), env.dir.path().join("config"));
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new(bin("racer"))
                .args(["claim", name, "--json"])
                .env("RACER_DATA_DIR", &data)
                .env("RACER_CONFIG_DIR", &config)
                .env_remove("RACER_URL")
                .env_remove("RACER_TOKEN")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "racer claim: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect()
}

/// `curl` status and body.
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// Containers of the install's pools.
fn pool_containers(env: &Env) -> Vec<String> {
    let install = env.install.borrow().clone().unwrap();
    docker_lines(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=racer.install={install}"),
        "--filter",
        "label=racer.pool",
    ])
}

/// A WebSocket echo through `url` (`http://host:port/path`) with the claim's token header.
fn ws_echo(url: &str, token: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /{path}ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         X-Racer-Claim-Token: {token}\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // A masked text frame "ping".
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | 4];
    frame.extend_from_slice(&mask);
    frame.extend(b"ping".iter().enumerate().map(|(i, c)| c ^ mask[i % 4]));
    s.write_all(&frame).unwrap();
    let mut reply = [0u8; 6];
    s.read_exact(&mut reply).unwrap();
    String::from_utf8_lossy(&reply[2..]).into_owned()
}

#[test]
fn f15_warm_claims_routes_tokens_refill_cold_start_and_no_shared_container() {
    let env = Env::new();
    let image = pool_image(&env, "ide");
    env.start(&[]);
    let out = env
        .racer(&[
            "pools",
            "create",
            "ide",
            "--image",
            &image,
            "--size",
            "3",
            "--port",
            "web=8000",
            "--health-path",
            "/health",
        ])
        .ok();
    assert!(out.contains("pool ide"), "{out}");
    // Bad input names the field and creates nothing.
    let err = env
        .racer(&[
            "pools",
            "create",
            "bad",
            "--image",
            "nope:never",
            "--port",
            "web=8000",
        ])
        .code(1);
    assert!(
        err.contains("image") && err.contains("does not pull"),
        "{err}"
    );
    let err = env
        .racer(&["pools", "create", "bad", "--image", &image, "--port", "web"])
        .code(1);
    assert!(err.contains("ports"), "{err}");
    eventually(60, "3 ready containers", || pool(&env, "ide").ready == 3);
    assert_eq!(pool_containers(&env).len(), 3);

    // A warm claim answers through its route, with its token only.
    let c = claim(&env, "ide");
    assert!(c.warm, "{c:?}");
    eprintln!("warm claim answered in {} ms", c.claim_ms);
    let token = c.token.clone().expect("the token, once");
    let url = c.urls.get("web").expect("a web URL").clone();
    assert!(url.ends_with(&format!("/web/{}/", c.id)), "{url}");
    let header = format!("X-Racer-Claim-Token: {token}");
    let (code, body) = curl(&["-H", &header, &format!("{url}hello?x=1")]);
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("\"path\":\"/hello\""),
        "prefix stripped: {body}"
    );
    let cid = c.container.clone().unwrap();
    assert!(
        body.contains(&cid[..12]),
        "answered by the claimed container: {body}"
    );
    assert_eq!(curl(&[&url]).0, 401, "no token");
    assert_eq!(
        curl(&["-H", "X-Racer-Claim-Token: wrong", &url]).0,
        401,
        "wrong token"
    );
    let (code, _) = curl(&[&format!("{url}?token={token}")]);
    assert_eq!(
        code, 303,
        "?token= sets a cookie and drops the token from the URL"
    );
    assert_eq!(
        ws_echo(&url, &token),
        "ping",
        "a WebSocket echo through the claim"
    );
    // The claim's record: no token again, visible in the list.
    let shown: ClaimInfo = env.racer(&["claims", "show", &c.id, "--json"]).json();
    assert!(shown.token.is_none());
    assert_eq!(shown.state, "active");

    // The pool refills to 3 ready beside the claimed one.
    eventually(30, "the pool refilled", || {
        let p = pool(&env, "ide");
        p.ready == 3 && p.claimed == 1
    });

    // Released: 404 at once, the container goes.
    env.racer(&["claims", "release", &c.id]).ok();
    assert_eq!(
        curl(&["-H", &header, &url]).0,
        404,
        "released claims answer 404"
    );
    eventually(20, "the released container removed", || {
        !pool_containers(&env)
            .iter()
            .any(|id| cid.starts_with(id.as_str()))
    });

    // Four claims at once from three ready: one starts cold; none share a container.
    let four = claims_at_once(&env, "ide", 4);
    let cold = four.iter().filter(|c| !c.warm).count();
    assert!(
        cold >= 1,
        "a fourth claim from three ready starts cold: {four:?}"
    );
    let distinct: HashSet<_> = four.iter().map(|c| c.container.clone()).collect();
    assert_eq!(distinct.len(), 4, "{four:?}");

    // Twenty concurrent claims against a pool of ten: twenty containers, none shared.
    env.racer(&["pools", "resize", "ide", "--size", "10"]).ok();
    eventually(90, "10 ready containers", || pool(&env, "ide").ready >= 10);
    let twenty = claims_at_once(&env, "ide", 20);
    let distinct: HashSet<_> = twenty.iter().map(|c| c.container.clone()).collect();
    assert_eq!(distinct.len(), 20, "no container claimed twice");
    assert!(
        twenty.iter().filter(|c| c.warm).count() >= 10,
        "the ten ready ones went warm"
    );

    // Deleting the pool ends its claims and removes every container.
    env.racer(&["pools", "delete", "ide"]).ok();
    eventually(60, "every pool container removed", || {
        pool_containers(&env).is_empty()
    });
    let listed: Vec<ClaimInfo> = env.racer(&["claims", "list", "--json"]).json();
    assert!(listed.is_empty(), "{listed:?}");
    docker(&["rmi", "-f", &image]);
}

#[test]
fn f15_the_resource_guard_holds_refills_and_says_why() {
    let env = Env::new();
    let image = pool_image(&env, "guard");
    env.start(&["--max-memory-percent", "1"]);
    env.racer(&[
        "pools", "create", "held", "--image", &image, "--size", "2", "--port", "web=8000",
    ])
    .ok();
    eventually(10, "the guard's reason on the pool", || {
        pool(&env, "held")
            .held
            .is_some_and(|h| h.contains("MAX_MEMORY_PERCENT 1%"))
    });
    std::thread::sleep(Duration::from_secs(1));
    let p = pool(&env, "held");
    assert_eq!(p.ready + p.starting, 0, "nothing started: {p:?}");
    assert!(pool_containers(&env).is_empty());
    let shown = env.racer(&["pools", "show", "held"]).ok();
    assert!(
        shown.contains("held:") && shown.contains("host memory in use"),
        "{shown}"
    );
    let events = env.racer(&["events", "--kind", "pool.held"]).ok();
    assert!(events.contains("MAX_MEMORY_PERCENT"), "{events}");
    // A claim finds nothing ready and may not start one: refused, saying why.
    let err = env.racer(&["claim", "held"]).code(1);
    assert!(err.contains("MAX_MEMORY_PERCENT"), "{err}");
    env.racer(&["pools", "delete", "held"]).ok();
    eventually(30, "the pool's containers removed", || {
        pool_containers(&env).is_empty()
    });
    docker(&["rmi", "-f", &image]);
}
