//! `POST /v1/incidents/{id}/level`: upgrading an incident re-plans it upward. The new level's
//! plan is merged in — new requirements added, larger headcounts raised, nothing shrinks and
//! nothing accepted is lost — and only the difference is called out: volunteers standing by
//! are promoted first, then the ladder calls for what is still missing.

use super::AppState;
use super::auth::{Caller, Commander};
use super::error::{ApiError, FieldError};
use super::extract::{Body, Check};
use super::incidents::{commanded, no_plan};
use crate::domain::incident::Level;
use crate::domain::plan;
use crate::domain::plan::Requirement;
use crate::store::incidents::IncidentView;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Body of `POST /v1/incidents/{id}/level`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLevel {
    /// The new level: 1 = 特别重大 (most severe) … 4 = 一般; only upgrades.
    pub level: Level,
}

impl Check for NewLevel {
    fn check(&self, _: &mut Vec<FieldError>) {}
}

/// Upgrade an incident to a more severe level (commander). The new plan is merged in
/// (requirements added, headcounts raised, nothing lost); standby volunteers are promoted
/// first, then only the difference is called out. The same level again changes nothing.
#[utoipa::path(post, path = "/v1/incidents/{id}/level", tag = "incidents", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "the incident")),
    request_body = NewLevel,
    responses(
        (status = 200, description = "the incident at its new level", body = IncidentView),
        (status = 403, description = "not a commander"),
        (status = 404, description = "no such incident in this token's scope"),
        (status = 409, description = "the incident is no longer active, or its level changed meanwhile"),
        (status = 422, description = "a less severe level, or no plan covers the new one"),
    ))]
pub async fn upgrade(
    State(st): State<AppState>,
    Commander(caller): Commander,
    Path(id): Path<String>,
    Body(NewLevel { level }): Body<NewLevel>,
) -> Result<Response, ApiError> {
    let v = upgrade_by(&st, &caller, &id, level).await?;
    Ok(Json(v).into_response())
}

/// Upgrades incident `id` to `level` for `caller` (a commander in scope): what the API and
/// the command centre's board both do. The same level again changes nothing.
pub(crate) async fn upgrade_by(
    st: &AppState,
    caller: &Caller,
    id: &str,
    level: Level,
) -> Result<IncidentView, ApiError> {
    let (iid, v, region) = commanded(st, caller, id).await?;
    if !matches!(v.status(), Some(s) if s.is_active()) {
        return Err(ApiError::Conflict(format!(
            "incident {id} is {}; it cannot change level",
            v.status.as_str()
        )));
    }
    if level.get() == v.level {
        return Ok(v);
    }
    if level.get() > v.level {
        return Err(ApiError::invalid(
            "level",
            format!(
                "can only upgrade: level {} is less severe than the current {} (1 = most severe)",
                level.get(),
                v.level
            ),
        ));
    }
    let plan = plan::choose(
        &st.ctx.seed.plans,
        &st.ctx.seed.regions,
        &v.kind,
        level,
        &region,
    )
    .ok_or_else(|| no_plan(&st.ctx, &v.kind, level, &region))?;
    let mut merged: Vec<Requirement> = v
        .requirements
        .iter()
        .map(|r| Requirement {
            id: r.id.clone(),
            team_kind: r.team_kind.clone(),
            qualification: r.qualification.clone(),
            needed: r.needed,
        })
        .collect();
    let mut changed = Map::new();
    for r in &plan.requirements {
        match merged.iter_mut().find(|m| m.id == r.id) {
            Some(m) if r.needed <= m.needed => continue, // nothing shrinks
            Some(m) => m.needed = r.needed,
            None => merged.push(r.clone()),
        }
        changed.insert(r.id.clone(), r.needed.to_string().into());
    }
    let now = st.ctx.clock.now_ms();
    let outcome = st
        .ctx
        .store
        .upgrade(
            &iid,
            v.level,
            level.get(),
            &plan.id,
            &serde_json::to_string(&merged).map_err(|e| ApiError::Internal(e.to_string()))?,
            &Value::Object(changed.clone()).to_string(),
            now,
            &{
                let mut a = caller.audit(now, "incident.upgrade", &iid.to_string(), &v.region);
                a.detail = format!("level {} → {}", v.level, level.get());
                a
            },
        )
        .await?;
    match outcome.as_str() {
        "ok" => {}
        "moved" => {
            return Err(ApiError::Conflict(
                "the level changed meanwhile; read the incident again".into(),
            ));
        }
        _ => {
            return Err(ApiError::Conflict(format!(
                "incident {id} is no longer active"
            )));
        }
    }
    metrics::counter!("muster_incidents_upgraded_total").increment(1);
    tracing::info!(incident = %iid, from = v.level, to = level.get(), plan = %plan.id, changed = changed.len(), by = %caller.name, "incident upgraded");
    st.ctx
        .store
        .incident(&iid)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no incident `{iid}`")))
}
