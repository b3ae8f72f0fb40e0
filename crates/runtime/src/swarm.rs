//! Swarm mode: the engine's swarm membership, and apps as Swarm services.
//!
//! On a Swarm cluster an app is one replicated service carrying racer's labels
//! (`racer.managed`, `racer.install`, `racer.app`, `racer.app.name`, `racer.release`). It is
//! scaled by updating the replica count of the spec the engine holds (with
//! the service's version, so a concurrent change is refused instead of lost) and rolled to a new
//! release by a spec update that Swarm carries out with its update config: one task at a time,
//! start-first, rolled back by Swarm when new tasks fail.
//!
//! Nothing is published: the routing mesh needs IPVS in the kernel, and Swarm publishes ports on
//! every interface of a node. A service attached to no network puts its tasks on the node's
//! default bridge, where racer reaches each task's container at its address, as it does local
//! replicas (so racer's proxy balances over the tasks and checks each one).
//!
//! The task containers carry `racer.install`, `racer.app`, `racer.app.name` and `racer.release`,
//! and `racer.managed=false` (overriding the label of racer's images): Swarm owns them, so the
//! container reconciler never adopts or removes them.

use std::collections::HashMap;

use bollard::models::{
    EndpointSpec, EndpointSpecModeEnum, Limit, LocalNodeState, ObjectVersion, Service, ServiceSpec,
    ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecRollbackConfig,
    ServiceSpecRollbackConfigFailureActionEnum, ServiceSpecRollbackConfigOrderEnum,
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, ServiceUpdateStatusStateEnum, SwarmInitRequest, Task,
    TaskSpec, TaskSpecContainerSpec, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum, TaskState,
};
use bollard::query_parameters::{
    LeaveSwarmOptionsBuilder, ListServicesOptionsBuilder, ListTasksOptionsBuilder,
    LogsOptionsBuilder, UpdateServiceOptionsBuilder,
};
use futures_util::StreamExt;
use uuid::Uuid;

use crate::{
    Error, LineStream, Runtime, LABEL_APP, LABEL_APP_NAME, LABEL_INSTALL, LABEL_MANAGED,
    LABEL_RELEASE,
};

/// Nanoseconds per second, the unit of Swarm's durations.
const SECOND_NS: i64 = 1_000_000_000;

/// This engine's place in a swarm, from `GET /info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmState {
    /// `inactive`, `pending`, `active`, `error` or `locked`.
    pub state: String,
    /// Whether this node is a manager (services can be created and listed here).
    pub manager: bool,
    /// The node's id, when in a swarm.
    pub node_id: Option<String>,
    /// The address the node advertises, when in a swarm.
    pub node_addr: Option<String>,
    /// Nodes in the swarm (managers only).
    pub nodes: Option<i64>,
    /// Managers in the swarm (managers only).
    pub managers: Option<i64>,
    /// The engine's swarm error, if any.
    pub error: Option<String>,
}

impl SwarmState {
    /// Whether services can be run from this engine.
    pub fn is_manager(&self) -> bool {
        self.state == "active" && self.manager
    }
}

/// What racer asks Swarm to run: one app's release as a replicated service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDef {
    /// Service name (unique in the swarm).
    pub name: String,
    /// Image reference or id (an id is never pulled: local images work without a registry).
    pub image: String,
    /// Owning app.
    pub app_id: Uuid,
    /// Owning app's name.
    pub app_name: String,
    /// Release number.
    pub release: i64,
    /// Environment, `K=V`.
    pub env: Vec<String>,
    /// Command override (argv), if any: the image's entrypoint gets these arguments.
    pub command: Option<Vec<String>>,
    /// The port the app listens on inside its containers.
    pub app_port: u16,
    /// Memory limit per task, bytes.
    pub memory_bytes: i64,
    /// CPU limit per task, billionths of a core.
    pub nano_cpus: i64,
    /// Desired tasks.
    pub replicas: u64,
    /// Seconds between SIGTERM and SIGKILL when a task stops.
    pub stop_grace_secs: i64,
}

