//! SMS callbacks from the gateways: `POST /v1/sms/inbound/{gateway}` (volunteers' replies) and
//! `POST /v1/sms/status/{gateway}` (delivery receipts). Each is signature-checked per gateway
//! (a forged or unsigned callback is 401 and logged).
//!
//! A reply is parsed with the grammar of [`crate::domain::sms_reply`] and acts on the number's
//! callout with that reply code, or, without a code, on its only open callout; with several
//! open it asks which. A duplicate callback (same gateway message id) changes nothing. Every
//! reply that changes something is confirmed by SMS; an unknown number gets no answer; a
//! reply to a stood-down incident gets a polite "already over"; `STOP`/`退订` opts the number
//! out. Answers are enqueued as SMS notes (sent by the notifier, retried, crash-safe).

use super::AppState;
use super::error::ApiError;
use crate::domain::callout::CalloutState;
use crate::domain::callout::Response as Answer;
use crate::domain::sms_reply::{self, Action, Reply};
use crate::domain::volunteer::mask_phone;
use crate::notify::sms::Gateway;
use crate::store::callouts::AckOutcome;
use crate::store::sms::parse_ref;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde_json::json;
use std::sync::Arc;

/// Gateway `name`, once the callback is authenticated by it: signed over the full URL it was
/// posted to (`uri`: path and query, as Twilio signs it), or, for a gateway that cannot sign
/// (Aliyun), carrying its secret in the path (`key`). 404 for an unknown gateway, 401 (logged,
/// naming the gateway) otherwise.
fn verified_gateway(
    st: &AppState,
    name: &str,
    uri: &Uri,
    key: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Arc<Gateway>, ApiError> {
    let gw = st
        .ctx
        .gateway(name)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("no SMS gateway `{name}`")))?;
    let path_and_query = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let url = format!("{}{path_and_query}", st.ctx.public_url);
    if gw.verify(&url, headers, body, key) {
        return Ok(gw);
    }
    metrics::counter!("muster_sms_callbacks_rejected_total", "gateway" => name.to_string())
        .increment(1);
    tracing::warn!(
        gateway = name,
        path = uri.path().split('/').take(5).collect::<Vec<_>>().join("/"),
        bytes = body.len(),
        "SMS callback refused: missing or invalid signature"
    );
    Err(ApiError::BadSignature(match key {
        Some(_) => format!("the secret in this callback URL is not gateway `{name}`'s"),
        None => format!(
            "the callback is not signed by gateway `{name}` (its signature over {} and the body does not verify)",
            url.split('?').next().unwrap_or("")
        ),
    }))
}

/// Delivery receipts from a gateway, signed per gateway (generic: JSON `id`, `status`;
/// Twilio: form `MessageSid`, `MessageStatus`). Answers how many changed a callout.
#[utoipa::path(post, path = "/v1/sms/status/{gateway}", tag = "gateways",
    params(("gateway" = String, Path, description = "a configured SMS gateway")),
    request_body(content(
        (Object = "application/json"),
        (Object = "application/x-www-form-urlencoded"),
    ), description = "the gateway's own receipt format"),
    responses(
        (status = 200, description = "`{applied}`, in the form the gateway expects"),
        (status = 401, description = "the callback is not signed by this gateway"),
        (status = 404, description = "no such gateway"),
        (status = 413, description = "the body is larger than a callback may be"),
        (status = 422, description = "the body is not in the gateway's format"),
    ))]
pub async fn status(
    State(st): State<AppState>,
    Path(p): Path<GatewayPath>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let name = p.gateway;
    let gw = verified_gateway(&st, &name, &uri, p.key.as_deref(), &headers, &body)?;
    let receipts = gw
        .receipts(&body)
        .map_err(|e| ApiError::invalid("body", e.to_string()))?;
    let now = st.ctx.clock.now_ms();
    let mut applied = 0;
    for r in receipts {
        let status = r.status.as_str();
        metrics::counter!("muster_sms_receipts_total", "gateway" => name.clone(), "status" => status)
            .increment(1);
        if st
            .ctx
            .store
            .sms_receipt(&name, &r.id, status, now)
            .await?
            .unwrap_or(false)
        {
            applied += 1;
        }
    }
    Ok(gw.answer(false, json!({ "applied": applied })))
}

