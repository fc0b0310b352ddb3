//! `POST /v1/cap`: OASIS CAP 1.2 alerts in. A warning system (a configured `[[cap.sender]]`
//! signing with its own secret, Standard Webhooks headers) or a commander's token posts an
//! `<alert>`; muster reads it strictly ([`crate::domain::cap`]) and acts:
//!
//! | status | msgType | does |
//! | --- | --- | --- |
//! | `Actual` | `Alert` | raises a live incident (201), or with `cap.auto_raise = false` a proposal a commander confirms (202) |
//! | `Exercise` | `Alert` | raises a drill (201), on the real channels, marked 【演练】 |
//! | `Actual`, `Exercise` | `Update` | the incident its `<references>` name: a more severe level upgrades it; a lower one is recorded, never a silent downgrade (200) |
//! | `Actual`, `Exercise` | `Cancel` | stands the referenced incident down (200) |
//! | `Test`, `System`, `Draft`; `Ack`, `Error` | any | recorded and answered (200), never raised |
//!
//! The region comes from an `<area><geocode>` holding a GB/T 2260 code, else an `<areaDesc>`
//! that is a region's name; the kind from `<event>` or `<category>` through `[cap.kinds]` over
//! the built-in table; the level from `<severity>`; the title from `<headline>`. A repeat of
//! the same (sender, identifier) answers what the first did (200), and every incident records
//! the alerts that raised and changed it.

use super::AppState;
use super::auth::{Caller, RequestMeta};
use super::cap_proposals::{Proposal, proposal_of};
use super::error::{ApiError, FieldError, body_rejection};
use super::incidents::{RaiseIncident, raise_as, reread, stand_down_by, visible};
use crate::config::{default_kinds, fold};
use crate::domain::access::Role;
use crate::domain::cap::{self, Alert, CapStatus, Info, MsgType};
use crate::domain::incident::{IncidentId, Level, Mode};
use crate::domain::region::RegionCode;
use crate::store::incidents::Origin;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use utoipa::ToSchema;

/// How far a sender's `webhook-timestamp` may be from muster's clock (seconds).
const SIGNATURE_TOLERANCE_S: i64 = 300;

/// What an alert that raised nothing came to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CapAnswer {
    /// `recorded` (Test, System, Draft, Ack, Error: never raised), `proposed` (waiting for a
    /// commander: `proposal`), `withdrawn` (a Cancel of a proposal), `proposal_updated`.
    pub outcome: String,
    /// The alert's `<identifier>`.
    pub identifier: String,
    /// Its `<status>` and `<msgType>`.
    pub status: String,
    #[serde(rename = "msgType")]
    pub msg_type: String,
    /// What muster did, in words.
    pub detail: String,
    /// The proposal, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposal: Option<Proposal>,
}

/// The caller of `POST /v1/cap`: a commander's token, or a configured sender's signature.
fn authenticate(
    st: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    request: RequestMeta,
) -> Result<Caller, ApiError> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let token = auth
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or(ApiError::Unauthorized)?;
        let def = st
            .tokens
            .get(&super::auth::token_hash(token))
            .ok_or(ApiError::Unauthorized)?;
        let caller = Caller {
            name: def.name.clone(),
            role: def.role,
            scope: def.scope.clone(),
            request,
        };
        caller.require_commander()?;
        return Ok(caller);
    }
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    let (Some(id), Some(ts), Some(sig)) = (
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
    ) else {
        return Err(ApiError::Unauthorized);
    };
    let ts: i64 = ts.parse().map_err(|_| ApiError::Unauthorized)?;
    let now = crate::clock::wall_ms() / 1000;
    let named = h("cap-sender");
    let sender = st.ctx.config.cap.sender.iter().find(|s| {
        named.is_none_or(|n| n == s.name)
            && crate::notify::webhook::verify(
                &crate::notify::webhook::decode_secret(&s.secret),
                id,
                ts,
                body,
                sig,
            )
    });
    match sender {
        Some(s) if (now - ts).abs() <= SIGNATURE_TOLERANCE_S => Ok(Caller {
            name: s.name.clone(),
            role: Role::Commander,
            scope: RegionCode::parse(&s.scope)
                .map_err(|e| ApiError::Internal(format!("cap.sender scope: {e}")))?,
            request,
        }),
        Some(s) => {
            tracing::warn!(sender = %s.name, skew_s = now - ts, "CAP alert refused: its timestamp is too far from now");
            Err(ApiError::BadSignature(
                "the webhook-timestamp is more than 5 minutes from now".into(),
            ))
        }
        None => {
            tracing::warn!(
                bytes = body.len(),
                "CAP alert refused: no configured sender's signature matches"
            );
            Err(ApiError::BadSignature(
                "no configured CAP sender's signature matches".into(),
            ))
        }
    }
}

