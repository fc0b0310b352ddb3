//! `/v1/teams`: teams — list, read, create, change, delete. Rosters are in [`super::rosters`],
//! who is on call and the calendar feeds in [`super::on_call`].

use super::AppState;
use super::auth::{Caller, Coordinator};
use super::error::{ApiError, FieldError};
use super::extract::{Body, Check, Query, text_field};
use super::volunteers::{SettableStatus, calendar_url};
use crate::domain::access::Team;
use crate::domain::text::Lines;
use crate::domain::volunteer::{VolunteerStatus, mask_name};
use crate::store::registry_write::TeamDeleted;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A team.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Team kind.
    pub kind: String,
    /// Region code.
    pub region: String,
    /// `active` teams are called.
    pub status: VolunteerStatus,
    /// How many members (on a single read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<usize>,
    /// Its iCal feed (on a single read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calendar_url: Option<String>,
    /// Its members (on a single read; names masked for roles that may not see them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_list: Option<Vec<Member>>,
}

/// A member of a team.
#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    /// Volunteer id.
    pub id: String,
    /// Name (masked unless the role may see personal data).
    pub name: String,
    /// Registry status.
    pub status: VolunteerStatus,
}

/// Teams in scope.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamList {
    /// The teams.
    pub teams: Vec<TeamView>,
}

fn team_view(st: &AppState, t: &Team, members: Option<usize>) -> TeamView {
    TeamView {
        id: t.id.clone(),
        name: t.name.clone(),
        kind: t.kind.clone(),
        region: t.region.to_string(),
        status: t.status,
        members,
        calendar_url: members.map(|_| calendar_url(st, "t", &t.id)),
        member_list: None,
    }
}

/// Teams by id → (name, its region's name), for the command centre's boards (names of teams
/// are not personal data; a team since deleted is left out).
pub async fn names(
    st: &AppState,
    ids: &[String],
) -> Result<std::collections::HashMap<String, (String, String)>, ApiError> {
    let teams = st.ctx.store.teams_by_id(ids).await?;
    Ok(teams
        .into_iter()
        .flatten()
        .map(|t| {
            let region = st.ctx.seed.regions.name_of(t.region.as_str());
            (t.id, (t.name, region))
        })
        .collect())
}

/// Loads a team in the caller's scope (404 otherwise).
pub async fn load(st: &AppState, caller: &Caller, id: &str) -> Result<Team, ApiError> {
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
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TeamFilter {
    /// Only teams of this region code.
    region: Option<String>,
    /// Only teams of this kind.
    kind: Option<String>,
}

/// Teams in the token's scope.
#[utoipa::path(get, path = "/v1/teams", operation_id = "list_teams", tag = "teams", security(("bearer" = [])),
    params(TeamFilter),
    responses((status = 200, description = "teams in scope", body = TeamList)))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(f): Query<TeamFilter>,
) -> Result<Json<TeamList>, ApiError> {
    let teams = in_scope(&st, &caller)
        .await?
        .iter()
        .filter(|t| f.region.as_deref().is_none_or(|r| t.region.as_str() == r))
        .filter(|t| f.kind.as_deref().is_none_or(|k| t.kind == k))
        .map(|t| team_view(&st, t, None))
        .collect();
    Ok(Json(TeamList { teams }))
}

/// The teams of the caller's scope.
pub async fn in_scope(st: &AppState, caller: &Caller) -> Result<Vec<Team>, ApiError> {
    let mut teams: Vec<Team> = st
        .ctx
        .store
        .all_teams()
        .await?
        .into_iter()
        .filter(|t| st.ctx.seed.regions.contains(&caller.scope, &t.region))
        .collect();
    teams.sort_by(|a, b| (&a.region, &a.kind, &a.id).cmp(&(&b.region, &b.kind, &b.id)));
    Ok(teams)
}

/// A team's members' records (the caller masks what its role may not see).
pub async fn members(
    st: &AppState,
    team: &str,
) -> Result<Vec<crate::domain::volunteer::Volunteer>, ApiError> {
    let ids = st.ctx.store.team_member_ids(team).await?;
    Ok(st
        .ctx
        .store
        .volunteers(&ids)
        .await?
        .into_iter()
        .flatten()
        .filter_map(|s| s.volunteer)
        .collect())
}

/// A team with its members (names masked for roles that may not see them) and iCal feed.
#[utoipa::path(get, path = "/v1/teams/{id}", operation_id = "get_team", tag = "teams", security(("bearer" = [])),
    params(("id" = String, Path, description = "the team")),
    responses(
        (status = 200, description = "the team", body = TeamView),
        (status = 404, description = "no such team in this token's scope"),
    ))]
pub async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TeamView>, ApiError> {
    let t = load(&st, &caller, &id).await?;
    let personal = caller.role.may_see_personal_data();
    let members: Vec<Member> = members(&st, &id)
        .await?
        .into_iter()
        .map(|v| Member {
            name: if personal {
                v.name.clone()
            } else {
                mask_name(&v.name)
            },
            id: v.id,
            status: v.status,
        })
        .collect();
    let mut out = team_view(&st, &t, Some(members.len()));
    out.member_list = Some(members);
    Ok(Json(out))
}

