//! `POST /v1/acks/{token}`: a volunteer's answer. The token is the credential.

use super::AppState;
use super::availability::{UnavailableBody, UnavailableList};
use super::error::{ApiError, FieldError};
use super::extract::{Body, Check, Query, require_json, typed};
use crate::domain::callout::{CalloutState, Response as Answer};
use crate::domain::token::AckToken;
use crate::store::callouts::AckOutcome;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `?response=` lets a bare POST to an `accept_url` / `decline_url` work without a body.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AckQuery {
    /// The answer, when there is no body.
    response: Option<Answer>,
}

/// Body of `POST /v1/acks/{token}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    /// The answer.
    pub response: Answer,
}

impl Check for AckBody {
    fn check(&self, _: &mut Vec<FieldError>) {}
}

/// What an answer did.
#[derive(Debug, Serialize, ToSchema)]
pub struct AckResult {
    /// `INCIDENT.N`.
    pub callout_id: String,
    /// The callout's state now.
    pub state: Option<CalloutState>,
    /// Whether this answer changed it (an answer given twice does not).
    pub changed: bool,
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

/// A volunteer's answer: `accept`, `decline`, `arrived` or `withdraw`, in the body or as
/// `?response=` on a bare POST. The token in the URL is the credential.
#[utoipa::path(post, path = "/v1/acks/{token}", tag = "volunteer links",
    params(("token" = String, Path, description = "the call-out's token"), AckQuery),
    request_body(content = Option<AckBody>, description = "optional when `?response=` is given"),
    responses(
        (status = 200, description = "what the answer did", body = AckResult),
        (status = 404, description = "an unknown or forged token"),
        (status = 409, description = "the answer is not possible now (engaged elsewhere, or not from this state)"),
        (status = 410, description = "the incident was stood down"),
    ))]
pub async fn ack(
    State(st): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<AckQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<AckResult>, ApiError> {
    let t = verify(&st, &token)?;
    let body = body.map_err(super::error::body_rejection)?;
    // No body (or JSON `null`, as the document allows): the answer is in the query.
    let text = std::str::from_utf8(&body).map(str::trim).unwrap_or("-");
    let answer = if text.is_empty() || text == "null" {
        q.response.ok_or_else(|| {
            ApiError::Malformed(vec![FieldError::new(
                "response",
                "is required: send {\"response\": \"accept\"} (or decline, arrived, withdraw)",
            )])
        })?
    } else {
        require_json(headers.get(CONTENT_TYPE))?;
        typed::<AckBody>(&body)?.response
    };
    let a = apply(&st, t, answer, "web").await?;
    Ok(Json(AckResult {
        callout_id: a.callout_id,
        state: CalloutState::parse(&a.state),
        changed: a.changed,
    }))
}

/// A volunteer says, through their call-out link, that they cannot be called until `until`
/// (this call-out included: answer it with `decline`). The link must still be live.
#[utoipa::path(post, path = "/v1/acks/{token}/unavailable", operation_id = "report_unavailable_by_link", tag = "volunteer links",
    params(("token" = String, Path, description = "the call-out's token")),
    request_body = UnavailableBody,
    responses(
        (status = 200, description = "their unavailability now", body = UnavailableList),
        (status = 404, description = "an unknown or forged token"),
        (status = 410, description = "the incident was stood down"),
        (status = 422, description = "a time is not RFC 3339, in the past, or over a year"),
    ))]
pub async fn unavailable(
    State(st): State<AppState>,
    Path(token): Path<String>,
    Body(b): Body<UnavailableBody>,
) -> Result<Json<UnavailableList>, ApiError> {
    let t = verify(&st, &token)?;
    let inc = st.ctx.store.incident(&t.incident).await?;
    let co = st.ctx.store.callout(&t.incident, t.n).await?;
    let (Some(inc), Some(co)) = (inc, co) else {
        return Err(ApiError::NotFound("unknown or invalid ack token".into()));
    };
    if !inc.status.is_active() {
        return Err(ApiError::Gone(
            "this incident has been stood down; the link no longer works".into(),
        ));
    }
    let unavailable = super::availability::add_unavailable(&st, co.get("v"), b, None).await?;
    tracing::info!(incident = %t.incident, n = t.n, "volunteer reported unavailability");
    Ok(Json(UnavailableList {
        id: None,
        unavailable,
    }))
}
