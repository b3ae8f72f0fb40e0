//! Issue 16: the dashboard in a real browser (Debian's headless Chromium through chromedriver's
//! WebDriver, spoken over HTTP here). Log in, deploy the example from the page and watch its
//! log, see it running in the apps list, scale to 3 from the page (3 on the page and in the
//! engine), roll back, a viewer sees no actions and a crafted post from their page is refused,
//! logout ends the session. Every page visited is saved under target/ui-screenshots/.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::util::{docker, docker_lines, hello_app, Env};

struct Driver {
    child: Child,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
    shots: PathBuf,
    n: usize,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start(test: &str) -> Driver {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian chromium-driver; scripts/ensure-tools.sh installs it)");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"]
            }
        }}});
        let v: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_owned();
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/ui-screenshots")
            .join(test);
        std::fs::create_dir_all(&shots).unwrap();
        Driver {
            child,
            base,
            session,
            http,
            shots,
            n: 0,
        }
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().unwrap().json().unwrap();
        v["value"].clone()
    }

    fn go(&mut self, url: &str, name: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })));
        self.shot(name);
    }

    fn shot(&mut self, name: &str) {
        let v = self.call(reqwest::Method::GET, "/screenshot", None);
        if let Some(b64) = v.as_str() {
            let png = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            self.n += 1;
            std::fs::write(self.shots.join(format!("{:02}-{name}.png", self.n)), png).unwrap();
        }
    }

    fn find(&self, css: &str) -> Option<String> {
        let v = self.call(
            reqwest::Method::POST,
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_object()?
            .values()
            .next()
            .and_then(|id| id.as_str().map(str::to_owned))
    }

    fn el(&self, css: &str) -> String {
        self.find(css)
            .unwrap_or_else(|| panic!("no {css} on the page:\n{}", self.source()))
    }

    fn type_in(&self, css: &str, text: &str) {
        let el = self.el(css);
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/clear"),
            Some(json!({})),
        );
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn click(&mut self, css: &str, name: &str) {
        let el = self.el(css);
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        );
        std::thread::sleep(Duration::from_millis(300));
        self.shot(name);
    }

    fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn script(&self, js: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({"script": js, "args": []})),
        )
    }

    /// Reloads `url` until `f` holds for its source (up to `secs`).
    fn until(&mut self, secs: u64, url: &str, what: &str, f: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })));
            if f(&self.source()) {
                self.shot(what);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{}",
                self.source()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

#[test]
fn f16_dashboard_in_headless_chromium() {
    let env = Env::new();
    let file = env.start(&[]);
    let ui = format!("{}/ui", file.api_url);
    let dir = hello_app(&env, "uiimg");
    let image = format!("racer-test-ui:{}", std::process::id());
    docker(&["build", "-q", "-t", &image, dir.to_str().unwrap()]);
    let mut d = Driver::start("f16_dashboard_in_headless_chromium");

    // Log in (the admin token, pasted).
    d.go(&format!("{ui}/login"), "login");
    d.type_in("input[name=token]", &env.token());
    d.click("form[action='/ui/login'] button", "apps-empty");
    assert!(d.source().contains("No apps yet"), "{}", d.source());

    // Deploy the example from the page; its page streams the deployment's log.
    d.type_in("input[name=name]", "web");
    d.type_in("input[name=image]", &image);
    d.click("form[action='/ui/deploy'] button", "app-deployed");
    d.until(60, &format!("{ui}/apps/web"), "log-streamed", |s| {
        s.contains("Release <strong>1</strong>") && s.contains("running")
    });
    let log = d.script(
        "const done=arguments[0];setTimeout(()=>done(document.getElementById('log').textContent),1500)",
    );
    assert!(
        !log.as_str().unwrap_or_default().is_empty(),
        "the log streamed into the page"
    );
    d.until(60, &format!("{ui}/"), "apps-running", |s| {
        s.contains(r#"href="/ui/apps/web""#) && s.contains("running")
    });

    // Scale to 3 from the page: 3 on the page and in the engine.
    d.go(&format!("{ui}/apps/web"), "app");
    d.type_in("input[name=instances]", "3");
    d.click("form input[value=scale] ~ button", "scaled");
    d.until(60, &format!("{ui}/apps/web"), "three-healthy", |s| {
        s.matches(">healthy<").count() == 3
    });
    let install = env.install.borrow().clone().unwrap();
    let running = docker_lines(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=racer.install={install}"),
        "--filter",
        "label=racer.app.name=web",
    ]);
    assert_eq!(running.len(), 3, "three replicas in the engine");

    // Traffic through the proxy shows on the page's charts (sampled every 5 s).
    let app_url = format!("{}/apps/web/", file.proxy_url.clone().unwrap());
    for _ in 0..30 {
        let _ = crate::util::get_ok(&app_url);
    }
    d.until(30, &format!("{ui}/apps/web"), "traffic-charts", |s| {
        s.contains("<figcaption>requests/s: now") && s.contains("<figcaption>p95 latency: now")
    });

    // A second release (redeploy), then roll back to the first from the page.
    d.click("form input[value=rerun] ~ button", "redeployed");
    d.until(90, &format!("{ui}/apps/web"), "release-2", |s| {
        s.contains("Release <strong>2</strong>")
    });
    d.click("form input[name=to][value='1'] ~ button", "rolled-back");
    // A rollback is a new release (3) of release 1's image and config.
    d.until(
        90,
        &format!("{ui}/apps/web"),
        "rolled-back-release-3",
        |s| s.contains("Release <strong>3</strong>") && s.contains("Last deployment: Running"),
    );
    let app: racer_core::api::App = env.racer(&["apps", "show", "web", "--json"]).json();
    assert_eq!(app.release, Some(3));

    // The events page is live: an event made elsewhere appears without a reload.
    d.go(&format!("{ui}/events"), "events");
    std::thread::sleep(Duration::from_millis(500));
    env.racer(&["apps", "create", "live-one"]).ok();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !d.source().contains("live-one") {
        assert!(
            Instant::now() < deadline,
            "the new event never appeared:\n{}",
            d.source()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    d.shot("events-live");
    // The apps filter looks through every app.
    d.go(&format!("{ui}/?q=live"), "apps-filtered");
    let src = d.source();
    assert!(
        src.contains("live-one") && !src.contains(r#"href="/ui/apps/web""#),
        "{src}"
    );

    // A viewer: no actions on the page; a crafted post from it is refused.
    let made = env.program_as(
        "racerctl",
        "admin",
        &[],
        Some("correct horse battery"),
        &[
            "users",
            "create",
            "viewer@acme.io",
            "--role",
            "viewer",
            "--org",
            "default",
            "--password-stdin",
        ],
    );
    assert!(made.out.status.success(), "{}", made.stderr());
    d.call(reqwest::Method::DELETE, "/cookie", None);
    d.go(&format!("{ui}/login"), "login-viewer");
    d.type_in("input[name=email]", "viewer@acme.io");
    d.type_in("input[name=password]", "correct horse battery");
    d.click("form[action='/ui/login'] button", "viewer-apps");
    d.go(&format!("{ui}/apps/web"), "viewer-app");
    let src = d.source();
    assert!(
        !src.contains("/ui/apps/web/action"),
        "a viewer sees no actions"
    );
    let status = d.script(
        r#"const done=arguments[0];const t=document.querySelector('input[name=_csrf]').value;
fetch('/ui/apps/web/action',{method:'POST',headers:{'Content-Type':'application/x-www-form-urlencoded'},
body:'action=scale&instances=9&_csrf='+t,redirect:'manual'}).then(r=>done(r.status))"#,
    );
    assert_eq!(
        status,
        json!(403),
        "a crafted post from a viewer is refused"
    );
    let app: racer_core::api::App = env.racer(&["apps", "show", "web", "--json"]).json();
    assert_eq!(app.instances, 3, "nothing changed");

    // Logout ends the session.
    d.click("form[action='/ui/logout'] button", "logged-out");
    d.go(&format!("{ui}/"), "after-logout");
    assert!(d.source().contains("Log in"), "{}", d.source());

    env.racer(&["delete", "--project-name", "web"]).ok();
    docker(&["rmi", "-f", &image]);
}
