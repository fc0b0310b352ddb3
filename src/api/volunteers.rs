//! `/v1/volunteers`: the registry. Coordinators create, update, suspend, retire and erase
//! volunteers of teams in their scope; viewers read, with names and phones masked.

use super::AppState;
use super::auth::{Caller, Coordinator};
use super::error::{ApiError, FieldError};
use super::extract::Body;
use super::volunteer_body::apply;
pub use super::volunteer_body::{NewVolunteer, Qualification, SettableStatus, VolunteerPatch};
use crate::domain::region::RegionCode;
use crate::domain::volunteer::{
    Phone, Unavailable, Volunteer, VolunteerStatus, mask_name, mask_url,
};
use crate::import::Report;
use crate::store::registry::{Created, Stored, new_volunteer_id};
use crate::store::registry_write::Updated;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

/// A volunteer as this caller may see them: name and phone masked unless the role may see
/// personal data. After erasure only `id`, `status` and `erased_at` remain.
#[derive(Debug, Serialize, ToSchema)]
pub struct VolunteerView {
    /// Id.
    pub id: String,
    /// Name (masked unless the role may see personal data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E.164 phone (masked unless the role may see personal data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Locale of their messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Their webhook (masked to its host unless the role may see personal data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Team ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teams: Option<Vec<String>>,
    /// Qualifications.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qualifications: Option<Vec<Qualification>>,
    /// Last day of their insurance.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = Date)]
    pub insurance_valid_until: Option<String>,
    /// Registry status.
    pub status: VolunteerStatus,
    /// Their home township.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home_region: Option<String>,
    /// When they said they cannot be called (the reason only for roles that see personal data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<Vec<Unavailable>>,
    /// When their number opted out of SMS (`STOP`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub sms_opt_out_at: Option<String>,
    /// Their iCal feed (roles that see personal data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calendar_url: Option<String>,
    /// Incidents they are deployed on now (on a single read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployments: Option<Vec<String>>,
    /// When they were erased.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub erased_at: Option<String>,
}

/// The view of a volunteer for this caller.
pub fn view(st: &AppState, caller: &Caller, s: &Stored) -> VolunteerView {
    let mut out = VolunteerView {
        id: s.id.clone(),
        name: None,
        phone: None,
        locale: None,
        webhook: None,
        teams: None,
        qualifications: None,
        insurance_valid_until: None,
        status: s.status,
        home_region: None,
        unavailable: None,
        sms_opt_out_at: None,
        calendar_url: None,
        deployments: None,
        erased_at: s.erased_at.map(crate::clock::rfc3339),
    };
    let Some(v) = &s.volunteer else {
        return out;
    };
    let personal = caller.role.may_see_personal_data();
    out.name = Some(if personal {
        v.name.clone()
    } else {
        mask_name(&v.name)
    });
    out.phone = Some(if personal {
        v.phone.expose().to_string()
    } else {
        v.phone.masked()
    });
    out.locale = Some(v.locale.clone());
    out.webhook = if personal {
        v.webhook.clone()
    } else {
        v.webhook.as_deref().map(mask_url)
    };
    out.teams = Some(v.teams.clone());
    out.qualifications = Some(
        v.qualifications
            .iter()
            .map(|(code, d)| Qualification {
                code: code.clone(),
                valid_until: *d,
            })
            .collect(),
    );
    out.insurance_valid_until = v.insurance_valid_until.map(|d| d.to_string());
    out.home_region = v.home_region.as_ref().map(|r| r.to_string());
    out.unavailable = Some(if personal {
        s.unavailable.clone()
    } else {
        // When, not why: a reason is personal (health, family).
        s.unavailable
            .iter()
            .map(|u| Unavailable {
                reason: None,
                ..u.clone()
            })
            .collect()
    });
    out.sms_opt_out_at = s.sms_opt_out_at.map(crate::clock::rfc3339);
    if personal {
        out.calendar_url = Some(calendar_url(st, "v", &v.id));
    }
    out
}

