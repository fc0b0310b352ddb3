//! Who is on call: one team (`/v1/teams/{id}/on-call`), every team in scope (`/v1/on-call`),
//! and the iCal feeds (`/ical/…`) volunteers' and teams' calendars subscribe to.

use super::AppState;
use super::auth::Caller;
use super::availability::{Window, shifts_of, window};
use super::error::ApiError;
use super::extract::Query;
use super::teams::load;
use crate::domain::access::Team;
use crate::domain::ical::{Event, calendar};
use crate::domain::volunteer::mask_name;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `?at=` of on-call questions.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct At {
    /// The instant (RFC 3339); now by default.
    #[param(format = DateTime)]
    at: Option<String>,
}

fn at(st: &AppState, a: &At) -> Result<Timestamp, ApiError> {
    match &a.at {
        Some(t) => t
            .parse()
            .map_err(|_| ApiError::invalid("at", format!("`{t}` is not an RFC 3339 time"))),
        None => {
            Ok(Timestamp::from_millisecond(st.ctx.clock.now_ms())
                .unwrap_or_else(|_| Timestamp::now()))
        }
    }
}

/// One member on call, as answered.
#[derive(Serialize, ToSchema)]
pub struct OnCallView<'a> {
    /// Who, and why they are on call.
    #[serde(flatten)]
    on: &'a crate::domain::roster::OnCall,
    /// Their name (on a team's own answer; masked unless the role may see personal data).
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// Their registry status (on a team's own answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    /// When set, they said they cannot be called until then.
    #[schema(value_type = Option<String>, format = DateTime)]
    unavailable_until: Option<Timestamp>,
}

/// One team's on-call answer.
#[derive(Serialize, ToSchema)]
pub struct TeamOnCall<'a> {
    /// The team.
    team: &'a str,
    /// Its kind.
    kind: &'a str,
    /// Its region.
    region: &'a str,
    /// The instant asked about.
    #[schema(value_type = String, format = DateTime)]
    at: Timestamp,
    /// Without a roster every member is on call.
    has_roster: bool,
    /// Who is on call.
    on_call: Vec<OnCallView<'a>>,
}

/// Every team in scope at one instant.
#[derive(Serialize, ToSchema)]
pub struct AllOnCall<'a> {
    /// The instant asked about.
    #[schema(value_type = String, format = DateTime)]
    at: Timestamp,
    /// Each team in scope.
    teams: Vec<TeamOnCall<'a>>,
}