/// The path of a gateway callback: the gateway, and the secret for one that cannot sign.
#[derive(Debug, serde::Deserialize)]
pub struct GatewayPath {
    gateway: String,
    key: Option<String>,
}

/// Delivery reports from a gateway that cannot sign (Aliyun: a JSON array of `biz_id`,
/// `success`), authenticated by its `callback_secret` in the path; answered
/// `{"code": 0, "msg": "成功"}`.
#[utoipa::path(post, path = "/v1/sms/status/{gateway}/{key}", tag = "gateways",
    params(
        ("gateway" = String, Path, description = "a configured SMS gateway"),
        ("key" = String, Path, description = "the gateway's callback secret"),
    ),
    request_body(content = Vec<Object>, content_type = "application/json", description = "the gateway's own report format"),
    responses(
        (status = 200, description = "`{code: 0, msg, applied}`"),
        (status = 401, description = "the secret is not this gateway's"),
        (status = 404, description = "no such gateway"),
        (status = 413, description = "the body is larger than a callback may be"),
        (status = 422, description = "the body is not in the gateway's format"),
    ))]
pub async fn status_keyed(
    st: State<AppState>,
    p: Path<GatewayPath>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    status(st, p, uri, headers, body).await
}

/// A volunteer's reply, from a gateway that cannot sign (Aliyun: a JSON array of
/// `phone_number`, `content`, `sequence_id`), authenticated by its `callback_secret` in the
/// path; answered `{"code": 0, "msg": "成功"}`.
#[utoipa::path(post, path = "/v1/sms/inbound/{gateway}/{key}", tag = "gateways",
    params(
        ("gateway" = String, Path, description = "a configured SMS gateway"),
        ("key" = String, Path, description = "the gateway's callback secret"),
    ),
    request_body(content = Vec<Object>, content_type = "application/json", description = "the gateway's own message format"),
    responses(
        (status = 200, description = "`{code: 0, msg, messages}`"),
        (status = 401, description = "the secret is not this gateway's"),
        (status = 404, description = "no such gateway"),
        (status = 413, description = "the body is larger than a callback may be"),
        (status = 422, description = "the body is not in the gateway's format"),
    ))]
pub async fn inbound_keyed(
    st: State<AppState>,
    p: Path<GatewayPath>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    inbound(st, p, uri, headers, body).await
}

/// A volunteer's reply from a gateway, signed per gateway (generic: JSON `from`, `text`,
/// `id`; Twilio: form `From`, `Body`, `MessageSid`, answered with TwiML). Answers what each
/// message did: `answered`, `which`, `closed`, `stop`, `duplicate`, `unknown_number`,
/// `unknown_code`, `not_understood`, …
#[utoipa::path(post, path = "/v1/sms/inbound/{gateway}", tag = "gateways",
    params(("gateway" = String, Path, description = "a configured SMS gateway")),
    request_body(content(
        (Object = "application/json"),
        (Object = "application/x-www-form-urlencoded"),
    ), description = "the gateway's own message format"),
    responses(
        (status = 200, description = "what each message did, in the form the gateway expects"),
        (status = 401, description = "the callback is not signed by this gateway"),
        (status = 404, description = "no such gateway"),
        (status = 413, description = "the body is larger than a callback may be"),
        (status = 422, description = "the body is not in the gateway's format"),
    ))]
