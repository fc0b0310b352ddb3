//! `GET /v1/incidents/{id}/report`: the after-action report of an incident (a drill's report
//! too), computed only from what the incident recorded — its progress, its callouts and its
//! event stream — so the same incident always gives the same figures. Available while it runs
//! (`final: false`) and final after the stand-down. `?format=csv` answers one row per callout.

use super::AppState;
use super::auth::Caller;
use super::callouts::{CalloutView, page};
use super::error::ApiError;
use super::extract::Query;
use super::incidents::visible;
use super::timeline::TimelineEvent;
use crate::domain::region::Tier;
use crate::store::incidents::IncidentView;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IncidentReport {
    /// The incident, as the API shows it.
    pub incident: ReportHeader,
    /// Stood down: the figures will not change.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// Per requirement.
    pub requirements: Vec<RequirementFigures>,
    /// Per tier that called anyone (township, county, city).
    pub tiers: Vec<Reach>,
    /// Per channel.
    pub channels: Vec<ChannelFigures>,
    /// Per team.
    pub teams: Vec<TeamFigures>,
    /// Over every callout.
    pub rates: Rates,
    /// The whole incident in a line: what a trend compares.
    pub summary: Summary,
    /// A drill's earlier drills of the same plan in the same region (oldest first, at most
    /// [`TREND_DEPTH`]), to see whether the region got faster; empty for a live incident.
    pub trend: Vec<TrendPoint>,
}

/// How many earlier drills a drill's report compares itself with.
pub const TREND_DEPTH: usize = 5;

/// The headline figures of an incident. Times are seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
pub struct Summary {
    /// Callouts.
    pub called: u32,
    /// Reached (delivered).
    pub reached: u32,
    /// Accepted (standby and arrived included).
    pub accepted: u32,
    /// Arrived.
    pub arrived: u32,
    /// Headcount of every requirement together.
    pub needed: u32,
    /// From the raise to the first acceptance of any requirement.
    pub first_accept_s: Option<f64>,
    /// From being called to accepting, over every acceptance: median.
    pub median_accept_s: Option<f64>,
    /// The same, 90th percentile.
    pub p90_accept_s: Option<f64>,
    /// From the raise until every requirement had its headcount.
    pub fill_s: Option<f64>,
    /// Declined ÷ called.
    pub decline: Option<f64>,
    /// Never answered ÷ called.
    pub silence: Option<f64>,
}

/// An earlier drill in a trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrendPoint {
    /// Its incident.
    pub incident_id: String,
    /// Title.
    pub title: String,
    /// Raised at (RFC 3339).
    pub raised_at: String,
    /// Its figures.
    pub summary: Summary,
}

/// Who, what, where and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReportHeader {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Kind.
    pub kind: String,
    /// Level (1–4).
    pub level: u8,
    /// Region code.
    pub region: String,
    /// `live` or `drill`.
    pub mode: String,
    /// The plan in force.
    pub plan_id: String,
    /// Raised at (RFC 3339).
    pub raised_at: String,
    /// When every requirement first had its headcount.
    pub filled_at: Option<String>,
    /// Stood down at.
    pub stood_down_at: Option<String>,
    /// A drill's objectives.
    pub objectives: Option<String>,
    /// A drill's channels: `simulated` or `real`.
    pub channels: Option<String>,
    /// The scheduled drill that raised it.
    pub drill_id: Option<String>,
    /// The CAP alerts that raised and changed it (`sender,identifier,sent`).
    pub cap: Vec<String>,
}

/// One requirement's figures. Times are seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RequirementFigures {
    /// Requirement id.
    pub id: String,
    /// Team kind.
    pub team_kind: String,
    /// Headcount.
    pub needed: u32,
    /// Called.
    pub called: u32,
    /// Reached: a channel delivered the call-out.
    pub reached: u32,
    /// Accepted (a place or standby; arrived included).
    pub accepted: u32,
    /// Arrived on site.
    pub arrived: u32,
    /// From the raise to the first acceptance.
    pub first_accept_s: Option<f64>,
    /// From being called to accepting: the median over those who accepted.
    pub median_accept_s: Option<f64>,
    /// The same, 90th percentile (nearest rank).
    pub p90_accept_s: Option<f64>,
    /// From the raise to the acceptance that made the headcount, if it was made.
    pub fill_s: Option<f64>,
    /// The ladder steps taken, in order.
    pub steps: Vec<StepTaken>,
}

/// A ladder step taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StepTaken {
    /// 0 = first.
    pub step: u32,
    /// Its tier.
    pub tier: Option<Tier>,
    /// Seconds after the raise.
    pub at_s: f64,
}

