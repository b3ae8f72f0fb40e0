//! What the OpenAPI document says beyond what each handler's `#[utoipa::path]` declares: the
//! seeds' alias paths (each with an operation id of its own), the links from the operations that
//! create things to the operations that use them (so that a client, or a stateful fuzzer, can
//! follow `create app → its status, deployments, logs, scale, delete`), and the error answers
//! every operation can give because of the layers in front of its handler (authentication, the
//! JSON and query extractors, path parameters).

use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response, ResponseBuilder};

/// `(parameter, runtime expression)` pairs of a link.
type Params = &'static [(&'static str, &'static str)];

/// One link: from the `status` answer of operation `from`, the operation `to` with each of its
/// parameters set from a runtime expression (`$response.body#/…`, `$request.path.…`).
pub(crate) struct LinkSpec {
    /// The operation whose answer the link starts from.
    pub(crate) from: &'static str,
    /// The answer's status.
    pub(crate) status: &'static str,
    /// The link's name (unique within that answer).
    pub(crate) name: &'static str,
    /// The operation it leads to.
    pub(crate) to: &'static str,
    /// `(parameter of `to`, runtime expression)`.
    pub(crate) params: Params,
}

const fn link(
    from: &'static str,
    status: &'static str,
    name: &'static str,
    to: &'static str,
    params: Params,
) -> LinkSpec {
    LinkSpec {
        from,
        status,
        name,
        to,
        params,
    }
}

/// An app's name in an answer that is an `App`.
const APP: &[(&str, &str)] = &[("app", "$response.body#/name")];
/// An app's name in an answer that holds one under `app` (`Deployed`, `ApplyResult`).
const APP_IN: &[(&str, &str)] = &[("app", "$response.body#/app/name")];
/// The new deployment's id in a `Deployed`.
const DEPLOYMENT_IN: &[(&str, &str)] = &[("id", "$response.body#/deployment/id")];
/// The app named in the request's path.
const SAME_APP: &[(&str, &str)] = &[("app", "$request.path.app")];

/// The operations an app's name leads to, as `(link name, operation id)`.
const APP_OPERATIONS: &[(&str, &str)] = &[
    ("GetApp", "get_app"),
    ("GetAppStatus", "app_status"),
    ("ListReleases", "releases"),
    ("ListAppDeployments", "app_deployments"),
    ("GetAppMetrics", "app_metrics"),
    ("GetAppLogs", "app_logs"),
    ("ScaleApp", "scale"),
    ("StartApp", "up"),
    ("StopApp", "down"),
    ("PutSpec", "put_spec"),
    ("PutPolicy", "put_policy"),
    ("ListSecrets", "list_secrets"),
    ("SetSecrets", "set_secrets"),
    ("Rerun", "rerun"),
    ("Rollback", "rollback"),
    ("GetSwarmStatus", "swarm_status"),
    ("DeleteApp", "delete_app"),
];

