//! Which app a request is for: pure functions, unit-tested.

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The app's name.
    pub app: String,
    /// Path and query to send upstream.
    pub path: String,
    /// The stripped prefix (`/apps/web`), for `X-Forwarded-Prefix`.
    pub prefix: Option<String>,
    /// Redirect instead (`/apps/web` → `/apps/web/`).
    pub redirect: Option<String>,
}

/// Host routing first (`web.localhost[:port]`), then path routing (`/apps/web/...`).
pub fn route_for(host: &str, path_and_query: &str, domain: &str) -> Option<Target> {
    let hostname = host
        .rsplit_once(':')
        .map(|(h, p)| {
            if p.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
        .unwrap_or(host);
    let hostname = hostname.trim_end_matches('.').to_ascii_lowercase();
    if let Some(label) = hostname.strip_suffix(&format!(".{domain}")) {
        if !label.is_empty() && !label.contains('.') {
            return Some(Target {
                app: label.to_owned(),
                path: path_and_query.to_owned(),
                prefix: None,
                redirect: None,
            });
        }
    }
    let rest = path_and_query.strip_prefix("/apps/")?;
    let (app, tail) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if app.is_empty() {
        return None;
    }
    let prefix = format!("/apps/{app}");
    if !tail.starts_with('/') {
        return Some(Target {
            app: app.to_owned(),
            path: String::new(),
            prefix: Some(prefix.clone()),
            redirect: Some(format!("{prefix}/{tail}")),
        });
    }
    Some(Target {
        app: app.to_owned(),
        path: tail.to_owned(),
        prefix: Some(prefix),
        redirect: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_routing() {
        let t = route_for("web.localhost:8080", "/x?y=1", "localhost").unwrap();
        assert_eq!(
            (t.app.as_str(), t.path.as_str(), t.prefix),
            ("web", "/x?y=1", None)
        );
        assert_eq!(
            route_for("WEB.localhost", "/", "localhost").unwrap().app,
            "web"
        );
        assert_eq!(
            route_for("api.example.com", "/", "example.com")
                .unwrap()
                .app,
            "api"
        );
        assert!(
            route_for("a.b.localhost", "/", "localhost").is_none(),
            "one label only"
        );
        assert!(route_for("localhost:8080", "/", "localhost").is_none());
    }

    #[test]
    fn path_routing_strips_the_prefix() {
        let t = route_for("127.0.0.1:8080", "/apps/web/api/v1?q=2", "localhost").unwrap();
        assert_eq!(t.app, "web");
        assert_eq!(t.path, "/api/v1?q=2");
        assert_eq!(t.prefix.as_deref(), Some("/apps/web"));
        let root = route_for("127.0.0.1", "/apps/web/", "localhost").unwrap();
        assert_eq!(root.path, "/");
        let bare = route_for("127.0.0.1", "/apps/web", "localhost").unwrap();
        assert_eq!(bare.redirect.as_deref(), Some("/apps/web/"));
        let q = route_for("127.0.0.1", "/apps/web?x=1", "localhost").unwrap();
        assert_eq!(q.redirect.as_deref(), Some("/apps/web/?x=1"));
        assert!(route_for("127.0.0.1", "/", "localhost").is_none());
        assert!(route_for("127.0.0.1", "/apps/", "localhost").is_none());
    }
}