/// Called, reached, accepted and arrived, for a tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
pub struct Reach {
    /// The tier.
    pub tier: Option<Tier>,
    /// Called.
    pub called: u32,
    /// Reached.
    pub reached: u32,
    /// Accepted (standby and arrived included).
    pub accepted: u32,
    /// Arrived.
    pub arrived: u32,
}

/// One channel's reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
pub struct ChannelFigures {
    /// `webhook`, `sms:GATEWAY`, `none`.
    pub channel: String,
    /// Callouts attempted on it.
    pub attempted: u32,
    /// Delivered (a webhook's 2xx; an SMS delivery report, or the gateway's acceptance when
    /// it sends no reports).
    pub delivered: u32,
    /// delivered ÷ attempted.
    pub reach_rate: Option<f64>,
    /// Given up.
    pub failed: u32,
    /// Why, most frequent first.
    pub failure_reasons: Vec<Reason>,
}

/// A reason and how often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Reason {
    /// The reason as recorded.
    pub reason: String,
    /// How many callouts.
    pub count: u32,
}

/// One team's answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
pub struct TeamFigures {
    /// Team id (absent for callouts made before muster recorded it).
    pub team_id: Option<String>,
    /// Called.
    pub called: u32,
    /// Accepted (standby and arrived included).
    pub accepted: u32,
    /// Declined.
    pub declined: u32,
    /// Never answered.
    pub silent: u32,
    /// Who never answered (names masked for viewers).
    pub non_responders: Vec<String>,
}

/// Rates over every callout (÷ called), and promotions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
pub struct Rates {
    /// Callouts.
    pub called: u32,
    /// Declined ÷ called.
    pub decline: Option<f64>,
    /// Never answered ÷ called.
    pub silence: Option<f64>,
    /// No channel delivered ÷ called.
    pub failure: Option<f64>,
    /// Accepted into standby ÷ called.
    pub standby: Option<f64>,
    /// Standby promoted to a place.
    pub promotions: u32,
}

#[path = "report_figures.rs"]
mod figures;
pub use figures::report;

/// `?format=csv`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `csv` for one row per callout; JSON otherwise.
    #[param(pattern = "^(json|csv)$")]
    format: Option<String>,
}

/// The report as CSV: one row per callout (names and phones as the caller may see them).
pub fn csv(callouts: &[CalloutView]) -> String {
    fn field(s: &str) -> String {
        // A cell a spreadsheet would run as a formula is quoted as text.
        let s = if s.starts_with(['=', '+', '-', '@']) {
            format!("'{s}")
        } else {
            s.to_string()
        };
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    }
    let mut out = String::from(
        "callout,volunteer_id,name,phone,requirement,team,tier,step,channel,state,called_at,notified_at,answered_at,arrived_at,delivery_error\n",
    );
    for c in callouts {
        let cells = [
            c.id.clone(),
            c.volunteer_id.clone(),
            c.volunteer_name.clone(),
            c.phone.clone(),
            c.requirement_id.clone(),
            c.team_id.clone().unwrap_or_default(),
            c.tier.map(|t| t.as_str().to_string()).unwrap_or_default(),
            c.step.to_string(),
            c.channel.clone(),
            c.outcome()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            c.created_at.clone().unwrap_or_default(),
            c.notified_at.clone().unwrap_or_default(),
            c.answered_at.clone().unwrap_or_default(),
            c.arrived_at.clone().unwrap_or_default(),
            c.delivery_error.clone().unwrap_or_default(),
        ];
        let row: Vec<String> = cells.iter().map(|c| field(c)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// The after-action report (a drill's report too): per requirement, tier, channel and team,
/// computed from the incident's recorded callouts and events; final after the stand-down.
/// `?format=csv` answers one row per callout.
#[utoipa::path(get, path = "/v1/incidents/{id}/report", tag = "incidents", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "the incident"), ReportQuery),
    responses(
        (status = 200, description = "the report; with `?format=csv`, one row per callout",
            content((IncidentReport = "application/json"), (String = "text/csv"))),
        (status = 404, description = "no such incident in this token's scope"),
        (status = 422, description = "`format` is neither json nor csv"),
    ))]
pub async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let csv_wanted = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "format",
                format!("unknown format `{other}`; use json or csv"),
            ));
        }
    };
    let (iid, v) = visible(&st, &caller, &id).await?;
    if !csv_wanted {
        return Ok(axum::Json(of(&st, &caller, &iid, &v).await?).into_response());
    }
    let callouts = page(&st, &caller, &iid, 0, u32::MAX).await?.callouts;
    Ok(csv_response(&callouts))
}

/// The CSV rows as a download.
pub fn csv_response(callouts: &[CalloutView]) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"report.csv\"",
            ),
        ],
        csv(callouts),
    )
        .into_response()
}

