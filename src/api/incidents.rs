//! `/v1/incidents`: raise, list, read with progress, list callouts, stand down.

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, FieldError, json_object};
use super::extract::Query;
use crate::domain::incident::{IncidentId, Level, Mode, Status};
use crate::domain::plan;
use crate::domain::region::RegionCode;
use crate::domain::text::{self, Lines};
use crate::domain::volunteer::{mask_name, mask_phone};
use crate::store::incidents::{IncidentView, NewIncident, Raised};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The longest title accepted (characters).
const MAX_TITLE: usize = 200;

/// `POST /v1/incidents`
pub async fn raise(
    State(st): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require_commander()?;
    let body = body.map_err(super::error::body_rejection)?;
    let obj = json_object(&body)?;
    let v = validate(&st, &obj)?;
    caller.require_scope(&st, &v.region)?;
    let plan = plan::choose(
        &st.ctx.seed.plans,
        &st.ctx.seed.regions,
        &v.kind,
        v.level,
        &v.region,
    )
    .ok_or_else(|| no_plan(&st, &v.kind, v.level, &v.region))?;
    let id = match &v.idempotency_key {
        Some(k) => IncidentId::from_idempotency_key(&caller.name, k),
        None => IncidentId::random(),
    };
    let new = NewIncident {
        id,
        kind: v.kind.clone(),
        level: v.level.get(),
        region: v.region.to_string(),
        title: v.title.clone(),
        mode: v.mode.as_str().to_string(),
        location: v.location.clone(),
        include_deployed: v.include_deployed,
        ladder: plan.ladder.clone(),
        plan_id: plan.id.clone(),
        requirements: plan.requirements.clone(),
        raised_by: caller.name.clone(),
        now: st.ctx.clock.now_ms(),
    };
    let status = match st.ctx.store.raise(&new).await? {
        Raised::Created => {
            metrics::counter!("muster_incidents_raised_total", "mode" => new.mode.clone())
                .increment(1);
            tracing::info!(incident = %id, kind = %new.kind, level = new.level, region = %new.region, plan = %plan.id, mode = %new.mode, "incident raised");
            StatusCode::CREATED
        }
        Raised::Existing => StatusCode::OK,
        Raised::KeyReused => {
            return Err(ApiError::invalid(
                "idempotency_key",
                "this key was already used to raise a different incident",
            ));
        }
    };
    let view = st
        .ctx
        .store
        .incident(&id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("incident {id} vanished after raise")))?;
    Ok((status, Json(view)).into_response())
}

struct Valid {
    kind: String,
    level: Level,
    region: crate::domain::region::RegionCode,
    title: String,
    mode: Mode,
    location: Option<Value>,
    idempotency_key: Option<String>,
    include_deployed: bool,
}