/// Who is on call in each of `teams` at `t`, with each member's unavailability at that
/// instant; rendered to JSON text by `render`.
pub async fn on_call_of(
    st: &AppState,
    caller: &Caller,
    teams: &[Team],
    t: Timestamp,
    names: bool,
    render: impl FnOnce(Vec<TeamOnCall<'_>>) -> Result<Vec<u8>, serde_json::Error>,
) -> Result<Response, ApiError> {
    let ids: Vec<String> = teams.iter().map(|t| t.id.clone()).collect();
    let rosters = st.ctx.rosters.get(&st.ctx.store, &ids).await?;
    // A team without a roster has every member on call (as selection treats it).
    let bare: Vec<String> = ids
        .iter()
        .zip(&rosters)
        .filter(|(_, r)| r.is_none())
        .map(|(i, _)| i.clone())
        .collect();
    let mut bare_members = st.ctx.store.members_of(&bare).await?.into_iter();
    let per_team: Vec<Vec<crate::domain::roster::OnCall>> = rosters
        .iter()
        .map(|r| match r {
            Some(r) => r.on_call_at(t),
            None => bare_members
                .next()
                .unwrap_or_default()
                .into_iter()
                .map(|v| crate::domain::roster::OnCall {
                    volunteer: v,
                    source: crate::domain::roster::Source::NoRoster,
                })
                .collect(),
        })
        .collect();
    let vids: Vec<String> = per_team
        .iter()
        .flatten()
        .map(|o| o.volunteer.clone())
        .collect();
    // With names, every member's record is read. Without (the city-wide listing), only those
    // the unavailability index names are, which keeps a 10,000-member answer cheap.
    let facts = if names {
        st.ctx.store.on_call_facts(&vids).await?
    } else {
        let maybe: std::collections::HashSet<String> = st
            .ctx
            .store
            .maybe_unavailable(t.as_millisecond())
            .await?
            .into_iter()
            .collect();
        let look: Vec<String> = vids
            .iter()
            .filter(|v| maybe.contains(*v))
            .cloned()
            .collect();
        let found: std::collections::HashMap<String, Option<String>> = look
            .iter()
            .cloned()
            .zip(
                st.ctx
                    .store
                    .on_call_facts(&look)
                    .await?
                    .into_iter()
                    .map(|f| f.2),
            )
            .collect();
        vids.iter()
            .map(|v| (None, None, found.get(v).cloned().flatten()))
            .collect()
    };
    let personal = caller.role.may_see_personal_data();
    let mut it = facts.into_iter();
    let mut out = Vec::with_capacity(teams.len());
    for ((team, roster), on) in teams.iter().zip(&rosters).zip(&per_team) {
        let on_call = on
            .iter()
            .map(|o| {
                let (name, status, unavail) = it.next().unwrap_or_default();
                let away = unavail
                    .and_then(|u| {
                        serde_json::from_str::<Vec<crate::domain::volunteer::Unavailable>>(&u).ok()
                    })
                    .and_then(|us| {
                        us.into_iter()
                            .find(|u| u.from <= t && t < u.until)
                            .map(|u| u.until)
                    });
                OnCallView {
                    on: o,
                    name: name.map(|n| if personal { n } else { mask_name(&n) }),
                    status,
                    unavailable_until: away,
                }
            })
            .collect();
        out.push(TeamOnCall {
            team: &team.id,
            kind: &team.kind,
            region: team.region.as_str(),
            at: t,
            has_roster: roster.is_some(),
            on_call,
        });
    }
    let body = render(out).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Who is on call in a team at an instant, with the layer or override that put them there
/// and any unavailability.
#[utoipa::path(get, path = "/v1/teams/{id}/on-call", tag = "teams", security(("bearer" = [])),
    params(("id" = String, Path, description = "the team"), At),
    responses(
        (status = 200, description = "who is on call", body = TeamOnCall),
        (status = 404, description = "no such team in this token's scope"),
        (status = 422, description = "`at` is not RFC 3339"),
    ))]
pub async fn on_call(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(a): Query<At>,
) -> Result<Response, ApiError> {
    let team = load(&st, &caller, &id).await?;
    let t = at(&st, &a)?;
    on_call_of(&st, &caller, &[team], t, true, |v| {
        serde_json::to_vec(&v.first())
    })
    .await
}

/// Who is on call in every team in scope: members by id (names are in each team's own
/// answer), with their unavailability.
#[utoipa::path(get, path = "/v1/on-call", tag = "teams", security(("bearer" = [])),
    params(At),
    responses(
        (status = 200, description = "who is on call, team by team", body = AllOnCall),
        (status = 422, description = "`at` is not RFC 3339"),
    ))]
pub async fn on_call_all(
    State(st): State<AppState>,
    caller: Caller,
    Query(a): Query<At>,
) -> Result<Response, ApiError> {
    let t = at(&st, &a)?;
    let teams: Vec<Team> = st
        .ctx
        .store
        .all_teams()
        .await?
        .into_iter()
        .filter(|x| st.ctx.seed.regions.contains(&caller.scope, &x.region))
        .collect();
    on_call_of(&st, &caller, &teams, t, false, |teams| {
        serde_json::to_vec(&AllOnCall { at: t, teams })
    })
    .await
}

/// The iCalendar feed of a volunteer's (`v`) or team's (`t`) shifts for the next 60 days.
/// The file name (`TAG.ics`, from `calendar_url`) is the credential; a wrong one is 404.
#[utoipa::path(get, path = "/ical/{kind}/{id}/{file}", tag = "teams",
    params(
        ("kind" = String, Path, description = "`v` (volunteer) or `t` (team)"),
        ("id" = String, Path, description = "the volunteer or team"),
        ("file" = String, Path, description = "`TAG.ics`"),
    ),
    responses(
        (status = 200, description = "the calendar", content_type = "text/calendar", body = String),
        (status = 404, description = "no such calendar"),
    ))]
