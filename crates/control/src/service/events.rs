//! The event log: a page at a time, or followed as it grows.

use futures_util::stream::BoxStream;
use racer_core::api::{Event, Page};
use racer_core::{AppRef, ErrorKind};
use racer_store::EventFilter;

use super::{Caller, Services};
use crate::Error;

/// Which events to show.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only events of this app (name or UUID); a deleted app's history stays readable by name.
    pub app: Option<String>,
    /// Only events of this kind (`app.created`), or kind prefix ending in `.` (`app.`).
    pub kind: Option<String>,
    /// Only events at or after this time, Unix milliseconds.
    pub since_ms: Option<i64>,
}

impl Services {
    /// The store filter for `q` as `who` may see it (their organisation's events only).
    async fn event_filter(&self, who: &Caller, q: EventQuery) -> Result<EventFilter, Error> {
        let mut filter = EventFilter {
            kind: q.kind,
            since_ms: q.since_ms,
            org: who.org().map(str::to_owned),
            ..Default::default()
        };
        match q.app.as_deref().map(AppRef::parse) {
            None => {}
            Some(AppRef::Id(id)) => filter.app_id = Some(id),
            Some(r @ AppRef::Name(_)) => match self.find_app(who, &r.to_string()).await {
                Ok(app) => filter.app_id = Some(app.id),
                Err(e) if e.kind() == ErrorKind::NotFound => filter.app_name = Some(r.to_string()),
                Err(e) => return Err(e),
            },
        }
        Ok(filter)
    }

    /// The audit log, oldest first, one page at a time.
    pub async fn list_events(
        &self,
        who: &Caller,
        q: EventQuery,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page<Event>, Error> {
        let filter = self.event_filter(who, q).await?;
        Ok(self
            .store
            .events()
            .list(&filter, racer_store::page_limit(limit), cursor)
            .await?)
    }

    /// The newest `limit` events the caller may see, newest first.
    pub async fn recent_events(
        &self,
        who: &Caller,
        q: EventQuery,
        limit: u32,
    ) -> Result<Vec<Event>, Error> {
        let filter = self.event_filter(who, q).await?;
        Ok(self
            .store
            .events()
            .recent(&filter, i64::from(limit.clamp(1, 1000)))
            .await?)
    }

    /// The event log as it grows, in order, starting after event `after` (default: only new
    /// events). The stream never ends on its own; a store failure is logged and retried.
    pub async fn follow_events(
        &self,
        who: &Caller,
        q: EventQuery,
        after: Option<i64>,
    ) -> Result<BoxStream<'static, Event>, Error> {
        let filter = self.event_filter(who, q).await?;
        let store = self.store.clone();
        let after = match after {
            Some(a) => a,
            None => store.events().last_id().await?,
        };
        let stream = futures_util::stream::unfold(
            (
                store,
                filter,
                after,
                std::collections::VecDeque::<Event>::new(),
            ),
            |(store, filter, mut after, mut queue)| async move {
                loop {
                    if let Some(e) = queue.pop_front() {
                        return Some((e, (store, filter, after, queue)));
                    }
                    match store.events().list_after(&filter, after, 200).await {
                        Ok(batch) if !batch.is_empty() => {
                            after = batch.last().map(|e| e.id).unwrap_or(after);
                            queue.extend(batch);
                        }
                        Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
                        Err(e) => {
                            tracing::warn!(error = %e, "event stream cannot read the store");
                            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        }
                    }
                }
            },
        );
        Ok(Box::pin(stream))
    }
}
