//! The seeds' routes without the `/api/v1` prefix, served as aliases of racer's own: the request
//! path is rewritten before routing, so an alias has exactly the handler, the role and the
//! authentication of its route. Each alias is listed in the OpenAPI document next to its route.

/// `(alias, route)`, as path templates; `{…}` matches one segment.
pub(crate) const ALIASES: &[(&str, &str)] = &[
    // AutoServe (seed 004).
    ("/apps", "/api/v1/apps"),
    ("/apps/register", "/api/v1/apps/register"),
    ("/apps/{app}/up", "/api/v1/apps/{app}/up"),
    ("/apps/{app}/down", "/api/v1/apps/{app}/down"),
    ("/apps/{app}/status", "/api/v1/apps/{app}/status"),
    ("/apps/{app}/scale", "/api/v1/apps/{app}/scale"),
    ("/apps/{app}/metrics", "/api/v1/apps/{app}/metrics"),
    ("/apps/{app}/logs", "/api/v1/apps/{app}/logs"),
    ("/apps/{app}/policy", "/api/v1/apps/{app}/policy"),
    ("/events", "/api/v1/events"),
    // The conda-project deployer (seed 000).
    ("/validate", "/api/v1/validate"),
    ("/dockerfile", "/api/v1/dockerfile"),
    ("/projects", "/api/v1/apps"),
    ("/containers", "/api/v1/containers"),
    ("/containers/cleanup", "/api/v1/containers/cleanup"),
    ("/containers/{id}", "/api/v1/containers/{id}"),
    ("/containers/{id}/status", "/api/v1/containers/{id}"),
    ("/containers/{id}/logs", "/api/v1/containers/{id}/logs"),
    ("/containers/{id}/stop", "/api/v1/containers/{id}/stop"),
    // The scheduler (seed 002).
    ("/deployments/", "/api/v1/deployments"),
    ("/deployments", "/api/v1/deployments"),
    ("/deployments/{id}", "/api/v1/deployments/{id}"),
];

/// Matches `path` against a template; the segments `{…}` stand for, in order.
fn matches<'a>(template: &str, path: &'a str) -> Option<Vec<&'a str>> {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut params = Vec::new();
    for (ts, ps) in t.iter().zip(&p) {
        if ts.starts_with('{') && ts.ends_with('}') {
            if ps.is_empty() {
                return None;
            }
            params.push(*ps);
        } else if ts != ps {
            return None;
        }
    }
    Some(params)
}

/// The route an alias path stands for, or `None` when `path` is no alias. Literal aliases win
/// over templated ones (`/containers/cleanup` is not a container named `cleanup`).
pub(crate) fn rewrite(path: &str) -> Option<String> {
    if path.starts_with("/api/") {
        return None;
    }
    let literal = ALIASES
        .iter()
        .find(|(alias, _)| !alias.contains('{') && *alias == path);
    let (alias, route) = literal.or_else(|| {
        ALIASES
            .iter()
            .find(|(alias, _)| alias.contains('{') && matches(alias, path).is_some())
    })?;
    let mut params = matches(alias, path)?.into_iter();
    let out: Vec<String> = route
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                params.next().unwrap_or_default().to_owned()
            } else {
                seg.to_owned()
            }
        })
        .collect();
    Some(out.join("/"))
}

/// Rewrites a request whose path is an alias (keeping its query), before the router sees it.
pub(crate) fn rewrite_request(mut req: axum::extract::Request) -> axum::extract::Request {
    let uri = req.uri();
    if let Some(path) = rewrite(uri.path()) {
        let pq = match uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        let mut parts = uri.clone().into_parts();
        if let Ok(pq) = pq.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(new) = axum::http::Uri::from_parts(parts) {
                *req.uri_mut() = new;
            }
        }
    }
    req
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn seed_paths_map_onto_racer_routes() {
        assert_eq!(
            rewrite("/apps/register").as_deref(),
            Some("/api/v1/apps/register")
        );
        assert_eq!(
            rewrite("/apps/my-app/scale").as_deref(),
            Some("/api/v1/apps/my-app/scale")
        );
        assert_eq!(rewrite("/projects").as_deref(), Some("/api/v1/apps"));
        assert_eq!(
            rewrite("/containers/cleanup").as_deref(),
            Some("/api/v1/containers/cleanup")
        );
        assert_eq!(
            rewrite("/containers/abc/status").as_deref(),
            Some("/api/v1/containers/abc")
        );
        assert_eq!(
            rewrite("/deployments/").as_deref(),
            Some("/api/v1/deployments")
        );
        assert_eq!(
            rewrite("/deployments/x1").as_deref(),
            Some("/api/v1/deployments/x1")
        );
        for none in [
            "/api/v1/apps",
            "/apps/x",
            "/apps//up",
            "/health",
            "/",
            "/apps/a/b/up",
        ] {
            assert_eq!(rewrite(none), None, "{none}");
        }
    }

    #[test]
    fn every_alias_points_at_a_route_of_the_openapi_document() {
        let doc = serde_json::to_value(crate::api::openapi_document()).unwrap();
        for (alias, route) in super::ALIASES {
            assert!(
                doc["paths"].get(route).is_some(),
                "{alias} -> {route}: no such route"
            );
            assert!(
                doc["paths"].get(alias).is_some(),
                "{alias} is not documented"
            );
        }
    }
}
