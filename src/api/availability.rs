//! Volunteers' time: unavailability (`POST /v1/volunteers/{id}/unavailability`, and through
//! a call-out link) and on-call schedules (`GET /v1/volunteers/{id}/schedule`).

use super::AppState;
use super::auth::{Caller, Coordinator};
use super::error::{ApiError, FieldError};
use super::extract::{Body, Check, Query, text_field};
use super::volunteers::{calendar_url, load_visible};
use crate::domain::roster::Roster;
use crate::domain::text::Lines;
use crate::domain::volunteer::{Unavailable, Volunteer};
use axum::Json;
use axum::extract::{Path, State};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Body of `POST /v1/volunteers/{id}/unavailability` and of the ack-token variant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnavailableBody {
    /// From (RFC 3339; now by default).
    #[serde(default)]
    #[schema(format = DateTime)]
    pub from: Option<String>,
    /// Until (RFC 3339): in the future, after `from`, at most a year later.
    #[schema(format = DateTime)]
    pub until: String,
    /// Why, in their words (kept to 200 characters; shown only to roles that see personal
    /// data).
    #[serde(default)]
    #[schema(max_length = 200)]
    pub reason: Option<String>,
}

impl Check for UnavailableBody {
    fn check(&self, errs: &mut Vec<FieldError>) {
        if let Some(r) = &self.reason {
            text_field(errs, "reason", r, Lines::Many, 0, 200);
        }
    }
}

/// A volunteer's unavailability, as recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnavailableList {
    /// The volunteer (on the coordinator's route).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Every time they cannot be called.
    pub unavailable: Vec<Unavailable>,
}

/// Validates and records unavailability; answers the volunteer's new list.
/// A coordinator's change is audited (`audit`: its entry, to which the period is added — never
/// the reason); a volunteer's own, from their call-out link, is not a command action.
pub async fn add_unavailable(
    st: &AppState,
    id: &str,
    b: UnavailableBody,
    audit: Option<crate::store::audit::AuditEntry>,
) -> Result<Vec<Unavailable>, ApiError> {
    let now =
        Timestamp::from_millisecond(st.ctx.clock.now_ms()).unwrap_or_else(|_| Timestamp::now());
    let ts = |k: &str, s: &str| {
        s.parse::<Timestamp>()
            .map_err(|_| ApiError::invalid(k, format!("`{s}` is not an RFC 3339 time")))
    };
    let from = match &b.from {
        Some(f) => ts("from", f)?,
        None => now,
    };
    let until = ts("until", &b.until)?;
    if until <= from || until <= now {
        return Err(ApiError::invalid(
            "until",
            "must be in the future and after from",
        ));
    }
    if until.as_second() - from.as_second() > 366 * 86_400 {
        return Err(ApiError::invalid("until", "at most a year at a time"));
    }
    let reason = b.reason.map(|r| r.chars().take(200).collect::<String>());
    let s = st
        .ctx
        .store
        .volunteer(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no volunteer {id}")))?;
    let mut list = s.unavailable;
    list.push(Unavailable {
        from,
        until,
        reason,
    });
    st.ctx
        .store
        .set_unavailable(
            id,
            &list,
            now.as_millisecond(),
            audit
                .map(|mut a| {
                    a.target = id.to_string();
                    a.detail = format!("unavailable {from} – {until}");
                    a
                })
                .as_ref(),
        )
        .await?;
    Ok(st
        .ctx
        .store
        .volunteer(id)
        .await?
        .map(|s| s.unavailable)
        .unwrap_or_default())
}

/// Mark a volunteer unavailable (coordinator): they are not called from `from` until
/// `until`.
#[utoipa::path(post, path = "/v1/volunteers/{id}/unavailability", operation_id = "mark_volunteer_unavailable", tag = "volunteers", security(("bearer" = [])),
    params(("id" = String, Path, description = "the volunteer")),
    request_body = UnavailableBody,
    responses(
        (status = 200, description = "their unavailability now", body = UnavailableList),
        (status = 403, description = "not a coordinator"),
        (status = 404, description = "no such volunteer in this token's scope"),
        (status = 422, description = "a time is not RFC 3339, in the past, or over a year"),
    ))]