/// A service racer owns, as the engine reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceObserved {
    /// Service id.
    pub id: String,
    /// Service name.
    pub name: String,
    /// The version index a change must name.
    pub version: u64,
    /// From `racer.app`.
    pub app_id: Option<Uuid>,
    /// From `racer.app.name`.
    pub app_name: Option<String>,
    /// From `racer.release`.
    pub release: Option<i64>,
    /// The task image.
    pub image: String,
    /// Desired tasks (the spec's replica count).
    pub replicas: u64,
    /// The last update's state: `updating`, `paused`, `completed`, `rollback_started`,
    /// `rollback_paused`, `rollback_completed`; `None` before the first update.
    pub update_state: Option<String>,
    /// The last update's message.
    pub update_message: Option<String>,
    /// The spec as the engine holds it (scaling changes only its replica count).
    pub spec: ServiceSpec,
}

/// One task of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskObserved {
    /// Task id.
    pub id: String,
    /// Replica slot (1-based).
    pub slot: Option<i64>,
    /// The node it is assigned to.
    pub node_id: Option<String>,
    /// From the container's `racer.release` label.
    pub release: Option<i64>,
    /// `new` .. `running`, `complete`, `shutdown`, `failed`, `rejected`, ...
    pub state: String,
    /// What Swarm wants of it: `running` or `shutdown`.
    pub desired_state: String,
    /// Swarm's message on the state.
    pub message: Option<String>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Its container, once it has one.
    pub container_id: Option<String>,
}

impl TaskObserved {
    /// Whether it runs and Swarm wants it to.
    pub fn running(&self) -> bool {
        self.state == "running" && self.desired_state == "running"
    }
}

/// The spec Swarm should run for `def`: a replicated service with racer's labels, limits, no
/// published port and no network (its tasks join the default bridge), restart on any exit, and
/// an update config that rolls one task at a time, starting the new one before stopping the old
/// one, and rolls back when a new task fails.
pub fn service_spec(def: &ServiceDef, install: &str) -> ServiceSpec {
    let labels = HashMap::from([
        (LABEL_MANAGED.to_owned(), "true".to_owned()),
        (LABEL_INSTALL.to_owned(), install.to_owned()),
        (LABEL_APP.to_owned(), def.app_id.to_string()),
        (LABEL_APP_NAME.to_owned(), def.app_name.clone()),
        (LABEL_RELEASE.to_owned(), def.release.to_string()),
    ]);
    // The task containers: `racer.managed=false`, overriding the label racer's images carry,
    // so the container reconciler never adopts or removes them (Swarm owns them).
    let mut container_labels = labels.clone();
    container_labels.insert(LABEL_MANAGED.to_owned(), "false".to_owned());
    ServiceSpec {
        name: Some(def.name.clone()),
        labels: Some(labels),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(def.image.clone()),
                labels: Some(container_labels),
                args: def.command.clone(),
                env: Some(def.env.clone()),
                stop_grace_period: Some(def.stop_grace_secs * SECOND_NS),
                ..Default::default()
            }),
            resources: Some(TaskSpecResources {
                limits: Some(Limit {
                    nano_cpus: Some(def.nano_cpus),
                    memory_bytes: Some(def.memory_bytes),
                    pids: None,
                }),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                delay: Some(SECOND_NS),
                max_attempts: None,
                window: None,
            }),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(def.replicas as i64),
            }),
            ..Default::default()
        }),
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(1),
            delay: Some(0),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            monitor: Some(5 * SECOND_NS),
            max_failure_ratio: Some(0.0),
            order: Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
        }),
        rollback_config: Some(ServiceSpecRollbackConfig {
            parallelism: Some(1),
            delay: Some(0),
            failure_action: Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
            monitor: Some(5 * SECOND_NS),
            max_failure_ratio: Some(0.0),
            order: Some(ServiceSpecRollbackConfigOrderEnum::START_FIRST),
        }),
        // DNS round robin: no virtual IP, which would need IPVS.
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::DNSRR),
            ports: None,
        }),
        ..Default::default()
    }
}

/// `spec` with only its replica count changed: what scaling sends, so nothing else rolls.
pub fn with_replicas(spec: &ServiceSpec, replicas: u64) -> ServiceSpec {
    let mut spec = spec.clone();
    let mode = spec.mode.get_or_insert_with(Default::default);
    mode.replicated = Some(ServiceSpecModeReplicated {
        replicas: Some(replicas as i64),
    });
    spec
}