/// The links that do not fan out over [`APP_OPERATIONS`].
const LINKS: &[LinkSpec] = &[
    // A deployment: its record and build log.
    link(
        "create_app",
        "202",
        "GetDeployment",
        "get_deployment",
        DEPLOYMENT_IN,
    ),
    link(
        "create_app",
        "202",
        "GetDeploymentLog",
        "deployment_log",
        DEPLOYMENT_IN,
    ),
    link(
        "deploy",
        "202",
        "GetDeployment",
        "get_deployment",
        DEPLOYMENT_IN,
    ),
    link(
        "deploy",
        "202",
        "GetDeploymentLog",
        "deployment_log",
        DEPLOYMENT_IN,
    ),
    link(
        "rerun",
        "202",
        "GetDeployment",
        "get_deployment",
        DEPLOYMENT_IN,
    ),
    link(
        "rerun",
        "202",
        "GetDeploymentLog",
        "deployment_log",
        DEPLOYMENT_IN,
    ),
    link("rerun", "202", "GetAppStatus", "app_status", SAME_APP),
    link(
        "rollback",
        "202",
        "GetDeployment",
        "get_deployment",
        DEPLOYMENT_IN,
    ),
    link(
        "rollback",
        "202",
        "GetDeploymentLog",
        "deployment_log",
        DEPLOYMENT_IN,
    ),
    link("rollback", "202", "GetAppStatus", "app_status", SAME_APP),
    link("scale", "200", "GetAppStatus", "app_status", APP),
    link("up", "200", "GetAppStatus", "app_status", APP),
    link("down", "200", "GetAppStatus", "app_status", APP),
    // An app's containers.
    link(
        "app_status",
        "200",
        "GetContainer",
        "get_container",
        &[("id", "$response.body#/containers/0/id")],
    ),
    link(
        "app_status",
        "200",
        "GetContainerLogs",
        "container_logs",
        &[("id", "$response.body#/containers/0/id")],
    ),
    link(
        "list_containers",
        "200",
        "GetContainer",
        "get_container",
        &[("id", "$response.body#/items/0/id")],
    ),
    link(
        "list_containers",
        "200",
        "GetContainerLogs",
        "container_logs",
        &[("id", "$response.body#/items/0/id")],
    ),
    link(
        "list_apps",
        "200",
        "GetApp",
        "get_app",
        &[("app", "$response.body#/items/0/name")],
    ),
    link(
        "list_deployments",
        "200",
        "GetDeployment",
        "get_deployment",
        &[("id", "$response.body#/items/0/id")],
    ),
    // Secrets: the one just set can be unset.
    link(
        "set_secrets",
        "200",
        "UnsetSecret",
        "unset_secret",
        &[
            ("app", "$request.path.app"),
            ("name", "$response.body#/0/name"),
        ],
    ),
    link(
        "set_secrets",
        "200",
        "ListSecrets",
        "list_secrets",
        SAME_APP,
    ),
    // Warm pools and their claims.
    link(
        "create_pool",
        "201",
        "GetPool",
        "get_pool",
        &[("pool", "$response.body#/name")],
    ),
    link(
        "create_pool",
        "201",
        "ResizePool",
        "resize_pool",
        &[("pool", "$response.body#/name")],
    ),
    link(
        "create_pool",
        "201",
        "ClaimFromPool",
        "claim",
        &[("pool", "$response.body#/name")],
    ),
    link(
        "create_pool",
        "201",
        "DeletePool",
        "delete_pool",
        &[("pool", "$response.body#/name")],
    ),
    link(
        "claim",
        "201",
        "GetClaim",
        "get_claim",
        &[("id", "$response.body#/id")],
    ),
    link(
        "claim",
        "201",
        "ReleaseClaim",
        "release_claim",
        &[("id", "$response.body#/id")],
    ),
    link(
        "claim",
        "201",
        "GetPool",
        "get_pool",
        &[("pool", "$request.path.pool")],
    ),
    // Clusters.
    link(
        "add_cluster",
        "201",
        "GetCluster",
        "get_cluster",
        &[("name", "$response.body#/name")],
    ),
    link(
        "add_cluster",
        "201",
        "DrainCluster",
        "drain_cluster",
        &[("name", "$response.body#/name")],
    ),
    link(
        "add_cluster",
        "201",
        "UndrainCluster",
        "undrain_cluster",
        &[("name", "$response.body#/name")],
    ),
    link(
        "add_cluster",
        "201",
        "RemoveCluster",
        "remove_cluster",
        &[("name", "$response.body#/name")],
    ),
    // Users, invites, organisations, tokens.
    link(
        "create_user",
        "201",
        "DisableUser",
        "disable_user",
        &[("id", "$response.body#/id")],
    ),
    link(
        "create_user",
        "201",
        "EnableUser",
        "enable_user",
        &[("id", "$response.body#/id")],
    ),
    link("create_user", "201", "ListUsers", "list_users", &[]),
    link(
        "disable_user",
        "200",
        "EnableUser",
        "enable_user",
        &[("id", "$response.body#/id")],
    ),
    link("create_invite", "201", "ListInvites", "list_invites", &[]),
    link("create_org", "201", "ListOrgs", "list_orgs", &[]),
    link(
        "create_token",
        "201",
        "RevokeToken",
        "revoke_token",
        &[("id", "$response.body#/token/id")],
    ),
    link("create_token", "201", "ListTokens", "list_tokens", &[]),
];

/// Every link of the document: [`LINKS`], plus each operation that answers with an app (or
/// holds one) linked to each of [`APP_OPERATIONS`].
pub(crate) fn links() -> Vec<LinkSpec> {
    let mut all: Vec<LinkSpec> = Vec::new();
    let app_answers: &[(&str, &str, Params)] = &[
        ("create_app", "201", APP),
        ("create_app", "202", APP_IN),
        ("deploy", "202", APP_IN),
        ("register", "200", APP_IN),
        ("put_spec", "200", APP_IN),
    ];
    for (from, status, params) in app_answers {
        for (name, to) in APP_OPERATIONS {
            all.push(link(from, status, name, to, params));
        }
    }
    all.extend(
        LINKS
            .iter()
            .map(|l| link(l.from, l.status, l.name, l.to, l.params)),
    );
    all
}

