//! `/v1/teams`: teams, their rosters (应急值守) and who is on call; `/ical/…` feeds.

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, FieldError, json_body};
use super::extract::Query;
use super::volunteers::{Window, calendar_url, shifts_of, window};
use crate::domain::access::Team;
use crate::domain::ical::{Event, calendar};
use crate::domain::roster::{Override, Roster, RosterDoc};
use crate::domain::text::{self, Lines};
use crate::domain::volunteer::{VolunteerStatus, mask_name};
use crate::store::registry_write::TeamDeleted;
use crate::store::teams::RosterWrite;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

fn team_json(st: &AppState, t: &Team, members: Option<usize>) -> Value {
    let mut v = json!({"id": t.id, "name": t.name, "kind": t.kind, "region": t.region, "status": t.status.as_str()});
    if let Some(m) = members {
        v["members"] = m.into();
        v["calendar_url"] = calendar_url(st, "t", &t.id).into();
    }
    v
}

/// Loads a team in the caller's scope (404 otherwise).
async fn load(st: &AppState, caller: &Caller, id: &str) -> Result<Team, ApiError> {
    match st.ctx.store.team(id).await? {
        Some(t) if st.ctx.seed.regions.contains(&caller.scope, &t.region) => Ok(t),
        _ => Err(ApiError::NotFound(format!("no team {id} in your scope"))),
    }
}

/// Loads a team the caller may change: 403 when it lies outside a coordinator's scope.
async fn load_for_change(st: &AppState, caller: &Caller, id: &str) -> Result<Team, ApiError> {
    caller.require_coordinator()?;
    let t = st
        .ctx
        .store
        .team(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no team {id}")))?;
    caller.require_scope(st, &t.region)?;
    Ok(t)
}

/// `?region=&kind=` filters.
#[derive(Debug, Deserialize)]
pub struct TeamFilter {
    region: Option<String>,
    kind: Option<String>,
}

/// `GET /v1/teams`
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(f): Query<TeamFilter>,
) -> Result<Json<Value>, ApiError> {
    let teams: Vec<Value> = st
        .ctx
        .store
        .all_teams()
        .await?
        .iter()
        .filter(|t| st.ctx.seed.regions.contains(&caller.scope, &t.region))
        .filter(|t| f.region.as_deref().is_none_or(|r| t.region.as_str() == r))
        .filter(|t| f.kind.as_deref().is_none_or(|k| t.kind == k))
        .map(|t| team_json(&st, t, None))
        .collect();
    Ok(Json(json!({ "teams": teams })))
}

/// `GET /v1/teams/{id}`: the team with its members (masked for roles that may not see names).
pub async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let t = load(&st, &caller, &id).await?;
    let ids = st.ctx.store.team_member_ids(&id).await?;
    let vols = st.ctx.store.volunteers(&ids).await?;
    let personal = caller.role.may_see_personal_data();
    let members: Vec<Value> = vols
        .into_iter()
        .flatten()
        .filter_map(|s| s.volunteer)
        .map(|v| json!({"id": v.id, "name": if personal { v.name.clone() } else { mask_name(&v.name) }, "status": v.status.as_str()}))
        .collect();
    let mut out = team_json(&st, &t, Some(members.len()));
    out["member_list"] = members.into();
    Ok(Json(out))
}

/// `POST /v1/teams`: body `id`, `name`, `kind`, `region`.
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require_coordinator()?;
    let obj = json_body(raw)?;
    let s = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or("")
            .to_string()
    };
    let mut errs = Vec::new();
    let id = s("id");
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    {
        errs.push(FieldError::new(
            "id",
            "must be 1 to 64 letters, digits, - or _",
        ));
    }
    let name = s("name");
    if let Err(why) = text::check(&name, Lines::One) {
        errs.push(FieldError::new("name", why));
    } else if name.is_empty() || name.chars().count() > 100 {
        errs.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    let kind = s("kind");
    if !st.ctx.seed.team_kinds.contains(&kind) {
        errs.push(FieldError::new(
            "kind",
            format!(
                "unknown team kind `{kind}`; known: {}",
                st.ctx.seed.team_kinds.join(", ")
            ),
        ));
    }
    let region = st
        .ctx
        .seed
        .regions
        .lookup(&s("region"))
        .map(|r| r.code.clone());
    if region.is_none() {
        errs.push(FieldError::new(
            "region",
            format!("unknown region `{}`", s("region")),
        ));
    }
    let Some(region) = region.filter(|_| errs.is_empty()) else {
        return Err(ApiError::Invalid(errs));
    };
    caller.require_scope(&st, &region)?;
    let t = Team {
        id,
        name,
        kind,
        region,
        status: VolunteerStatus::Active,
    };
    if !st.ctx.store.create_team(&t).await? {
        return Err(ApiError::Conflict(format!("team {} exists", t.id)));
    }
    tracing::info!(team = %t.id, by = %caller.name, "team created");
    Ok((StatusCode::CREATED, Json(team_json(&st, &t, Some(0)))).into_response())
}

