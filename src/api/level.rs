//! `POST /v1/incidents/{id}/level`: upgrading an incident re-plans it upward. The new level's
//! plan is merged in — new requirements added, larger headcounts raised, nothing shrinks and
//! nothing accepted is lost — and only the difference is called out: volunteers standing by
//! are promoted first, then the ladder calls for what is still missing.

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, json_body};
use super::incidents::{no_plan, visible};
use crate::domain::incident::Level;
use crate::domain::plan;
use crate::domain::region::RegionCode;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// `POST /v1/incidents/{id}/level` with body `{"level": N}` (1 = most severe).
pub async fn upgrade(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require_commander()?;
    let obj = json_body(raw)?;
    let level = obj
        .get("level")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::invalid("level", "is required: an integer from 1 to 4"))
        .and_then(|l| Level::new(l).map_err(|e| ApiError::invalid("level", e)))?;
    let (iid, v) = visible(&st, &caller, &id).await?;
    let region = RegionCode::parse(&v.region)
        .map_err(|e| ApiError::Internal(format!("stored region: {e}")))?;
    caller.require_scope(&st, &region)?;
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
    let mut merged: Vec<Value> = v
        .requirements
        .iter()
        .map(|r| json!({"id": r.id, "team_kind": r.team_kind, "qualification": r.qualification, "needed": r.needed}))
        .collect();
    let mut changed = Map::new();
    for r in &plan.requirements {
        match merged.iter_mut().find(|m| m["id"] == r.id.as_str()) {
            Some(m) => {
                if u64::from(r.needed) > m["needed"].as_u64().unwrap_or(0) {
                    m["needed"] = r.needed.into();
                    changed.insert(r.id.clone(), r.needed.to_string().into());
                }
            }
            None => {
                merged.push(json!({"id": r.id, "team_kind": r.team_kind, "qualification": r.qualification, "needed": r.needed}));
                changed.insert(r.id.clone(), r.needed.to_string().into());
            }
        }
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
            &Value::Array(merged).to_string(),
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
    let v = st
        .ctx
        .store
        .incident(&iid)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no incident `{id}`")))?;
    Ok(Json(v).into_response())
}
