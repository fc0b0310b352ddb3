//! `/audit`: the audit log in the command centre — the API's own entries
//! ([`crate::api::audit::entries`]) with the same filters and scope, and the CSV beside them.

use super::lang::Lang;
use super::session::{Signed, Who};
use super::{PageError, html};
use crate::api::AppState;
use crate::api::audit::{AuditQuery, AuditView, entries, to_csv};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// The page's filters, as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filter {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    /// A date (`YYYY-MM-DD`, in the deployment's time zone): entries from that day on.
    #[serde(default)]
    since: String,
}

/// One entry as a row.
pub struct Row {
    pub e: AuditView,
    /// When, in the deployment's time zone.
    pub at: String,
    /// The region by name.
    pub region: String,
    /// The board of the incident it names, if it names one.
    pub incident: bool,
}

#[derive(Template)]
#[template(path = "audit.html", config = "src/web/askama.toml")]
struct AuditPage {
    who: Option<Who>,
    lang: Lang,
    f: Filter,
    rows: Vec<Row>,
    /// The query string of the CSV link.
    csv: String,
}

impl Filter {
    fn query(&self, st: &AppState) -> AuditQuery {
        let since = (!self.since.trim().is_empty()).then(|| {
            let tz = jiff::tz::TimeZone::get(&st.ctx.config.eligibility.time_zone)
                .unwrap_or(jiff::tz::TimeZone::UTC);
            self.since
                .trim()
                .parse::<jiff::civil::Date>()
                .ok()
                .and_then(|d| {
                    tz.to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
                        .ok()
                })
                .map(|t| t.to_string())
                .unwrap_or_else(|| self.since.clone())
        });
        AuditQuery {
            since,
            action: (!self.action.trim().is_empty()).then(|| self.action.trim().to_string()),
            actor: (!self.actor.trim().is_empty()).then(|| self.actor.trim().to_string()),
            limit: Some(500),
            format: None,
        }
    }
}

/// `GET /audit`: the newest 500 entries the caller may read that pass the filters.
pub async fn show(
    State(st): State<AppState>,
    signed: Signed,
    Query(f): Query<Filter>,
) -> Result<Response, PageError> {
    let q = f.query(&st);
    let tz = jiff::tz::TimeZone::get(&st.ctx.config.eligibility.time_zone)
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let rows = entries(&st, &signed.caller, &q)
        .await?
        .into_iter()
        .map(|e| Row {
            at: e
                .at
                .parse::<jiff::Timestamp>()
                .map(|t| tz.to_datetime(t).strftime("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default(),
            region: if e.region.is_empty() {
                "—".into()
            } else {
                st.ctx.seed.regions.name_of(&e.region)
            },
            incident: e.action.starts_with("incident.")
                || (e.action == "cap.alert" && !e.target.is_empty()),
            e,
        })
        .collect();
    let csv = serde_urlencoded::to_string([
        ("action", f.action.as_str()),
        ("actor", f.actor.as_str()),
        ("since", f.since.as_str()),
    ])
    .unwrap_or_default();
    Ok(html(&AuditPage {
        who: Some(signed.who(&st)),
        lang: signed.lang,
        f,
        rows,
        csv,
    }))
}

/// `GET /audit.csv`: the same entries as CSV.
pub async fn csv(
    State(st): State<AppState>,
    signed: Signed,
    Query(f): Query<Filter>,
) -> Result<Response, PageError> {
    let mut q = f.query(&st);
    q.limit = Some(5000);
    let es = entries(&st, &signed.caller, &q).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit.csv\"",
            ),
        ],
        to_csv(&es),
    )
        .into_response())
}
