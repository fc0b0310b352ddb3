//! `/incidents/{id}`: the incident board — each requirement's progress with a live countdown
//! to the next tier, the same per tier and per team, the responders (sortable, the ones to
//! chase easy to find), delivery health per channel and the timeline; the commander's upgrade
//! and stand-down. The view model is [`super::board_view`]; live updates come over the
//! incident's SSE (`board.js`), the details re-fetched from `/incidents/{id}/details` at most
//! every few seconds.

use super::board_view::{Board, Inputs, Rows, board};
use super::lang::Lang;
use super::session::{Signed, Who};
use super::{PageError, html};
use crate::api::AppState;
use crate::api::callouts::{BOARD, contacts, page_of};
use crate::api::error::ApiError;
use crate::api::incidents::visible;
use crate::domain::incident::Level;
use crate::domain::template::MessageVars;
use crate::seed::Seed;
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "board.html", config = "src/web/askama.toml")]
struct BoardPage {
    who: Option<Who>,
    lang: Lang,
    b: Board,
    id: String,
    /// The commander's forms: levels it may upgrade to (more severe), by number and name;
    /// `None` for a role that may not command or an incident that is over.
    command: Option<Vec<(u8, String)>>,
    csrf: String,
    /// A drill's channels and objectives, in words.
    drill_note: Option<String>,
}

#[derive(Template)]
#[template(path = "board_details.html", config = "src/web/askama.toml")]
struct DetailsPart {
    lang: Lang,
    b: Board,
}

