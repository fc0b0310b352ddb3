//! `POST /v1/incidents/{id}/level`: upgrading an incident re-plans it upward. The new level's
//! plan is merged in — new requirements added, larger headcounts raised, nothing shrinks and
//! nothing accepted is lost — and only the difference is called out: volunteers standing by
//! are promoted first, then the ladder calls for what is still missing.

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, json_body};
use super::incidents::{commanded, no_plan, reread};
use crate::domain::incident::Level;
use crate::domain::plan;
use crate::domain::plan::Requirement;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// `POST /v1/incidents/{id}/level` with body `{"level": N}` (1 = most severe).
pub async fn upgrade(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let obj = json_body(raw)?;
    let level = obj
        .get("level")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::invalid("level", "is required: an integer from 1 to 4"))
        .and_then(|l| Level::new(l).map_err(|e| ApiError::invalid("level", e)))?;
    let (iid, v, region) = commanded(&st, &caller, &id).await?;
    if !matches!(v.status(), Some(s) if s.is_active()) {
        return Err(ApiError::Conflict(format!(
            "incident {id} is {}; it cannot change level",
            v.status
        )));
    }
    if level.get() == v.level {
        return Ok(Json(v).into_response());
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
    .ok_or_else(|| no_plan(&st, &v.kind, level, &region))?;
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
    reread(&st, &iid).await
}
