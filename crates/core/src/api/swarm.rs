//! Wire types of the Swarm endpoints (`/api/v1/apps/{app}/swarm...`) and of
//! `racerctl swarm status --json`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::App;

/// `GET /api/v1/apps/{app}/swarm`: an app's Swarm service and its tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SwarmStatus {
    /// The app's name.
    pub app: String,
    /// The app's id.
    pub app_id: Uuid,
    /// Desired instances (0 when the app is down).
    pub instances: u32,
    /// The release that should run.
    pub release: Option<i64>,
    /// The service, once racer created it; absent when the app has no release yet or its
    /// service was removed.
    pub service: Option<SwarmService>,
    /// The service's tasks: current ones and Swarm's recent history, by slot.
    pub tasks: Vec<SwarmTask>,
    /// Where the app answers through racer's proxy.
    #[serde(default)]
    pub urls: Vec<String>,
}

/// One app's Swarm service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SwarmService {
    /// Service id.
    pub id: String,
    /// Service name.
    pub name: String,
    /// The version index of its spec (every update names it).
    pub version: u64,
    /// The task image.
    pub image: String,
    /// The release its spec runs, from its `racer.release` label.
    pub release: Option<i64>,
    /// Replicas in its spec.
    pub replicas_desired: u64,
    /// Tasks running (and wanted running).
    pub replicas_running: u64,
    /// The last update's state (`updating`, `completed`, `rollback_completed`, ...).
    pub update_state: Option<String>,
    /// The last update's message.
    pub update_message: Option<String>,
}

/// One task of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SwarmTask {
    /// Task id.
    pub id: String,
    /// Replica slot (1-based).
    pub slot: Option<i64>,
    /// The node running it.
    pub node: Option<String>,
    /// The release it runs.
    pub release: Option<i64>,
    /// `running`, `starting`, `shutdown`, `failed`, ...
    pub state: String,
    /// `running` or `shutdown`.
    pub desired_state: String,
    /// Swarm's message.
    pub message: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Its container.
    pub container_id: Option<String>,
    /// racer's view of a running task: `healthy` (in the proxy's rotation), `starting` or
    /// `unhealthy`; absent for tasks that do not run.
    #[serde(default)]
    pub health: Option<String>,
}

/// `DELETE /api/v1/apps/{app}/swarm`: what was removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SwarmRemoved {
    /// The app, now down (0 instances); its spec and releases are kept.
    pub app: App,
    /// The services removed (ids).
    pub services: Vec<String>,
    /// What happened.
    pub message: String,
}

/// `racerctl swarm status --json`: this engine's place in a swarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SwarmNode {
    /// `inactive`, `pending`, `active`, `error` or `locked`.
    pub state: String,
    /// Whether this node is a manager (racer can run services from it).
    pub manager: bool,
    /// The node's id.
    pub node_id: Option<String>,
    /// The address it advertises.
    pub node_addr: Option<String>,
    /// Nodes in the swarm.
    pub nodes: Option<i64>,
    /// Managers in the swarm.
    pub managers: Option<i64>,
    /// The engine's swarm error.
    pub error: Option<String>,
    /// What the command did (`initialised`, `left`, `already a manager`, ...), when it acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}
