//! Who is called for a requirement at one step of its escalation ladder.
//!
//! The step's scope (township, county or city, relative to the incident's region) gives the
//! teams: every active team of the requirement's kind in that region and below, closest to the
//! incident first. Of each team, the step's pool gives the candidates: the members on call now
//! (its roster's layers and overrides; every member when the team has no roster), or all
//! members. Volunteers this incident already called are skipped. Each candidate is checked for
//! eligibility ([`crate::domain::eligibility`]): status,
//! qualification and insurance on the incident's day, unavailability, rest after a live
//! deployment, and acceptance on another live incident. Everyone looked at and left out gets a
//! reason, which the fan-out stores for `GET /v1/incidents/{id}/candidates`.

use super::Ctx;
use crate::domain::eligibility::{Exclusion, check_registry};
use crate::domain::incident::Mode;
use crate::domain::ladder::{Pool, distance, scope_region};
use crate::domain::plan::Requirement;
use crate::domain::region::{RegionCode, Tier};
use crate::store::Result;
use crate::store::engage::{engages, parse_deployment};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// One volunteer to call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Candidate {
    /// Volunteer id.
    pub volunteer_id: String,
    /// The team they are called through.
    pub team: String,
    /// Why they are on call (`layer:ID`, `override:ID`, `no_roster`).
    pub via: String,
    /// The channel to try first.
    pub channel: String,
}

/// One volunteer left out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Excluded {
    /// Volunteer id.
    pub volunteer_id: String,
    /// The team they were looked at through.
    pub team: String,
    /// Stable reason code.
    pub reason: String,
    /// A sentence for people.
    pub detail: String,
}

/// The outcome of selection for one requirement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Selection {
    /// The tier of the region whose teams were used.
    pub tier: Tier,
    /// That region.
    pub region: Option<String>,
    /// The teams used.
    pub teams: Vec<String>,
    /// Who to call, in a stable order.
    pub candidates: Vec<Candidate>,
    /// Who was looked at and left out, with the reason.
    pub excluded: Vec<Excluded>,
}

/// What selection is asked.
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    /// The incident's region.
    pub region: &'a RegionCode,
    /// The step's scope.
    pub scope: Tier,
    /// The step's pool.
    pub pool: Pool,
    /// The requirement.
    pub requirement: &'a Requirement,
    /// Live or drill.
    pub mode: Mode,
    /// A drill that may call volunteers already accepted on a live incident.
    pub include_deployed: bool,
    /// The incident being selected for (its own deployments never exclude anyone).
    pub incident: &'a str,
    /// Now (ms).
    pub now_ms: i64,
}

/// Who a step looks at: the teams of its scope and, of each, the members of its pool.
#[derive(Debug, Clone)]
pub struct Considered {
    /// The tier of the region whose teams were used.
    pub tier: Tier,
    /// That region.
    pub region: Option<String>,
    /// The teams used, closest to the incident first.
    pub teams: Vec<String>,
    /// (volunteer, team, via) to check for eligibility, in calling order (some may have been
    /// called already: [`check`] leaves them out).
    pub looked: Vec<(String, String, String)>,
    /// Members left out for not being on call.
    pub not_on_call: Vec<Excluded>,
}

/// Selects candidates for one requirement: [`consider`], then [`check`] of all of it.
pub async fn select(ctx: &Ctx, ask: &Ask<'_>) -> Result<Selection> {
    let pool = consider(ctx, ask).await?;
    let (candidates, mut excluded) = check(ctx, ask, &pool.looked).await?;
    let mut all = pool.not_on_call;
    all.append(&mut excluded);
    Ok(Selection {
        tier: pool.tier,
        region: pool.region,
        teams: pool.teams,
        candidates,
        excluded: all,
    })
}