/// Fails with 415 unless the content type is XML (`application/cap+xml`, `application/xml`,
/// `text/xml`, any `…+xml`).
fn require_xml(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence.ends_with("/xml") || essence.ends_with("+xml") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "`{ct}` is not read here: send the CAP alert as XML, with `Content-Type: application/cap+xml`"
        )))
    }
}

/// Take in a CAP 1.2 alert (a commander's token, or a configured CAP sender's Standard
/// Webhooks signature). 201 and the incident it raised; 200 and the incident for a repeat,
/// an Update or a Cancel; 200 and what was done for an alert that raises nothing (Test,
/// System, Draft); 202 for a proposal waiting for a commander.
#[utoipa::path(post, path = "/v1/cap", operation_id = "ingest_cap_alert", tag = "cap", security(("bearer" = [])),
    request_body(content = String, content_type = "application/cap+xml", description = "an OASIS CAP 1.2 `<alert>`, at most 1 MiB"),
    responses(
        (status = 201, description = "raised", body = crate::store::incidents::IncidentView),
        (status = 200, description = "a repeat, an Update or a Cancel (the incident), or an alert recorded and never raised", body = CapAnswer),
        (status = 202, description = "an `Actual` alert waiting for a commander (`cap.auto_raise = false`)", body = CapAnswer),
        (status = 400, description = "malformed XML, a DTD or entity declaration, a missing required element: the element is named"),
        (status = 401, description = "no token and no valid sender signature"),
        (status = 403, description = "not a commander, or the region is outside the caller's scope"),
        (status = 413, description = "over 1 MiB"),
        (status = 415, description = "not XML"),
        (status = 422, description = "an unknown region, kind or severity, no plan, or a reference to no known alert"),
    ))]