/// Reads racer's view of a service the engine reported.
pub fn observe_service(s: Service) -> ServiceObserved {
    let spec = s.spec.unwrap_or_default();
    let labels = spec.labels.clone().unwrap_or_default();
    let image = spec
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    let replicas = spec
        .mode
        .as_ref()
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .unwrap_or(0)
        .max(0) as u64;
    let update = s.update_status.unwrap_or_default();
    ServiceObserved {
        id: s.id.unwrap_or_default(),
        name: spec.name.clone().unwrap_or_default(),
        version: s.version.and_then(|v| v.index).unwrap_or(0),
        app_id: labels.get(LABEL_APP).and_then(|a| Uuid::parse_str(a).ok()),
        app_name: labels.get(LABEL_APP_NAME).cloned(),
        release: labels.get(LABEL_RELEASE).and_then(|r| r.parse().ok()),
        image,
        replicas,
        update_state: update
            .state
            .filter(|s| *s != ServiceUpdateStatusStateEnum::EMPTY)
            .map(|s| s.to_string()),
        update_message: update.message.filter(|m| !m.is_empty()),
        spec,
    }
}

/// Reads racer's view of a task the engine reported.
pub fn observe_task(t: Task) -> TaskObserved {
    let status = t.status.unwrap_or_default();
    let release = t
        .spec
        .as_ref()
        .and_then(|s| s.container_spec.as_ref())
        .and_then(|c| c.labels.as_ref())
        .and_then(|l| l.get(LABEL_RELEASE))
        .and_then(|r| r.parse().ok());
    let state = |s: Option<TaskState>| s.map(|s| s.to_string()).unwrap_or_default();
    TaskObserved {
        id: t.id.unwrap_or_default(),
        slot: t.slot,
        node_id: t.node_id.filter(|n| !n.is_empty()),
        release,
        state: state(status.state),
        desired_state: state(t.desired_state),
        message: status.message.filter(|m| !m.is_empty()),
        error: status.err.filter(|e| !e.is_empty()),
        container_id: status
            .container_status
            .and_then(|c| c.container_id)
            .filter(|c| !c.is_empty()),
    }
}

impl Runtime {
    /// This engine's swarm membership (works on any engine, in a swarm or not).
    pub async fn swarm_state(&self) -> Result<SwarmState, Error> {
        let info = self
            .docker
            .info()
            .await
            .map_err(|s| Error::from_engine("read engine info", s))?;
        let s = info.swarm.unwrap_or_default();
        let state = match s.local_node_state {
            Some(LocalNodeState::EMPTY) | None => "inactive".to_owned(),
            Some(other) => other.to_string(),
        };
        Ok(SwarmState {
            state,
            manager: s.control_available.unwrap_or(false),
            node_id: s.node_id.filter(|n| !n.is_empty()),
            node_addr: s.node_addr.filter(|n| !n.is_empty()),
            nodes: s.nodes,
            managers: s.managers,
            error: s.error.filter(|e| !e.is_empty()),
        })
    }

    /// Makes this engine the only node (and manager) of a new swarm, advertising
    /// `advertise_addr` and listening for other nodes on `listen_addr`. Returns the node id.
    pub async fn swarm_init(
        &self,
        advertise_addr: &str,
        listen_addr: &str,
    ) -> Result<String, Error> {
        let req = SwarmInitRequest {
            listen_addr: Some(listen_addr.to_owned()),
            advertise_addr: Some(advertise_addr.to_owned()),
            ..Default::default()
        };
        self.docker
            .init_swarm(req)
            .await
            .map_err(|s| Error::from_engine("initialise a swarm", s))
    }

    /// Makes this engine leave its swarm. `force` is needed for the last manager, and removes
    /// every service of that swarm.
    pub async fn swarm_leave(&self, force: bool) -> Result<(), Error> {
        let opts = LeaveSwarmOptionsBuilder::new().force(force).build();
        self.docker
            .leave_swarm(Some(opts))
            .await
            .map_err(|s| Error::from_engine("leave the swarm", s))
    }

