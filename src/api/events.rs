//! `GET /v1/incidents/{id}/events`: Server-Sent Events of every change of an incident.
//!
//! The stream opens with a `snapshot` event (the incident with its progress), then relays each
//! entry of the incident's Redis event stream as an event named by its type (`callout.accepted`,
//! `incident.filled`, …) with the stream entry id as the SSE `id`, followed after each burst
//! by a `progress` event with fresh counters. `Last-Event-ID` resumes after that entry. The
//! stream ends after the incident is stood down, and when the process shuts down. Each client has its own blocking Redis
//! connection (no response timeout); this route is never compressed.

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::incidents::visible;
use crate::domain::incident::IncidentId;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

struct Tail {
    st: AppState,
    id: IncidentId,
    key: String,
    after: String,
    conn: Option<redis::aio::MultiplexedConnection>,
    queue: VecDeque<Event>,
    done: bool,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

/// One event of the stream, as an SSE client reads it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a description for the document; the stream is written by axum's `Event`
pub struct SseEvent {
    /// `snapshot`, `progress`, or the change (`callout.accepted`, `incident.filled`, …).
    event: String,
    /// JSON: the incident (`snapshot`), its counters (`progress`), or the change.
    data: String,
    /// The stream entry, for `Last-Event-ID` (absent on `snapshot` and `progress`).
    id: Option<String>,
}

/// Server-Sent Events of every change of an incident: a `snapshot` event with the incident,
/// then one event per change (named by its type, with the stream entry as its `id`, so
/// `Last-Event-ID` resumes) and `progress` events with fresh counters. The stream ends after
/// the stand-down.
#[utoipa::path(get, path = "/v1/incidents/{id}/events", tag = "incidents", security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "the incident"),
        ("Last-Event-ID" = Option<String>, Header, description = "resume after this event"),
    ),
    responses(
        (status = 200, description = "the event stream", content_type = "text/event-stream", body = SseEvent),
        (status = 404, description = "no such incident in this token's scope"),
    ))]
pub async fn sse(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (iid, view) = visible(&st, &caller, &id).await?;
    let key = st.ctx.store.keys.events(&iid);
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| is_stream_id(s))
        .map(String::from);
    let after = match resume {
        Some(a) => a,
        None => latest_id(&st, &key).await?,
    };
    let mut queue = VecDeque::new();
    queue.push_back(
        Event::default()
            .event("snapshot")
            .json_data(&view)
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    let conn = st.ctx.store.blocking_connection(&key).await?;
    let tail = Tail {
        shutdown: st.ctx.shutdown.clone(),
        st,
        id: iid,
        key,
        after,
        conn: Some(conn),
        queue,
        done: false,
    };
    Ok(Sse::new(events(tail))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

fn is_stream_id(s: &str) -> bool {
    let mut parts = s.split('-');
    let ok =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

async fn latest_id(st: &AppState, key: &str) -> Result<String, ApiError> {
    let mut c = st.ctx.store.conn();
    let last: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
        .arg(key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut c)
        .await
        .map_err(|e| ApiError::from(crate::store::StoreError::from(e)))?;
    Ok(last
        .into_iter()
        .next()
        .map(|(id, _)| id)
        .unwrap_or_else(|| "0-0".into()))
}

fn events(tail: Tail) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(tail, |mut t| async move {
        loop {
            if let Some(ev) = t.queue.pop_front() {
                return Some((Ok(ev), t));
            }
            if t.done || *t.shutdown.borrow() {
                return None;
            }
            if t.conn.is_none() {
                match t.st.ctx.store.blocking_connection(&t.key).await {
                    Ok(c) => t.conn = Some(c),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                }
            }
            let conn = t.conn.as_mut().expect("connected above");
            let read = t.st.ctx.store.read_events(conn, &t.key, &t.after, 10_000);
            let mut shutdown = t.shutdown.clone();
            let result = tokio::select! {
                r = read => r,
                _ = shutdown.changed() => return None, // the process is stopping
            };
            match result {
                Ok(entries) if entries.is_empty() => continue,
                Ok(entries) => {
                    for e in entries {
                        t.after = e.id.clone();
                        let kind = e.get("type").to_string();
                        if kind == "incident.stood_down" {
                            t.done = true;
                        }
                        let mut data: serde_json::Map<String, serde_json::Value> = e
                            .fields
                            .iter()
                            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                            .collect();
                        data.insert("incident".into(), t.id.to_string().into());
                        if let Ok(ev) = Event::default()
                            .id(e.id.clone())
                            .event(kind)
                            .json_data(&data)
                        {
                            t.queue.push_back(ev);
                        }
                    }
                    if let Ok(Some(v)) = t.st.ctx.store.incident(&t.id).await
                        && let Ok(ev) = Event::default().event("progress").json_data(&v)
                    {
                        t.queue.push_back(ev);
                    }
                }
                Err(_) => {
                    t.conn = None;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    })
}
