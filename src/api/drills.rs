//! `/v1/drills`: scheduled drills. A trainer (or a commander) schedules a drill now or at a
//! time, on simulated channels (the default: every message goes to the simulator, `[drill]
//! simulator_url`) or on the real ones, with objectives for its report. The schedule lives in
//! Redis; whichever instance's scheduler sees it due first claims it (one script) and raises
//! it, so it fires once however many instances run ([`fire_due`]).

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, FieldError};
use super::extract::{Body, Check, text_field};
use super::incidents::{RaiseIncident, plan_for, raise_as};
use crate::clock::{Millis, rfc3339};
use crate::domain::incident::{IncidentId, Level, Mode, Status};
use crate::domain::region::RegionCode;
use crate::domain::text::{self, Lines};
use crate::engine::Ctx;
use crate::store::StoreError;
use crate::store::drills::{NewDrill, Scheduled};
use crate::store::incidents::Origin;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;

/// How long a claimed drill may go unrecorded before another instance takes it again (wall
/// time): its instance died between claiming and raising.
pub const LEASE_MS: i64 = 30_000;

/// How far in the past `at` may be (clock skew between a trainer's machine and muster).
const PAST_SLACK_MS: i64 = 60_000;

/// The longest objectives accepted (characters).
const MAX_OBJECTIVES: usize = 2000;

/// Where a drill's messages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channels {
    /// Every message to the simulator (`[drill] simulator_url`), nothing to a real receiver.
    #[default]
    Simulated,
    /// The real channels, every message marked 【演练】/[DRILL].
    Real,
}

impl Channels {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channels::Simulated => "simulated",
            Channels::Real => "real",
        }
    }
}

/// Body of `POST /v1/drills`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDrill {
    /// The kind of incident drilled; a contingency plan must cover it.
    #[schema(example = "flood", min_length = 1)]
    pub kind: String,
    /// 1 = 特别重大 (most severe) … 4 = 一般.
    pub level: Level,
    /// The region code.
    #[schema(example = "990101001", pattern = "^[0-9]{6}([0-9]{3})?$")]
    pub region: String,
    /// What the drill is called; volunteers see it after 【演练】.
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// When it starts (RFC 3339); now when absent.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub at: Option<String>,
    /// `simulated` (default) or `real`.
    #[serde(default)]
    pub channels: Channels,
    /// What the drill is meant to show, for its report.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub objectives: Option<String>,
    /// Where, as any JSON (at most 2 KiB).
    #[serde(default)]
    pub location: Option<serde_json::Value>,
    /// May call volunteers already deployed on a live incident (a live callout still wins).
    #[serde(default)]
    pub include_deployed: bool,
    /// The same key from the same token schedules the same drill once.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub idempotency_key: Option<String>,
}

impl Check for ScheduleDrill {
    fn check(&self, errs: &mut Vec<FieldError>) {
        self.as_raise().check(errs);
        if let Some(o) = &self.objectives {
            text_field(errs, "objectives", o, Lines::Many, 0, MAX_OBJECTIVES);
        }
        if let Some(at) = &self.at
            && at.parse::<jiff::Timestamp>().is_err()
        {
            errs.push(FieldError::new(
                "at",
                "must be an RFC 3339 time with an offset, e.g. 2026-12-01T09:30:00+08:00",
            ));
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

impl ScheduleDrill {
    fn as_raise(&self) -> RaiseIncident {
        RaiseIncident {
            kind: self.kind.clone(),
            level: self.level,
            region: self.region.clone(),
            title: self.title.clone(),
            mode: Mode::Drill,
            location: self.location.clone(),
            idempotency_key: None,
            include_deployed: self.include_deployed,
        }
    }
}

/// A drill, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DrillView {
    /// Id.
    #[schema(format = Uuid)]
    pub id: String,
    /// `scheduled`, `starting`, `running`, `finished` (its incident stood down), `cancelled`
    /// or `failed` (it could not be raised: see `error`).
    pub status: String,
    /// Kind.
    pub kind: String,
    /// Level 1–4.
    pub level: u8,
    /// Region code.
    pub region: String,
    /// Title.
    pub title: String,
    /// When it starts or started (RFC 3339).
    #[schema(format = DateTime)]
    pub at: String,
    /// `simulated` or `real`.
    pub channels: Channels,
    /// Objectives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objectives: Option<String>,
    /// The incident it raises (the same id before and after it fires).
    #[schema(format = Uuid)]
    pub incident_id: String,
    /// That incident's status, once raised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident_status: Option<Status>,
    /// Who scheduled it.
    pub created_by: String,
    /// When (RFC 3339).
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it was raised, or found impossible to raise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    /// Who cancelled it, and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub cancelled_at: Option<String>,
    /// Why it could not be raised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Drills in scope.
#[derive(Debug, Serialize, ToSchema)]
pub struct DrillList {
    /// Latest first.
    pub drills: Vec<DrillView>,
}

/// The incident drill `id` raises.
pub fn incident_of(drill: &str) -> IncidentId {
    IncidentId::from_idempotency_key("drill", drill)
}

fn get_ms(m: &HashMap<String, String>, k: &str) -> Option<String> {
    m.get(k).and_then(|v| v.parse::<Millis>().ok()).map(rfc3339)
}

/// A stored drill as the API shows it, with its incident's status.
async fn view(ctx: &Ctx, m: HashMap<String, String>) -> Result<DrillView, ApiError> {
    let f = |k: &str| m.get(k).cloned().unwrap_or_default();
    let id = f("id");
    let iid = incident_of(&id);
    let mut status = f("status");
    let incident_status = if status == "running" {
        ctx.store
            .incident_field(&iid, "status")
            .await?
            .and_then(|s| Status::parse(&s))
    } else {
        None
    };
    if matches!(incident_status, Some(s) if !s.is_active()) {
        status = "finished".into();
    }
    Ok(DrillView {
        status,
        kind: f("kind"),
        level: f("level").parse().unwrap_or(4),
        region: f("region"),
        title: f("title"),
        at: get_ms(&m, "at").unwrap_or_default(),
        channels: if f("channels") == "real" {
            Channels::Real
        } else {
            Channels::Simulated
        },
        objectives: m.get("objectives").filter(|s| !s.is_empty()).cloned(),
        incident_id: iid.to_string(),
        incident_status,
        created_by: f("created_by"),
        created_at: get_ms(&m, "created_at").unwrap_or_default(),
        started_at: get_ms(&m, "started_at"),
        cancelled_by: m.get("cancelled_by").cloned(),
        cancelled_at: get_ms(&m, "cancelled_at"),
        error: m.get("error").cloned(),
        id,
    })
}

/// Fails with 403 unless the role may run drills.
fn require_drill(caller: &Caller) -> Result<(), ApiError> {
    if caller.role.may_drill() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "this needs a trainer (or commander, or admin) token".into(),
        ))
    }
}