    /// Every service of this install, optionally only one app's.
    pub async fn services(&self, app: Option<Uuid>) -> Result<Vec<ServiceObserved>, Error> {
        let filters = self.owned_filter(app);
        let opts = ListServicesOptionsBuilder::new().filters(&filters).build();
        let list = self
            .docker
            .list_services(Some(opts))
            .await
            .map_err(|s| Error::from_engine("list services", s))?;
        Ok(list.into_iter().map(observe_service).collect())
    }

    /// Creates a service. Returns its id.
    pub async fn create_service(&self, def: &ServiceDef) -> Result<String, Error> {
        let created = self
            .docker
            .create_service(service_spec(def, &self.install), None)
            .await
            .map_err(|s| Error::from_engine("create service", s))?;
        Ok(created.id.unwrap_or_default())
    }

    /// Replaces a service's spec; `version` is the version it was read at (a service changed
    /// since is refused, not overwritten). A new image or config rolls through the update config.
    pub async fn update_service(
        &self,
        id: &str,
        version: u64,
        spec: ServiceSpec,
    ) -> Result<(), Error> {
        let opts = UpdateServiceOptionsBuilder::new()
            .version(i32::try_from(version).unwrap_or(i32::MAX))
            .build();
        self.docker
            .update_service(id, spec, opts, None)
            .await
            .map_err(|s| Error::from_engine("update service", s))?;
        Ok(())
    }

    /// Sets a service's replica count, changing nothing else.
    pub async fn scale_service(&self, s: &ServiceObserved, replicas: u64) -> Result<(), Error> {
        self.update_service(&s.id, s.version, with_replicas(&s.spec, replicas))
            .await
    }

    /// A service's tasks (current and recent history), by slot then newest first.
    pub async fn tasks(&self, service_id: &str) -> Result<Vec<TaskObserved>, Error> {
        let filters = HashMap::from([("service".to_owned(), vec![service_id.to_owned()])]);
        let opts = ListTasksOptionsBuilder::new().filters(&filters).build();
        let list = self
            .docker
            .list_tasks(Some(opts))
            .await
            .map_err(|s| Error::from_engine("list tasks", s))?;
        let mut tasks: Vec<_> = list.into_iter().map(observe_task).collect();
        tasks.sort_by_key(|t| (t.slot, t.desired_state != "running", t.id.clone()));
        Ok(tasks)
    }

    /// A service's log, every task merged, as lines. `tail` is a count or `all`.
    pub fn service_logs(&self, id: &str, tail: &str, follow: bool) -> LineStream {
        let opts = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .follow(follow)
            .tail(tail)
            .build();
        let stream = self
            .docker
            .service_logs(id, Some(opts))
            .map(|item| match item {
                Ok(out) => Ok(String::from_utf8_lossy(&out.into_bytes()).into_owned()),
                Err(e) => Err(Error::from_engine("read service logs", e)),
            });
        Box::pin(stream)
    }

