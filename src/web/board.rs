//! `/incidents/{id}`: the incident board, as the server renders it — each requirement's
//! progress (needed, accepted, arrived, standby, waiting, declined, silent; the step, tier and
//! the time the next tier is called; a shortfall flagged), and the responders with their
//! state. Built from the API's own models ([`IncidentView`], [`CalloutPage`]), masked per
//! role as the API masks them. Live updates over SSE are the next part.

use super::incidents::{Card, card};
use super::session::{Signed, Who};
use super::{PageError, html};
use crate::api::AppState;
use crate::api::callouts::{CalloutPage, page};
use crate::api::error::ApiError;
use crate::api::incidents::visible;
use crate::domain::callout::CalloutState;
use crate::domain::incident::Level;
use crate::domain::region::Tier;
use crate::domain::template::MessageVars;
use crate::seed::Seed;
use crate::store::incidents::IncidentView;
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

/// The most responders a board lists (the counts cover everyone).
pub const MAX_ROWS: u32 = 2000;

/// The board of one incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    /// The incident as its card shows it.
    pub card: Card,
    /// The plan in force.
    pub plan: String,
    /// Per requirement.
    pub requirements: Vec<Progress>,
    /// Callouts in all.
    pub total: usize,
    /// The first [`MAX_ROWS`] of them.
    pub responders: Vec<Responder>,
}

/// One requirement's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The requirement's id (the live updates find its row by it).
    pub id: String,
    /// The team kind by name.
    pub team_kind: String,
    /// Needed.
    pub needed: u32,
    /// Accepted (arrived included).
    pub accepted: u32,
    /// Arrived on site.
    pub arrived: u32,
    /// On standby.
    pub standby: u32,
    /// Called and not yet answered (not yet sent, or sent).
    pub waiting: u32,
    /// Declined.
    pub declined: u32,
    /// Silent after their step's wait.
    pub silent: u32,
    /// The step reached (0 = first).
    pub step: u32,
    /// Its tier in words.
    pub tier: &'static str,
    /// When the next tier is called, if a wait is running.
    pub next_step_at: Option<String>,
    /// The ladder ran out short.
    pub short: bool,
}

/// One responder row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responder {
    /// Name (masked per role).
    pub name: String,
    /// The team kind they were called for, by name.
    pub requirement: String,
    /// The tier that called them.
    pub tier: &'static str,
    /// `webhook`, `sms:GATEWAY`.
    pub channel: String,
    /// The state's wire name (for styling).
    pub state: &'static str,
    /// The state in words.
    pub state_text: &'static str,
    /// Times, `HH:MM:SS` (UTC), or "".
    pub called: String,
    /// Answered at.
    pub answered: String,
    /// Arrived at.
    pub arrived: String,
}

/// A tier in words.
pub fn tier_words(t: Option<Tier>) -> &'static str {
    match t {
        Some(Tier::Township) => "乡镇 township",
        Some(Tier::County) => "县区 county",
        Some(Tier::City) => "市 city",
        None => "",
    }
}

/// A callout state in words.
pub fn state_words(s: Option<CalloutState>) -> &'static str {
    use CalloutState::*;
    match s {
        Some(Pending) => "待发送 pending",
        Some(Notified) => "已通知 notified",
        Some(Accepted) => "已接受 accepted",
        Some(Standby) => "候补 standby",
        Some(Declined) => "已拒绝 declined",
        Some(Silent) => "未回复 silent",
        Some(Withdrawn) => "已撤回 withdrawn",
        Some(Arrived) => "已到达 arrived",
        Some(StoodDown) => "已解除 stood down",
        Some(Failed) => "发送失败 failed",
        None => "",
    }
}

/// `HH:MM:SS` of an RFC 3339 time, or "".
fn clock_time(t: &Option<String>) -> String {
    t.as_deref()
        .and_then(|t| t.split('T').nth(1))
        .map(|t| t.chars().take(8).collect())
        .unwrap_or_default()
}