/// Adds [`links`] to the answers they start from. A link whose operation or answer is missing
/// is skipped here and caught by the tests.
pub(crate) fn add_links(doc: &mut OpenApi) {
    for spec in links() {
        // utoipa 5.5 serializes `Link::operation_id` as `operation_id`, which no reader knows
        // (the field is `operationId`): the id goes in as an extension, which is written as is.
        let link = spec
            .params
            .iter()
            .fold(LinkBuilder::new(), |b, (p, e)| b.parameter(*p, *e))
            .extensions(Some(Extensions::from_iter([("operationId", spec.to)])))
            .build();
        for (_, op) in operations_mut(doc) {
            if op.operation_id.as_deref() != Some(spec.from) {
                continue;
            }
            if let Some(RefOr::T(resp)) = op.responses.responses.get_mut(spec.status) {
                resp.links
                    .insert(spec.name.to_owned(), RefOr::T(link.clone()));
            }
        }
    }
}

/// `/api/v1/apps/{app}/policy` takes POST as well as PUT (the AutoServe seed's verb, the same
/// handler): the document says so, as the `Allow` header does.
pub(crate) fn declare_policy_post(doc: &mut OpenApi) {
    if let Some(item) = doc.paths.paths.get_mut("/api/v1/apps/{app}/policy") {
        if let Some(put) = item.put.clone() {
            let mut post = put;
            post.operation_id = Some("post_policy".to_owned());
            post.summary = Some("Replaces an app's scaling policy (POST: the same as PUT)".into());
            item.post = Some(post);
        }
    }
}

/// Gives each alias path's operations an id of their own (`<id>_via_<alias>`): operation ids
/// are unique in a document, and links name the `/api/v1` operation.
pub(crate) fn rename_alias_operations(doc: &mut OpenApi, alias: &str) {
    let Some(item) = doc.paths.paths.get_mut(alias) else {
        return;
    };
    let slug: String = alias
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    // `/deployments/` and `/deployments` are two aliases: only the leading `_` goes.
    let slug = slug.trim_start_matches('_').replace("__", "_");
    for op in item_operations_mut(item) {
        if let Some(id) = &op.operation_id {
            op.operation_id = Some(format!("{id}_via_{slug}"));
        }
    }
}

/// Declares the error answers the layers in front of the handlers give, on every operation that
/// can meet them and does not declare them already, all with the error body:
/// 401 and 403 (authentication and roles) on every operation that needs a token; 400, 413, 415
/// and 422 (the JSON extractor) on every operation with a JSON body; 400 (the query extractor)
/// and 422 (a cursor the server did not give) on every operation with query parameters; 404 on every operation with a path parameter (the
/// thing it names may not exist); 503 on all but the probes (the store is unavailable, or the
/// server is still migrating).
pub(crate) fn declare_errors(doc: &mut OpenApi) {
    let global_security = doc.security.as_ref().is_some_and(|s| !s.is_empty());
    for (path, op) in operations_mut(doc) {
        let public = op.security.as_ref().map_or(!global_security, |s| {
            s.is_empty() || s.iter().all(is_empty_requirement)
        });
        let params = op.parameters.as_deref().unwrap_or_default();
        let has_path = params.iter().any(|p| p.parameter_in == ParameterIn::Path);
        let has_query = params.iter().any(|p| p.parameter_in == ParameterIn::Query);
        let json_body = op
            .request_body
            .as_ref()
            .is_some_and(|b| b.content.keys().any(|c| c == "application/json"));
        let mut wanted: Vec<(&str, &str)> = Vec::new();
        if !public {
            wanted.push(("401", "no token, or a token that is not valid"));
            wanted.push(("403", "the token's role may not do this"));
        }
        if json_body {
            wanted.push(("400", "the body is not JSON"));
            wanted.push(("413", "the body is too large"));
            wanted.push(("415", "the body is not application/json"));
            wanted.push((
                "422",
                "the body is JSON but not valid; `field` names the field",
            ));
        }
        if has_query {
            wanted.push(("400", "a query parameter is not valid; `field` names it"));
            wanted.push(("422", "a query parameter is not one the server can use (a cursor it did not give); `field` names it"));
        }
        if has_path {
            wanted.push(("404", "no such thing"));
        }
        if !matches!(path.as_str(), "/" | "/health" | "/liveness" | "/ready") {
            wanted.push(("503", "the server is starting, or the store is unavailable"));
        }
        for (status, description) in wanted {
            op.responses
                .responses
                .entry(status.to_owned())
                .or_insert_with(|| RefOr::T(error_response(description)));
        }
    }
}

fn is_empty_requirement(r: &utoipa::openapi::security::SecurityRequirement) -> bool {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_object().map(|o| o.is_empty()))
        .unwrap_or(false)
}

fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(RefOr::<utoipa::openapi::schema::Schema>::Ref(
                Ref::from_schema_name("ErrorBody"),
            ))),
        )
        .build()
}

/// Every operation of the document with its path.
fn operations_mut(doc: &mut OpenApi) -> Vec<(String, &mut Operation)> {
    let mut out = Vec::new();
    for (path, item) in doc.paths.paths.iter_mut() {
        for op in item_operations_mut(item) {
            out.push((path.clone(), op));
        }
    }
    out
}

