//! `/v1/teams/{id}/roster` and overrides: a team's on-call schedule (应急值守), written
//! compare-and-set on its version.

use super::AppState;
use super::auth::{Caller, Coordinator};
use super::error::{ApiError, FieldError};
use super::extract::{Body, Check};
use super::teams::{load, load_for_change};
use crate::domain::roster::{LayerSpec, Override, Roster, RosterDoc};
use crate::domain::text::{self, Lines};
use crate::store::teams::RosterWrite;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A team's roster with its version.
#[derive(Debug, Serialize, ToSchema)]
pub struct RosterView {
    /// The team.
    pub team: String,
    /// Bumped by every write; send it back to write compare-and-set.
    pub version: u64,
    /// Layers and overrides.
    pub roster: RosterDoc,
}

/// A team's roster: its layers and overrides, with its version.
#[utoipa::path(get, path = "/v1/teams/{id}/roster", tag = "teams", security(("bearer" = [])),
    params(("id" = String, Path, description = "the team")),
    responses(
        (status = 200, description = "the roster", body = RosterView),
        (status = 404, description = "no such team in this token's scope"),
    ))]
pub async fn roster(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RosterView>, ApiError> {
    load(&st, &caller, &id).await?;
    let (version, doc) = st.ctx.store.roster_doc(&id).await?;
    Ok(Json(RosterView {
        team: id,
        version,
        roster: doc.unwrap_or_default(),
    }))
}

/// Checks a roster against the team: every member named must be a member of the team (an
/// override's cover may come from any team in scope).
async fn check_roster(st: &AppState, id: &str, doc: RosterDoc) -> Result<Roster, ApiError> {
    let roster = Roster::new(doc).map_err(|p| {
        ApiError::Invalid(p.into_iter().map(|(f, r)| FieldError::new(f, r)).collect())
    })?;
    let members: std::collections::HashSet<String> = st
        .ctx
        .store
        .team_member_ids(id)
        .await?
        .into_iter()
        .collect();
    let mut errs = Vec::new();
    for (i, l) in roster.layers.iter().enumerate() {
        if let Err(why) = text::check(&l.spec.name, Lines::One) {
            errs.push(FieldError::new(format!("layers[{i}].name"), why));
        }
        for m in l.spec.members.iter().filter(|m| !members.contains(*m)) {
            errs.push(FieldError::new(
                format!("layers[{i}].members"),
                format!("`{m}` is not a member of team {id}"),
            ));
        }
    }
    for (i, o) in roster.overrides.iter().enumerate() {
        if let Some(Err(why)) = o.note.as_deref().map(|n| text::check(n, Lines::Many)) {
            errs.push(FieldError::new(format!("overrides[{i}].note"), why));
        }
        if st
            .ctx
            .store
            .volunteer(&o.volunteer)
            .await?
            .and_then(|s| s.volunteer)
            .is_none()
        {
            errs.push(FieldError::new(
                format!("overrides[{i}].volunteer"),
                format!("unknown volunteer `{}`", o.volunteer),
            ));
        }
    }
    if errs.is_empty() {
        Ok(roster)
    } else {
        Err(ApiError::Invalid(errs))
    }
}

async fn write(
    st: &AppState,
    id: &str,
    expected: u64,
    roster: &Roster,
    audit: crate::store::audit::AuditEntry,
) -> Result<Json<RosterView>, ApiError> {
    match st
        .ctx
        .store
        .put_roster(id, expected, &roster.doc(), Some(&audit))
        .await?
    {
        RosterWrite::Written(version) => Ok(Json(RosterView {
            team: id.to_string(),
            version,
            roster: roster.doc(),
        })),
        RosterWrite::Stale(v) => Err(ApiError::Conflict(format!(
            "the roster changed meanwhile (now version {v}); read it again"
        ))),
    }
}

/// Body of `PUT /v1/teams/{id}/roster`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RosterPut {
    /// Rotation layers.
    pub layers: Vec<LayerSpec>,
    /// Overrides.
    #[serde(default)]
    pub overrides: Vec<Override>,
    /// The version read; when given, a roster changed since is not overwritten (409).
    #[serde(default)]
    #[schema(minimum = 0)]
    pub version: Option<u64>,
}

impl Check for RosterPut {
    fn check(&self, _: &mut Vec<FieldError>) {}
}

/// Replace a team's roster (coordinator). With `version`, a roster changed meanwhile is not
/// overwritten.
#[utoipa::path(put, path = "/v1/teams/{id}/roster", tag = "teams", security(("bearer" = [])),
    params(("id" = String, Path, description = "the team")),
    request_body = RosterPut,
    responses(
        (status = 200, description = "the roster as written", body = RosterView),
        (status = 403, description = "not a coordinator, or the team is outside the token's scope"),
        (status = 404, description = "no such team"),
        (status = 409, description = "the roster changed since `version`"),
        (status = 422, description = "a layer or override is invalid, or names a non-member"),
    ))]
