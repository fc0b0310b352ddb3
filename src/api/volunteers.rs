//! `/v1/volunteers`: the registry. Coordinators create, update, suspend, retire and erase
//! volunteers of teams in their scope; viewers read, with names and phones masked.

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, FieldError, json_body};
use crate::domain::region::RegionCode;
use crate::domain::text::{self, Lines};
use crate::domain::volunteer::{Phone, Volunteer, VolunteerStatus, mask_name, mask_url};
use crate::seed::check_webhook;
use crate::store::registry::{Created, Stored, new_volunteer_id};
use crate::store::registry_write::Updated;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use serde_json::{Map, Value, json};

/// The JSON of a volunteer for this caller: name and phone masked unless the role may see them.
pub fn view(st: &AppState, caller: &Caller, s: &Stored) -> Value {
    let Some(v) = &s.volunteer else {
        return json!({
            "id": s.id,
            "status": s.status.as_str(),
            "erased_at": s.erased_at.map(crate::clock::rfc3339),
        });
    };
    let personal = caller.role.may_see_personal_data();
    let mut out = json!({
        "id": v.id,
        "name": if personal { v.name.clone() } else { mask_name(&v.name) },
        "phone": if personal { v.phone.expose().to_string() } else { v.phone.masked() },
        "locale": v.locale,
        "webhook": if personal { v.webhook.clone() } else { v.webhook.as_deref().map(mask_url) },
        "teams": v.teams,
        "qualifications": v.qualifications.iter().map(|(c, d)| json!({"code": c, "valid_until": d.to_string()})).collect::<Vec<_>>(),
        "insurance_valid_until": v.insurance_valid_until.map(|d| d.to_string()),
        "status": v.status.as_str(),
        "home_region": v.home_region.as_ref().map(|r| r.to_string()),
        "unavailable": if personal { json!(s.unavailable) } else {
            // When, not why: a reason is personal (health, family).
            json!(s.unavailable.iter().map(|u| json!({"from": u.from, "until": u.until})).collect::<Vec<_>>())
        },
        "sms_opt_out_at": s.sms_opt_out_at.map(crate::clock::rfc3339),
    });
    if personal {
        out["calendar_url"] = calendar_url(st, "v", &v.id).into();
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

/// Reads the fields of a volunteer body over `base` (all required when there is no base).
async fn parse(
    st: &AppState,
    caller: &Caller,
    obj: &Map<String, Value>,
    base: Option<&Volunteer>,
) -> Result<Volunteer, ApiError> {
    let mut errs = Vec::new();
    let known = [
        "name",
        "phone",
        "teams",
        "locale",
        "webhook",
        "qualifications",
        "insurance_valid_until",
        "home_region",
        "status",
        "id",
    ];
    for k in obj.keys().filter(|k| !known.contains(&k.as_str())) {
        errs.push(FieldError::new(k, "unknown field"));
    }
    let mut v = base.cloned().unwrap_or_else(|| Volunteer {
        id: String::new(),
        name: String::new(),
        phone: Phone::parse("+10000000000").expect("placeholder parses"),
        locale: crate::domain::template::DEFAULT_LOCALE.into(),
        webhook: None,
        teams: vec![],
        home_region: None,
        status: VolunteerStatus::Active,
        insurance_valid_until: None,
        qualifications: vec![],
    });
    let required = base.is_none();
    let str_field = |k: &str, errs: &mut Vec<FieldError>| -> Option<Option<String>> {
        match obj.get(k) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(s.trim().to_string())),
            Some(_) => {
                errs.push(FieldError::new(k, "must be a string"));
                None
            }
        }
    };
    match str_field("name", &mut errs) {
        Some(Some(n)) if text::check(&n, Lines::One).is_err() => errs.push(FieldError::new(
            "name",
            text::check(&n, Lines::One).unwrap_err(),
        )),
        Some(Some(n)) if !n.is_empty() && n.chars().count() <= 100 => v.name = n,
        Some(_) => errs.push(FieldError::new("name", "must be 1 to 100 characters")),
        None if required => errs.push(FieldError::new("name", "is required")),
        None => {}
    }
    match str_field("phone", &mut errs) {
        Some(Some(p)) => match Phone::parse(&p) {
            Ok(p) => v.phone = p,
            Err(e) => errs.push(FieldError::new("phone", e)),
        },
        Some(None) => errs.push(FieldError::new("phone", "is required")),
        None if required => errs.push(FieldError::new("phone", "is required")),
        None => {}
    }
    if let Some(l) = str_field("locale", &mut errs) {
        let l = l.unwrap_or_else(|| crate::domain::template::DEFAULT_LOCALE.into());
        if st.ctx.seed.templates.locale(&l).is_some() {
            v.locale = l;
        } else {
            errs.push(FieldError::new(
                "locale",
                format!("no templates for locale `{l}`"),
            ));
        }
    }
    if let Some(w) = str_field("webhook", &mut errs) {
        match w.filter(|w| !w.is_empty()) {
            Some(w) => match check_webhook(&w) {
                Ok(()) => v.webhook = Some(w),
                Err(e) => errs.push(FieldError::new("webhook", e)),
            },
            None => v.webhook = None,
        }
    }
    let date = |k: &str, s: &str, errs: &mut Vec<FieldError>| -> Option<Date> {
        s.parse::<Date>()
            .map_err(|_| {
                errs.push(FieldError::new(
                    k,
                    format!("`{s}` is not a date (YYYY-MM-DD)"),
                ))
            })
            .ok()
    };
    if let Some(i) = str_field("insurance_valid_until", &mut errs) {
        v.insurance_valid_until = i.and_then(|s| date("insurance_valid_until", &s, &mut errs));
    }
    if let Some(h) = str_field("home_region", &mut errs) {
        v.home_region = h.and_then(|h| match st.ctx.seed.regions.lookup(&h) {
            Some(r) if !caller.sees(st, r.code.as_str()) => {
                errs.push(FieldError::new(
                    "home_region",
                    format!(
                        "region {} is outside this token's scope {}",
                        r.code, caller.scope
                    ),
                ));
                None
            }
            Some(r) => Some(r.code.clone()),
            None => {
                errs.push(FieldError::new(
                    "home_region",
                    format!("unknown region `{h}`"),
                ));
                None
            }
        });
    }
    if let Some(s) = str_field("status", &mut errs) {
        match s.as_deref().and_then(VolunteerStatus::parse) {
            Some(VolunteerStatus::Erased) | None => errs.push(FieldError::new(
                "status",
                "must be active, suspended or retired (erase with DELETE)",
            )),
            Some(s) => v.status = s,
        }
    }
    match obj.get("qualifications") {
        None | Some(Value::Null) => {}
        Some(Value::Array(qs)) => {
            v.qualifications.clear();
            for (i, q) in qs.iter().enumerate() {
                let code = q
                    .get("code")
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .unwrap_or("");
                let until = q.get("valid_until").and_then(Value::as_str).unwrap_or("");
                let at = format!("qualifications[{i}]");
                if code.is_empty()
                    || code.contains([':', ';'])
                    || text::check(code, Lines::One).is_err()
                {
                    errs.push(FieldError::new(
                        format!("{at}.code"),
                        "must be a non-empty code without : ; or control characters",
                    ));
                    continue;
                }
                if let Some(d) = date(&format!("{at}.valid_until"), until, &mut errs) {
                    v.qualifications.push((code.to_string(), d));
                }
            }
        }
        Some(_) => errs.push(FieldError::new(
            "qualifications",
            "must be a list of {code, valid_until}",
        )),
    }
    match obj.get("teams") {
        None if required => errs.push(FieldError::new("teams", "is required (a list of team ids)")),
        None => {}
        Some(Value::Array(ts)) => {
            let ids: Vec<String> = ts
                .iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect();
            if ids.len() != ts.len() || ids.is_empty() {
                errs.push(FieldError::new(
                    "teams",
                    "must be a non-empty list of team ids",
                ));
            } else {
                let found = st.ctx.store.teams_by_id(&ids).await?;
                for (id, t) in ids.iter().zip(found) {
                    match t {
                        None => errs.push(FieldError::new("teams", format!("unknown team `{id}`"))),
                        Some(t) => caller.require_scope(st, &t.region)?,
                    }
                }
                let mut dedup = ids;
                dedup.dedup();
                v.teams = dedup;
            }
        }
        Some(_) => errs.push(FieldError::new("teams", "must be a list of team ids")),
    }
    if errs.is_empty() {
        Ok(v)
    } else {
        Err(ApiError::Invalid(errs))
    }
}