/// The levels an incident at `level` may be upgraded to, in words, the next one first (what
/// the form offers unless someone chooses a greater jump).
fn upgrades(seed: &Seed, kind: &str, level: u8, lang: Lang) -> Vec<(u8, String)> {
    (1..level)
        .rev()
        .map(|l| {
            let w = seed.templates.words(
                lang.locale(),
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
        return Err(ApiError::invalid(
            "confirm",
            signed.lang.t(
                "请勾选确认框以解除事件",
                "tick the box to confirm the stand-down",
            ),
        )
        .into());
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

/// The board of an incident the caller can see (404 outside the scope, as the API): the
/// incident, every callout as the caller may see them, its events, its teams' names.
async fn load(
    st: &AppState,
    signed: &Signed,
    id: &str,
    rows: Rows,
) -> Result<(String, crate::store::incidents::IncidentView, Board), PageError> {
    let t0 = std::time::Instant::now();
    let (iid, v) = visible(st, &signed.caller, id).await?;
    // Names are read for the rows shown only, unless they are sorted by name.
    let named = rows.sort == "name";
    let callouts = page_of(st, &signed.caller, &iid, 0, u32::MAX, named, BOARD)
        .await?
        .callouts;
    let t_callouts = t0.elapsed();
    let events = crate::api::timeline::events(st, &iid).await?.events;
    let t_events = t0.elapsed();
    let mut team_ids: Vec<String> = callouts.iter().filter_map(|c| c.team_id.clone()).collect();
    team_ids.sort();
    team_ids.dedup();
    let teams = crate::api::teams::names(st, &team_ids).await?;
    let inputs = Inputs {
        callouts: &callouts,
        events: &events,
        teams: &teams,
    };
    let mut b = board(
        &st.ctx.seed,
        &v,
        &inputs,
        rows,
        st.ctx.clock.now_ms(),
        signed.lang,
    );
    let t_board = t0.elapsed();
    if !named {
        let ids: Vec<String> = b
            .responders
            .iter()
            .map(|r| r.volunteer_id.clone())
            .collect();
        let names = contacts(st, &signed.caller, &ids).await?;
        for (r, (name, _)) in b.responders.iter_mut().zip(names) {
            r.name = name;
        }
    }
    tracing::debug!(
        incident = %iid,
        callouts = callouts.len(),
        callouts_ms = t_callouts.as_secs_f64() * 1e3,
        events_ms = (t_events - t_callouts).as_secs_f64() * 1e3,
        build_ms = (t_board - t_events).as_secs_f64() * 1e3,
        names_ms = (t0.elapsed() - t_board).as_secs_f64() * 1e3,
        "board loaded"
    );
    Ok((iid.to_string(), v, b))
}

/// `GET /incidents/{id}`: the board (404 outside the scope, as the API).
pub async fn show(
    State(st): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(rows): Query<Rows>,
) -> Result<Response, PageError> {
    let (id, v, b) = load(&st, &signed, &id, rows).await?;
    // A trainer stands its drill down (no upgrades: those are the commanders').
    let role = signed.caller.role;
    let trainer_drill = role == crate::domain::access::Role::Trainer
        && v.mode == crate::domain::incident::Mode::Drill;
    let command = ((role.may_command() || trainer_drill) && v.status.is_active()).then(|| {
        if role.may_command() {
            upgrades(&st.ctx.seed, &v.kind, v.level, signed.lang)
        } else {
            vec![]
        }
    });
    Ok(html(&BoardPage {
        who: Some(signed.who(&st)),
        lang: signed.lang,
        b,
        id,
        command,
        csrf: signed.csrf.clone(),
        drill_note: drill_note(&v, signed.lang),
    }))
}

/// A drill's channels and objectives in a line, for the board's header.
fn drill_note(v: &crate::store::incidents::IncidentView, lang: Lang) -> Option<String> {
    let channels = match v.channels.as_deref()? {
        "simulated" => lang.t(
            "模拟渠道：全部消息发往模拟器",
            "Simulated channels: every message goes to the simulator",
        ),
        _ => lang.t(
            "真实渠道：消息标注【演练】",
            "Real channels: messages marked [DRILL]",
        ),
    };
    Some(match &v.objectives {
        Some(o) => format!("{channels} · {}{o}", lang.t("目标：", "objectives: ")),
        None => channels.to_string(),
    })
}

/// `GET /incidents/{id}/details`: the board's tiers, teams, delivery health, timeline and
/// responders alone, for its script to swap in as events arrive.
pub async fn details(
    State(st): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(rows): Query<Rows>,
) -> Result<Response, PageError> {
    let (_, _, b) = load(&st, &signed, &id, rows).await?;
    Ok(html(&DetailsPart {
        lang: signed.lang,
        b,
    }))
}

/// One step's candidates in words.
pub struct StepRows {
    /// The requirement's team kind by name, the step (1-based) and its tier.
    pub heading: String,
    /// The teams searched, by name.
    pub teams: String,
    /// (name, team, via, channel, state) of each one called.
    pub called: Vec<[String; 5]>,
    /// (name, team, reason in words) of each one left out.
    pub excluded: Vec<[String; 3]>,
}

#[derive(Template)]
#[template(path = "candidates.html", config = "src/web/askama.toml")]
struct CandidatesPage {
    who: Option<Who>,
    lang: Lang,
    id: String,
    title: String,
    steps: Vec<StepRows>,
}

/// `GET /incidents/{id}/candidates`: per requirement and step, who was called and who was
/// left out and why — the API's candidates, names masked per role.
pub async fn candidates(
    State(st): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let lang = signed.lang;
    let (iid, v) = visible(&st, &signed.caller, &id).await?;
    let c = crate::api::candidates::of(&st, &signed.caller, &iid).await?;
    let mut team_ids: Vec<String> = c
        .requirements
        .iter()
        .flat_map(|s| s.teams.clone())
        .collect();
    team_ids.sort();
    team_ids.dedup();
    let names = crate::api::teams::names(&st, &team_ids).await?;
    let team = |t: &str| {
        names
            .get(t)
            .map(|n| n.0.clone())
            .unwrap_or_else(|| t.to_string())
    };
    let kind_of = |req: &str| {
        let k = v
            .requirements
            .iter()
            .find(|r| r.id == req)
            .map(|r| r.team_kind.as_str())
            .unwrap_or(req);
        super::lang::team_kind(&st.ctx.seed, lang, k)
    };
    let steps = c
        .requirements
        .iter()
        .map(|s| StepRows {
            heading: format!(
                "{} · {} {} · {}",
                kind_of(&s.requirement_id),
                lang.t("梯次", "step"),
                s.step + 1,
                super::board_view::tier_words(Some(s.tier), lang)
            ),
            teams: s
                .teams
                .iter()
                .map(|t| team(t))
                .collect::<Vec<_>>()
                .join(", "),
            called: s
                .called
                .iter()
                .map(|x| {
                    [
                        x.volunteer_name.clone(),
                        team(&x.team),
                        x.via.clone(),
                        x.channel.clone(),
                        super::board_view::state_words(x.state, lang).to_string(),
                    ]
                })
                .collect(),
            excluded: s
                .excluded
                .iter()
                .map(|x| [x.volunteer_name.clone(), team(&x.team), x.detail.clone()])
                .collect(),
        })
        .collect();
    Ok(html(&CandidatesPage {
        who: Some(signed.who(&st)),
        lang,
        id: iid.to_string(),
        title: v.title.clone(),
        steps,
    }))
}