pub async fn put_roster(
    State(st): State<AppState>,
    Coordinator(caller): Coordinator,
    Path(id): Path<String>,
    Body(b): Body<RosterPut>,
) -> Result<Json<RosterView>, ApiError> {
    load_for_change(&st, &caller, &id).await?;
    let (current, _) = st.ctx.store.roster_doc(&id).await?;
    let expected = b.version.unwrap_or(current);
    let doc = RosterDoc {
        layers: b.layers,
        overrides: b.overrides,
    };
    let roster = check_roster(&st, &id, doc).await?;
    tracing::info!(team = %id, by = %caller.name, layers = roster.layers.len(), "roster replaced");
    let audit = changed(&st, &caller, "roster.put", &id).await?;
    write(&st, &id, expected, &roster, audit).await
}

/// Body of `POST /v1/teams/{id}/overrides`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOverride {
    /// Who is on call.
    pub volunteer: String,
    /// Start (inclusive).
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    /// End (exclusive).
    #[schema(value_type = String, format = DateTime)]
    pub end: Timestamp,
    /// Whom they swap out, if anyone.
    #[serde(default)]
    pub replaces: Option<String>,
    /// Why.
    #[serde(default)]
    pub note: Option<String>,
}

impl Check for NewOverride {
    fn check(&self, _: &mut Vec<FieldError>) {}
}

/// Add an override (coordinator): `volunteer` is on call from `start` to `end`, instead of
/// `replaces` if given.
#[utoipa::path(post, path = "/v1/teams/{id}/overrides", tag = "teams", security(("bearer" = [])),
    params(("id" = String, Path, description = "the team")),
    request_body = NewOverride,
    responses(
        (status = 201, description = "the roster with the override", body = RosterView),
        (status = 403, description = "not a coordinator, or the team is outside the token's scope"),
        (status = 404, description = "no such team"),
        (status = 409, description = "the roster changed meanwhile"),
        (status = 422, description = "the override is invalid"),
    ))]
pub async fn add_override(
    State(st): State<AppState>,
    Coordinator(caller): Coordinator,
    Path(id): Path<String>,
    Body(b): Body<NewOverride>,
) -> Result<(StatusCode, Json<RosterView>), ApiError> {
    load_for_change(&st, &caller, &id).await?;
    let o = Override {
        id: format!("o-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]),
        start: b.start,
        end: b.end,
        volunteer: b.volunteer,
        replaces: b.replaces,
        note: b.note,
    };
    let (ver, doc) = st.ctx.store.roster_doc(&id).await?;
    let mut doc = doc.unwrap_or_default();
    doc.overrides.push(o);
    let roster = check_roster(&st, &id, doc).await?;
    let audit = changed(&st, &caller, "override.add", &id).await?;
    Ok((
        StatusCode::CREATED,
        write(&st, &id, ver, &roster, audit).await?,
    ))
}

/// Remove an override (coordinator).
#[utoipa::path(delete, path = "/v1/teams/{id}/overrides/{oid}", tag = "teams", security(("bearer" = [])),
    params(("id" = String, Path, description = "the team"), ("oid" = String, Path, description = "the override")),
    responses(
        (status = 200, description = "the roster without it", body = RosterView),
        (status = 403, description = "not a coordinator, or the team is outside the token's scope"),
        (status = 404, description = "no such team or override"),
        (status = 409, description = "the roster changed meanwhile"),
    ))]
pub async fn delete_override(
    State(st): State<AppState>,
    Coordinator(caller): Coordinator,
    Path((id, oid)): Path<(String, String)>,
) -> Result<Json<RosterView>, ApiError> {
    load_for_change(&st, &caller, &id).await?;
    let (ver, doc) = st.ctx.store.roster_doc(&id).await?;
    let mut doc = doc.unwrap_or_default();
    let before = doc.overrides.len();
    doc.overrides.retain(|o| o.id != oid);
    if doc.overrides.len() == before {
        return Err(ApiError::NotFound(format!(
            "no override {oid} on team {id}"
        )));
    }
    let roster = Roster::new(doc).map_err(|p| ApiError::Internal(format!("{p:?}")))?;
    let audit = changed(&st, &caller, "override.delete", &id).await?;
    write(&st, &id, ver, &roster, audit).await
}

/// The audit entry of a roster change of team `id` by `caller`.
async fn changed(
    st: &AppState,
    caller: &super::auth::Caller,
    action: &str,
    id: &str,
) -> Result<crate::store::audit::AuditEntry, ApiError> {
    let region = st
        .ctx
        .store
        .team(id)
        .await?
        .map(|t| t.region.to_string())
        .unwrap_or_default();
    Ok(caller.audit(st.ctx.clock.now_ms(), action, id, &region))
}