    /// Removes a service (Swarm stops and removes its tasks). A missing one is not an error.
    pub async fn remove_service(&self, id: &str) -> Result<(), Error> {
        match self.docker.delete_service(id).await {
            Ok(()) => Ok(()),
            Err(e) => match Error::from_engine("remove service", e) {
                Error::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }
}

/// A version as Swarm reports it (for tests and callers that build services by hand).
pub fn version(index: u64) -> ObjectVersion {
    ObjectVersion { index: Some(index) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerStatus, ServiceUpdateStatus, TaskStatus};

    fn def() -> ServiceDef {
        ServiceDef {
            name: "web-abcd1234".into(),
            image: "sha256:feed".into(),
            app_id: Uuid::nil(),
            app_name: "web".into(),
            release: 3,
            env: vec!["PORT=8000".into()],
            command: Some(vec!["serve".into(), "--fast".into()]),
            app_port: 8000,
            memory_bytes: 512 * 1024 * 1024,
            nano_cpus: 500_000_000,
            replicas: 2,
            stop_grace_secs: 10,
        }
    }

    #[test]
    fn spec_carries_labels_limits_and_a_start_first_rollback_update() {
        let spec = service_spec(&def(), "inst");
        let labels = spec.labels.clone().unwrap();
        assert_eq!(labels[LABEL_MANAGED], "true");
        assert_eq!(labels[LABEL_INSTALL], "inst");
        assert_eq!(labels[LABEL_APP_NAME], "web");
        assert_eq!(labels[LABEL_RELEASE], "3");
        let task = spec.task_template.clone().unwrap();
        let c = task.container_spec.unwrap();
        assert_eq!(c.image.as_deref(), Some("sha256:feed"));
        assert_eq!(c.args, Some(vec!["serve".to_owned(), "--fast".to_owned()]));
        assert_eq!(c.command, None, "the image's entrypoint stays");
        let cl = c.labels.unwrap();
        assert_eq!(cl[LABEL_MANAGED], "false", "swarm owns the task containers");
        assert_eq!(cl[LABEL_RELEASE], "3");
        let limits = task.resources.unwrap().limits.unwrap();
        assert_eq!(limits.nano_cpus, Some(500_000_000));
        assert_eq!(limits.memory_bytes, Some(512 * 1024 * 1024));
        assert_eq!(
            spec.mode.clone().unwrap().replicated.unwrap().replicas,
            Some(2)
        );
        let u = spec.update_config.clone().unwrap();
        assert_eq!(u.order, Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST));
        assert_eq!(
            u.failure_action,
            Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK)
        );
        assert_eq!(u.parallelism, Some(1));
        let endpoint = spec.endpoint_spec.clone().unwrap();
        assert_eq!(endpoint.ports, None, "nothing is published");
        assert_eq!(spec.networks, None, "tasks join the default bridge");
        // The JSON the engine gets uses its field names and enum spellings.
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["UpdateConfig"]["Order"], "start-first");
        assert_eq!(json["UpdateConfig"]["FailureAction"], "rollback");
        assert_eq!(json["EndpointSpec"]["Mode"], "dnsrr");
        assert_eq!(json["Mode"]["Replicated"]["Replicas"], 2);
    }

    #[test]
    fn scaling_changes_only_the_replica_count() {
        let spec = service_spec(&def(), "inst");
        let scaled = with_replicas(&spec, 5);
        assert_eq!(
            scaled.mode.clone().unwrap().replicated.unwrap().replicas,
            Some(5)
        );
        let back = with_replicas(&scaled, 2);
        assert_eq!(back, spec);
    }

    #[test]
    fn observed_service_reads_labels_version_and_update_state() {
        let svc = Service {
            id: Some("svc1".into()),
            version: Some(version(42)),
            spec: Some(service_spec(&def(), "inst")),
            update_status: Some(ServiceUpdateStatus {
                state: Some(ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED),
                message: Some("rollback completed".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let o = observe_service(svc);
        assert_eq!(o.id, "svc1");
        assert_eq!(o.version, 42);
        assert_eq!(o.app_id, Some(Uuid::nil()));
        assert_eq!(o.release, Some(3));
        assert_eq!(o.replicas, 2);
        assert_eq!(o.image, "sha256:feed");
        assert_eq!(o.update_state.as_deref(), Some("rollback_completed"));
    }

    #[test]
    fn observed_task_reads_state_release_and_error() {
        let spec = service_spec(&def(), "inst");
        let t = Task {
            id: Some("t1".into()),
            slot: Some(2),
            node_id: Some("node".into()),
            spec: spec.task_template,
            status: Some(TaskStatus {
                state: Some(TaskState::FAILED),
                message: Some("started".into()),
                err: Some("task: non-zero exit (1)".into()),
                container_status: Some(ContainerStatus {
                    container_id: Some("c1".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            desired_state: Some(TaskState::SHUTDOWN),
            ..Default::default()
        };
        let o = observe_task(t);
        assert_eq!(o.release, Some(3));
        assert_eq!(o.state, "failed");
        assert_eq!(o.desired_state, "shutdown");
        assert_eq!(o.error.as_deref(), Some("task: non-zero exit (1)"));
        assert_eq!(o.container_id.as_deref(), Some("c1"));
        assert!(!o.running());
    }
}
