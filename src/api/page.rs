//! `GET /a/{token}`: the small mobile page a volunteer opens from a call-out, with Accept /
//! Decline (and, once accepted, Arrived / Withdraw) buttons. The buttons are plain HTML forms
//! posting back to `/a/{token}`, so it works on any phone without JavaScript.

use super::AppState;
use super::acks;
use super::error::ApiError;
use crate::domain::callout::{CalloutState, Response as Answer};
use crate::domain::token::AckToken;
use crate::store::incidents::IncidentView;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

/// The form a button posts.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AnswerForm {
    /// `accept`, `decline`, `arrived` or `withdraw` (the buttons the page offers).
    #[serde(default)]
    response: String,
    /// "Not available for N hours" (from the page's second form).
    unavailable_hours: Option<i64>,
}

/// The mobile page of a call-out, with Accept / Decline (and, once accepted, Arrived /
/// Withdraw). Works without JavaScript.
#[utoipa::path(get, path = "/a/{token}", tag = "volunteer links",
    params(("token" = String, Path, description = "the call-out's token")),
    responses(
        (status = 200, description = "the page", content_type = "text/html", body = String),
        (status = 404, description = "an unknown link", content_type = "text/html", body = String),
        (status = 410, description = "the incident is over", content_type = "text/html", body = String),
    ))]
pub async fn show(State(st): State<AppState>, Path(token): Path<String>) -> Response {
    match acks::verify(&st, &token) {
        Ok(t) => render(&st, &token, t, None).await,
        Err(_) => gone(&st, "zh-CN", StatusCode::NOT_FOUND),
    }
}

/// The page's form answer (`response=accept|decline|arrived|withdraw`, or
/// `unavailable_hours=N`). A form that cannot be read, or names an answer or a number of hours
/// the page does not offer, is told so (422, the page again with a notice) and changes nothing.
#[utoipa::path(post, path = "/a/{token}", tag = "volunteer links",
    params(("token" = String, Path, description = "the call-out's token")),
    request_body(content = AnswerForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "the page, saying what changed", content_type = "text/html", body = String),
        (status = 404, description = "an unknown link", content_type = "text/html", body = String),
        (status = 409, description = "the answer is not possible now (the page says why)", content_type = "text/html", body = String),
        (status = 410, description = "the incident is over", content_type = "text/html", body = String),
        (status = 422, description = "a form the page does not offer", content_type = "text/html", body = String),
    ))]
pub async fn answer(
    State(st): State<AppState>,
    Path(token): Path<String>,
    form: Result<Form<AnswerForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(t) = acks::verify(&st, &token) else {
        return gone(&st, "zh-CN", StatusCode::NOT_FOUND);
    };
    let invalid = || render(&st, &token, t, Some("invalid".into()));
    let Ok(Form(form)) = form else {
        return invalid().await;
    };
    if let Some(h) = form.unavailable_hours {
        if !(1..=24 * 30).contains(&h) {
            return invalid().await;
        }
        let until = st.ctx.clock.now_ms() + h * 3_600_000;
        let body = super::availability::UnavailableBody {
            from: None,
            until: crate::clock::rfc3339(until),
            reason: None,
        };
        let co = match st.ctx.store.callout(&t.incident, t.n).await {
            Ok(Some(c)) => c,
            Ok(None) => return gone(&st, "zh-CN", StatusCode::NOT_FOUND),
            Err(e) => return ApiError::from(e).into_response(),
        };
        return match super::availability::add_unavailable(&st, co.get("v"), body, None).await {
            Ok(_) => render(&st, &token, t, Some("unavailable_noted".into())).await,
            Err(e) => e.into_response(),
        };
    }
    let Some(answer) = Answer::parse(&form.response) else {
        return invalid().await;
    };
    match acks::apply(&st, t, answer, "page").await {
        Ok(a) => render(&st, &token, t, Some(a.state)).await,
        Err(ApiError::Gone(_)) => gone(&st, "zh-CN", StatusCode::GONE),
        Err(ApiError::Conflict(reason)) if reason.starts_with(acks::ENGAGED) => {
            render(&st, &token, t, Some(acks::ENGAGED.into())).await
        }
        Err(ApiError::Conflict(reason)) => render(&st, &token, t, Some(reason)).await,
        Err(e) => e.into_response(),
    }
}

/// What the call-out is about, in the volunteer's locale (the page's `summary` text).
fn summary(st: &AppState, inc: &IncidentView, requirement: &str, locale: &str) -> String {
    let team_kind = inc
        .requirements
        .iter()
        .find(|r| r.id == requirement)
        .map(|r| r.team_kind.as_str())
        .unwrap_or_default();
    let region = st
        .ctx
        .seed
        .regions
        .lookup(&inc.region)
        .map(|r| r.name.as_str())
        .unwrap_or(&inc.region);
    st.ctx.seed.templates.render_page(
        locale,
        "summary",
        &crate::domain::template::MessageVars {
            title: &inc.title,
            kind: &inc.kind,
            level: inc.level,
            region,
            team_kind,
            link: "",
            code: "",
            codes: "",
            name: "",
            drill: inc.mode == crate::domain::incident::Mode::Drill,
        },
    )
}

