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
use crate::domain::callout::CalloutState;
use crate::domain::region::Tier;
use crate::store::incidents::IncidentView;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
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
}

/// Who, what, where and when.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
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
}

/// One requirement's figures. Times are seconds.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StepTaken {
    /// 0 = first.
    pub step: u32,
    /// Its tier.
    pub tier: Option<Tier>,
    /// Seconds after the raise.
    pub at_s: f64,
}

/// Called, reached, accepted and arrived, for a tier.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, Default)]
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
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, Default)]
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
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Reason {
    /// The reason as recorded.
    pub reason: String,
    /// How many callouts.
    pub count: u32,
}

/// One team's answers.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, Default)]
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
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, Default)]
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

fn ms_of(t: &Option<String>) -> Option<i64> {
    t.as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_millisecond())
}

fn rate(n: u32, of: u32) -> Option<f64> {
    (of > 0).then(|| f64::from(n) / f64::from(of))
}

/// The nearest-rank percentile `q` (0–1) of sorted `xs`.
fn percentile(xs: &[i64], q: f64) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let rank = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len());
    Some(xs[rank - 1] as f64 / 1000.0)
}

/// The median of sorted `xs` (the mean of the middle two for an even count).
fn median(xs: &[i64]) -> Option<f64> {
    match xs.len() {
        0 => None,
        n if n % 2 == 1 => Some(xs[n / 2] as f64 / 1000.0),
        n => Some((xs[n / 2 - 1] + xs[n / 2]) as f64 / 2000.0),
    }
}

/// What a callout came to: its state, or what it was when the stand-down closed it.
fn outcome(c: &CalloutView) -> Option<CalloutState> {
    match c.state {
        Some(CalloutState::StoodDown) => c.stood_down_from.or(c.state),
        s => s,
    }
}

fn accepted(s: Option<CalloutState>) -> bool {
    matches!(
        s,
        Some(CalloutState::Accepted | CalloutState::Standby | CalloutState::Arrived)
    )
}

fn silent(s: Option<CalloutState>) -> bool {
    matches!(
        s,
        Some(CalloutState::Silent | CalloutState::Notified | CalloutState::Pending)
    )
}

fn reached(c: &CalloutView) -> bool {
    if c.channel.starts_with("sms") && c.sms_delivery.is_some() {
        c.sms_delivery.as_deref() == Some("delivered")
    } else {
        c.notified_at.is_some()
    }
}

