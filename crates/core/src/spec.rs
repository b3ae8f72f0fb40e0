//! The declarative app spec: `apiVersion: racer/v1` (or the widely used `v1`), `kind: App`,
//! `metadata`, `spec`. Plain data and pure functions: validation with field paths, the mapping to
//! what a deployment needs, and a field-by-field diff.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::{HealthCheck, Problem, RunConfig, MAX_CONCURRENCY};
use crate::AppName;

/// A whole spec document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppDocument {
    /// `racer/v1` or `v1`.
    pub api_version: String,
    /// `App`.
    pub kind: String,
    /// Name and labels.
    pub metadata: Metadata,
    /// The app.
    pub spec: AppSpec,
}

/// `metadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// The app's name (a DNS label).
    pub name: String,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `spec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AppSpec {
    /// The kind of app: `http` (AutoServe's field; the only kind racer runs, and the default).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub app_type: Option<String>,
    /// A prebuilt image (or `build`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// What to build (or `image`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildSpec>,
    /// The port the app listens on (one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortSpec>,
    /// Command override: a string or a list of arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandSpec>,
    /// Environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthSpec>,
    /// Limits per replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Replica bounds and policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<Scaling>,
    /// How replicas leave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination: Option<Termination>,
    /// 1 (lowest) to 5 (highest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// Runs only on this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// `binpack` (default) or `spread` over clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<String>,
    /// Requests one replica is sent at once; more wait in the proxy (default: the server's
    /// `--replica-concurrency`; 0: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// What the containers may do (capabilities, read-only root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<Security>,
}

/// `spec.security` (see [`crate::security`] for racer's defaults).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Security {
    /// Linux capabilities given back (racer drops all but `NET_BIND_SERVICE`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// A read-only root filesystem (`/tmp` stays writable, in memory).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only_root_filesystem: bool,
}

/// `spec.build`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildSpec {
    /// A folder, relative to the spec file (the CLI uploads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A git URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<String>,
    /// Branch, tag or commit of `git`.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Set by the CLI: the uploaded folder. Not part of the desired state's identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<String>,
}

/// `spec.ports[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortSpec {
    /// The port inside the container.
    pub container_port: u16,
    /// `TCP` (the only one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// `spec.command`: `"serve --port 8000"` or `["serve", "--port", "8000"]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CommandSpec {
    /// A command line.
    Line(String),
    /// Arguments.
    Args(Vec<String>),
}

/// `spec.env[]`: a `value`, or `valueFrom: sdk` for one racer provides (see [`SDK_ENV`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    /// Name.
    pub name: String,
    /// Value.
    #[serde(default)]
    pub value: String,
    /// `sdk`: the value racer provides for this name (AutoServe's "SDK-provided values").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<String>,
}

/// The only `spec.env[].valueFrom` racer knows.
pub const VALUE_FROM_SDK: &str = "sdk";

/// What racer sets in every replica, named or not: the values `valueFrom: sdk` stands for.
pub const SDK_ENV: &[(&str, &str)] = &[
    ("PORT", "the port the app listens on inside the container"),
    ("RACER_APP", "the app's name"),
    ("RACER_APP_ID", "the app's UUID"),
    ("RACER_RELEASE", "the release number the replica runs"),
    (
        "RACER_APP_URL",
        "the app's URL through racer's proxy, e.g. http://web.localhost:8080/",
    ),
];

/// `spec.health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthSpec {
    /// HTTP check; TCP connect to the app port when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGet>,
    /// Seconds between checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u32>,
    /// Seconds one check may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// Consecutive failures that take a replica out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
    /// Consecutive successes that put a replica in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<u32>,
}

/// `spec.health.httpGet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpGet {
    /// Path to GET.
    pub path: String,
    /// Port (default: the app port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// `spec.resources`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// Cores, e.g. `0.5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    /// `512Mi`, `1Gi`, `256M`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// GPUs per replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
}

/// `spec.scaling`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scaling {
    /// Fewest replicas (and the count in manual mode).
    #[serde(default = "one")]
    pub min_replicas: u32,
    /// Most replicas.
    #[serde(default = "one")]
    pub max_replicas: u32,
    /// How the count changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<ScalingPolicy>,
}