/// The board of `v` with the first callouts of `page`.
pub fn board(seed: &Seed, v: &IncidentView, page: &CalloutPage, now_ms: i64) -> Board {
    let team_kind = |k: &str| {
        seed.templates
            .words(
                "zh-CN",
                &MessageVars {
                    team_kind: k,
                    ..Default::default()
                },
            )
            .team_kind
    };
    let kind_of = |req: &str| {
        v.requirements
            .iter()
            .find(|r| r.id == req)
            .map(|r| team_kind(&r.team_kind))
            .unwrap_or_else(|| req.to_string())
    };
    Board {
        card: card(seed, v, now_ms),
        plan: v.plan_id.clone(),
        requirements: v
            .requirements
            .iter()
            .map(|r| Progress {
                id: r.id.clone(),
                team_kind: team_kind(&r.team_kind),
                needed: r.needed,
                accepted: r.accepted,
                arrived: r.arrived,
                standby: r.standby,
                waiting: r.pending + r.notified,
                declined: r.declined,
                silent: r.silent,
                step: r.step,
                tier: tier_words(Some(r.tier)),
                next_step_at: r.next_step_at.clone(),
                short: r.short,
            })
            .collect(),
        total: page.total as usize,
        responders: page
            .callouts
            .iter()
            .map(|c| Responder {
                name: c.volunteer_name.clone(),
                requirement: kind_of(&c.requirement_id),
                tier: tier_words(c.tier),
                channel: c.channel.clone(),
                state: c.state.map_or("", CalloutState::as_str),
                state_text: state_words(c.state),
                called: clock_time(&c.created_at),
                answered: clock_time(&c.answered_at),
                arrived: clock_time(&c.arrived_at),
            })
            .collect(),
    }
}

#[derive(Template)]
#[template(path = "board.html", config = "src/web/askama.toml")]
struct BoardPage {
    who: Option<Who>,
    b: Board,
    id: String,
    /// The commander's forms: levels it may upgrade to (more severe), by number and name;
    /// `None` for a role that may not command or an incident that is over.
    command: Option<Vec<(u8, String)>>,
    csrf: String,
}

/// The levels an incident at `level` may be upgraded to, in words, the next one first (what
/// the form offers unless someone chooses a greater jump).
fn upgrades(seed: &Seed, kind: &str, level: u8) -> Vec<(u8, String)> {
    (1..level)
        .rev()
        .map(|l| {
            let w = seed.templates.words(
                "zh-CN",
                &MessageVars {
                    kind,
                    level: l,
                    ..Default::default()
                },
            );
            (l, w.level)
        })
        .collect()
}

/// The upgrade form.
#[derive(Debug, Deserialize)]
pub struct UpgradeForm {
    #[serde(default)]
    csrf: String,
    level: i64,
}

/// `POST /incidents/{id}/level` (commanders, from the board): the API's upgrade, then back
/// to the board.
pub async fn upgrade(
    State(st): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(f): Form<UpgradeForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&f.csrf)?;
    let level = Level::new(f.level).map_err(|e| ApiError::invalid("level", e))?;
    crate::api::level::upgrade_by(&st, &signed.caller, &id, level).await?;
    Ok(Redirect::to(&format!("/incidents/{id}")).into_response())
}

/// The stand-down form: a confirmation box must be ticked.
#[derive(Debug, Deserialize)]
pub struct StandDownForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /incidents/{id}/stand-down` (commanders, from the board, confirmed): the API's
/// stand-down, then back to the board.
pub async fn stand_down(
    State(st): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(f): Form<StandDownForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&f.csrf)?;
    if f.confirm != "yes" {
        return Err(ApiError::invalid("confirm", "tick the box to confirm the stand-down").into());
    }
    crate::api::incidents::stand_down_by(&st, &signed.caller, &id).await?;
    Ok(Redirect::to(&format!("/incidents/{id}")).into_response())
}

/// `GET /incidents/{id}/events`: the incident's Server-Sent Events for the board — the API's
/// own stream (`api::events::sse`: snapshot, every change, progress; `Last-Event-ID`
/// resumes), for the signed-in session instead of a bearer token.
pub async fn events(
    State(st): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    Ok(crate::api::events::sse(State(st), signed.caller, Path(id), headers).await?)
}

/// `GET /incidents/{id}`: the board (404 outside the scope, as the API).
pub async fn show(
    State(st): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (iid, v) = visible(&st, &signed.caller, &id).await?;
    let p = page(&st, &signed.caller, &iid, 0, MAX_ROWS).await?;
    let b = board(&st.ctx.seed, &v, &p, st.ctx.clock.now_ms());
    let command = (signed.caller.role.may_command() && v.status.is_active())
        .then(|| upgrades(&st.ctx.seed, &v.kind, v.level));
    Ok(html(&BoardPage {
        who: Some(signed.who(&st)),
        b,
        id: iid.to_string(),
        command,
        csrf: signed.csrf.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_words() {
        assert_eq!(
            clock_time(&Some("2026-11-29T15:04:05.123Z".into())),
            "15:04:05"
        );
        assert_eq!(clock_time(&None), "");
        assert_eq!(state_words(Some(CalloutState::Silent)), "未回复 silent");
        assert_eq!(tier_words(Some(Tier::County)), "县区 county");
    }
}
