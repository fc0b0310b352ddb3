//! CAP proposals: an `Actual` alert taken in while `cap.auto_raise = false` waits here until a
//! commander in scope confirms it (raising its incident, with the alert's id) or rejects it;
//! `GET /v1/cap/proposals` lists them. The alert side is [`super::cap`].

use super::AppState;
use super::auth::Caller;
use super::cap::parse_id;
use super::error::ApiError;
use super::incidents::{RaiseIncident, raise_as};
use crate::domain::incident::{IncidentId, Level, Mode};
use crate::store::incidents::Origin;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;

/// An `Actual` alert waiting for a commander to confirm it (`cap.auto_raise = false`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Proposal {
    /// Id; the incident it raises when confirmed has the same id.
    #[schema(format = Uuid)]
    pub id: String,
    /// `pending`, `confirmed`, `rejected` or `withdrawn` (the sender cancelled it).
    pub status: String,
    /// What it would raise.
    pub kind: String,
    pub level: u8,
    pub region: String,
    pub title: String,
    /// `live` or `drill`.
    pub mode: Mode,
    /// The alert, as `sender,identifier,sent`.
    pub reference: String,
    /// Who sent it (the CAP sender or token name).
    pub received_from: String,
    /// When it came (RFC 3339).
    #[schema(format = DateTime)]
    pub received_at: String,
    /// Who confirmed or rejected it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
}

/// Pending and decided proposals in scope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProposalList {
    /// Newest first.
    pub proposals: Vec<Proposal>,
}

pub(super) async fn proposal_of(st: &AppState, id: &str) -> Result<Option<Proposal>, ApiError> {
    Ok(st.ctx.store.cap_proposal(id).await?.map(proposal_view))
}

fn proposal_view(m: HashMap<String, String>) -> Proposal {
    let f = |k: &str| m.get(k).cloned().unwrap_or_default();
    Proposal {
        id: f("id"),
        status: f("status"),
        kind: f("kind"),
        level: f("level").parse().unwrap_or(4),
        region: f("region"),
        title: f("title"),
        mode: Mode::parse(&f("mode")).unwrap_or(Mode::Live),
        reference: f("reference"),
        received_from: f("received_from"),
        received_at: f("received_at")
            .parse()
            .map(crate::clock::rfc3339)
            .unwrap_or_default(),
        decided_by: m.get("decided_by").cloned(),
    }
}

/// CAP proposals in the token's scope, newest first.
#[utoipa::path(get, path = "/v1/cap/proposals", operation_id = "list_cap_proposals", tag = "cap", security(("bearer" = [])),
    responses((status = 200, description = "proposals in scope", body = ProposalList)))]
pub async fn proposals(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<ProposalList>, ApiError> {
    Ok(Json(ProposalList {
        proposals: proposals_in_scope(&st, &caller).await?,
    }))
}

/// The proposals `caller` sees (the API's list and the command centre's).
pub async fn proposals_in_scope(st: &AppState, caller: &Caller) -> Result<Vec<Proposal>, ApiError> {
    Ok(st
        .ctx
        .store
        .cap_proposals(500)
        .await?
        .into_iter()
        .map(proposal_view)
        .filter(|p| caller.sees(st, &p.region))
        .collect())
}

/// Confirm a CAP proposal (commander, in scope): raises its incident (201), or answers the
/// one it raised (200).
#[utoipa::path(post, path = "/v1/cap/proposals/{id}/confirm", operation_id = "confirm_cap_proposal", tag = "cap", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "the proposal")),
    responses(
        (status = 201, description = "raised", body = crate::store::incidents::IncidentView),
        (status = 200, description = "confirmed before: its incident", body = crate::store::incidents::IncidentView),
        (status = 403, description = "not a commander"),
        (status = 404, description = "no such proposal in this token's scope"),
        (status = 409, description = "it was rejected or withdrawn"),
    ))]
pub async fn confirm(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (status, v) = decide(&st, &caller, &id, true).await?;
    match v {
        Some(v) => Ok((status, Json(v)).into_response()),
        None => Err(ApiError::Internal("confirmed without an incident".into())),
    }
}

/// Reject a CAP proposal (commander, in scope): nothing is raised.
#[utoipa::path(post, path = "/v1/cap/proposals/{id}/reject", operation_id = "reject_cap_proposal", tag = "cap", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "the proposal")),
    responses(
        (status = 200, description = "rejected", body = Proposal),
        (status = 403, description = "not a commander"),
        (status = 404, description = "no such proposal in this token's scope"),
        (status = 409, description = "it was decided before"),
    ))]
pub async fn reject(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Proposal>, ApiError> {
    decide(&st, &caller, &id, false).await?;
    proposal_of(&st, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no proposal `{id}`")))
}

/// Confirms or rejects proposal `id` for `caller` (the API's and the command centre's way).
pub async fn decide(
    st: &AppState,
    caller: &Caller,
    id: &str,
    confirm: bool,
) -> Result<(StatusCode, Option<crate::store::incidents::IncidentView>), ApiError> {
    caller.require_commander()?;
    let p = match IncidentId::parse(id) {
        Some(_) => proposal_of(st, id).await?,
        None => None,
    }
    .filter(|p| caller.sees(st, &p.region))
    .ok_or_else(|| ApiError::NotFound(format!("no proposal `{id}` in this token's scope")))?;
    let now = st.ctx.clock.now_ms();
    if !confirm {
        return match st
            .ctx
            .store
            .cap_decide(
                id,
                "rejected",
                now,
                &caller.audit(now, "cap.reject", id, &p.region),
            )
            .await?
            .as_str()
        {
            "ok" => {
                tracing::info!(proposal = %id, by = %caller.name, "CAP proposal rejected");
                Ok((StatusCode::OK, None))
            }
            other => Err(ApiError::Conflict(format!("proposal {id} is {other}"))),
        };
    }
    if !matches!(p.status.as_str(), "pending" | "confirmed") {
        return Err(ApiError::Conflict(format!("proposal {id} is {}", p.status)));
    }
    let body = RaiseIncident {
        kind: p.kind.clone(),
        level: Level::new(i64::from(p.level)).map_err(ApiError::Internal)?,
        region: p.region.clone(),
        title: p.title.clone(),
        mode: p.mode,
        location: None,
        idempotency_key: None,
        include_deployed: false,
    };
    let origin = Origin {
        channels: (p.mode == Mode::Drill).then(|| "real".to_string()),
        cap: Some(p.reference.clone()),
        ..Default::default()
    };
    let iid = parse_id(id)?;
    let (status, v) = raise_as(&st.ctx, caller, iid, body, origin).await?;
    match st
        .ctx
        .store
        .cap_decide(
            id,
            "confirmed",
            now,
            &caller.audit(now, "cap.confirm", id, &p.region),
        )
        .await?
        .as_str()
    {
        "ok" | "confirmed" => {}
        other => return Err(ApiError::Conflict(format!("proposal {id} is {other}"))),
    }
    // References to the proposal's alert now find the incident.
    let (sender, rest) = p.reference.split_once(',').unwrap_or(("", ""));
    let identifier = rest.split(',').next().unwrap_or("");
    st.ctx
        .store
        .cap_confirmed(sender, identifier, &iid.to_string())
        .await?;
    tracing::info!(proposal = %id, by = %caller.name, "CAP proposal confirmed");
    Ok((status, Some(v)))
}