pub async fn inbound(
    State(st): State<AppState>,
    Path(p): Path<GatewayPath>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let name = p.gateway;
    let gw = verified_gateway(&st, &name, &uri, p.key.as_deref(), &headers, &body)?;
    let messages = gw
        .inbound(&body)
        .map_err(|e| ApiError::invalid("body", e.to_string()))?;
    let mut results = Vec::new();
    for m in messages {
        let store = &st.ctx.store;
        if !store.sms_first_seen(&name, &m.id).await? {
            metrics::counter!("muster_sms_replies_total", "result" => "duplicate").increment(1);
            results.push(json!({"id": m.id, "result": "duplicate"}));
            continue;
        }
        match handle(&st, &gw, &m.id, &m.from, &m.text).await {
            Ok(result) => {
                metrics::counter!("muster_sms_replies_total", "result" => result).increment(1);
                results.push(json!({"id": m.id, "result": result}));
            }
            Err(e) => {
                // Not handled: let the gateway's retry of this callback be handled afresh.
                let _ = store.sms_unsee(&name, &m.id).await;
                return Err(e);
            }
        }
    }
    Ok(gw.answer(true, json!({ "messages": results })))
}

/// A number as E.164; an 11-digit Chinese mobile number without `+86` gets it.
fn e164(from: &str) -> String {
    let t: String = from.chars().filter(|c| !c.is_whitespace()).collect();
    if t.starts_with('+') {
        t
    } else if let Some(rest) = t.strip_prefix("0086") {
        format!("+86{rest}")
    } else if t.len() == 11 && t.starts_with('1') {
        format!("+86{t}")
    } else {
        format!("+{t}")
    }
}

/// A callout of the number with its reply code.
struct Open {
    code: String,
    incident: crate::domain::incident::IncidentId,
    n: u32,
}

/// An answer by SMS without acting on a callout: its text kind, the code and codes it names,
/// and what happened (a metric label).
struct Say {
    kind: &'static str,
    code: String,
    codes: String,
    result: &'static str,
}

impl Say {
    fn new(kind: &'static str, code: &str, result: &'static str) -> Say {
        Say {
            kind,
            code: code.to_string(),
            codes: String::new(),
            result,
        }
    }
}

/// Handles one reply; what happened, as a metric label.
async fn handle(
    st: &AppState,
    gw: &Arc<Gateway>,
    reply_id: &str,
    from: &str,
    text: &str,
) -> Result<&'static str, ApiError> {
    let store = &st.ctx.store;
    let phone = e164(from);
    let now = st.ctx.clock.now_ms();
    let Some(vid) = store.volunteer_of_phone(&phone).await? else {
        tracing::info!(from = %mask_phone(&phone), "SMS from an unknown number ignored");
        return Ok("unknown_number");
    };
    let who = vid.as_str();
    let say = |s: Say| async move {
        confirm(st, gw, reply_id, who, s.kind, &s.code, &s.codes).await;
        Ok(s.result)
    };
    let (code, action) = match sms_reply::parse(text) {
        Reply::Stop => {
            store.sms_opt_out(&vid, now).await?;
            tracing::info!(volunteer = vid, "number opted out of SMS");
            return say(Say::new("reply_stopped", "", "stop")).await;
        }
        Reply::Unknown => return say(Say::new("reply_unknown", "", "not_understood")).await,
        Reply::Answer { code, action } => (code, action),
    };
    let (live, over) = callouts_of(st, &phone, now).await?;
    match target(&live, &over, code.as_deref()) {
        Ok(t) => {
            let s = act(st, t, action, now).await?;
            say(s).await
        }
        Err(s) => say(s).await,
    }
}

/// The number's callouts, newest first: those given their code within the reuse window, and
/// older ones still open (a flood lasts weeks); of incidents still on (with the callout's
/// state), and the codes of those over.
async fn callouts_of(
    st: &AppState,
    phone: &str,
    now: i64,
) -> Result<(Vec<(Open, Option<CalloutState>)>, Vec<String>), ApiError> {
    let mut live = Vec::new();
    let mut over = Vec::new();
    for h in st.ctx.store.sms_codes(phone, now).await? {
        let Some((incident, n)) = parse_ref(&h.cref) else {
            continue;
        };
        match (h.fresh || h.open, h.over, h.state) {
            (false, _, _) | (_, _, None) => {}
            (true, true, _) => over.push(h.code),
            (true, false, Some(state)) => live.push((
                Open {
                    code: h.code,
                    incident,
                    n,
                },
                CalloutState::parse(&state),
            )),
        }
    }
    Ok((live, over))
}