pub async fn ingest(State(st): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    let meta = req
        .extensions()
        .get::<RequestMeta>()
        .cloned()
        .unwrap_or_default();
    require_xml(&headers)?;
    let body = Bytes::from_request(req, &())
        .await
        .map_err(body_rejection)?;
    let caller = authenticate(&st, &headers, &body, meta)?;
    let alert = cap::parse(&body).map_err(|e| {
        if e.too_large {
            ApiError::TooLarge
        } else {
            ApiError::Malformed(vec![FieldError::new(e.element, e.reason)])
        }
    })?;
    tracing::info!(sender = %alert.sender, identifier = %alert.identifier, status = alert.status.as_str(), msg_type = alert.msg_type.as_str(), by = %caller.name, "CAP alert received");
    metrics::counter!("muster_cap_alerts_total", "status" => alert.status.as_str(), "msg_type" => alert.msg_type.as_str()).increment(1);
    if let Some(seen) = st
        .ctx
        .store
        .cap_seen(&alert.sender, &alert.identifier)
        .await?
    {
        return repeat(&st, &caller, &seen).await;
    }
    let (status, outcome) = act(&st, &caller, &alert).await?;
    let record = match &outcome {
        Outcome::Incident(id) => json!({"incident": id.to_string()}),
        Outcome::Answer(a) => json!({"answer": a}),
    };
    // The incident as it now is: its region scopes the audit entry, and it is the answer.
    let view = match &outcome {
        Outcome::Incident(id) => Some(
            st.ctx
                .store
                .incident(id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no incident `{id}`")))?,
        ),
        Outcome::Answer(_) => None,
    };
    let (target, region, result) = match (&outcome, &view) {
        (_, Some(v)) => (v.id.clone(), v.region.clone(), status.as_str().to_string()),
        (Outcome::Answer(a), None) => (
            String::new(),
            a.proposal
                .as_ref()
                .map(|p| p.region.clone())
                .unwrap_or_default(),
            a.outcome.clone(),
        ),
        (Outcome::Incident(_), None) => unreachable!("read above"),
    };
    let mut audit = caller.audit(st.ctx.clock.now_ms(), "cap.alert", &target, &region);
    audit.detail = format!(
        "{} {} {} → {result}",
        alert.reference(),
        alert.status.as_str(),
        alert.msg_type.as_str(),
    );
    st.ctx
        .store
        .cap_record(
            &alert.sender,
            &alert.identifier,
            &record.to_string(),
            &audit,
        )
        .await?;
    match (outcome, view) {
        (_, Some(v)) => Ok((status, Json(v)).into_response()),
        (Outcome::Answer(a), None) => Ok((status, Json(a)).into_response()),
        (Outcome::Incident(_), None) => unreachable!("read above"),
    }
}

/// What an alert came to.
enum Outcome {
    Incident(IncidentId),
    Answer(Box<CapAnswer>),
}

/// A repeat of an alert handled before: the same answer, 200.
async fn repeat(st: &AppState, caller: &Caller, seen: &str) -> Result<Response, ApiError> {
    let v: serde_json::Value =
        serde_json::from_str(seen).map_err(|e| ApiError::Internal(format!("cap record: {e}")))?;
    if let Some(id) = v["incident"].as_str() {
        let (iid, _) = visible(st, caller, id).await?;
        return reread(st, &iid).await;
    }
    let a: CapAnswer = serde_json::from_value(v["answer"].clone())
        .map_err(|e| ApiError::Internal(format!("cap record: {e}")))?;
    Ok((StatusCode::OK, Json(a)).into_response())
}

fn answer(alert: &Alert, outcome: &str, detail: String, proposal: Option<Proposal>) -> Outcome {
    Outcome::Answer(Box::new(CapAnswer {
        outcome: outcome.into(),
        identifier: alert.identifier.clone(),
        status: alert.status.as_str().into(),
        msg_type: alert.msg_type.as_str().into(),
        detail,
        proposal,
    }))
}

async fn act(
    st: &AppState,
    caller: &Caller,
    alert: &Alert,
) -> Result<(StatusCode, Outcome), ApiError> {
    let live_or_drill = matches!(alert.status, CapStatus::Actual | CapStatus::Exercise);
    match (live_or_drill, alert.msg_type) {
        (false, _) | (_, MsgType::Ack | MsgType::Error) => Ok((
            StatusCode::OK,
            answer(
                alert,
                "recorded",
                format!(
                    "a {} {} is recorded and never raises anything",
                    alert.status.as_str(),
                    alert.msg_type.as_str()
                ),
                None,
            ),
        )),
        (true, MsgType::Alert) => raise(st, caller, alert).await,
        (true, MsgType::Update | MsgType::Cancel) => change(st, caller, alert).await,
    }
}

#[path = "cap_mapping.rs"]
mod mapping;
use mapping::{body_of, in_cap_terms};

fn cap_id(alert: &Alert) -> IncidentId {
    IncidentId::from_idempotency_key("cap", &format!("{}|{}", alert.sender, alert.identifier))
}

async fn raise(
    st: &AppState,
    caller: &Caller,
    alert: &Alert,
) -> Result<(StatusCode, Outcome), ApiError> {
    let body = body_of(st, alert)?;
    let id = cap_id(alert);
    let reference = alert.reference();
    if alert.status == CapStatus::Actual && !st.ctx.config.cap.auto_raise {
        // Checked now, so a proposal a commander is shown could be raised.
        let (_, region) = super::incidents::plan_for(&st.ctx, &body.kind, body.level, &body.region)
            .map_err(in_cap_terms)?;
        caller.require_scope(st, &region)?;
        let now = st.ctx.clock.now_ms();
        st.ctx
            .store
            .cap_propose(
                &id.to_string(),
                now,
                &[
                    ("id", id.to_string()),
                    ("status", "pending".into()),
                    ("kind", body.kind.clone()),
                    ("level", body.level.get().to_string()),
                    ("region", body.region.clone()),
                    ("title", body.title.clone()),
                    ("mode", body.mode.as_str().into()),
                    ("reference", reference.clone()),
                    ("received_from", caller.name.clone()),
                    ("received_at", now.to_string()),
                ],
            )
            .await?;
        let p = proposal_of(st, &id.to_string()).await?;
        tracing::info!(proposal = %id, "CAP alert waits for a commander (cap.auto_raise = false)");
        return Ok((
            StatusCode::ACCEPTED,
            answer(
                alert,
                "proposed",
                "cap.auto_raise is off: a commander confirms or rejects it in the command centre or at /v1/cap/proposals/{id}/confirm".into(),
                p,
            ),
        ));
    }
    let origin = Origin {
        channels: (body.mode == Mode::Drill).then(|| "real".to_string()),
        cap: Some(reference),
        ..Default::default()
    };
    let (status, v) = raise_as(&st.ctx, caller, id, body, origin)
        .await
        .map_err(in_cap_terms)?;
    Ok((status, Outcome::Incident(parse_id(&v.id)?)))
}

pub(super) fn parse_id(id: &str) -> Result<IncidentId, ApiError> {
    IncidentId::parse(id).ok_or_else(|| ApiError::Internal(format!("bad incident id {id}")))
}

/// What a reference points at.
enum Target {
    Incident(IncidentId),
    Proposal(String),
}

/// The first reference muster knows: the incident (or proposal) its alert came to.
async fn resolve(st: &AppState, alert: &Alert) -> Result<Target, ApiError> {
    for r in &alert.references {
        let Some(seen) = st.ctx.store.cap_seen(&r.sender, &r.identifier).await? else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&seen).unwrap_or_default();
        if let Some(id) = v["incident"].as_str().and_then(IncidentId::parse) {
            return Ok(Target::Incident(id));
        }
        if let Some(p) = v["answer"]["proposal"]["id"].as_str() {
            return Ok(Target::Proposal(p.to_string()));
        }
    }
    Err(ApiError::invalid(
        "alert.references",
        format!(
            "no alert muster took in is named by {}",
            alert
                .references
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ),
    ))
}

