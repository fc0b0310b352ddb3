//! `/v1/incidents`: raise, list, read with progress, list callouts, stand down.

use super::AppState;
use super::auth::{Caller, Commander};
use super::error::{ApiError, FieldError};
use super::extract::{Body, Check, Query, text_field};
use crate::domain::incident::{IncidentId, Level, Mode, Status};
use crate::domain::plan;
use crate::domain::region::RegionCode;
use crate::domain::text::{self, Lines};
use crate::engine::Ctx;
use crate::store::incidents::{IncidentView, NewIncident, Origin, Raised};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// The longest title accepted (characters).
const MAX_TITLE: usize = 200;

/// Body of `POST /v1/incidents`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RaiseIncident {
    /// The kind of incident; a contingency plan must cover it.
    #[schema(example = "flood", min_length = 1)]
    pub kind: String,
    /// 1 = 特别重大 (most severe) … 4 = 一般.
    pub level: Level,
    /// The region code (6 digits for a county or city, 9 for a township).
    #[schema(example = "330106001", pattern = "^[0-9]{6}([0-9]{3})?$")]
    pub region: String,
    /// What command staff call it; shown to volunteers.
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// `drill` runs the same loop in training mode.
    #[serde(default)]
    pub mode: Mode,
    /// Where, as any JSON (at most 2 KiB), shown as given.
    #[serde(default)]
    pub location: Option<Value>,
    /// The same key from the same token raises the same incident once.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub idempotency_key: Option<String>,
    /// A drill may call volunteers already deployed on a live incident.
    #[serde(default)]
    pub include_deployed: bool,
}

impl Check for RaiseIncident {
    fn check(&self, errs: &mut Vec<FieldError>) {
        text_field(errs, "title", &self.title, Lines::One, 1, MAX_TITLE);
        if self.include_deployed && self.mode != Mode::Drill {
            errs.push(FieldError::new(
                "include_deployed",
                "only a drill may call volunteers already deployed on a live incident",
            ));
        }
        if let Some(l) = &self.location {
            if l.to_string().len() > 2048 {
                errs.push(FieldError::new("location", "must be at most 2 KiB of JSON"));
            } else if let Err(why) = json_strings(l, "location") {
                errs.push(why);
            }
        }
        if let Some(k) = &self.idempotency_key
            && (k.is_empty() || k.len() > 200 || text::check(k, Lines::One).is_err())
        {
            errs.push(FieldError::new(
                "idempotency_key",
                "must be a string of 1 to 200 bytes, without control characters",
            ));
        }
    }
}

/// Raise an incident (commander): its plan is chosen, and the call-out starts at once.
/// Answers 201 with the incident, or 200 with the one an idempotency key already raised.
#[utoipa::path(post, path = "/v1/incidents", tag = "incidents", security(("bearer" = [])),
    request_body = RaiseIncident,
    responses(
        (status = 201, description = "raised", body = IncidentView),
        (status = 200, description = "this idempotency key already raised it", body = IncidentView),
        (status = 403, description = "not a commander, or the region is outside the token's scope"),
        (status = 422, description = "unknown kind or region, no plan, or a field is wrong"),
    ))]
pub async fn raise(
    State(st): State<AppState>,
    Commander(caller): Commander,
    Body(b): Body<RaiseIncident>,
) -> Result<Response, ApiError> {
    let (status, view) = raise_by(&st, &caller, b).await?;
    Ok((status, Json(view)).into_response())
}

/// The plan an incident of this kind and level in this region would run: what the raise form
/// shows before it is confirmed (422 naming an unknown kind or region, or no plan).
pub fn plan_for<'a>(
    ctx: &'a Ctx,
    kind: &str,
    level: Level,
    region: &str,
) -> Result<(&'a plan::Plan, RegionCode), ApiError> {
    let (kind, region) = known(ctx, kind, region)?;
    let plan = plan::choose(&ctx.seed.plans, &ctx.seed.regions, &kind, level, &region)
        .ok_or_else(|| no_plan(ctx, &kind, level, &region))?;
    Ok((plan, region))
}