/// `spec.scaling.policy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingPolicy {
    /// `manual` (default) or `auto`.
    #[serde(default = "manual")]
    pub mode: String,
    /// Least seconds between two scaling decisions (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_seconds: Option<u32>,
    /// Seconds a metric must stay above (or all below) its threshold (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<u32>,
    /// Scale out above this % of a target (default 100).
    #[serde(
        default,
        rename = "scaleOutThresholdPct",
        skip_serializing_if = "Option::is_none"
    )]
    pub scale_out_threshold_pct: Option<f64>,
    /// Scale in below this % of every target (default 50).
    #[serde(
        default,
        rename = "scaleInThresholdPct",
        skip_serializing_if = "Option::is_none"
    )]
    pub scale_in_threshold_pct: Option<f64>,
    /// CPU target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<PctTarget>,
    /// Memory target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<PctTarget>,
    /// HTTP targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpTargets>,
}

fn manual() -> String {
    "manual".into()
}

/// `{targetPct: 70}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PctTarget {
    /// Percent of the limit.
    pub target_pct: f64,
}

/// `spec.scaling.policy.http`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpTargets {
    /// Requests per second per replica.
    #[serde(
        default,
        rename = "targetRPSPerReplica",
        skip_serializing_if = "Option::is_none"
    )]
    pub target_rps_per_replica: Option<f64>,
    /// Highest wanted p95 latency.
    #[serde(
        default,
        rename = "maxP95LatencyMs",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_p95_latency_ms: Option<f64>,
    /// `scaleOutThresholdPct`, where the AutoServe seed nests it (the policy's own wins).
    #[serde(
        default,
        rename = "scaleOutThresholdPct",
        skip_serializing_if = "Option::is_none"
    )]
    pub scale_out_threshold_pct: Option<f64>,
    /// `scaleInThresholdPct`, where the AutoServe seed nests it (the policy's own wins).
    #[serde(
        default,
        rename = "scaleInThresholdPct",
        skip_serializing_if = "Option::is_none"
    )]
    pub scale_in_threshold_pct: Option<f64>,
    /// `windowSeconds`, where the AutoServe seed nests it (the policy's own wins).
    #[serde(
        default,
        rename = "windowSeconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub window_seconds: Option<u32>,
}

impl AppDocument {
    /// The autoscaling policy, when `scaling.policy.mode` is `auto`.
    pub fn autoscale(&self) -> Option<crate::autoscale::Policy> {
        let sc = self.spec.scaling.as_ref()?;
        let p = sc.policy.as_ref()?;
        if p.mode != "auto" {
            return None;
        }
        let http = p.http.as_ref();
        let window = p
            .window_seconds
            .or(http.and_then(|h| h.window_seconds))
            .unwrap_or(30);
        Some(crate::autoscale::Policy {
            min_replicas: sc.min_replicas,
            max_replicas: sc.max_replicas,
            cooldown: std::time::Duration::from_secs(u64::from(p.cooldown_seconds.unwrap_or(30))),
            window: std::time::Duration::from_secs(u64::from(window)),
            scale_out_pct: p
                .scale_out_threshold_pct
                .or(http.and_then(|h| h.scale_out_threshold_pct))
                .unwrap_or(100.0),
            scale_in_pct: p
                .scale_in_threshold_pct
                .or(http.and_then(|h| h.scale_in_threshold_pct))
                .unwrap_or(50.0),
            cpu_target_pct: p.cpu.as_ref().map(|c| c.target_pct),
            memory_target_pct: p.memory.as_ref().map(|c| c.target_pct),
            rps_per_replica: p.http.as_ref().and_then(|h| h.target_rps_per_replica),
            max_p95_ms: p.http.as_ref().and_then(|h| h.max_p95_latency_ms),
        })
    }
}

fn one() -> u32 {
    1
}

/// `spec.termination`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Termination {
    /// Seconds a leaving replica keeps serving in-flight requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_seconds: Option<u32>,
}

/// Where an app's code comes from, per the spec.
#[derive(Debug, Clone, PartialEq)]
pub enum SpecSource {
    /// `spec.image`.
    Image(String),
    /// `spec.build.git` (+ `ref`).
    Git(String, Option<String>),
    /// `spec.build.path`, relative to the spec file; `upload` once the CLI sent it.
    Path(String, Option<String>),
}