fn validate(st: &AppState, obj: &Map<String, Value>) -> Result<Valid, ApiError> {
    let mut errs = Vec::new();
    let seed = &st.ctx.seed;
    let kind = match obj.get("kind") {
        Some(Value::String(k)) => {
            let known = seed.plans.iter().any(|p| p.kinds.contains(k));
            if !known {
                let mut kinds: Vec<&str> = seed
                    .plans
                    .iter()
                    .flat_map(|p| p.kinds.iter().map(String::as_str))
                    .collect();
                kinds.sort();
                kinds.dedup();
                errs.push(FieldError::new(
                    "kind",
                    format!("unknown incident kind `{k}`; known: {}", kinds.join(", ")),
                ));
            }
            k.clone()
        }
        Some(_) => {
            errs.push(FieldError::new("kind", "must be a string"));
            String::new()
        }
        None => {
            errs.push(FieldError::new("kind", "is required"));
            String::new()
        }
    };
    let level = match obj.get("level") {
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Level::new(i)
                .map_err(|e| errs.push(FieldError::new("level", e)))
                .ok(),
            None => {
                errs.push(FieldError::new("level", "must be an integer from 1 to 4"));
                None
            }
        },
        Some(_) => {
            errs.push(FieldError::new("level", "must be an integer from 1 to 4"));
            None
        }
        None => {
            errs.push(FieldError::new("level", "is required"));
            None
        }
    };
    let region = match obj.get("region") {
        Some(Value::String(r)) => match seed.regions.lookup(r) {
            Some(reg) => Some(reg.code.clone()),
            None => {
                errs.push(FieldError::new("region", format!("unknown region `{r}`")));
                None
            }
        },
        Some(_) => {
            errs.push(FieldError::new("region", "must be a region code string"));
            None
        }
        None => {
            errs.push(FieldError::new("region", "is required"));
            None
        }
    };
    let title = match obj.get("title") {
        Some(Value::String(t)) if text::check(t, Lines::One).is_err() => {
            let why = text::check(t, Lines::One).unwrap_err();
            errs.push(FieldError::new("title", why));
            String::new()
        }
        Some(Value::String(t)) if !t.trim().is_empty() && t.chars().count() <= MAX_TITLE => {
            t.trim().to_string()
        }
        Some(Value::String(_)) => {
            errs.push(FieldError::new(
                "title",
                format!("must be 1 to {MAX_TITLE} characters"),
            ));
            String::new()
        }
        Some(_) => {
            errs.push(FieldError::new("title", "must be a string"));
            String::new()
        }
        None => {
            errs.push(FieldError::new("title", "is required"));
            String::new()
        }
    };
    let mode = match obj.get("mode") {
        None | Some(Value::Null) => Mode::Live,
        Some(Value::String(m)) => Mode::parse(m).unwrap_or_else(|| {
            errs.push(FieldError::new("mode", "must be `live` or `drill`"));
            Mode::Live
        }),
        Some(_) => {
            errs.push(FieldError::new("mode", "must be `live` or `drill`"));
            Mode::Live
        }
    };
    let include_deployed = match obj.get("include_deployed") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) if mode == Mode::Drill => true,
        Some(Value::Bool(true)) => {
            errs.push(FieldError::new(
                "include_deployed",
                "only a drill may call volunteers already deployed on a live incident",
            ));
            false
        }
        Some(_) => {
            errs.push(FieldError::new("include_deployed", "must be true or false"));
            false
        }
    };
    let location = match obj.get("location") {
        None | Some(Value::Null) => None,
        Some(l) if l.to_string().len() <= 2048 => {
            if let Err(why) = json_strings(l, "location") {
                errs.push(why);
            }
            Some(l.clone())
        }
        Some(_) => {
            errs.push(FieldError::new("location", "must be at most 2 KiB of JSON"));
            None
        }
    };
    let idempotency_key = match obj.get("idempotency_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k))
            if !k.is_empty() && k.len() <= 200 && text::check(k, Lines::One).is_ok() =>
        {
            Some(k.clone())
        }
        Some(_) => {
            errs.push(FieldError::new(
                "idempotency_key",
                "must be a string of 1 to 200 bytes, without control characters",
            ));
            None
        }
    };
    match (level, region, errs.is_empty()) {
        (Some(level), Some(region), true) => Ok(Valid {
            kind,
            level,
            region,
            title,
            mode,
            location,
            idempotency_key,
            include_deployed,
        }),
        _ => Err(ApiError::Invalid(errs)),
    }
}

/// Checks every string inside a JSON value (keys too) as multi-line free text.
fn json_strings(v: &Value, at: &str) -> Result<(), FieldError> {
    let bad = |s: &str| text::check(s, Lines::Many).map_err(|e| FieldError::new(at, e));
    match v {
        Value::String(s) => bad(s),
        Value::Array(a) => a.iter().try_for_each(|x| json_strings(x, at)),
        Value::Object(m) => m.iter().try_for_each(|(k, x)| {
            bad(k)?;
            json_strings(x, at)
        }),
        _ => Ok(()),
    }
}

pub(super) fn no_plan(
    st: &AppState,
    kind: &str,
    level: Level,
    region: &crate::domain::region::RegionCode,
) -> ApiError {
    let kind_elsewhere = st
        .ctx
        .seed
        .plans
        .iter()
        .any(|p| p.kinds.iter().any(|k| k == kind));
    let field = if kind_elsewhere { "level" } else { "kind" };
    ApiError::invalid(
        field,
        format!(
            "no contingency plan covers a `{kind}` incident at level {} in region {region}",
            level.get()
        ),
    )
}

fn parse_id(id: &str) -> Result<IncidentId, ApiError> {
    IncidentId::parse(id).ok_or_else(|| ApiError::NotFound(format!("no incident `{id}`")))
}

/// Loads an incident the caller may see, or 404.
pub(super) async fn visible(
    st: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(IncidentId, crate::store::incidents::IncidentView), ApiError> {
    let iid = parse_id(id)?;
    match st.ctx.store.incident(&iid).await? {
        Some(v) if caller.sees(st, &v.region) => Ok((iid, v)),
        _ => Err(ApiError::NotFound(format!(
            "no incident `{id}` in this token's scope"
        ))),
    }
}

/// `GET /v1/incidents/{id}`
pub async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (_, v) = visible(&st, &caller, &id).await?;
    Ok(Json(v).into_response())
}

/// Query of `GET /v1/incidents`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
}