/// The iCal feed URL of a volunteer (`v`) or team (`t`).
pub fn calendar_url(st: &AppState, kind: &str, id: &str) -> String {
    let tag = st.ctx.signer.feed_tag(&format!("{kind}:{id}"));
    format!("{}/ical/{kind}/{id}/{tag}.ics", st.ctx.public_url)
}

/// Regions a volunteer belongs to: their teams' and their home township.
async fn regions_of(st: &AppState, v: &Volunteer) -> Result<Vec<RegionCode>, ApiError> {
    let teams = st.ctx.store.teams_by_id(&v.teams).await?;
    let mut out: Vec<RegionCode> = teams.into_iter().flatten().map(|t| t.region).collect();
    out.extend(v.home_region.clone());
    Ok(out)
}

/// Loads a volunteer the caller may see (404 otherwise: its existence is not revealed).
pub async fn load_visible(st: &AppState, caller: &Caller, id: &str) -> Result<Stored, ApiError> {
    let not_found = || ApiError::NotFound(format!("no volunteer {id} in your scope"));
    let s = st.ctx.store.volunteer(id).await?.ok_or_else(not_found)?;
    if let Some(v) = &s.volunteer {
        let regions = regions_of(st, v).await?;
        // A volunteer in no team and without a home township is visible to city-wide tokens.
        let unplaced = regions.is_empty()
            && st
                .ctx
                .seed
                .regions
                .get(&caller.scope)
                .map(|r| r.parent.is_none())
                == Some(true);
        let visible = unplaced
            || regions
                .iter()
                .any(|r| st.ctx.seed.regions.contains(&caller.scope, r));
        if !visible {
            return Err(not_found());
        }
    }
    Ok(s)
}

/// Register a volunteer (coordinator). One phone number is one volunteer.
#[utoipa::path(post, path = "/v1/volunteers", operation_id = "create_volunteer", tag = "volunteers", security(("bearer" = [])),
    request_body = NewVolunteer,
    responses(
        (status = 201, description = "registered", body = VolunteerView),
        (status = 403, description = "not a coordinator, or a team outside the token's scope"),
        (status = 409, description = "the phone is already registered"),
        (status = 422, description = "a field is invalid, or a team or region is unknown"),
    ))]
pub async fn create(
    State(st): State<AppState>,
    Coordinator(caller): Coordinator,
    Body(b): Body<NewVolunteer>,
) -> Result<(StatusCode, Json<VolunteerView>), ApiError> {
    let blank = Volunteer {
        id: new_volunteer_id(),
        name: String::new(),
        phone: Phone::parse("+10000000000").expect("placeholder parses"),
        locale: crate::domain::template::DEFAULT_LOCALE.into(),
        webhook: None,
        teams: vec![],
        home_region: None,
        status: VolunteerStatus::Active,
        insurance_valid_until: None,
        qualifications: vec![],
    };
    let v = apply(&st, &caller, b.into(), blank).await?;
    match st
        .ctx
        .store
        .create_volunteer(
            &v,
            st.ctx.clock.now_ms(),
            Some(&caller.audit(st.ctx.clock.now_ms(), "volunteer.create", "", "")),
        )
        .await?
    {
        Created::Ok => {}
        Created::PhoneTaken(owner) => {
            return Err(ApiError::Conflict(format!(
                "phone {} is already registered to volunteer {owner}",
                v.phone.masked()
            )));
        }
        Created::IdTaken => return Err(ApiError::Conflict("id collision; try again".into())),
        Created::NoTeam(t) => {
            return Err(ApiError::invalid("teams", format!("unknown team `{t}`")));
        }
    }
    tracing::info!(volunteer = %v.id, phone = %v.phone, by = %caller.name, "volunteer registered");
    let s = reread(&st, &v.id).await?;
    Ok((StatusCode::CREATED, Json(view(&st, &caller, &s))))
}

async fn reread(st: &AppState, id: &str) -> Result<Stored, ApiError> {
    st.ctx
        .store
        .volunteer(id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("volunteer {id} vanished")))
}