/// The callout a reply acts on: the one its code names, or without a code the number's only
/// open one; otherwise what to say instead.
fn target<'a>(
    live: &'a [(Open, Option<CalloutState>)],
    over: &[String],
    code: Option<&str>,
) -> Result<&'a Open, Say> {
    if let Some(c) = code {
        return match live.iter().find(|(o, _)| o.code == c) {
            Some((o, _)) => Ok(o),
            None if over.iter().any(|o| o == c) => Err(Say::new("reply_closed", c, "closed")),
            None => Err(Say::new("reply_unknown", "", "unknown_code")),
        };
    }
    let open: Vec<&Open> = live
        .iter()
        // Waiting for or holding an answer a bare reply can change (not yet arrived).
        .filter(|(_, state)| state.is_some_and(|s| s.is_open() && s != CalloutState::Arrived))
        .map(|(o, _)| o)
        .collect();
    match open.as_slice() {
        [one] => Ok(*one),
        [] => Err(Say::new("reply_nothing_open", "", "nothing_open")),
        many => {
            let codes: Vec<&str> = many.iter().map(|o| o.code.as_str()).collect();
            Err(Say {
                kind: "reply_which",
                code: codes[0].to_string(),
                codes: codes.join(", "),
                result: "which",
            })
        }
    }
}

/// Applies a reply's action to its callout; what to confirm.
async fn act(st: &AppState, t: &Open, action: Action, now: i64) -> Result<Say, ApiError> {
    let store = &st.ctx.store;
    let answer = match action {
        Action::Accept => Answer::Accept,
        Action::Decline => Answer::Decline,
        Action::Arrived => Answer::Arrived,
    };
    let mut out = store.ack(&t.incident, t.n, answer, now, "sms").await?;
    // "N" after accepting means withdrawing.
    if let (AckOutcome::Refused { state, .. }, Action::Decline) = (&out, action)
        && CalloutState::parse(state) == Some(CalloutState::Accepted)
    {
        out = store
            .ack(&t.incident, t.n, Answer::Withdraw, now, "sms")
            .await?;
    }
    let c = t.code.as_str();
    Ok(match out {
        AckOutcome::Changed { state, .. } | AckOutcome::Unchanged { state } => {
            let kind = match CalloutState::parse(&state) {
                Some(CalloutState::Accepted) => "reply_accepted",
                Some(CalloutState::Standby) => "reply_standby",
                Some(CalloutState::Declined) => "reply_declined",
                Some(CalloutState::Arrived) => "reply_arrived",
                Some(CalloutState::Withdrawn) => "reply_withdrawn",
                _ => "reply_unknown",
            };
            Say::new(kind, c, "answered")
        }
        AckOutcome::Closed { .. } => Say::new("reply_closed", c, "closed"),
        AckOutcome::Engaged { .. } => Say::new("reply_engaged", c, "engaged"),
        AckOutcome::Refused { .. } | AckOutcome::Unknown => {
            Say::new("reply_unknown", "", "refused")
        }
    })
}

/// Answers a reply by SMS through the gateway it came in on: enqueued as an SMS note, so it is
/// retried and survives a crash like any message. Failing to enqueue is logged, never an
/// error of the reply, which is recorded already.
async fn confirm(
    st: &AppState,
    gw: &Arc<Gateway>,
    reply_id: &str,
    vid: &str,
    kind: &'static str,
    code: &str,
    codes: &str,
) {
    if let Err(e) = st
        .ctx
        .store
        .enqueue_sms_note(vid, gw.name(), reply_id, kind, code, codes)
        .await
    {
        tracing::warn!(volunteer = vid, kind, error = %e, "could not enqueue the SMS answer");
    }
}