/// `GET /v1/incidents`: active incidents in scope, newest first (`?status=` filters, `all`
/// includes stood-down ones).
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let wanted: Option<Vec<Status>> = match q.status.as_deref() {
        None => Some(vec![Status::Mustering, Status::Filled, Status::Short]),
        Some("all") => None,
        Some(s) => {
            let mut out = Vec::new();
            for part in s.split(',') {
                out.push(Status::parse(part.trim()).ok_or_else(|| {
                    ApiError::invalid(
                        "status",
                        format!("unknown status `{part}`; use mustering, filled, short, stood_down, closed or all"),
                    )
                })?);
            }
            Some(out)
        }
    };
    let all = st.ctx.store.list_incidents(1000).await?;
    let items: Vec<_> = all
        .into_iter()
        .filter(|v| caller.sees(&st, &v.region))
        .filter(|v| match (&wanted, v.status()) {
            (None, _) => true,
            (Some(w), Some(s)) => w.contains(&s),
            (Some(_), None) => false,
        })
        .collect();
    Ok(Json(json!({ "incidents": items })).into_response())
}

/// Query of `GET /v1/incidents/{id}/callouts`.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    offset: Option<u32>,
    limit: Option<u32>,
}

/// `GET /v1/incidents/{id}/callouts?offset=&limit=` (limit ≤ 5000, default 1000).
pub async fn callouts(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let (iid, _) = visible(&st, &caller, &id).await?;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=5000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 5000"));
    }
    let offset = q.offset.unwrap_or(0);
    let total = st.ctx.store.callout_count(&iid).await?;
    let first = offset + 1;
    let last = (offset.saturating_add(limit)).min(total);
    let recs = st.ctx.store.callouts(&iid, first, last).await?;
    let vids: Vec<String> = recs.iter().map(|r| r.get("v").to_string()).collect();
    let contacts = st.ctx.store.volunteer_contacts(&vids).await?;
    let full = caller.role.may_see_personal_data();
    let names_ok = caller.role != crate::domain::access::Role::Viewer;
    let items: Vec<Value> = recs
        .iter()
        .zip(contacts)
        .map(|(r, (name, phone))| {
            let name = name.unwrap_or_default();
            let phone = phone.unwrap_or_default();
            json!({
                "id": format!("{iid}.{}", r.n),
                "volunteer_id": r.get("v"),
                "volunteer_name": if full || names_ok { name } else { mask_name(&name) },
                "phone": if full || phone.is_empty() { phone } else { mask_phone(&phone) },
                "requirement_id": r.get("r"),
                "tier": r.get("tier"),
                "step": r.get("step").parse::<u32>().unwrap_or(0),
                "channel": r.get("ch"),
                "state": r.get("st"),
                "created_at": r.time("ca"),
                "notified_at": r.time("na"),
                "answered_at": r.time("aa").or_else(|| r.time("da")),
                "arrived_at": r.time("ra"),
                "withdrawn_at": r.time("wa"),
                "promoted_at": r.time("pa"),
                "stood_down_at": r.time("sa"),
                "delivery_error": r.fields.get("err"),
                "sms_delivery": r.fields.get("dl"),
                "sms_delivery_at": r.time("dl_at"),
            })
        })
        .collect();
    Ok(Json(json!({
        "callouts": items,
        "total": total,
        "offset": offset,
        "limit": limit,
    }))
    .into_response())
}

/// An incident a commander acts on: 403 for a non-commander, 404 outside the token's scope
/// (the scope check is `visible`'s). Answers its id, view and region.
pub(super) async fn commanded(
    st: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(IncidentId, IncidentView, RegionCode), ApiError> {
    caller.require_commander()?;
    let (iid, v) = visible(st, caller, id).await?;
    let region = RegionCode::parse(&v.region)
        .map_err(|e| ApiError::Internal(format!("stored region: {e}")))?;
    Ok((iid, v, region))
}

/// The incident as it is now, after a change.
pub(super) async fn reread(st: &AppState, iid: &IncidentId) -> Result<Response, ApiError> {
    let v = st
        .ctx
        .store
        .incident(iid)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no incident `{iid}`")))?;
    Ok(Json(v).into_response())
}

/// `POST /v1/incidents/{id}/stand-down`
pub async fn stand_down(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (iid, _, _) = commanded(&st, &caller, &id).await?;
    let now = st.ctx.clock.now_ms();
    match st.ctx.store.stand_down(&iid, now, &caller.name).await? {
        None => return Err(ApiError::NotFound(format!("no incident `{id}`"))),
        Some(true) => tracing::info!(incident = %iid, "stand-down ordered"),
        Some(false) => {}
    }
    reread(&st, &iid).await
}