/// A volunteer, with the incidents they are deployed on now.
#[utoipa::path(get, path = "/v1/volunteers/{id}", operation_id = "get_volunteer", tag = "volunteers", security(("bearer" = [])),
    params(("id" = String, Path, description = "the volunteer")),
    responses(
        (status = 200, description = "the volunteer", body = VolunteerView),
        (status = 404, description = "no such volunteer in this token's scope"),
    ))]
pub async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<VolunteerView>, ApiError> {
    let s = load_visible(&st, &caller, &id).await?;
    let mut v = view(&st, &caller, &s);
    let deps = st.ctx.store.deployments(std::slice::from_ref(&id)).await?;
    let mut on: Vec<String> = deps.iter().flat_map(|d| d.keys().cloned()).collect();
    on.sort();
    v.deployments = Some(on);
    Ok(Json(v))
}

/// Update a volunteer (coordinator): any fields; `status` suspends, retires or reactivates.
#[utoipa::path(patch, path = "/v1/volunteers/{id}", operation_id = "update_volunteer", tag = "volunteers", security(("bearer" = [])),
    params(("id" = String, Path, description = "the volunteer")),
    request_body = VolunteerPatch,
    responses(
        (status = 200, description = "the volunteer as changed", body = VolunteerView),
        (status = 403, description = "not a coordinator, or a team outside the token's scope"),
        (status = 404, description = "no such volunteer in this token's scope"),
        (status = 409, description = "the phone is taken, or someone changed the volunteer meanwhile"),
        (status = 410, description = "the volunteer was erased"),
        (status = 422, description = "a field is invalid"),
    ))]
pub async fn update(
    State(st): State<AppState>,
    Coordinator(caller): Coordinator,
    Path(id): Path<String>,
    Body(b): Body<VolunteerPatch>,
) -> Result<Json<VolunteerView>, ApiError> {
    let s = load_visible(&st, &caller, &id).await?;
    let Some(old) = s.volunteer else {
        return Err(ApiError::Gone(format!("volunteer {id} was erased")));
    };
    let new = apply(&st, &caller, b, old.clone()).await?;
    match st
        .ctx
        .store
        .update_volunteer(
            &old,
            &new,
            st.ctx.clock.now_ms(),
            Some(&caller.audit(
                st.ctx.clock.now_ms(),
                &status_action(old.status, new.status),
                "",
                "",
            )),
        )
        .await?
    {
        Updated::Ok => {}
        Updated::PhoneTaken(owner) => {
            return Err(ApiError::Conflict(format!(
                "phone {} is already registered to volunteer {owner}",
                new.phone.masked()
            )));
        }
        Updated::NoTeam(t) => {
            return Err(ApiError::invalid("teams", format!("unknown team `{t}`")));
        }
        Updated::Conflict => {
            return Err(ApiError::Conflict(format!(
                "volunteer {id} was changed by someone else meanwhile; read it again and retry"
            )));
        }
        Updated::Gone => return Err(ApiError::Gone(format!("volunteer {id} was erased"))),
    }
    tracing::info!(volunteer = %id, status = new.status.as_str(), by = %caller.name, "volunteer updated");
    let s = reread(&st, &id).await?;
    Ok(Json(view(&st, &caller, &s)))
}

/// Erase a volunteer (coordinator): personal data goes; anonymised service records keep the
/// bare id. Erasing twice answers the erased record.
#[utoipa::path(delete, path = "/v1/volunteers/{id}", operation_id = "erase_volunteer", tag = "volunteers", security(("bearer" = [])),
    params(("id" = String, Path, description = "the volunteer")),
    responses(
        (status = 200, description = "what remains: id, status `erased`, erased_at", body = VolunteerView),
        (status = 403, description = "not a coordinator"),
        (status = 404, description = "no such volunteer in this token's scope"),
    ))]