/// The report of `v` from its callouts and events (names as the caller may see them).
pub fn report(
    v: &IncidentView,
    callouts: &[CalloutView],
    events: &[TimelineEvent],
) -> IncidentReport {
    let raised = ms_of(&Some(v.raised_at.clone())).unwrap_or(0);
    let secs = |ms: i64| (ms - raised) as f64 / 1000.0;
    let requirements = v
        .requirements
        .iter()
        .map(|r| {
            let mine: Vec<&CalloutView> = callouts
                .iter()
                .filter(|c| c.requirement_id == r.id)
                .collect();
            let answered_at = |c: &CalloutView| ms_of(&c.answered_at);
            let mut accepts: Vec<i64> = mine
                .iter()
                .filter(|c| accepted(outcome(c)))
                .filter_map(|c| answered_at(c))
                .collect();
            accepts.sort_unstable();
            let mut waits: Vec<i64> = mine
                .iter()
                .filter(|c| accepted(outcome(c)))
                .filter_map(|c| Some(answered_at(c)? - ms_of(&c.created_at)?))
                .collect();
            waits.sort_unstable();
            RequirementFigures {
                id: r.id.clone(),
                team_kind: r.team_kind.clone(),
                needed: r.needed,
                called: mine.len() as u32,
                reached: mine.iter().filter(|c| reached(c)).count() as u32,
                accepted: mine.iter().filter(|c| accepted(outcome(c))).count() as u32,
                arrived: mine
                    .iter()
                    .filter(|c| outcome(c) == Some(CalloutState::Arrived))
                    .count() as u32,
                first_accept_s: accepts.first().map(|a| secs(*a)),
                median_accept_s: median(&waits),
                p90_accept_s: percentile(&waits, 0.9),
                fill_s: (r.needed > 0)
                    .then(|| accepts.get(r.needed as usize - 1).map(|a| secs(*a)))
                    .flatten(),
                steps: events
                    .iter()
                    .filter(|e| {
                        e.kind == "requirement.step" && e.requirement.as_deref() == Some(&r.id)
                    })
                    .map(|e| StepTaken {
                        step: e.step.unwrap_or(0),
                        tier: e.tier,
                        at_s: secs(e.at_ms.unwrap_or(raised)),
                    })
                    .collect(),
            }
        })
        .collect();

    let mut tiers: BTreeMap<u8, Reach> = BTreeMap::new();
    let mut channels: BTreeMap<&str, ChannelFigures> = BTreeMap::new();
    let mut reasons: BTreeMap<&str, BTreeMap<&str, u32>> = BTreeMap::new();
    let mut teams: Vec<TeamFigures> = Vec::new();
    let mut rates = Rates::default();
    for c in callouts {
        let s = outcome(c);
        let rank = c.tier.map_or(3, |t| t as u8);
        let t = tiers.entry(rank).or_insert_with(|| Reach {
            tier: c.tier,
            ..Default::default()
        });
        t.called += 1;
        t.reached += u32::from(reached(c));
        t.accepted += u32::from(accepted(s));
        t.arrived += u32::from(s == Some(CalloutState::Arrived));
        let ch = channels.entry(&c.channel).or_default();
        ch.attempted += 1;
        ch.delivered += u32::from(reached(c));
        if s == Some(CalloutState::Failed) {
            ch.failed += 1;
            let why = c.delivery_error.as_deref().unwrap_or("unknown");
            *reasons
                .entry(&c.channel)
                .or_default()
                .entry(why)
                .or_default() += 1;
        }
        let at = match teams.iter().position(|t| t.team_id == c.team_id) {
            Some(i) => i,
            None => {
                teams.push(TeamFigures {
                    team_id: c.team_id.clone(),
                    ..Default::default()
                });
                teams.len() - 1
            }
        };
        let team = &mut teams[at];
        team.called += 1;
        team.accepted += u32::from(accepted(s));
        team.declined += u32::from(s == Some(CalloutState::Declined));
        if silent(s) {
            team.silent += 1;
            team.non_responders.push(c.volunteer_name.clone());
        }
        rates.called += 1;
        if c.promoted_at.is_some() {
            rates.promotions += 1;
        }
    }
    let count = |f: &dyn Fn(Option<CalloutState>) -> bool| {
        callouts.iter().filter(|c| f(outcome(c))).count() as u32
    };
    rates.decline = rate(count(&|s| s == Some(CalloutState::Declined)), rates.called);
    rates.silence = rate(count(&silent), rates.called);
    rates.failure = rate(count(&|s| s == Some(CalloutState::Failed)), rates.called);
    rates.standby = rate(
        callouts
            .iter()
            .filter(|c| outcome(c) == Some(CalloutState::Standby) || c.promoted_at.is_some())
            .count() as u32,
        rates.called,
    );
    let channels = channels
        .into_iter()
        .map(|(name, mut ch)| {
            ch.channel = name.to_string();
            ch.reach_rate = rate(ch.delivered, ch.attempted);
            let mut rs: Vec<Reason> = reasons
                .remove(name)
                .unwrap_or_default()
                .into_iter()
                .map(|(reason, count)| Reason {
                    reason: reason.to_string(),
                    count,
                })
                .collect();
            rs.sort_by(|a, b| b.count.cmp(&a.count).then(a.reason.cmp(&b.reason)));
            ch.failure_reasons = rs;
            ch
        })
        .collect();
    IncidentReport {
        incident: ReportHeader {
            id: v.id.clone(),
            title: v.title.clone(),
            kind: v.kind.clone(),
            level: v.level,
            region: v.region.clone(),
            mode: v.mode.as_str().to_string(),
            plan_id: v.plan_id.clone(),
            raised_at: v.raised_at.clone(),
            filled_at: v.filled_at.clone(),
            stood_down_at: v.stood_down_at.clone(),
        },
        is_final: !v.status.is_active(),
        requirements,
        tiers: tiers.into_values().collect(),
        channels,
        teams,
        rates,
    }
}

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
            outcome(c)
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
    let callouts = page(st, caller, iid, 0, u32::MAX).await?.callouts;
    let events = super::timeline::events(st, iid).await?.events;
    Ok(report(v, &callouts, &events))
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
