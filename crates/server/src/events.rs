//! The event log: a page at a time, or live as Server-Sent Events.

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use racer_control::service::events::EventQuery;
use racer_core::api::{ErrorBody, Event, Page};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::extract::{Json, Query, Who};
use crate::state::AppState;
use crate::ApiError;

/// Filters of the event log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventParams {
    /// Only events of this app (name or UUID).
    #[param(nullable = false)]
    app: Option<String>,
    /// Only events of this kind (`app.created`), or kind prefix ending in `.` (`app.`).
    #[param(nullable = false)]
    kind: Option<String>,
    /// Only events at or after this time (RFC 3339).
    #[param(nullable = false)]
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Items per page: default 50, at most 200 (a larger number counts as 200).
    #[param(nullable = false, value_type = Option<i64>, minimum = 0, maximum = 4294967295_i64)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false)]
    cursor: Option<String>,
}

/// The audit log, oldest first, one page at a time.
#[utoipa::path(get, path = "/api/v1/events", params(EventParams), responses(
    (status = 200, body = Page<Event>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn list_events(
    State(state): State<AppState>,
    Who(who): Who,
    Query(p): Query<EventParams>,
) -> Result<Json<Page<Event>>, ApiError> {
    let q = EventQuery {
        app: p.app,
        kind: p.kind,
        since_ms: p.since.map(|t| t.timestamp_millis()),
    };
    let page = state
        .services()
        .list_events(&who, q, p.limit, p.cursor.as_deref())
        .await?;
    Ok(Json(page))
}

/// Filters of the live event stream.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamParams {
    /// Only events of this app (name or UUID).
    #[param(nullable = false)]
    app: Option<String>,
    /// Only events of this kind, or kind prefix ending in `.`.
    #[param(nullable = false)]
    kind: Option<String>,
    /// Start after this event id (default: only new events). `Last-Event-ID` works too.
    #[param(nullable = false)]
    after: Option<i64>,
}

/// The event log as it grows: Server-Sent Events, one `Event` (JSON) per message, in order, with
/// the event id as the SSE id so a client can resume with `Last-Event-ID`.
#[utoipa::path(get, path = "/api/v1/events/stream", params(StreamParams), responses(
    (status = 200, content_type = "text/event-stream", body = String)))]
pub(crate) async fn stream_events(
    State(state): State<AppState>,
    Who(who): Who,
    headers: axum::http::HeaderMap,
    Query(p): Query<StreamParams>,
) -> Result<Response, ApiError> {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let q = EventQuery {
        app: p.app,
        kind: p.kind,
        since_ms: None,
    };
    let events = state
        .services()
        .follow_events(&who, q, resume.or(p.after))
        .await?;
    Ok(sse_of(events, true))
}

/// Events as server-sent events, each with its id (a reconnect resumes after it) and, when
/// `named`, its kind as the event's name (the dashboard's page takes every kind unnamed).
pub(crate) fn sse_of(
    events: futures_util::stream::BoxStream<'static, racer_core::api::Event>,
    named: bool,
) -> Response {
    use futures_util::StreamExt;
    let stream = events.map(move |e| {
        let ev = SseEvent::default().id(e.id.to_string());
        let ev = if named { ev.event(e.kind.clone()) } else { ev };
        Ok::<_, std::convert::Infallible>(
            ev.json_data(&e)
                .unwrap_or_else(|_| SseEvent::default().comment("unencodable event")),
        )
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response()
}