/// `PATCH /v1/teams/{id}`: `name` and/or `status` (`active`, `suspended`, `retired`).
pub async fn update(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let old = load_for_change(&st, &caller, &id).await?;
    let obj = json_body(raw)?;
    let mut t = old.clone();
    let mut errs = Vec::new();
    for (k, v) in &obj {
        match (k.as_str(), v.as_str()) {
            ("name", Some(n)) if text::check(n, Lines::One).is_err() => errs.push(FieldError::new(
                "name",
                text::check(n, Lines::One).unwrap_err(),
            )),
            ("name", Some(n)) if !n.trim().is_empty() && n.chars().count() <= 100 => {
                t.name = n.trim().into()
            }
            ("status", Some(s)) if matches!(VolunteerStatus::parse(s), Some(x) if x != VolunteerStatus::Erased) => {
                t.status = VolunteerStatus::parse(s).unwrap_or(t.status)
            }
            ("name", _) => errs.push(FieldError::new("name", "must be 1 to 100 characters")),
            ("status", _) => errs.push(FieldError::new(
                "status",
                "must be active, suspended or retired",
            )),
            _ => errs.push(FieldError::new(
                k,
                "unknown field (name and status can change)",
            )),
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::Invalid(errs));
    }
    if !st.ctx.store.update_team(&t).await? {
        return Err(ApiError::NotFound(format!("no team {id}")));
    }
    Ok(Json(team_json(&st, &t, None)))
}

/// `DELETE /v1/teams/{id}`: removes the team, its roster and its memberships.
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let t = load_for_change(&st, &caller, &id).await?;
    // One script: the team, its roster and member set, the indexes, and the team in every
    // member's own list go together.
    if st.ctx.store.delete_team(&t).await? == TeamDeleted::Gone {
        return Err(ApiError::NotFound(format!("no team {id}")));
    }
    tracing::info!(team = %id, by = %caller.name, "team deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/teams/{id}/roster`
pub async fn roster(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    load(&st, &caller, &id).await?;
    let (ver, doc) = st.ctx.store.roster_doc(&id).await?;
    Ok(Json(
        json!({"team": id, "version": ver, "roster": doc.unwrap_or_default()}),
    ))
}

/// Checks a roster against the team: every member named must be a member of the team (an
/// override's cover may come from any team in scope).
async fn check_roster(st: &AppState, id: &str, doc: RosterDoc) -> Result<Roster, ApiError> {
    let roster = Roster::new(doc).map_err(|p| {
        ApiError::Invalid(p.into_iter().map(|(f, r)| FieldError::new(f, r)).collect())
    })?;
    let members: std::collections::HashSet<String> = st
        .ctx
        .store
        .team_member_ids(id)
        .await?
        .into_iter()
        .collect();
    let mut errs = Vec::new();
    for (i, l) in roster.layers.iter().enumerate() {
        if let Err(why) = text::check(&l.spec.name, Lines::One) {
            errs.push(FieldError::new(format!("layers[{i}].name"), why));
        }
        for m in l.spec.members.iter().filter(|m| !members.contains(*m)) {
            errs.push(FieldError::new(
                format!("layers[{i}].members"),
                format!("`{m}` is not a member of team {id}"),
            ));
        }
    }
    for (i, o) in roster.overrides.iter().enumerate() {
        if let Some(Err(why)) = o.note.as_deref().map(|n| text::check(n, Lines::Many)) {
            errs.push(FieldError::new(format!("overrides[{i}].note"), why));
        }
        if st
            .ctx
            .store
            .volunteer(&o.volunteer)
            .await?
            .and_then(|s| s.volunteer)
            .is_none()
        {
            errs.push(FieldError::new(
                format!("overrides[{i}].volunteer"),
                format!("unknown volunteer `{}`", o.volunteer),
            ));
        }
    }
    if errs.is_empty() {
        Ok(roster)
    } else {
        Err(ApiError::Invalid(errs))
    }
}

async fn write(
    st: &AppState,
    id: &str,
    expected: u64,
    roster: &Roster,
) -> Result<Json<Value>, ApiError> {
    match st.ctx.store.put_roster(id, expected, &roster.doc()).await? {
        RosterWrite::Written(v) => Ok(Json(
            json!({"team": id, "version": v, "roster": roster.doc()}),
        )),
        RosterWrite::Stale(v) => Err(ApiError::Conflict(format!(
            "the roster changed meanwhile (now version {v}); read it again"
        ))),
    }
}

/// `PUT /v1/teams/{id}/roster`: body `{layers, overrides?, version?}`. With `version`, the
/// write fails with 409 if someone changed the roster since.
pub async fn put_roster(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    load_for_change(&st, &caller, &id).await?;
    let mut obj = json_body(raw)?;
    let (current, _) = st.ctx.store.roster_doc(&id).await?;
    let expected = match obj.remove("version") {
        None | Some(Value::Null) => current,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| ApiError::invalid("version", "must be a whole number"))?,
    };
    let doc: RosterDoc = serde_json::from_value(Value::Object(obj)).map_err(|e| ApiError::invalid("body", format!("not a roster ({{layers: [{{id, members, on_call, shift, start, time_zone}}], overrides}}): {e}")))?;
    let roster = check_roster(&st, &id, doc).await?;
    tracing::info!(team = %id, by = %caller.name, layers = roster.layers.len(), "roster replaced");
    write(&st, &id, expected, &roster).await
}