/// An Update or a Cancel of the alert its references name.
async fn change(
    st: &AppState,
    caller: &Caller,
    alert: &Alert,
) -> Result<(StatusCode, Outcome), ApiError> {
    let now = st.ctx.clock.now_ms();
    let level = alert.info.as_ref().and_then(|i| cap::level_of(&i.severity));
    let iid = match resolve(st, alert).await? {
        Target::Incident(iid) => iid,
        Target::Proposal(pid) => return change_proposal(st, caller, alert, &pid, level).await,
    };
    let (_, v) = visible(st, caller, &iid.to_string()).await?;
    let detail = match alert.msg_type {
        MsgType::Cancel => {
            stand_down_by(st, caller, &iid.to_string()).await?;
            format!("{} Cancel: stood down", alert.identifier)
        }
        _ => match level {
            Some(l) if l < v.level && v.status.is_active() => {
                let to = Level::new(i64::from(l))
                    .map_err(|e| ApiError::invalid("alert.info.severity", e))?;
                super::level::upgrade_by(st, caller, &iid.to_string(), to)
                    .await
                    .map_err(in_cap_terms)?;
                format!("{} Update: upgraded to level {l}", alert.identifier)
            }
            Some(l) if l > v.level => format!(
                "{} Update: severity {} (level {l}) recorded; the incident stays at level {} (never a silent downgrade)",
                alert.identifier,
                alert.info.as_ref().map_or("", |i| i.severity.as_str()),
                v.level
            ),
            _ => format!("{} Update: recorded, level unchanged", alert.identifier),
        },
    };
    st.ctx
        .store
        .cap_note(&iid, &alert.reference(), now, &detail)
        .await?;
    tracing::info!(incident = %iid, %detail, "CAP alert applied");
    Ok((StatusCode::OK, Outcome::Incident(iid)))
}

/// An Update or Cancel of an alert still waiting as a proposal.
async fn change_proposal(
    st: &AppState,
    caller: &Caller,
    alert: &Alert,
    pid: &str,
    level: Option<u8>,
) -> Result<(StatusCode, Outcome), ApiError> {
    let p = proposal_of(st, pid)
        .await?
        .ok_or_else(|| ApiError::invalid("alert.references", "its proposal is gone"))?;
    let now = st.ctx.clock.now_ms();
    if p.status == "confirmed" {
        // Confirmed meanwhile: the Update or Cancel applies to its incident.
        return Err(ApiError::Conflict(format!(
            "proposal {pid} was confirmed; send the {} again to act on its incident",
            alert.msg_type.as_str()
        )));
    }
    let (outcome, detail) = if alert.msg_type == MsgType::Cancel {
        st.ctx
            .store
            .cap_decide(
                pid,
                "withdrawn",
                now,
                &caller.audit(now, "cap.withdraw", pid, &p.region),
            )
            .await?;
        (
            "withdrawn",
            format!("proposal {pid} withdrawn by the sender's Cancel"),
        )
    } else {
        if let Some(l) = level.filter(|l| *l < p.level) {
            st.ctx
                .store
                .cap_proposal_set(pid, "level", &l.to_string())
                .await?;
        }
        ("proposal_updated", format!("proposal {pid} updated"))
    };
    let p = proposal_of(st, pid).await?;
    Ok((StatusCode::OK, answer(alert, outcome, detail, p)))
}
