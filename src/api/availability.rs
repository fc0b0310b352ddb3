//! Volunteers' time: unavailability (`POST /v1/volunteers/{id}/unavailability`, and through
//! a call-out link) and on-call schedules (`GET /v1/volunteers/{id}/schedule`).

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, json_body};
use super::extract::Query;
use super::volunteers::{calendar_url, load_visible};
use crate::domain::roster::Roster;
use crate::domain::text::{self, Lines};
use crate::domain::volunteer::{Unavailable, Volunteer};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Body of `POST /v1/volunteers/{id}/unavailability` and of the ack-token variant.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnavailableBody {
    /// From (RFC 3339; now by default).
    pub from: Option<String>,
    /// Until (RFC 3339).
    pub until: String,
    /// Why.
    pub reason: Option<String>,
}

/// Validates and records unavailability; answers the volunteer's new list.
pub async fn add_unavailable(
    st: &AppState,
    id: &str,
    obj: &Map<String, Value>,
) -> Result<Vec<Unavailable>, ApiError> {
    let b: UnavailableBody = serde_json::from_value(Value::Object(obj.clone())).map_err(|e| {
        ApiError::invalid("body", format!("expected {{until, from?, reason?}}: {e}"))
    })?;
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
    if let Some(r) = &b.reason {
        text::check(r, Lines::Many).map_err(|e| ApiError::invalid("reason", e))?;
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
        .set_unavailable(id, &list, now.as_millisecond())
        .await?;
    Ok(st
        .ctx
        .store
        .volunteer(id)
        .await?
        .map(|s| s.unavailable)
        .unwrap_or_default())
}

/// `POST /v1/volunteers/{id}/unavailability`
pub async fn unavailable(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require_coordinator()?;
    let obj = json_body(raw)?;
    load_visible(&st, &caller, &id).await?;
    let list = add_unavailable(&st, &id, &obj).await?;
    Ok(Json(json!({"id": id, "unavailable": list})))
}

/// `?from=&days=` of a schedule.
#[derive(Debug, Deserialize)]
pub struct Window {
    /// Start (RFC 3339; now by default).
    pub from: Option<String>,
    /// Days ahead (1–90; 14 by default).
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

/// `GET /v1/volunteers/{id}/schedule`
pub async fn schedule(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(w): Query<Window>,
) -> Result<Json<Value>, ApiError> {
    let s = load_visible(&st, &caller, &id).await?;
    let Some(v) = &s.volunteer else {
        return Err(ApiError::Gone(format!("volunteer {id} was erased")));
    };
    let (from, to) = window(&st, &w)?;
    let shifts = shifts_of(&st, v, from, to).await?;
    let mut out = json!({
        "id": id,
        "from": from, "to": to,
        "shifts": shifts.iter().map(|(t, s)| json!({"team": t, "start": s.start, "end": s.end, "via": s.via})).collect::<Vec<_>>(),
        "unavailable": s.unavailable,
    });
    if caller.role.may_see_personal_data() {
        out["calendar_url"] = calendar_url(&st, "v", &id).into();
    }
    Ok(Json(out))
}