/// `POST /v1/teams/{id}/overrides`: body `{volunteer, start, end, replaces?, note?}`.
pub async fn add_override(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    load_for_change(&st, &caller, &id).await?;
    let mut obj = json_body(raw)?;
    obj.insert(
        "id".into(),
        format!("o-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]).into(),
    );
    let o: Override = serde_json::from_value(Value::Object(obj)).map_err(|e| ApiError::invalid("body", format!("not an override ({{volunteer, start, end, replaces?, note?}} with RFC 3339 times): {e}")))?;
    let (ver, doc) = st.ctx.store.roster_doc(&id).await?;
    let mut doc = doc.unwrap_or_default();
    doc.overrides.push(o);
    let roster = check_roster(&st, &id, doc).await?;
    let Json(v) = write(&st, &id, ver, &roster).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// `DELETE /v1/teams/{id}/overrides/{oid}`
pub async fn delete_override(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, oid)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    load_for_change(&st, &caller, &id).await?;
    let (ver, doc) = st.ctx.store.roster_doc(&id).await?;
    let mut doc = doc.unwrap_or_default();
    let before = doc.overrides.len();
    doc.overrides.retain(|o| o.id != oid);
    if doc.overrides.len() == before {
        return Err(ApiError::NotFound(format!(
            "no override {oid} on team {id}"
        )));
    }
    let roster = Roster::new(doc).map_err(|p| ApiError::Internal(format!("{p:?}")))?;
    write(&st, &id, ver, &roster).await
}

/// Removes a volunteer from a team's roster (erasure, leaving a team).
pub async fn drop_from_roster(st: &AppState, tid: &str, vid: &str) -> Result<(), ApiError> {
    for _ in 0..5 {
        let (ver, Some(mut doc)) = st.ctx.store.roster_doc(tid).await? else {
            return Ok(());
        };
        for l in &mut doc.layers {
            l.members.retain(|m| m != vid);
            l.on_call = l.on_call.min(l.members.len());
        }
        doc.layers.retain(|l| !l.members.is_empty());
        doc.overrides
            .retain(|o| o.volunteer != vid && o.replaces.as_deref() != Some(vid));
        if let RosterWrite::Written(_) = st.ctx.store.put_roster(tid, ver, &doc).await? {
            return Ok(());
        }
    }
    Err(ApiError::Conflict(format!(
        "the roster of {tid} kept changing; try again"
    )))
}

/// `?at=` of on-call questions.
#[derive(Debug, Deserialize)]
pub struct At {
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
#[derive(serde::Serialize)]
struct OnCallView<'a> {
    #[serde(flatten)]
    on: &'a crate::domain::roster::OnCall,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    unavailable_until: Option<Timestamp>,
}

/// One team's on-call answer.
#[derive(serde::Serialize)]
pub struct TeamOnCall<'a> {
    team: &'a str,
    kind: &'a str,
    region: &'a str,
    at: Timestamp,
    has_roster: bool,
    on_call: Vec<OnCallView<'a>>,
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

/// `GET /v1/teams/{id}/on-call?at=TIME`
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

/// `GET /v1/on-call?at=TIME`: every team in scope, members by id (names are in each team's
/// own answer), with their unavailability.
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
    #[derive(serde::Serialize)]
    struct All<'a> {
        at: Timestamp,
        teams: Vec<TeamOnCall<'a>>,
    }
    on_call_of(&st, &caller, &teams, t, false, |teams| {
        serde_json::to_vec(&All { at: t, teams })
    })
    .await
}

/// `GET /ical/{kind}/{id}/{tag}.ics`: a volunteer's (`v`) or team's (`t`) shifts for the next
/// 60 days. The tag is the credential; a wrong one is 404.
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
