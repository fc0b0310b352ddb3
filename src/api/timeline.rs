//! `GET /v1/incidents/{id}/timeline`: what happened to an incident, in order — raised, each
//! step of each requirement's ladder, callouts made and delivered, every answer, failures,
//! shortfall alerts, upgrades, the stand-down — read from the incident's own event stream
//! (the one its SSE relays), typed. The board's timeline is this list.

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::incidents::visible;
use crate::domain::incident::IncidentId;
use crate::domain::region::Tier;
use crate::store::queue::Entry;
use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;

/// The most events one timeline answers (the oldest first).
pub const MAX_EVENTS: usize = 50_000;

/// One event of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TimelineEvent {
    /// The stream entry id (the SSE `id`).
    pub id: String,
    /// `incident.raised`, `requirement.step`, `callouts.created`, `callouts.notified`,
    /// `callout.accepted`, `callout.failed`, `requirement.short`, `incident.upgraded`,
    /// `incident.stood_down`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// When, in milliseconds since the epoch.
    pub at_ms: Option<i64>,
    /// The requirement it concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requirement: Option<String>,
    /// The callout it concerns (its number within the incident).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// How many callouts it concerns (made, notified, notified again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// The ladder step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    /// The tier called.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// The new level (an upgrade).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// Headcount needed and taken (a shortfall).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needed: Option<u32>,
    /// Taken when the ladder ran out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taken: Option<u32>,
    /// Why a delivery failed, the channel an answer came by, who stood it down, or what a
    /// CAP alert did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl TimelineEvent {
    /// The typed event of a stream entry.
    pub fn of(e: &Entry) -> TimelineEvent {
        let f = |k: &str| e.fields.get(k).filter(|v| !v.is_empty()).cloned();
        let num = |k: &str| f(k).and_then(|v| v.parse::<u32>().ok());
        TimelineEvent {
            id: e.id.clone(),
            kind: f("type").unwrap_or_default(),
            at_ms: f("at").and_then(|v| v.parse().ok()),
            requirement: f("requirement"),
            n: num("n"),
            count: num("count"),
            step: num("step"),
            tier: f("tier").and_then(|t| Tier::parse(&t)),
            level: f("level").and_then(|v| v.parse().ok()),
            needed: num("needed"),
            taken: num("taken"),
            detail: f("reason")
                .or_else(|| f("via"))
                .or_else(|| f("by"))
                .or_else(|| f("detail")),
        }
    }
}

/// An incident's events, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Timeline {
    /// The events.
    pub events: Vec<TimelineEvent>,
    /// More events exist than [`MAX_EVENTS`]; the newest are left out.
    pub truncated: bool,
}

/// What happened to an incident, in order: raised, each ladder step, callouts made and
/// delivered, answers, delivery failures, shortfall alerts, upgrades, the stand-down.
#[utoipa::path(get, path = "/v1/incidents/{id}/timeline", tag = "incidents", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "the incident")),
    responses(
        (status = 200, description = "the incident's events, oldest first", body = Timeline),
        (status = 404, description = "no such incident in this token's scope"),
    ))]
pub async fn timeline(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Timeline>, ApiError> {
    let (iid, _) = visible(&st, &caller, &id).await?;
    events(&st, &iid).await.map(Json)
}

/// The events of an incident the caller can see (the board's timeline and the API's).
pub async fn events(st: &AppState, iid: &IncidentId) -> Result<Timeline, ApiError> {
    let mut entries = st.ctx.store.incident_events(iid, MAX_EVENTS + 1).await?;
    let truncated = entries.len() > MAX_EVENTS;
    entries.truncate(MAX_EVENTS);
    Ok(Timeline {
        events: entries.iter().map(TimelineEvent::of).collect(),
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_become_typed_events() {
        let e = TimelineEvent::of(&Entry::of(&[
            ("type", "requirement.step"),
            ("at", "1700000000000"),
            ("requirement", "rescue"),
            ("step", "1"),
            ("tier", "county"),
        ]));
        assert_eq!(e.kind, "requirement.step");
        assert_eq!(e.at_ms, Some(1_700_000_000_000));
        assert_eq!(e.requirement.as_deref(), Some("rescue"));
        assert_eq!(e.step, Some(1));
        assert_eq!(e.tier, Some(Tier::County));
        let f = TimelineEvent::of(&Entry::of(&[
            ("type", "callout.failed"),
            ("n", "7"),
            ("reason", "HTTP 500"),
        ]));
        assert_eq!((f.n, f.detail.as_deref()), (Some(7), Some("HTTP 500")));
        assert_eq!(f.at_ms, None);
    }
}