pub use crate::units::memory_mib;

impl AppDocument {
    /// Every problem, each with its field path.
    pub fn validate(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        let mut bad = |field: &str, message: String| {
            p.push(Problem {
                field: field.to_owned(),
                message,
            })
        };
        if self.api_version != "racer/v1" && self.api_version != "v1" {
            bad(
                "apiVersion",
                format!("{:?} is not racer/v1 or v1", self.api_version),
            );
        }
        if self.kind != "App" {
            bad("kind", format!("{:?} is not App", self.kind));
        }
        if let Some(t) = self.spec.app_type.as_deref().filter(|t| *t != "http") {
            bad(
                "spec.type",
                format!("{t:?} is not supported: racer runs `http` apps (the default)"),
            );
        }
        if let Err(e) = AppName::parse(&self.metadata.name) {
            bad("metadata.name", e.to_string());
        }
        let s = &self.spec;
        match (&s.image, &s.build) {
            (None, None) => bad("spec", "give spec.image or spec.build".into()),
            (Some(_), Some(_)) => bad(
                "spec.build",
                "give spec.image or spec.build, not both".into(),
            ),
            (None, Some(b)) => match (&b.path, &b.git) {
                (None, None) => bad("spec.build", "give build.path or build.git".into()),
                (Some(_), Some(_)) => bad(
                    "spec.build.git",
                    "give build.path or build.git, not both".into(),
                ),
                _ => {}
            },
            (Some(i), None) if i.trim().is_empty() => bad("spec.image", "must not be empty".into()),
            _ => {}
        }
        if s.ports.len() > 1 {
            bad("spec.ports", "one port per app".into());
        }
        for (i, port) in s.ports.iter().enumerate() {
            if port.container_port == 0 {
                bad(
                    &format!("spec.ports[{i}].containerPort"),
                    "must be 1-65535".into(),
                );
            }
            if port
                .protocol
                .as_deref()
                .is_some_and(|p| !p.eq_ignore_ascii_case("tcp"))
            {
                bad(&format!("spec.ports[{i}].protocol"), "only TCP".into());
            }
        }
        for (i, e) in s.env.iter().enumerate() {
            let ok = !e.name.is_empty()
                && !e.name.starts_with(|c: char| c.is_ascii_digit())
                && e.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                bad(
                    &format!("spec.env[{i}].name"),
                    format!("{:?} is not a variable name", e.name),
                );
            }
            match e.value_from.as_deref() {
                None => {}
                Some(VALUE_FROM_SDK) if e.value.is_empty() => {}
                Some(VALUE_FROM_SDK) => bad(
                    &format!("spec.env[{i}].valueFrom"),
                    "set value or valueFrom, not both".into(),
                ),
                Some(other) => bad(
                    &format!("spec.env[{i}].valueFrom"),
                    format!("{other:?} is not supported; the supported value is \"sdk\""),
                ),
            }
        }
        if let Some(r) = &s.resources {
            if r.cpu.is_some_and(|c| !(c > 0.0 && c <= 256.0)) {
                bad("spec.resources.cpu", "cores must be > 0".into());
            }
            if let Some(m) = &r.memory {
                match memory_mib(m) {
                    Some(v) if v >= 6 => {}
                    Some(_) => bad("spec.resources.memory", "at least 6Mi".into()),
                    None => bad(
                        "spec.resources.memory",
                        format!("{m:?}: use 512Mi, 1Gi, 256M"),
                    ),
                }
            }
        }
        if let Some(sc) = &s.scaling {
            if sc.min_replicas > sc.max_replicas {
                bad(
                    "spec.scaling.minReplicas",
                    "must not exceed maxReplicas".into(),
                );
            }
            if sc.max_replicas > crate::api::MAX_INSTANCES {
                bad(
                    "spec.scaling.maxReplicas",
                    format!("at most {}", crate::api::MAX_INSTANCES),
                );
            }
        }
        if let Some(h) = &s.health {
            for (f, v) in [
                ("intervalSeconds", h.interval_seconds),
                ("timeoutSeconds", h.timeout_seconds),
                ("failureThreshold", h.failure_threshold),
                ("successThreshold", h.success_threshold),
            ] {
                if v == Some(0) {
                    bad(&format!("spec.health.{f}"), "must be at least 1".into());
                }
            }
            if let Some(g) = &h.http_get {
                if !g.path.starts_with('/') {
                    bad("spec.health.httpGet.path", "must start with /".into());
                }
            }
        }
        if let Some(policy) = s.scaling.as_ref().and_then(|sc| sc.policy.as_ref()) {
            if policy.mode != "auto" && policy.mode != "manual" {
                bad(
                    "spec.scaling.policy.mode",
                    format!("{:?}: use manual or auto", policy.mode),
                );
            }
            if let Some(p) = self.autoscale() {
                if let Err(e) = p.validate() {
                    bad(e.field(), e.to_string());
                }
            }
        }
        if s.priority.is_some_and(|p| !(1..=5).contains(&p)) {
            bad("spec.priority", "must be 1-5".into());
        }
        if s.placement
            .as_deref()
            .is_some_and(|p| crate::placement::Strategy::parse(p).is_none())
        {
            bad("spec.placement", "must be binpack or spread".into());
        }
        for (i, cap) in s.security.iter().flat_map(|x| x.cap_add.iter()).enumerate() {
            if crate::security::capability(cap).is_none() {
                bad(
                    &format!("spec.security.capAdd[{i}]"),
                    format!("unknown capability {cap:?}: a Linux capability name such as CHOWN or SETUID"),
                );
            }
        }
        if s.concurrency.is_some_and(|c| c > MAX_CONCURRENCY) {
            bad(
                "spec.concurrency",
                format!("must be 0-{MAX_CONCURRENCY} (0: no limit)"),
            );
        }
        p
    }

    /// Where the code comes from.
    pub fn source(&self) -> Option<SpecSource> {
        if let Some(i) = &self.spec.image {
            return Some(SpecSource::Image(i.clone()));
        }
        let b = self.spec.build.as_ref()?;
        if let Some(g) = &b.git {
            return Some(SpecSource::Git(g.clone(), b.reference.clone()));
        }
        b.path
            .as_ref()
            .map(|p| SpecSource::Path(p.clone(), b.upload.clone()))
    }

    /// What a user should know about an accepted spec: each `valueFrom: sdk` variable racer
    /// provides no value for (it is not set in the replicas).
    pub fn notes(&self) -> Vec<Problem> {
        self.spec
            .env
            .iter()
            .enumerate()
            .filter(|(_, e)| e.value_from.as_deref() == Some(VALUE_FROM_SDK))
            .filter(|(_, e)| !SDK_ENV.iter().any(|(n, _)| *n == e.name))
            .map(|(i, e)| Problem {
                field: format!("spec.env[{i}].valueFrom"),
                message: format!(
                    "racer provides no value for {}: it is not set in the replicas (racer's sdk values are {}; give {} a value: to set it)",
                    e.name,
                    SDK_ENV.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
                    e.name
                ),
            })
            .collect()
    }

    /// The run configuration a release of this spec gets.
    pub fn run_config(&self) -> RunConfig {
        let s = &self.spec;
        RunConfig {
            app_port: s.ports.first().map(|p| p.container_port),
            // `valueFrom: sdk` variables are set by racer in every replica, not recorded.
            env: s
                .env
                .iter()
                .filter(|e| e.value_from.is_none())
                .map(|e| (e.name.clone(), e.value.clone()))
                .collect(),
            command: s.command.as_ref().map(|c| match c {
                CommandSpec::Line(l) => l.clone(),
                CommandSpec::Args(a) => a
                    .iter()
                    .map(|x| {
                        if x.is_empty()
                            || x.contains(|c: char| c.is_whitespace() || "'\"\\".contains(c))
                        {
                            format!("'{}'", x.replace('\'', "'\"'\"'"))
                        } else {
                            x.clone()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            }),
            memory_mb: s
                .resources
                .as_ref()
                .and_then(|r| r.memory.as_deref())
                .and_then(memory_mib),
            cpus: s.resources.as_ref().and_then(|r| r.cpu),
            base_image: None,
            command_in_image: false,
            priority: s.priority,
            cluster: s.cluster.clone(),
            placement: s.placement.clone(),
            gpu: s.resources.as_ref().and_then(|r| r.gpu),
            health: s.health.as_ref().map(|h| HealthCheck {
                path: h.http_get.as_ref().map(|g| g.path.clone()),
                port: h.http_get.as_ref().and_then(|g| g.port),
                interval_seconds: h.interval_seconds.unwrap_or(1),
                timeout_seconds: h.timeout_seconds.unwrap_or(1),
                failure_threshold: h.failure_threshold.unwrap_or(3),
                success_threshold: h.success_threshold.unwrap_or(1),
            }),
            drain_seconds: s.termination.as_ref().and_then(|t| t.drain_seconds),
            concurrency: s.concurrency,
            cap_add: s
                .security
                .as_ref()
                .map(|x| x.cap_add.clone())
                .unwrap_or_default(),
            read_only: s
                .security
                .as_ref()
                .is_some_and(|x| x.read_only_root_filesystem),
        }
    }

    /// Replicas to run in manual mode: `scaling.minReplicas`, else 1.
    pub fn instances(&self) -> u32 {
        self.spec
            .scaling
            .as_ref()
            .map(|s| s.min_replicas)
            .unwrap_or(1)
    }

    /// The document as the desired state is compared: without the CLI's upload id.
    pub fn identity(&self) -> serde_json::Value {
        let mut d = self.clone();
        if let Some(b) = &mut d.spec.build {
            b.upload = None;
        }
        serde_json::to_value(&d).unwrap_or(serde_json::Value::Null)
    }

    /// Whether going from `self` to `next` needs a new release (anything but scaling changed).
    pub fn needs_release(&self, next: &AppDocument) -> bool {
        let strip = |d: &AppDocument| {
            let mut d = d.clone();
            d.spec.scaling = None;
            d.metadata.labels.clear();
            d.identity()
        };
        strip(self) != strip(next)
    }
}

/// Field-by-field differences between two JSON trees: `~ path: old -> new`, `+ path: new`,
/// `- path: old`, in path order.
pub fn diff(old: &serde_json::Value, new: &serde_json::Value) -> Vec<String> {
    fn walk(
        path: &str,
        a: Option<&serde_json::Value>,
        b: Option<&serde_json::Value>,
        out: &mut Vec<String>,
    ) {
        use serde_json::Value::{Array, Object};
        match (a, b) {
            (Some(Object(x)), Some(Object(y))) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(&p, x.get(k), y.get(k), out);
                }
            }
            (Some(Array(x)), Some(Array(y))) => {
                for i in 0..x.len().max(y.len()) {
                    walk(&format!("{path}[{i}]"), x.get(i), y.get(i), out);
                }
            }
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => out.push(format!("~ {path}: {x} -> {y}")),
            (None, Some(y)) => out.push(format!("+ {path}: {y}")),
            (Some(x), None) => out.push(format!("- {path}: {x}")),
            (None, None) => {}
        }
    }
    let mut out = Vec::new();
    walk("", Some(old), Some(new), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(json: serde_json::Value) -> AppDocument {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn memory_units() {
        assert_eq!(memory_mib("512Mi"), Some(512));
        assert_eq!(memory_mib("1Gi"), Some(1024));
        assert_eq!(memory_mib("256M"), Some(244));
        assert_eq!(memory_mib("0.5Gi"), Some(512));
        assert_eq!(memory_mib("4GB"), Some(3815));
        assert_eq!(memory_mib("4g"), Some(4096));
        assert_eq!(memory_mib("512m"), Some(512));
        assert_eq!(memory_mib("2GiB"), Some(2048));
        assert_eq!(memory_mib("1048576"), Some(1));
        assert_eq!(memory_mib("lots"), None);
        assert_eq!(memory_mib("NaNMi"), None);
        assert_eq!(memory_mib("-1Mi"), None);
    }

    #[test]
    fn validation_names_every_field() {
        let d = doc(serde_json::json!({
            "apiVersion": "racer/v2", "kind": "Pod", "metadata": {"name": "Bad_Name"},
            "spec": {"image": "x", "build": {"path": "."}, "env": [{"name": "1X", "value": "v"}],
                     "resources": {"memory": "lots"}, "scaling": {"minReplicas": 3, "maxReplicas": 2},
                     "priority": 9, "concurrency": 100001}
        }));
        let fields: Vec<String> = d.validate().into_iter().map(|p| p.field).collect();
        for f in [
            "apiVersion",
            "kind",
            "metadata.name",
            "spec.build",
            "spec.env[0].name",
            "spec.resources.memory",
            "spec.scaling.minReplicas",
            "spec.priority",
            "spec.concurrency",
        ] {
            assert!(
                fields.contains(&f.to_owned()),
                "{f} missing from {fields:?}"
            );
        }
    }

    #[test]
    fn maps_to_a_run_config() {
        let d = doc(serde_json::json!({
            "apiVersion": "v1", "kind": "App", "metadata": {"name": "web"},
            "spec": {"image": "web:1", "ports": [{"containerPort": 8080}], "command": ["serve", "a b"],
                     "env": [{"name": "A", "value": "1"}],
                     "health": {"httpGet": {"path": "/health"}, "failureThreshold": 2},
                     "resources": {"cpu": 0.5, "memory": "256Mi", "gpu": 1}, "scaling": {"minReplicas": 2, "maxReplicas": 4},
                     "termination": {"drainSeconds": 5}, "concurrency": 10, "priority": 4}
        }));
        assert!(d.validate().is_empty(), "{:?}", d.validate());
        let c = d.run_config();
        assert_eq!((c.priority, c.gpu), (Some(4), Some(1)));
        assert_eq!(c.app_port, Some(8080));
        assert_eq!(c.command.as_deref(), Some("serve 'a b'"));
        assert_eq!(c.env["A"], "1");
        assert_eq!(c.memory_mb, Some(256));
        assert_eq!(c.health.as_ref().unwrap().failure_threshold, 2);
        assert_eq!(c.drain_seconds, Some(5));
        assert_eq!(c.concurrency, Some(10));
        assert_eq!(d.instances(), 2);
        assert_eq!(d.source(), Some(SpecSource::Image("web:1".into())));
    }

    #[test]
    fn scaling_changes_need_no_release() {
        let a = doc(
            serde_json::json!({"apiVersion": "v1", "kind": "App", "metadata": {"name": "w"},
            "spec": {"image": "w:1", "scaling": {"minReplicas": 1, "maxReplicas": 2}}}),
        );
        let mut b = a.clone();
        b.spec.scaling = Some(Scaling {
            min_replicas: 2,
            max_replicas: 3,
            policy: None,
        });
        assert!(!a.needs_release(&b));
        let mut c = a.clone();
        c.spec.image = Some("w:2".into());
        assert!(a.needs_release(&c));
        assert_eq!(
            diff(&a.identity(), &c.identity()),
            ["~ spec.image: \"w:1\" -> \"w:2\""]
        );
        assert!(diff(&a.identity(), &a.identity()).is_empty());
    }

    #[test]
    fn autoserve_type_and_nested_http_thresholds() {
        let d = doc(serde_json::json!({
            "apiVersion": "v1", "kind": "App", "metadata": {"name": "my-app"},
            "spec": {"type": "http", "image": "my-app:latest",
                     "scaling": {"minReplicas": 1, "maxReplicas": 10, "policy": {"mode": "auto",
                        "cooldownSeconds": 30,
                        "http": {"targetRPSPerReplica": 50, "maxP95LatencyMs": 200,
                                 "scaleOutThresholdPct": 80, "scaleInThresholdPct": 30,
                                 "windowSeconds": 20}}}}
        }));
        assert!(d.validate().is_empty(), "{:?}", d.validate());
        let p = d.autoscale().unwrap();
        assert_eq!(p.scale_out_pct, 80.0);
        assert_eq!(p.scale_in_pct, 30.0);
        assert_eq!(p.window, std::time::Duration::from_secs(20));
        // The policy's own field wins over the nested one.
        let d = doc(serde_json::json!({
            "apiVersion": "v1", "kind": "App", "metadata": {"name": "my-app"},
            "spec": {"image": "x", "scaling": {"policy": {"mode": "auto", "windowSeconds": 40,
                "http": {"targetRPSPerReplica": 5, "windowSeconds": 20}}}}
        }));
        assert_eq!(
            d.autoscale().unwrap().window,
            std::time::Duration::from_secs(40)
        );
        let bad = doc(serde_json::json!({
            "apiVersion": "v1", "kind": "App", "metadata": {"name": "my-app"},
            "spec": {"type": "grpc", "image": "x"}
        }));
        let problems = bad.validate();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field, "spec.type");
        assert!(problems[0].message.contains("http"));
    }
}