/// `POST /v1/volunteers`
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require_coordinator()?;
    let obj = json_body(raw)?;
    let mut v = parse(&st, &caller, &obj, None).await?;
    v.id = new_volunteer_id();
    match st
        .ctx
        .store
        .create_volunteer(&v, st.ctx.clock.now_ms())
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
    let s = st
        .ctx
        .store
        .volunteer(&v.id)
        .await?
        .ok_or_else(|| ApiError::Internal("vanished".into()))?;
    Ok((StatusCode::CREATED, Json(view(&st, &caller, &s))).into_response())
}

/// `GET /v1/volunteers/{id}`
pub async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = load_visible(&st, &caller, &id).await?;
    let mut v = view(&st, &caller, &s);
    let deps = st.ctx.store.deployments(std::slice::from_ref(&id)).await?;
    let mut on: Vec<&String> = deps.iter().flat_map(|d| d.keys()).collect();
    on.sort();
    v["deployments"] = json!(on);
    Ok(Json(v))
}

/// `PATCH /v1/volunteers/{id}`: any fields; `status` suspends, retires or reactivates.
pub async fn update(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require_coordinator()?;
    let obj = json_body(raw)?;
    let s = load_visible(&st, &caller, &id).await?;
    let Some(old) = s.volunteer else {
        return Err(ApiError::Gone(format!("volunteer {id} was erased")));
    };
    let new = parse(&st, &caller, &obj, Some(&old)).await?;
    match st
        .ctx
        .store
        .update_volunteer(&old, &new, st.ctx.clock.now_ms())
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
    let s = st
        .ctx
        .store
        .volunteer(&id)
        .await?
        .ok_or_else(|| ApiError::Internal("vanished".into()))?;
    Ok(Json(view(&st, &caller, &s)))
}

