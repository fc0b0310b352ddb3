//! `POST /v1/acks/{token}`: a volunteer's answer. The token is the credential.

use super::AppState;
use super::error::{ApiError, FieldError};
use super::extract::Query;
use crate::domain::callout::Response as Answer;
use crate::domain::token::AckToken;
use crate::store::callouts::AckOutcome;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

/// `?response=` lets a bare POST to an `accept_url` / `decline_url` work without a body.
#[derive(Debug, Deserialize)]
pub struct AckQuery {
    response: Option<String>,
}

/// How a 409 for an acceptance by a volunteer deployed elsewhere begins (the page shows its
/// own text for it).
pub(super) const ENGAGED: &str = "engaged";

/// The answer of an ack, for the API and the page.
pub(super) struct Acked {
    pub callout_id: String,
    pub state: String,
    pub changed: bool,
}

/// Verifies a token (404 if forged or malformed).
pub(super) fn verify(st: &AppState, token: &str) -> Result<AckToken, ApiError> {
    st.ctx
        .signer
        .verify(token)
        .ok_or_else(|| ApiError::NotFound("unknown or invalid ack token".into()))
}

/// Applies `answer` to the callout a verified token names.
pub(super) async fn apply(
    st: &AppState,
    t: AckToken,
    answer: Answer,
    via: &str,
) -> Result<Acked, ApiError> {
    let now = st.ctx.clock.now_ms();
    let out = st.ctx.store.ack(&t.incident, t.n, answer, now, via).await?;
    let callout_id = format!("{}.{}", t.incident, t.n);
    let label = match &out {
        AckOutcome::Changed { .. } => "changed",
        AckOutcome::Unchanged { .. } => "unchanged",
        AckOutcome::Refused { .. } => "refused",
        AckOutcome::Engaged { .. } => "engaged",
        AckOutcome::Closed { .. } => "closed",
        AckOutcome::Unknown => "unknown",
    };
    metrics::counter!("muster_acks_total", "response" => answer.as_str(), "result" => label)
        .increment(1);
    match out {
        AckOutcome::Unknown => Err(ApiError::NotFound("unknown or invalid ack token".into())),
        AckOutcome::Closed { .. } => Err(ApiError::Gone(
            "this incident has been stood down; no answer is needed".into(),
        )),
        AckOutcome::Refused { state, reason } => Err(ApiError::Conflict(format!(
            "{reason} (the call-out is {state})"
        ))),
        AckOutcome::Engaged { state, elsewhere } => {
            tracing::info!(incident = %t.incident, n = t.n, %elsewhere, "acceptance refused: engaged elsewhere");
            Err(ApiError::Conflict(format!(
                "{ENGAGED}: you are deployed on another live incident ({elsewhere}); this \
                 acceptance was not counted (the call-out is {state})"
            )))
        }
        AckOutcome::Unchanged { state } => Ok(Acked {
            callout_id,
            state,
            changed: false,
        }),
        AckOutcome::Changed { state, promoted } => {
            if let Some(p) = promoted {
                tracing::info!(incident = %t.incident, n = t.n, promoted = p, "standby promoted");
            }
            Ok(Acked {
                callout_id,
                state,
                changed: true,
            })
        }
    }
}

/// `POST /v1/acks/{token}` with `{"response": "accept" | "decline" | "arrived" | "withdraw"}`
/// (or `?response=`).
pub async fn ack(
    State(st): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<AckQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let t = verify(&st, &token)?;
    let body = body.map_err(super::error::body_rejection)?;
    let from_query = q.response;
    let raw = if body.iter().all(|b| b.is_ascii_whitespace()) {
        from_query.ok_or_else(|| {
            ApiError::Malformed(vec![FieldError::new(
                "response",
                "is required: send {\"response\": \"accept\"} (or decline, arrived, withdraw)",
            )])
        })?
    } else {
        let obj = super::error::json_object(&body)?;
        match obj.get("response") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(_) => return Err(ApiError::invalid("response", "must be a string")),
            None => return Err(ApiError::invalid("response", "is required")),
        }
    };
    let answer = Answer::parse(raw.trim()).ok_or_else(|| {
        ApiError::invalid(
            "response",
            format!("`{raw}` is not one of accept, decline, arrived, withdraw"),
        )
    })?;
    let a = apply(&st, t, answer, "web").await?;
    Ok(Json(json!({
        "callout_id": a.callout_id,
        "state": a.state,
        "changed": a.changed,
    }))
    .into_response())
}

/// `POST /v1/acks/{token}/unavailable`: body `{until, from?, reason?}`. A volunteer says,
/// through their call-out link, that they cannot be called until then (this call-out included:
/// answer it with `decline`). The token must still be live.
pub async fn unavailable(
    State(st): State<AppState>,
    Path(token): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let t = verify(&st, &token)?;
    let body = body.map_err(super::error::body_rejection)?;
    let obj = super::error::json_object(&body)?;
    let inc = st.ctx.store.incident(&t.incident).await?;
    let co = st.ctx.store.callout(&t.incident, t.n).await?;
    let (Some(inc), Some(co)) = (inc, co) else {
        return Err(ApiError::NotFound("unknown or invalid ack token".into()));
    };
    if !matches!(inc.status(), Some(s) if s.is_active()) {
        return Err(ApiError::Gone(
            "this incident has been stood down; the link no longer works".into(),
        ));
    }
    let list = super::availability::add_unavailable(&st, co.get("v"), &obj).await?;
    tracing::info!(incident = %t.incident, n = t.n, "volunteer reported unavailability");
    Ok(Json(json!({ "unavailable": list })).into_response())
}