/// Schedule a drill (trainer, commander or admin; the region in scope), now or at `at`, on
/// simulated channels (default) or the real ones. A drill due now is raised before the answer.
#[utoipa::path(post, path = "/v1/drills", operation_id = "schedule_drill", tag = "drills", security(("bearer" = [])),
    request_body = ScheduleDrill,
    responses(
        (status = 201, description = "scheduled (or raised, when due now)", body = DrillView),
        (status = 200, description = "this idempotency key already scheduled it", body = DrillView),
        (status = 403, description = "not a trainer, or the region is outside the token's scope"),
        (status = 422, description = "unknown kind or region, no plan, `at` in the past, simulated channels without a simulator, or a field is wrong"),
    ))]
pub async fn schedule(
    State(st): State<AppState>,
    caller: Caller,
    Body(b): Body<ScheduleDrill>,
) -> Result<Response, ApiError> {
    require_drill(&caller)?;
    let (status, v) = schedule_by(&st, &caller, b).await?;
    Ok((status, Json(v)).into_response())
}

/// Schedules drill `b` for `caller` (a drilling role, checked by the caller): the API's and
/// the command centre's way in.
pub async fn schedule_by(
    st: &AppState,
    caller: &Caller,
    b: ScheduleDrill,
) -> Result<(StatusCode, DrillView), ApiError> {
    let ctx = &st.ctx;
    let (_, region) = plan_for(ctx, &b.kind, b.level, &b.region)?;
    caller.require_scope(st, &region)?;
    let now = ctx.clock.now_ms();
    let at = match &b.at {
        None => now,
        Some(t) => t
            .parse::<jiff::Timestamp>()
            .map(|t| t.as_millisecond())
            .map_err(|_| ApiError::invalid("at", "must be an RFC 3339 time"))?,
    };
    if at < now - PAST_SLACK_MS {
        return Err(ApiError::invalid(
            "at",
            format!(
                "{} is in the past; leave `at` out to start now",
                rfc3339(at)
            ),
        ));
    }
    if b.channels == Channels::Simulated && ctx.drill_sms.is_none() {
        return Err(ApiError::invalid(
            "channels",
            "this deployment has no drill simulator (`[drill] simulator_url`); schedule with \
             channels `real`, or configure the simulator",
        ));
    }
    let id = match &b.idempotency_key {
        Some(k) => uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("drill\u{0}{}\u{0}{k}", caller.name).as_bytes(),
        ),
        None => uuid::Uuid::new_v4(),
    }
    .to_string();
    let mut fields = vec![
        ("id", id.clone()),
        ("kind", b.kind.clone()),
        ("level", b.level.get().to_string()),
        ("region", region.to_string()),
        ("title", b.title.trim().to_string()),
        ("at", at.to_string()),
        ("channels", b.channels.as_str().to_string()),
        ("status", "scheduled".to_string()),
        ("created_by", caller.name.clone()),
        ("created_at", now.to_string()),
        (
            "include_deployed",
            if b.include_deployed { "1" } else { "0" }.to_string(),
        ),
    ];
    if let Some(o) = b
        .objectives
        .as_ref()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
    {
        fields.push(("objectives", o.to_string()));
    }
    if let Some(l) = &b.location {
        fields.push(("location", l.to_string()));
    }
    let d = NewDrill {
        fingerprint: format!(
            "{}|{}|{}|{}|{}|{}",
            b.kind,
            b.level.get(),
            region,
            b.title.trim(),
            b.at.as_deref().unwrap_or(""),
            b.channels.as_str()
        ),
        id: id.clone(),
        at,
        fields,
        claim_now: at <= now,
        audit: {
            let mut a = caller.audit(now, "drill.schedule", &id, region.as_str());
            a.detail = format!(
                "{} level {} at {} on {} channels `{}`",
                b.kind,
                b.level.get(),
                rfc3339(at),
                b.channels.as_str(),
                b.title.trim()
            );
            a
        },
    };
    let status = match ctx.store.drill_put(&d).await? {
        Scheduled::Created => {
            tracing::info!(drill = %id, kind = %b.kind, level = b.level.get(), region = %region, at = %rfc3339(at), channels = b.channels.as_str(), by = %caller.name, "drill scheduled");
            if d.claim_now {
                fire(ctx, &id, now).await?;
            }
            StatusCode::CREATED
        }
        Scheduled::Existing => StatusCode::OK,
        Scheduled::KeyReused => {
            return Err(ApiError::invalid(
                "idempotency_key",
                "this key was already used to schedule a different drill",
            ));
        }
    };
    let m = ctx
        .store
        .drill(&id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("drill {id} vanished")))?;
    Ok((status, view(ctx, m).await?))
}

