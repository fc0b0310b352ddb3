//! Certificates (志愿服务记录证明): `/volunteers/{id}/certificate` issues and prints one for a
//! volunteer and a period, from their service records, in the name of the coordinator's
//! command centre; `/verify/{code}` tells anyone whether a certificate is genuine — issuer,
//! period, hours, the masked name — and nothing more.

use super::lang::Lang;
use super::session::{Signed, Who};
use super::{PageError, html};
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::api::service::{ServiceRecordView, unit_of, volunteer_service};
use crate::domain::certificate::{Statement, grouped, normalize};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// The period asked for (dates in the deployment's time zone; this year by default).
#[derive(Debug, Deserialize, Default)]
pub struct Period {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

#[derive(Template)]
#[template(path = "certificate.html", config = "src/web/askama.toml")]
struct CertificatePage {
    who: Option<Who>,
    lang: Lang,
    name: String,
    s: Statement,
    records: Vec<ServiceRecordView>,
    code: String,
    verify_url: String,
}

#[derive(Template)]
#[template(path = "verify.html", config = "src/web/askama.toml")]
struct VerifyPage {
    who: Option<Who>,
    lang: Lang,
    code: String,
    s: Option<Statement>,
}

/// `GET /volunteers/{id}/certificate?from=&to=`: issues (or issues again: the same statement
/// has the same code) and prints a certificate (coordinators, in scope).
pub async fn issue(
    State(st): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(p): Query<Period>,
) -> Result<Response, PageError> {
    signed.caller.require_coordinator()?;
    let tz = jiff::tz::TimeZone::get(&st.ctx.config.eligibility.time_zone)
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let now = st.ctx.clock.now_ms();
    let today = tz.to_datetime(
        jiff::Timestamp::from_millisecond(now).unwrap_or_else(|_| jiff::Timestamp::now()),
    );
    let date = |s: &str, field: &str, default: jiff::civil::Date| {
        if s.trim().is_empty() {
            return Ok(default);
        }
        s.trim()
            .parse::<jiff::civil::Date>()
            .map_err(|_| ApiError::invalid(field, "a date, e.g. 2026-01-01"))
    };
    let from = date(&p.from, "from", today.date().first_of_year())?;
    let to = date(&p.to, "to", today.date())?;
    if to < from {
        return Err(ApiError::invalid("to", "the period ends before it begins").into());
    }
    let start = tz
        .to_timestamp(from.to_datetime(jiff::civil::Time::midnight()))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let end = tz
        .to_timestamp(
            to.tomorrow()
                .map_err(|e| ApiError::Internal(e.to_string()))?
                .to_datetime(jiff::civil::Time::midnight()),
        )
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let stored = crate::api::volunteers::load_visible(&st, &signed.caller, &id).await?;
    let Some(v) = stored.volunteer else {
        return Err(ApiError::Gone(format!("volunteer {id} was erased: no certificate")).into());
    };
    let service = volunteer_service(&st, &signed.caller, &id).await?;
    let records: Vec<ServiceRecordView> = service
        .records
        .into_iter()
        .filter(|r| {
            r.ended_at
                .parse::<jiff::Timestamp>()
                .is_ok_and(|t| t >= start && t < end)
        })
        .collect();
    let totals = crate::api::service::totals(&records);
    // Printed in the deployment's time zone.
    let records: Vec<ServiceRecordView> = records
        .into_iter()
        .map(|mut r| {
            if let Ok(t) = r.ended_at.parse::<jiff::Timestamp>() {
                r.ended_at = tz.to_datetime(t).strftime("%Y-%m-%d %H:%M").to_string();
            }
            r
        })
        .collect();
    let s = Statement {
        volunteer: id.clone(),
        masked_name: crate::domain::volunteer::mask_name(&v.name),
        from: from.to_string(),
        to: to.to_string(),
        live_hours: totals.live_hours,
        training_hours: totals.training_hours,
        records: totals.records,
        issuer: unit_of(&st, signed.caller.scope.as_str()),
        issued_at: crate::clock::rfc3339(now),
    };
    let code = s.code(&st.ctx.config.audit.key_bytes());
    let mut audit =
        signed
            .caller
            .audit(now, "certificate.issue", &id, signed.caller.scope.as_str());
    audit.detail = format!(
        "{} – {}: {:.2} h live, {:.2} h training, code {}",
        s.from,
        s.to,
        s.live_hours,
        s.training_hours,
        grouped(&code)
    );
    st.ctx
        .store
        .certificate_put(&code, &s.fields(), &audit)
        .await?;
    Ok(html(&CertificatePage {
        who: Some(signed.who(&st)),
        lang: signed.lang,
        name: v.name,
        verify_url: format!("{}/verify/{}", st.ctx.public_url, grouped(&code)),
        code: grouped(&code),
        s,
        records,
    }))
}

/// What `/verify/{code}` answers as JSON.
#[derive(Debug, serde::Serialize)]
struct Verdict {
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    volunteer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    live_hours: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    training_hours: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_at: Option<String>,
}

/// `GET /verify/{code}`: genuine or not (the code must be the HMAC of what is stored under it);
/// JSON for programs, a page for people (by `Accept`).
pub async fn verify(
    State(st): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, PageError> {
    let found = match normalize(&code) {
        Some(c) => st
            .ctx
            .store
            .certificate(&c)
            .await?
            .and_then(|f| Statement::from_fields(&f))
            .filter(|s| s.code(&st.ctx.config.audit.key_bytes()) == c),
        None => None,
    };
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html {
        let mut resp = html(&VerifyPage {
            who: None,
            lang,
            code: normalize(&code).map_or(code.clone(), |c| grouped(&c)),
            s: found,
        });
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        return Ok(resp);
    }
    let v = match found {
        Some(s) => Verdict {
            valid: true,
            issuer: Some(s.issuer),
            volunteer: Some(s.masked_name),
            from: Some(s.from),
            to: Some(s.to),
            live_hours: Some(s.live_hours),
            training_hours: Some(s.training_hours),
            issued_at: Some(s.issued_at),
        },
        None => Verdict {
            valid: false,
            issuer: None,
            volunteer: None,
            from: None,
            to: None,
            live_hours: None,
            training_hours: None,
            issued_at: None,
        },
    };
    Ok(axum::Json(v).into_response())
}