/// The report of an incident the caller can see (the API's answer and the command centre's
/// printable page).
pub async fn of(
    st: &AppState,
    caller: &Caller,
    iid: &crate::domain::incident::IncidentId,
    v: &IncidentView,
) -> Result<IncidentReport, ApiError> {
    // Retired (past `retention.incident_days`): its callouts are gone, its final report stays.
    if let Some(kept) = st.ctx.store.incident_field(iid, "report").await?
        && let Ok(r) = serde_json::from_str::<IncidentReport>(&kept)
    {
        return Ok(r);
    }
    let callouts = page(st, caller, iid, 0, u32::MAX).await?.callouts;
    let events = super::timeline::events(st, iid).await?.events;
    let mut r = report(v, &callouts, &events);
    if v.mode == crate::domain::incident::Mode::Drill {
        r.trend = trend(st, caller, v).await?;
    }
    Ok(r)
}

/// The earlier drills of `v`'s plan in `v`'s region, oldest first, each summarised from its
/// own callouts and events.
async fn trend(
    st: &AppState,
    caller: &Caller,
    v: &IncidentView,
) -> Result<Vec<TrendPoint>, ApiError> {
    let mut earlier: Vec<IncidentView> = st
        .ctx
        .store
        .list_incidents(1000)
        .await?
        .into_iter()
        .filter(|o| {
            o.mode == crate::domain::incident::Mode::Drill
                && o.plan_id == v.plan_id
                && o.region == v.region
                && o.id != v.id
                && o.raised_at < v.raised_at
        })
        .take(TREND_DEPTH)
        .collect();
    earlier.reverse();
    let mut out = Vec::with_capacity(earlier.len());
    for o in earlier {
        let Some(oid) = crate::domain::incident::IncidentId::parse(&o.id) else {
            continue;
        };
        let callouts = page(st, caller, &oid, 0, u32::MAX).await?.callouts;
        let events = super::timeline::events(st, &oid).await?.events;
        out.push(TrendPoint {
            incident_id: o.id.clone(),
            title: o.title.clone(),
            raised_at: o.raised_at.clone(),
            summary: report(&o, &callouts, &events).summary,
        });
    }
    Ok(out)
}

/// Retires every incident stood down longer than `retention.incident_days` before `now`: its
/// final report (as an admin reads it, names masked) is kept on the incident, its per-callout
/// keys go, and it is `closed` — one audited script per incident. Answers how many.
pub async fn retire_due(
    ctx: &std::sync::Arc<crate::engine::Ctx>,
    now: i64,
) -> Result<usize, ApiError> {
    let keep_ms = i64::from(ctx.config.retention.incident_days) * 86_400_000;
    let st = AppState {
        ctx: ctx.clone(),
        tokens: Default::default(),
        metrics: crate::telemetry::metrics(),
    };
    let root = ctx
        .seed
        .regions
        .iter()
        .find(|r| r.parent.is_none())
        .map(|r| r.code.clone())
        .ok_or_else(|| ApiError::Internal("no root region".into()))?;
    // Names masked in what is kept: the report of a retired incident is for anyone in scope.
    let reader = Caller {
        name: "muster retention".into(),
        role: crate::domain::access::Role::Viewer,
        scope: root.clone(),
        request: super::auth::RequestMeta {
            id: "retention".into(),
            addr: String::new(),
        },
    };
    let mut retired = 0;
    for v in ctx.store.list_incidents(100_000).await? {
        let done = v
            .stood_down_at
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| t.as_millisecond());
        let Some(done) = done else { continue };
        if v.status != crate::domain::incident::Status::StoodDown || done + keep_ms > now {
            continue;
        }
        let Some(iid) = crate::domain::incident::IncidentId::parse(&v.id) else {
            continue;
        };
        let r = of(&st, &reader, &iid, &v).await?;
        let json = serde_json::to_string(&r).map_err(|e| ApiError::Internal(e.to_string()))?;
        let reqs: Vec<String> = v.requirements.iter().map(|q| q.id.clone()).collect();
        let mut audit = reader.audit(now, "incident.retire", &v.id, &v.region);
        audit.role = "system".into();
        audit.detail = format!(
            "stood down {}; per-callout records removed after {} days",
            v.stood_down_at.as_deref().unwrap_or(""),
            ctx.config.retention.incident_days
        );
        if ctx
            .store
            .retire(&iid, now, &json, &reqs, &audit)
            .await?
            .is_some()
        {
            retired += 1;
            tracing::info!(incident = %iid, "incident retired: its per-callout records are gone, its report kept");
        }
    }
    Ok(retired)
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