fn item_operations_mut(item: &mut utoipa::openapi::PathItem) -> Vec<&mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The parameters of each operation, by operation id (for the tests).
#[cfg(test)]
fn parameters_by_operation(doc: &OpenApi) -> std::collections::BTreeMap<String, Vec<String>> {
    let v = serde_json::to_value(doc).unwrap_or_default();
    let mut out = std::collections::BTreeMap::new();
    for item in v["paths"].as_object().into_iter().flat_map(|p| p.values()) {
        for op in item.as_object().into_iter().flat_map(|o| o.values()) {
            let Some(id) = op["operationId"].as_str() else {
                continue;
            };
            let names = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect();
            out.insert(id.to_owned(), names);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const METHODS: &[&str] = &[
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    #[test]
    fn every_link_names_an_operation_and_its_parameters() {
        let doc = crate::api::openapi_document();
        let ops = parameters_by_operation(&doc);
        let v = serde_json::to_value(&doc).unwrap();
        let mut seen = 0;
        for (path, item) in v["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if !METHODS.contains(&method.as_str()) {
                    continue;
                }
                let Some(responses) = op["responses"].as_object() else {
                    continue;
                };
                for (status, resp) in responses {
                    for (name, link) in resp["links"].as_object().into_iter().flatten() {
                        seen += 1;
                        let at = format!("{method} {path} {status} links.{name}");
                        let to = link["operationId"]
                            .as_str()
                            .unwrap_or_else(|| panic!("{at}: no operationId"));
                        let params = ops
                            .get(to)
                            .unwrap_or_else(|| panic!("{at}: no operation {to:?}"));
                        for (p, expr) in link["parameters"].as_object().into_iter().flatten() {
                            assert!(params.contains(p), "{at}: {to} has no parameter {p:?}");
                            let expr = expr.as_str().unwrap();
                            assert!(
                                expr.starts_with("$response.body#/")
                                    || expr.starts_with("$request.path."),
                                "{at}: {expr:?} is not a runtime expression"
                            );
                            if let Some(param) = expr.strip_prefix("$request.path.") {
                                let own = op["parameters"]
                                    .as_array()
                                    .into_iter()
                                    .flatten()
                                    .any(|q| q["name"] == param && q["in"] == "path");
                                assert!(own, "{at}: the request has no path parameter {param}");
                            }
                        }
                        // Every path parameter of the target is set, or the link is no use.
                        let target_path_params = path_parameters_of(&v, to);
                        for p in target_path_params {
                            assert!(
                                link["parameters"].get(&p).is_some(),
                                "{at}: {to}'s path parameter {p:?} is not set"
                            );
                        }
                    }
                }
            }
        }
        // Every link of the table made it into the document (its answer exists).
        let alias_copies = crate::aliases::ALIASES.len(); // aliases carry links too: at least
        assert!(
            seen >= links().len(),
            "{seen} links in the document, {} in the table ({alias_copies} aliases)",
            links().len()
        );
        for spec in links() {
            let found = v["paths"].as_object().unwrap().values().any(|item| {
                item.as_object().unwrap().values().any(|op| {
                    op["operationId"] == spec.from
                        && op["responses"][spec.status]["links"][spec.name].is_object()
                })
            });
            assert!(
                found,
                "link {} of {} {} is not in the document",
                spec.name, spec.from, spec.status
            );
        }
    }

    /// The path parameters of the operation `id`.
    fn path_parameters_of(doc: &serde_json::Value, id: &str) -> Vec<String> {
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                if op["operationId"] == id {
                    return op["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|p| p["in"] == "path")
                        .filter_map(|p| p["name"].as_str().map(str::to_owned))
                        .collect();
                }
            }
        }
        Vec::new()
    }

    #[test]
    fn operation_ids_are_unique() {
        let v = serde_json::to_value(crate::api::openapi_document()).unwrap();
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in v["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if !op.is_object() || !METHODS.contains(&method.as_str()) {
                    continue;
                }
                let id = op["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path}"));
                assert!(
                    ids.insert(id.to_owned()),
                    "{method} {path}: operationId {id} twice"
                );
            }
        }
    }

    #[test]
    fn authenticated_operations_declare_401_and_json_bodies_422() {
        let v = serde_json::to_value(crate::api::openapi_document()).unwrap();
        let create = &v["paths"]["/api/v1/apps"]["post"]["responses"];
        for s in [
            "201", "202", "400", "401", "403", "413", "415", "422", "503",
        ] {
            assert!(create[s].is_object(), "POST /api/v1/apps declares no {s}");
        }
        let get = &v["paths"]["/api/v1/apps/{app}/status"]["get"]["responses"];
        assert!(get["404"].is_object() && get["401"].is_object());
        let live = &v["paths"]["/liveness"]["get"]["responses"];
        assert!(live["401"].is_null() && live["503"].is_null());
    }
}