/// Drills in the token's scope: scheduled, running and past, latest first.
#[utoipa::path(get, path = "/v1/drills", operation_id = "list_drills", tag = "drills", security(("bearer" = [])),
    responses((status = 200, description = "drills in scope", body = DrillList)))]
pub async fn list(State(st): State<AppState>, caller: Caller) -> Result<Json<DrillList>, ApiError> {
    Ok(Json(DrillList {
        drills: in_scope(&st, &caller).await?,
    }))
}

/// The drills `caller` sees, latest first (the API's list and the command centre's page).
pub async fn in_scope(st: &AppState, caller: &Caller) -> Result<Vec<DrillView>, ApiError> {
    let mut out = Vec::new();
    for m in st.ctx.store.drills(1000).await? {
        if caller.sees(st, m.get("region").map_or("", String::as_str)) {
            out.push(view(&st.ctx, m).await?);
        }
    }
    Ok(out)
}

/// One drill, or 404 (also outside the token's scope).
async fn visible(st: &AppState, caller: &Caller, id: &str) -> Result<DrillView, ApiError> {
    let m = match uuid::Uuid::parse_str(id) {
        Ok(_) => st.ctx.store.drill(id).await?,
        Err(_) => None,
    };
    match m {
        Some(m) if caller.sees(st, m.get("region").map_or("", String::as_str)) => {
            view(&st.ctx, m).await
        }
        _ => Err(ApiError::NotFound(format!(
            "no drill `{id}` in this token's scope"
        ))),
    }
}

/// One drill.
#[utoipa::path(get, path = "/v1/drills/{id}", operation_id = "get_drill", tag = "drills", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "the drill")),
    responses(
        (status = 200, description = "the drill", body = DrillView),
        (status = 404, description = "no such drill in this token's scope"),
    ))]
pub async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DrillView>, ApiError> {
    Ok(Json(visible(&st, &caller, &id).await?))
}

/// Cancel a scheduled drill (trainer, commander or admin). A drill that has started is stood
/// down like any incident instead (409).
#[utoipa::path(post, path = "/v1/drills/{id}/cancel", operation_id = "cancel_drill", tag = "drills", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "the drill")),
    responses(
        (status = 200, description = "the drill, cancelled", body = DrillView),
        (status = 403, description = "not a trainer"),
        (status = 404, description = "no such drill in this token's scope"),
        (status = 409, description = "it has started, failed or was cancelled before"),
    ))]
pub async fn cancel(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DrillView>, ApiError> {
    require_drill(&caller)?;
    Ok(Json(cancel_by(&st, &caller, &id).await?))
}

/// Cancels drill `id` for `caller` (a drilling role, checked by the caller).
pub async fn cancel_by(st: &AppState, caller: &Caller, id: &str) -> Result<DrillView, ApiError> {
    let d = visible(st, caller, id).await?;
    let now = st.ctx.clock.now_ms();
    let audit = caller.audit(now, "drill.cancel", id, &d.region);
    let why = match st.ctx.store.drill_cancel(id, now, &audit).await?.as_str() {
        "ok" => {
            tracing::info!(drill = %id, by = %caller.name, "drill cancelled");
            return visible(st, caller, id).await;
        }
        "" => return Err(ApiError::NotFound(format!("no drill `{id}`"))),
        "starting" | "running" => "has started: stand its incident down instead",
        "failed" => "could not be raised; there is nothing to cancel",
        _ => "was cancelled before",
    };
    Err(ApiError::Conflict(format!("drill {id} {why}")))
}

#[path = "drills_fire.rs"]
mod firing;
use firing::fire;
pub use firing::fire_due;