/// `DELETE /v1/volunteers/{id}`: erasure. Personal data goes; callouts keep the bare id.
pub async fn erase(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_coordinator()?;
    load_visible(&st, &caller, &id).await?;
    let now = st.ctx.clock.now_ms();
    let teams = st
        .ctx
        .store
        .erase_volunteer(&id, now)
        .await?
        .unwrap_or_default();
    for t in teams {
        super::rosters::drop_from_roster(&st, &t, &id).await?;
    }
    tracing::info!(volunteer = %id, by = %caller.name, "volunteer erased");
    let s = st
        .ctx
        .store
        .volunteer(&id)
        .await?
        .ok_or_else(|| ApiError::Internal("vanished".into()))?;
    Ok(Json(view(&st, &caller, &s)))
}

/// `POST /v1/volunteers:import`: a CSV body (UTF-8 or GBK). Answers the report: counts and
/// every rejected line with its reason. Rows naming teams outside the caller's scope are
/// rejected, the rest kept.
pub async fn import(
    State(st): State<AppState>,
    caller: Caller,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require_coordinator()?;
    let bytes = raw.map_err(super::error::body_rejection)?;
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
    let lk = crate::import::Lookup::new(
        teams,
        &seed.regions,
        &seed.templates,
        Box::new(move |r| tree.regions.contains(&scope, r)),
    );
    let report =
        crate::import::import(&st.ctx.store, &bytes, &lk, st.ctx.clock.now_ms(), |_, _| {}).await?;
    tracing::info!(by = %caller.name, rows = report.rows, created = report.created, updated = report.updated, rejected = report.rejected.len(), "registry import");
    Ok(Json(serde_json::to_value(&report).unwrap_or_default()))
}