pub async fn unavailable(
    State(st): State<AppState>,
    Coordinator(caller): Coordinator,
    Path(id): Path<String>,
    Body(b): Body<UnavailableBody>,
) -> Result<Json<UnavailableList>, ApiError> {
    let s = load_visible(&st, &caller, &id).await?;
    let region = s
        .volunteer
        .as_ref()
        .and_then(|v| v.home_region.as_ref())
        .map(|r| r.to_string())
        .unwrap_or_default();
    let audit = caller.audit(st.ctx.clock.now_ms(), "volunteer.unavailable", &id, &region);
    let unavailable = add_unavailable(&st, &id, b, Some(audit)).await?;
    Ok(Json(UnavailableList {
        id: Some(id),
        unavailable,
    }))
}

/// `?from=&days=` of a schedule.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Window {
    /// Start (RFC 3339; now by default).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Days ahead (1–90; 14 by default).
    #[param(minimum = 1, maximum = 90)]
    pub days: Option<i64>,
}

/// Parses a window into (from, to).
pub fn window(st: &AppState, w: &Window) -> Result<(Timestamp, Timestamp), ApiError> {
    let from = match &w.from {
        Some(f) => f
            .parse::<Timestamp>()
            .map_err(|_| ApiError::invalid("from", "must be an RFC 3339 time"))?,
        None => {
            Timestamp::from_millisecond(st.ctx.clock.now_ms()).unwrap_or_else(|_| Timestamp::now())
        }
    };
    let days = w.days.unwrap_or(14);
    if !(1..=90).contains(&days) {
        return Err(ApiError::invalid("days", "must be from 1 to 90"));
    }
    Ok((from, from + jiff::SignedDuration::from_hours(24 * days)))
}

/// The coming shifts of a volunteer over every team they are in, with the team.
pub async fn shifts_of(
    st: &AppState,
    v: &Volunteer,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<(String, crate::domain::roster::Shift)>, ApiError> {
    let rosters = st.ctx.rosters.get(&st.ctx.store, &v.teams).await?;
    let mut out = Vec::new();
    for (t, r) in v.teams.iter().zip(rosters) {
        let Some(r): Option<std::sync::Arc<Roster>> = r else {
            continue;
        };
        for s in r
            .shifts(from, to, 5000)
            .into_iter()
            .filter(|s| s.volunteer == v.id)
        {
            out.push((t.clone(), s));
        }
    }
    out.sort_by_key(|(_, s)| s.start);
    Ok(out)
}

/// One on-call shift.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShiftView {
    /// The team.
    pub team: String,
    /// Start.
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    /// End.
    #[schema(value_type = String, format = DateTime)]
    pub end: Timestamp,
    /// The layer or override that puts them on call.
    pub via: String,
}

/// A volunteer's coming shifts and unavailability.
#[derive(Debug, Serialize, ToSchema)]
pub struct Schedule {
    /// The volunteer.
    pub id: String,
    /// Window start.
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    /// Window end.
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    /// Their shifts over every team, in order.
    pub shifts: Vec<ShiftView>,
    /// When they cannot be called (the reason only for roles that see personal data).
    pub unavailable: Vec<Unavailable>,
    /// Their iCal feed (roles that see personal data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calendar_url: Option<String>,
}

/// A volunteer's coming on-call shifts over all their teams, their unavailability, and their
/// iCal feed.
#[utoipa::path(get, path = "/v1/volunteers/{id}/schedule", tag = "volunteers", security(("bearer" = [])),
    params(("id" = String, Path, description = "the volunteer"), Window),
    responses(
        (status = 200, description = "the schedule", body = Schedule),
        (status = 404, description = "no such volunteer in this token's scope"),
        (status = 410, description = "the volunteer was erased"),
        (status = 422, description = "`from` is not RFC 3339, or `days` is outside 1 to 90"),
    ))]
pub async fn schedule(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(w): Query<Window>,
) -> Result<Json<Schedule>, ApiError> {
    let (from, to) = window(&st, &w)?;
    let s = load_visible(&st, &caller, &id).await?;
    let Some(v) = &s.volunteer else {
        return Err(ApiError::Gone(format!("volunteer {id} was erased")));
    };
    let shifts = shifts_of(&st, v, from, to).await?;
    let personal = caller.role.may_see_personal_data();
    Ok(Json(Schedule {
        from,
        to,
        shifts: shifts
            .into_iter()
            .map(|(team, s)| ShiftView {
                team,
                start: s.start,
                end: s.end,
                via: s.via,
            })
            .collect(),
        unavailable: s
            .unavailable
            .into_iter()
            .map(|u| {
                if personal {
                    u
                } else {
                    Unavailable { reason: None, ..u }
                }
            })
            .collect(),
        calendar_url: personal.then(|| calendar_url(&st, "v", &id)),
        id,
    }))
}