pub async fn feed(
    State(st): State<AppState>,
    Path((kind, id, file)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let nf = || ApiError::NotFound("no such calendar".into());
    let tag = file.strip_suffix(".ics").ok_or_else(nf)?;
    if !matches!(kind.as_str(), "v" | "t")
        || !st.ctx.signer.check_feed_tag(&format!("{kind}:{id}"), tag)
    {
        return Err(nf());
    }
    let w = Window {
        from: None,
        days: Some(60),
    };
    let (from, to) = window(&st, &w)?;
    let now = from;
    let tz_name = crate::domain::roster::DEFAULT_TIME_ZONE;
    let (name, shifts, tz_name) = if kind == "v" {
        let s = st.ctx.store.volunteer(&id).await?.ok_or_else(nf)?;
        let v = s.volunteer.ok_or_else(nf)?;
        let shifts = shifts_of(&st, &v, from, to).await?;
        (
            format!("{} 值班 on call", mask_name(&v.name)),
            shifts,
            tz_name.to_string(),
        )
    } else {
        let t = st.ctx.store.team(&id).await?.ok_or_else(nf)?;
        let r = st
            .ctx
            .rosters
            .get(&st.ctx.store, std::slice::from_ref(&id))
            .await?
            .pop()
            .flatten();
        let tz = r
            .as_ref()
            .and_then(|r| r.layers.first())
            .map(|l| l.spec.time_zone.clone())
            .unwrap_or_else(|| tz_name.into());
        let shifts = r
            .map(|r| r.shifts(from, to, 5000))
            .unwrap_or_default()
            .into_iter()
            .map(|s| (id.clone(), s))
            .collect();
        (format!("{} 值班表 on-call", t.name), shifts, tz)
    };
    let tz = jiff::tz::TimeZone::get(&tz_name).unwrap_or(jiff::tz::TimeZone::UTC);
    let vids: Vec<String> = shifts.iter().map(|(_, s)| s.volunteer.clone()).collect();
    let names = st.ctx.store.volunteer_contacts(&vids).await?;
    let events: Vec<Event> = shifts
        .iter()
        .zip(names)
        .map(|((team, s), (n, _))| Event {
            uid: format!(
                "{}-{}-{}-{}@muster",
                s.volunteer,
                team,
                s.via.replace(':', "-"),
                s.start.as_second()
            ),
            start: s.start,
            end: s.end,
            summary: format!(
                "值班 On call: {} ({team})",
                mask_name(n.as_deref().unwrap_or("?"))
            ),
            description: format!("team {team}; {}", s.via),
        })
        .collect();
    let body = calendar(&name, &tz_name, &tz, now, &events);
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}

/// Who is on call in a team now, and the next hand-off: when that changes and who is on call
/// from then (the command centre's team page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// The team has a roster (without one every member is on call).
    pub has_roster: bool,
    /// Volunteer ids on call at the instant asked.
    pub now: Vec<String>,
    /// The next change within a fortnight, and who is on call from then.
    pub next: Option<(Timestamp, Vec<String>)>,
}

/// The [`Watch`] of team `team` at `t`.
pub async fn watch(st: &AppState, team: &str, t: Timestamp) -> Result<Watch, ApiError> {
    let ids = [team.to_string()];
    let roster = st
        .ctx
        .rosters
        .get(&st.ctx.store, &ids)
        .await?
        .into_iter()
        .next()
        .flatten();
    let Some(r) = roster else {
        return Ok(Watch {
            has_roster: false,
            now: st.ctx.store.team_member_ids(team).await?,
            next: None,
        });
    };
    let ids_at =
        |at| -> Vec<String> { r.on_call_at(at).into_iter().map(|o| o.volunteer).collect() };
    let horizon = t + jiff::SignedDuration::from_hours(14 * 24);
    let shifts = r.shifts(t, horizon, 400);
    let next_at = shifts
        .iter()
        .flat_map(|s| [s.start, s.end])
        .filter(|b| *b > t && *b < horizon)
        .min();
    Ok(Watch {
        has_roster: true,
        now: ids_at(t),
        next: next_at.map(|at| (at, ids_at(at))),
    })
}
