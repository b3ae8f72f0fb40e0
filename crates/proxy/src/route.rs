//! Which app a request is for: pure functions, unit-tested.

use std::borrow::Cow;

/// Where a request goes. Borrows from the request: routing allocates only for a redirect or an
/// upper-case host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    /// The app's name.
    pub app: Cow<'a, str>,
    /// Path and query to send upstream.
    pub path: &'a str,
    /// The stripped prefix (`/apps/web`), for `X-Forwarded-Prefix`.
    pub prefix: Option<&'a str>,
    /// Redirect instead (`/apps/web` → `/apps/web/`).
    pub redirect: Option<String>,
}

/// Host routing first (`web.localhost[:port]`), then path routing (`/apps/web/...`).
pub fn route_for<'a>(host: &'a str, path_and_query: &'a str, domain: &str) -> Option<Target<'a>> {
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
    let hostname = hostname.trim_end_matches('.');
    if let Some(label) = strip_domain(hostname, domain) {
        if !label.is_empty() && !label.contains('.') {
            let app = if label.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(label.to_ascii_lowercase())
            } else {
                Cow::Borrowed(label)
            };
            return Some(Target {
                app,
                path: path_and_query,
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
    let prefix = &path_and_query[.."/apps/".len() + app.len()];
    if !tail.starts_with('/') {
        return Some(Target {
            app: Cow::Borrowed(app),
            path: "",
            prefix: Some(prefix),
            redirect: Some(format!("{prefix}/{tail}")),
        });
    }
    Some(Target {
        app: Cow::Borrowed(app),
        path: tail,
        prefix: Some(prefix),
        redirect: None,
    })
}

/// `hostname` without `.<domain>` at its end (ASCII case ignored), if it ends so.
fn strip_domain<'a>(hostname: &'a str, domain: &str) -> Option<&'a str> {
    let cut = hostname.len().checked_sub(domain.len() + 1)?;
    let (label, suffix) = (hostname.get(..cut)?, hostname.get(cut..)?);
    let dotted = suffix.strip_prefix('.')?;
    dotted.eq_ignore_ascii_case(domain).then_some(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_routing() {
        let t = route_for("web.localhost:8080", "/x?y=1", "localhost").unwrap();
        assert_eq!((&*t.app, t.path, t.prefix), ("web", "/x?y=1", None));
        assert_eq!(
            route_for("WEB.localhost", "/", "localhost").unwrap().app,
            "web"
        );
        assert_eq!(
            route_for("web.LocalHost.", "/", "localhost").unwrap().app,
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
        assert!(route_for(".localhost", "/", "localhost").is_none());
        assert!(route_for("webxlocalhost", "/", "localhost").is_none());
        assert!(route_for("wéb.localhost", "/", "localhost").is_some());
        assert!(route_for("é", "/", "localhost").is_none());
    }

    #[test]
    fn path_routing_strips_the_prefix() {
        let t = route_for("127.0.0.1:8080", "/apps/web/api/v1?q=2", "localhost").unwrap();
        assert_eq!(t.app, "web");
        assert_eq!(t.path, "/api/v1?q=2");
        assert_eq!(t.prefix, Some("/apps/web"));
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