pub async fn erase(
    State(st): State<AppState>,
    Coordinator(caller): Coordinator,
    Path(id): Path<String>,
) -> Result<Json<VolunteerView>, ApiError> {
    load_visible(&st, &caller, &id).await?;
    let now = st.ctx.clock.now_ms();
    // One script: the record, the phone index, memberships and every roster entry naming them.
    let audit = caller.audit(now, "volunteer.erase", &id, "");
    st.ctx.store.erase_volunteer(&id, now, &audit).await?;
    tracing::info!(volunteer = %id, by = %caller.name, "volunteer erased");
    let s = reread(&st, &id).await?;
    Ok(Json(view(&st, &caller, &s)))
}

/// A CSV file: a header, then one volunteer per row.
#[derive(ToSchema)]
#[schema(value_type = String, min_length = 1)]
#[allow(dead_code)] // a description for the document; the body is read as bytes
pub struct CsvFile(String);

/// Bulk import (coordinator): a CSV file in UTF-8 or GBK, headers in English or Chinese;
/// idempotent on phone. Answers the report: counts, and every rejected line with its reason.
/// Rows naming teams outside the caller's scope are rejected, the rest kept.
#[utoipa::path(post, path = "/v1/volunteers:import", tag = "volunteers", security(("bearer" = [])),
    request_body(content = CsvFile, content_type = "text/csv", description = "the CSV file"),
    responses(
        (status = 200, description = "the report", body = Report),
        (status = 403, description = "not a coordinator"),
        (status = 422, description = "the file has no header a volunteer can be read from"),
    ))]
pub async fn import(
    State(st): State<AppState>,
    Coordinator(caller): Coordinator,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Report>, ApiError> {
    let bytes = raw.map_err(super::error::body_rejection)?;
    import_by(&st, &caller, &bytes).await.map(Json)
}

/// Imports a registry file for a coordinator: the report, or 422 when the file is empty or
/// its header names no volunteer's columns (the API's import and the command centre's upload).
pub async fn import_by(
    st: &AppState,
    caller: &Caller,
    bytes: &[u8],
) -> Result<crate::import::Report, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::Malformed(vec![FieldError::new(
            "body",
            "send the CSV file as the body",
        )]));
    }
    let teams = st.ctx.store.all_teams().await?;
    let seed = st.ctx.seed.clone();
    let tree = st.ctx.seed.clone();
    let scope = caller.scope.clone();
    let mut lk = crate::import::Lookup::new(
        teams,
        &seed.regions,
        &seed.templates,
        Box::new(move |r| tree.regions.contains(&scope, r)),
    );
    lk.audit = Some(caller.audit(st.ctx.clock.now_ms(), "volunteer.import", "", ""));
    let report =
        crate::import::import(&st.ctx.store, bytes, &lk, st.ctx.clock.now_ms(), |_, _| {}).await?;
    tracing::info!(by = %caller.name, rows = report.rows, created = report.created, updated = report.updated, rejected = report.rejected.len(), "registry import");
    // A file whose header names no volunteer's columns imported nothing: that is the file's
    // fault as a whole, said as a 422 with each missing column.
    if report.rows == 0 && report.rejected.iter().any(|r| r.line == 1) {
        return Err(ApiError::Invalid(
            report
                .rejected
                .iter()
                .map(|r| FieldError::new("body", format!("line {}: {}", r.line, r.reason)))
                .collect(),
        ));
    }
    Ok(report)
}

/// The audit action of an update: its status change when there is one (`volunteer.suspend`,
/// `volunteer.retire`, `volunteer.reactivate`), else `volunteer.update`.
fn status_action(old: VolunteerStatus, new: VolunteerStatus) -> String {
    match (old == new, new) {
        (true, _) => "volunteer.update".into(),
        (false, VolunteerStatus::Suspended) => "volunteer.suspend".into(),
        (false, VolunteerStatus::Retired) => "volunteer.retire".into(),
        (false, VolunteerStatus::Active) => "volunteer.reactivate".into(),
        (false, other) => format!("volunteer.{}", other.as_str()),
    }
}