/// Body of `POST /v1/teams`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    /// A stable id: letters, digits, `-` or `_`.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub id: String,
    /// Its name.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// A team kind this deployment knows (`first_aid`, `fire`, `rescue`, …).
    pub kind: String,
    /// Its region code (in the token's scope).
    pub region: String,
}

impl Check for NewTeam {
    fn check(&self, errs: &mut Vec<FieldError>) {
        let id = self.id.trim();
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
        text_field(errs, "name", &self.name, Lines::One, 1, 100);
    }
}

/// Create a team (coordinator).
#[utoipa::path(post, path = "/v1/teams", operation_id = "create_team", tag = "teams", security(("bearer" = [])),
    request_body = NewTeam,
    responses(
        (status = 201, description = "created", body = TeamView),
        (status = 403, description = "not a coordinator, or the region is outside the token's scope"),
        (status = 409, description = "a team with this id exists"),
        (status = 422, description = "unknown kind or region, or a field is invalid"),
    ))]
pub async fn create(
    State(st): State<AppState>,
    Coordinator(caller): Coordinator,
    Body(b): Body<NewTeam>,
) -> Result<(StatusCode, Json<TeamView>), ApiError> {
    let mut errs = Vec::new();
    let kind = b.kind.trim().to_string();
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
        .lookup(b.region.trim())
        .map(|r| r.code.clone());
    if region.is_none() {
        errs.push(FieldError::new(
            "region",
            format!("unknown region `{}`", b.region),
        ));
    }
    let Some(region) = region.filter(|_| errs.is_empty()) else {
        return Err(ApiError::Invalid(errs));
    };
    caller.require_scope(&st, &region)?;
    let t = Team {
        id: b.id.trim().to_string(),
        name: b.name.trim().to_string(),
        kind,
        region,
        status: VolunteerStatus::Active,
    };
    let mut audit = caller.audit(
        st.ctx.clock.now_ms(),
        "team.create",
        &t.id,
        t.region.as_str(),
    );
    audit.detail = format!("{} `{}`", t.kind, t.name);
    if !st.ctx.store.create_team(&t, Some(&audit)).await? {
        return Err(ApiError::Conflict(format!("team {} exists", t.id)));
    }
    tracing::info!(team = %t.id, by = %caller.name, "team created");
    Ok((StatusCode::CREATED, Json(team_view(&st, &t, Some(0)))))
}

/// Body of `PATCH /v1/teams/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamPatch {
    /// A new name.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// Suspend, retire or reactivate.
    #[serde(default)]
    pub status: Option<SettableStatus>,
}

impl Check for TeamPatch {
    fn check(&self, errs: &mut Vec<FieldError>) {
        if let Some(n) = &self.name {
            text_field(errs, "name", n, Lines::One, 1, 100);
        }
    }
}

/// Rename, suspend, retire or reactivate a team (coordinator).
#[utoipa::path(patch, path = "/v1/teams/{id}", operation_id = "update_team", tag = "teams", security(("bearer" = [])),
    params(("id" = String, Path, description = "the team")),
    request_body = TeamPatch,
    responses(
        (status = 200, description = "the team as changed", body = TeamView),
        (status = 403, description = "not a coordinator, or the team is outside the token's scope"),
        (status = 404, description = "no such team"),
    ))]
pub async fn update(
    State(st): State<AppState>,
    Coordinator(caller): Coordinator,
    Path(id): Path<String>,
    Body(b): Body<TeamPatch>,
) -> Result<Json<TeamView>, ApiError> {
    let mut t = load_for_change(&st, &caller, &id).await?;
    if let Some(n) = b.name {
        t.name = n.trim().to_string();
    }
    if let Some(s) = b.status {
        t.status = s.into();
    }
    let mut audit = caller.audit(
        st.ctx.clock.now_ms(),
        "team.update",
        &t.id,
        t.region.as_str(),
    );
    audit.detail = format!("name `{}`, status {}", t.name, t.status.as_str());
    if !st.ctx.store.update_team(&t, &audit).await? {
        return Err(ApiError::NotFound(format!("no team {id}")));
    }
    Ok(Json(team_view(&st, &t, None)))
}

/// Delete a team with its roster and memberships (coordinator).
#[utoipa::path(delete, path = "/v1/teams/{id}", operation_id = "delete_team", tag = "teams", security(("bearer" = [])),
    params(("id" = String, Path, description = "the team")),
    responses(
        (status = 204, description = "deleted"),
        (status = 403, description = "not a coordinator, or the team is outside the token's scope"),
        (status = 404, description = "no such team"),
    ))]
pub async fn delete(
    State(st): State<AppState>,
    Coordinator(caller): Coordinator,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let t = load_for_change(&st, &caller, &id).await?;
    // One script: the team, its roster and member set, the indexes, and the team in every
    // member's own list go together.
    let audit = caller.audit(
        st.ctx.clock.now_ms(),
        "team.delete",
        &t.id,
        t.region.as_str(),
    );
    if st.ctx.store.delete_team(&t, &audit).await? == TeamDeleted::Gone {
        return Err(ApiError::NotFound(format!("no team {id}")));
    }
    tracing::info!(team = %id, by = %caller.name, "team deleted");
    Ok(StatusCode::NO_CONTENT)
}