/// Raises an incident for `caller` (a commander, checked by the caller), its body already
/// read and checked: 201 and the incident, or 200 and the one its idempotency key raised.
/// The API's raise and the command centre's form both come here.
pub async fn raise_by(
    st: &AppState,
    caller: &Caller,
    b: RaiseIncident,
) -> Result<(StatusCode, IncidentView), ApiError> {
    let id = match &b.idempotency_key {
        Some(k) => IncidentId::from_idempotency_key(&caller.name, k),
        None => IncidentId::random(),
    };
    raise_as(&st.ctx, caller, id, b, Origin::default()).await
}

/// Raises incident `id` for `caller` (a token, a scheduled drill's trainer or a CAP sender):
/// what every raise comes to, with its audit entry. The same id again answers 200 and the
/// incident it raised.
pub async fn raise_as(
    ctx: &Ctx,
    caller: &Caller,
    id: IncidentId,
    b: RaiseIncident,
    origin: Origin,
) -> Result<(StatusCode, IncidentView), ApiError> {
    let (plan, region) = plan_for(ctx, &b.kind, b.level, &b.region)?;
    if !ctx.seed.regions.contains(&caller.scope, &region) {
        return Err(ApiError::Forbidden(format!(
            "region {region} is outside this token's scope {}",
            caller.scope
        )));
    }
    let now = ctx.clock.now_ms();
    let mut audit = caller.audit(now, "incident.raise", &id.to_string(), region.as_str());
    audit.detail = format!(
        "{} level {} {} `{}`",
        b.kind,
        b.level.get(),
        b.mode.as_str(),
        b.title.trim()
    );
    let new = NewIncident {
        id,
        kind: b.kind.clone(),
        level: b.level.get(),
        region: region.to_string(),
        title: b.title.trim().to_string(),
        mode: b.mode,
        location: b.location,
        include_deployed: b.include_deployed,
        ladder: plan.ladder.clone(),
        plan_id: plan.id.clone(),
        requirements: plan.requirements.clone(),
        raised_by: caller.name.clone(),
        now,
        origin,
        audit,
    };
    let status = match ctx.store.raise(&new).await? {
        Raised::Created => {
            metrics::counter!("muster_incidents_raised_total", "mode" => new.mode.as_str())
                .increment(1);
            tracing::info!(incident = %id, kind = %new.kind, level = new.level, region = %new.region, plan = %plan.id, mode = new.mode.as_str(), "incident raised");
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
    let view = ctx
        .store
        .incident(&id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("incident {id} vanished after raise")))?;
    Ok((status, view))
}

/// The body's kind and region, when this deployment knows both (422 naming each otherwise).
fn known(ctx: &Ctx, kind: &str, region: &str) -> Result<(String, RegionCode), ApiError> {
    let seed = &ctx.seed;
    let mut errs = Vec::new();
    if !seed.plans.iter().any(|p| p.kinds.iter().any(|k| k == kind)) {
        let mut kinds: Vec<&str> = seed
            .plans
            .iter()
            .flat_map(|p| p.kinds.iter().map(String::as_str))
            .collect();
        kinds.sort();
        kinds.dedup();
        errs.push(FieldError::new(
            "kind",
            format!(
                "unknown incident kind `{}`; known: {}",
                kind,
                kinds.join(", ")
            ),
        ));
    }
    let code = seed.regions.lookup(region).map(|r| r.code.clone());
    if code.is_none() {
        errs.push(FieldError::new(
            "region",
            format!("unknown region `{region}`"),
        ));
    }
    match code {
        Some(r) if errs.is_empty() => Ok((kind.to_string(), r)),
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
    ctx: &Ctx,
    kind: &str,
    level: Level,
    region: &crate::domain::region::RegionCode,
) -> ApiError {
    let kind_elsewhere = ctx
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
pub(crate) async fn visible(
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

/// An incident with its progress, per requirement.
#[utoipa::path(get, path = "/v1/incidents/{id}", operation_id = "get_incident", tag = "incidents", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "the incident")),
    responses(
        (status = 200, description = "the incident", body = IncidentView),
        (status = 404, description = "no such incident in this token's scope"),
    ))]
pub async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<IncidentView>, ApiError> {
    let (_, v) = visible(&st, &caller, &id).await?;
    Ok(Json(v))
}

/// Query of `GET /v1/incidents`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Comma-separated statuses (`mustering,filled,short,stood_down,closed`), or `all`;
    /// the active ones by default.
    #[param(
        example = "mustering,short",
        pattern = "^(all|(mustering|filled|short|stood_down|closed)(,(mustering|filled|short|stood_down|closed))*)?$"
    )]
    status: Option<String>,
}

