//! `/v1/teams`: teams — list, read, create, change, delete. Rosters are in [`super::rosters`],
//! who is on call and the calendar feeds in [`super::on_call`].

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, FieldError, json_body};
use super::extract::Query;
use super::volunteers::calendar_url;
use crate::domain::access::Team;
use crate::domain::text::{self, Lines};
use crate::domain::volunteer::{VolunteerStatus, mask_name};
use crate::store::registry_write::TeamDeleted;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

fn team_json(st: &AppState, t: &Team, members: Option<usize>) -> Value {
    let mut v = json!({"id": t.id, "name": t.name, "kind": t.kind, "region": t.region, "status": t.status.as_str()});
    if let Some(m) = members {
        v["members"] = m.into();
        v["calendar_url"] = calendar_url(st, "t", &t.id).into();
    }
    v
}

/// Loads a team in the caller's scope (404 otherwise).
pub(super) async fn load(st: &AppState, caller: &Caller, id: &str) -> Result<Team, ApiError> {
    match st.ctx.store.team(id).await? {
        Some(t) if st.ctx.seed.regions.contains(&caller.scope, &t.region) => Ok(t),
        _ => Err(ApiError::NotFound(format!("no team {id} in your scope"))),
    }
}

/// Loads a team the caller may change: 403 when it lies outside a coordinator's scope.
pub(super) async fn load_for_change(
    st: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Team, ApiError> {
    caller.require_coordinator()?;
    let t = st
        .ctx
        .store
        .team(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no team {id}")))?;
    caller.require_scope(st, &t.region)?;
    Ok(t)
}

/// `?region=&kind=` filters.
#[derive(Debug, Deserialize)]
pub struct TeamFilter {
    region: Option<String>,
    kind: Option<String>,
}

/// `GET /v1/teams`
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(f): Query<TeamFilter>,
) -> Result<Json<Value>, ApiError> {
    let teams: Vec<Value> = st
        .ctx
        .store
        .all_teams()
        .await?
        .iter()
        .filter(|t| st.ctx.seed.regions.contains(&caller.scope, &t.region))
        .filter(|t| f.region.as_deref().is_none_or(|r| t.region.as_str() == r))
        .filter(|t| f.kind.as_deref().is_none_or(|k| t.kind == k))
        .map(|t| team_json(&st, t, None))
        .collect();
    Ok(Json(json!({ "teams": teams })))
}

/// `GET /v1/teams/{id}`: the team with its members (masked for roles that may not see names).
pub async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let t = load(&st, &caller, &id).await?;
    let ids = st.ctx.store.team_member_ids(&id).await?;
    let vols = st.ctx.store.volunteers(&ids).await?;
    let personal = caller.role.may_see_personal_data();
    let members: Vec<Value> = vols
        .into_iter()
        .flatten()
        .filter_map(|s| s.volunteer)
        .map(|v| json!({"id": v.id, "name": if personal { v.name.clone() } else { mask_name(&v.name) }, "status": v.status.as_str()}))
        .collect();
    let mut out = team_json(&st, &t, Some(members.len()));
    out["member_list"] = members.into();
    Ok(Json(out))
}

/// `POST /v1/teams`: body `id`, `name`, `kind`, `region`.
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require_coordinator()?;
    let obj = json_body(raw)?;
    let s = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or("")
            .to_string()
    };
    let mut errs = Vec::new();
    let id = s("id");
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    {
        errs.push(FieldError::new(
            "id",
            "must be 1 to 64 letters, digits, - or _",
        ));
    }
    let name = s("name");
    if let Err(why) = text::check(&name, Lines::One) {
        errs.push(FieldError::new("name", why));
    } else if name.is_empty() || name.chars().count() > 100 {
        errs.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    let kind = s("kind");
    if !st.ctx.seed.team_kinds.contains(&kind) {
        errs.push(FieldError::new(
            "kind",
            format!(
                "unknown team kind `{kind}`; known: {}",
                st.ctx.seed.team_kinds.join(", ")
            ),
        ));
    }
    let region = st
        .ctx
        .seed
        .regions
        .lookup(&s("region"))
        .map(|r| r.code.clone());
    if region.is_none() {
        errs.push(FieldError::new(
            "region",
            format!("unknown region `{}`", s("region")),
        ));
    }
    let Some(region) = region.filter(|_| errs.is_empty()) else {
        return Err(ApiError::Invalid(errs));
    };
    caller.require_scope(&st, &region)?;
    let t = Team {
        id,
        name,
        kind,
        region,
        status: VolunteerStatus::Active,
    };
    if !st.ctx.store.create_team(&t).await? {
        return Err(ApiError::Conflict(format!("team {} exists", t.id)));
    }
    tracing::info!(team = %t.id, by = %caller.name, "team created");
    Ok((StatusCode::CREATED, Json(team_json(&st, &t, Some(0)))).into_response())
}

/// `PATCH /v1/teams/{id}`: `name` and/or `status` (`active`, `suspended`, `retired`).
pub async fn update(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let old = load_for_change(&st, &caller, &id).await?;
    let obj = json_body(raw)?;
    let mut t = old.clone();
    let mut errs = Vec::new();
    for (k, v) in &obj {
        match (k.as_str(), v.as_str()) {
            ("name", Some(n)) if text::check(n, Lines::One).is_err() => errs.push(FieldError::new(
                "name",
                text::check(n, Lines::One).unwrap_err(),
            )),
            ("name", Some(n)) if !n.trim().is_empty() && n.chars().count() <= 100 => {
                t.name = n.trim().into()
            }
            ("status", Some(s)) if matches!(VolunteerStatus::parse(s), Some(x) if x != VolunteerStatus::Erased) => {
                t.status = VolunteerStatus::parse(s).unwrap_or(t.status)
            }
            ("name", _) => errs.push(FieldError::new("name", "must be 1 to 100 characters")),
            ("status", _) => errs.push(FieldError::new(
                "status",
                "must be active, suspended or retired",
            )),
            _ => errs.push(FieldError::new(
                k,
                "unknown field (name and status can change)",
            )),
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::Invalid(errs));
    }
    if !st.ctx.store.update_team(&t).await? {
        return Err(ApiError::NotFound(format!("no team {id}")));
    }
    Ok(Json(team_json(&st, &t, None)))
}

/// `DELETE /v1/teams/{id}`: removes the team, its roster and its memberships.
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let t = load_for_change(&st, &caller, &id).await?;
    // One script: the team, its roster and member set, the indexes, and the team in every
    // member's own list go together.
    if st.ctx.store.delete_team(&t).await? == TeamDeleted::Gone {
        return Err(ApiError::NotFound(format!("no team {id}")));
    }
    tracing::info!(team = %id, by = %caller.name, "team deleted");
    Ok(StatusCode::NO_CONTENT)
}