/// The teams of the step's scope and the members of its pool, closest to the incident first.
pub async fn consider(ctx: &Ctx, ask: &Ask<'_>) -> Result<Considered> {
    let tree = &ctx.seed.regions;
    let top = scope_region(tree, ask.region, ask.scope);
    let regions = tree.subtree(&top);
    let codes: Vec<&RegionCode> = regions.iter().map(|r| &r.code).collect();
    let mut teams: Vec<_> = ctx
        .store
        .teams_in_regions(&codes)
        .await?
        .into_iter()
        .flatten()
        .filter(|t| t.kind == ask.requirement.team_kind && t.status.as_str() == "active")
        .collect();
    teams.sort_by_key(|t| (distance(tree, ask.region, &t.region), t.id.clone()));
    let mut pool = Considered {
        tier: ask.scope,
        region: Some(top.to_string()),
        teams: teams.iter().map(|t| t.id.clone()).collect(),
        looked: vec![],
        not_on_call: vec![],
    };
    let now = Timestamp::from_millisecond(ask.now_ms).unwrap_or_else(|_| Timestamp::now());
    let rosters = ctx.rosters.get(&ctx.store, &pool.teams).await?;
    let mut seen = HashSet::new();
    let members_of = ctx.store.members_of(&pool.teams).await?;
    for ((t, roster), members) in teams.iter().zip(rosters).zip(members_of) {
        let on_call: Vec<(String, String)> = match roster.filter(|_| ask.pool == Pool::OnCall) {
            // A rotation layer names members; one who has left the team since is not called
            // from it (an override's cover may come from any team, by design).
            Some(r) => r
                .on_call_at(now)
                .into_iter()
                .filter(|o| {
                    !matches!(o.source, crate::domain::roster::Source::Layer { .. })
                        || members.binary_search(&o.volunteer).is_ok()
                })
                .map(|o| {
                    let via = crate::domain::roster::via(&o.source);
                    (o.volunteer, via)
                })
                .collect(),
            None if ask.pool == Pool::All => {
                members.iter().map(|m| (m.clone(), "all".into())).collect()
            }
            None => members
                .iter()
                .map(|m| (m.clone(), "no_roster".into()))
                .collect(),
        };
        for (v, via) in on_call {
            if seen.insert(v.clone()) {
                pool.looked.push((v, t.id.clone(), via));
            }
        }
        // Looked up before it is copied: in a team without a roster everyone is on call,
        // and a team of 100,000 would otherwise copy each id once more for nothing.
        for m in members {
            if !seen.contains(&m) {
                pool.not_on_call
                    .push(excluded(&m, &t.id, &Exclusion::NotOnCall));
                seen.insert(m);
            }
        }
    }
    Ok(pool)
}

/// Checks `looked` (part of [`Considered`]) for eligibility: who to call, in order, and who is
/// left out with the reason. Volunteers this incident already called are dropped first, with
/// no reason (they are not called twice).
pub async fn check(
    ctx: &Ctx,
    ask: &Ask<'_>,
    looked: &[(String, String, String)],
) -> Result<(Vec<Candidate>, Vec<Excluded>)> {
    let now = Timestamp::from_millisecond(ask.now_ms).unwrap_or_else(|_| Timestamp::now());
    let all: Vec<String> = looked.iter().map(|(v, _, _)| v.clone()).collect();
    let fresh = not_called(ctx, ask, &all).await?;
    let looked: Vec<&(String, String, String)> = looked
        .iter()
        .zip(&fresh)
        .filter(|(_, f)| **f)
        .map(|(l, _)| l)
        .collect();
    let ids: Vec<String> = looked.iter().map(|(v, _, _)| v.clone()).collect();
    let (facts, busy) =
        futures::try_join!(ctx.store.eligibility_facts(&ids), busy(ctx, &ids, ask, now))?;
    // Checked at start-up (`Config::problems`).
    let tz = TimeZone::get(&ctx.config.eligibility.time_zone).unwrap_or(TimeZone::UTC);
    let today = tz.to_datetime(now).date();
    let mut candidates = Vec::with_capacity(looked.len());
    let mut left_out = Vec::new();
    for ((v, team, via), f) in looked.iter().zip(facts) {
        let verdict = match &f {
            None => Err(Exclusion::Status(
                crate::domain::volunteer::VolunteerStatus::Erased,
            )),
            Some(f) => check_registry(
                &f.standing(),
                &f.unavailable,
                ask.requirement.qualification.as_deref(),
                today,
                now,
            )
            .and_then(|()| match busy.get(v) {
                Some(e) => Err(e.clone()),
                None => Ok(()),
            })
            .and(if f.webhook || (f.sms && !ctx.sms.is_empty()) {
                Ok(())
            } else {
                Err(Exclusion::NoChannel)
            }),
        };
        match verdict {
            Ok(()) => candidates.push(Candidate {
                volunteer_id: v.clone(),
                team: team.clone(),
                via: via.clone(),
                channel: match &f {
                    Some(f) if f.webhook => "webhook",
                    _ => "sms",
                }
                .into(),
            }),
            Err(e) => left_out.push(excluded(v, team, &e)),
        }
    }
    Ok((candidates, left_out))
}