/// Incidents in the token's scope, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentList {
    /// The incidents.
    pub incidents: Vec<IncidentView>,
}

/// Incidents in scope, newest first: the active ones, or those `?status=` names.
#[utoipa::path(get, path = "/v1/incidents", operation_id = "list_incidents", tag = "incidents", security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "incidents in scope", body = IncidentList),
        (status = 422, description = "an unknown status"),
    ))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<IncidentList>, ApiError> {
    // Read exactly as the document's pattern says: " mustering" or a lone space is refused.
    let wanted: Option<Vec<Status>> = match q.status.as_deref() {
        None | Some("") => Some(vec![Status::Mustering, Status::Filled, Status::Short]),
        Some("all") => None,
        Some(s) => {
            let mut out = Vec::new();
            for part in s.split(',') {
                out.push(Status::parse(part).ok_or_else(|| {
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
    let incidents: Vec<_> = all
        .into_iter()
        .filter(|v| caller.sees(&st, &v.region))
        .filter(|v| wanted.as_ref().is_none_or(|w| w.contains(&v.status)))
        .collect();
    Ok(Json(IncidentList { incidents }))
}

/// An incident a commander acts on (a trainer too, on a drill): 403 for anyone else, 404
/// outside the token's scope (the scope check is `visible`'s). Answers its id, view and region.
pub(super) async fn commanded(
    st: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(IncidentId, IncidentView, RegionCode), ApiError> {
    let trainer = caller.role == crate::domain::access::Role::Trainer;
    if !trainer {
        caller.require_commander()?;
    }
    let (iid, v) = visible(st, caller, id).await?;
    if trainer && v.mode != Mode::Drill {
        return Err(ApiError::Forbidden(
            "a trainer acts on drills only; this is a live incident".into(),
        ));
    }
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

/// Stand an incident down (commander; a trainer for a drill): every open callout is closed, volunteers who accepted
/// are told, and every link stops working. Standing down twice is harmless.
#[utoipa::path(post, path = "/v1/incidents/{id}/stand-down", tag = "incidents", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "the incident")),
    responses(
        (status = 200, description = "the incident, stood down", body = IncidentView),
        (status = 403, description = "not a commander (nor a trainer standing down a drill)"),
        (status = 404, description = "no such incident in this token's scope"),
    ))]
pub async fn stand_down(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let iid = stand_down_by(&st, &caller, &id).await?;
    reread(&st, &iid).await
}

/// Stands incident `id` down for `caller` (a commander in scope): what the API and the
/// command centre's board both do.
pub(crate) async fn stand_down_by(
    st: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<IncidentId, ApiError> {
    let (iid, v, _) = commanded(st, caller, id).await?;
    let now = st.ctx.clock.now_ms();
    let audit = caller.audit(now, "incident.stand_down", &iid.to_string(), &v.region);
    match st.ctx.store.stand_down(&iid, now, &audit).await? {
        None => return Err(ApiError::NotFound(format!("no incident `{id}`"))),
        Some(true) => tracing::info!(incident = %iid, by = %caller.name, "stand-down ordered"),
        Some(false) => {}
    }
    Ok(iid)
}