/// The line saying what the last answer did (a state, or `unavailable_noted`, `invalid`,
/// `engaged`; anything else is shown as it is), or where the call-out stands.
fn status_line(
    result: Option<String>,
    state: Option<CalloutState>,
    tx: &impl Fn(&str) -> String,
) -> String {
    use CalloutState::*;
    let said = |s: Option<CalloutState>| {
        matches!(s, Some(Accepted | Standby | Declined | Withdrawn | Arrived))
    };
    let text = match result {
        Some(r) if said(CalloutState::parse(&r)) => tx(&r),
        Some(r) if ["unavailable_noted", "invalid", "engaged"].contains(&r.as_str()) => tx(&r),
        Some(r) => r,
        None if said(state) => tx(state.map_or("", CalloutState::as_str)),
        None => return String::new(),
    };
    format!("<p><strong>{}</strong></p>", esc(&text))
}

/// The answers the call-out's state allows, as buttons.
fn buttons(token: &str, state: Option<CalloutState>, tx: &impl Fn(&str) -> String) -> String {
    let button = |resp: &str, class: &str| {
        format!(
            "<form method=\"post\" action=\"/a/{}\"><input type=\"hidden\" name=\"response\" value=\"{resp}\">\
             <button class=\"{class}\">{}</button></form>",
            esc(token),
            esc(&tx(resp))
        )
    };
    match state {
        Some(CalloutState::Accepted) => button("arrived", "ok") + &button("withdraw", "no"),
        Some(CalloutState::Arrived) => String::new(),
        Some(CalloutState::Standby) => button("withdraw", "no"),
        _ => button("accept", "ok") + &button("decline", "no"),
    }
}

/// "Not available for …" with the spans the page offers.
fn away_form(token: &str, tx: &impl Fn(&str) -> String) -> String {
    format!(
        "<form method=\"post\" action=\"/a/{}\"><label>{} <select name=\"unavailable_hours\">\
         <option value=\"12\">12 h</option><option value=\"24\">24 h</option>\
         <option value=\"72\">72 h</option><option value=\"168\">7 d</option></select></label>\
         <button class=\"no\">{}</button></form>",
        esc(token),
        esc(&tx("unavailable")),
        esc(&tx("unavailable_submit"))
    )
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> String {
    page_in("zh-CN", title, body)
}

/// The page in the volunteer's locale (its `lang`, so a screen reader speaks it right).
fn page_in(locale: &str, title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>body{{font-family:sans-serif;max-width:32rem;margin:1rem auto;\
         padding:0 1rem}}button{{font-size:1.2rem;padding:.8rem;margin:.3rem 0;width:100%}}\
         .ok{{background:#1a7f37;color:#fff}}.no{{background:#eee}}</style></head>\
         <body>{}</body></html>",
        esc(locale),
        esc(title),
        body
    )
}

fn gone(st: &AppState, locale: &str, status: StatusCode) -> Response {
    let text = st.ctx.seed.templates.page_text(locale, "gone");
    (
        status,
        Html(page("muster", &format!("<p>{}</p>", esc(&text)))),
    )
        .into_response()
}

async fn render(st: &AppState, token: &str, t: AckToken, result: Option<String>) -> Response {
    let store = &st.ctx.store;
    let (inc, co) = match (
        store.incident(&t.incident).await,
        store.callout(&t.incident, t.n).await,
    ) {
        (Ok(Some(i)), Ok(Some(c))) => (i, c),
        (Err(e), _) | (_, Err(e)) => return ApiError::from(e).into_response(),
        _ => return gone(st, "zh-CN", StatusCode::NOT_FOUND),
    };
    let locale = store
        .volunteer_fields(co.get("v"))
        .await
        .ok()
        .and_then(|v| v.get("locale").cloned())
        .unwrap_or_else(|| "zh-CN".into());
    let tx = |k: &str| st.ctx.seed.templates.page_text(&locale, k);
    let state = CalloutState::parse(co.get("st"));
    if !matches!(inc.status(), Some(s) if s.is_active()) {
        return (
            StatusCode::GONE,
            Html(page(
                &inc.title,
                &format!(
                    "<h2>{}</h2><p>{}</p>",
                    esc(&inc.title),
                    esc(&tx("stood_down"))
                ),
            )),
        )
            .into_response();
    }
    let msg = summary(st, &inc, co.get("r"), &locale);
    let status = if result.as_deref() == Some("invalid") {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    // Where to go: the location as command staff gave it (text, or each value of an object).
    let place = match &inc.location {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Object(m)) => m
            .values()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
            .collect::<Vec<_>>()
            .join(" · "),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let place = if place.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"where\">{}: <strong>{}</strong></p>",
            esc(&tx("where")),
            esc(&place)
        )
    };
    let body = format!(
        "<h2>{}</h2><p>{}</p>{}{}{}<hr>{}",
        esc(&tx("heading")),
        esc(&msg),
        place,
        status_line(result, state, &tx),
        buttons(token, state, &tx),
        away_form(token, &tx)
    );
    (status, Html(page_in(&locale, &inc.title, &body))).into_response()
}