/// For each volunteer, whether this incident has not called them yet.
pub async fn not_called(ctx: &Ctx, ask: &Ask<'_>, ids: &[String]) -> Result<Vec<bool>> {
    match crate::domain::incident::IncidentId::parse(ask.incident) {
        Some(id) if !ids.is_empty() => Ok(ctx
            .store
            .called_numbers(&id, ids)
            .await?
            .into_iter()
            .map(|n| n.is_none())
            .collect()),
        _ => Ok(vec![true; ids.len()]),
    }
}

fn excluded(v: &str, team: &str, e: &Exclusion) -> Excluded {
    Excluded {
        volunteer_id: v.to_string(),
        team: team.to_string(),
        reason: e.code().to_string(),
        detail: e.detail(),
    }
}

/// Volunteers engaged on another live incident, or resting after one, with the exclusion.
/// Deployment records that no longer matter are forgotten on the way.
async fn busy(
    ctx: &Ctx,
    ids: &[String],
    ask: &Ask<'_>,
    now: Timestamp,
) -> Result<HashMap<String, Exclusion>> {
    let deps = ctx.store.deployments(ids).await?;
    let mut pairs: Vec<(usize, String, u32, &str)> = Vec::new();
    for (i, d) in deps.iter().enumerate() {
        for (inc, value) in d {
            if inc != ask.incident
                && let Some((n, _)) = parse_deployment(value)
            {
                pairs.push((i, inc.clone(), n, value));
            }
        }
    }
    let mut out = HashMap::new();
    if pairs.is_empty() {
        return Ok(out);
    }
    let facts = ctx
        .store
        .deployment_facts(
            &pairs
                .iter()
                .map(|(_, i, n, _)| (i.clone(), *n))
                .collect::<Vec<_>>(),
        )
        .await?;
    let rest_ms = i64::from(ctx.config.eligibility.rest_hours) * 3_600_000;
    let mut forget: HashMap<usize, Vec<String>> = HashMap::new();
    for ((i, inc, _, value), f) in pairs.into_iter().zip(facts) {
        let live = crate::domain::incident::Status::active(&f.status);
        // Serving there, or accepting there right now (a claim under its lease).
        let serving = engages(value, &f.status, &f.state, now.as_millisecond());
        let served = crate::domain::callout::CalloutState::serving(&f.was);
        // One who was on site and withdrew has served too: they rest from their withdrawal.
        let left_site = f.state == "withdrawn" && f.arrived_at > 0 && f.withdrawn_at > 0;
        let rest_until = if left_site {
            f.withdrawn_at + rest_ms
        } else {
            f.stood_down_at + rest_ms
        };
        let exclusion = if live && serving {
            if ask.mode == Mode::Drill && ask.include_deployed {
                None
            } else {
                Some(Exclusion::Engaged(inc.clone()))
            }
        } else if ((!live && served) || left_site) && rest_until > now.as_millisecond() {
            Timestamp::from_millisecond(rest_until)
                .ok()
                .map(Exclusion::Resting)
        } else {
            // Neither engaged nor resting: the record no longer matters.
            forget.entry(i).or_default().push(inc.clone());
            None
        };
        if let Some(e) = exclusion {
            out.entry(ids[i].clone()).or_insert(e);
        }
    }
    for (i, incs) in forget {
        // A later acceptance (or promotion) records the deployment again, so dropping
        // records that do not exclude anyone loses nothing.
        ctx.store.forget_deployments(&ids[i], &incs).await?;
    }
    Ok(out)
}
