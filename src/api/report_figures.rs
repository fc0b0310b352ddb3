//! The report's figures, computed from an incident's view, callouts and events.

use super::*;
use crate::domain::callout::CalloutState;
use std::collections::BTreeMap;

fn ms_of(t: &Option<String>) -> Option<i64> {
    t.as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_millisecond())
}

fn rate(n: u32, of: u32) -> Option<f64> {
    (of > 0).then(|| f64::from(n) / f64::from(of))
}

/// The nearest-rank percentile `q` (0–1) of sorted `xs`.
pub(super) fn percentile(xs: &[i64], q: f64) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let rank = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len());
    Some(xs[rank - 1] as f64 / 1000.0)
}

/// The median of sorted `xs` (the mean of the middle two for an even count).
pub(super) fn median(xs: &[i64]) -> Option<f64> {
    match xs.len() {
        0 => None,
        n if n % 2 == 1 => Some(xs[n / 2] as f64 / 1000.0),
        n => Some((xs[n / 2 - 1] + xs[n / 2]) as f64 / 2000.0),
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
    let requirements: Vec<RequirementFigures> = v
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
                .filter(|c| accepted(c.outcome()))
                .filter_map(|c| answered_at(c))
                .collect();
            accepts.sort_unstable();
            let mut waits: Vec<i64> = mine
                .iter()
                .filter(|c| accepted(c.outcome()))
                .filter_map(|c| Some(answered_at(c)? - ms_of(&c.created_at)?))
                .collect();
            waits.sort_unstable();
            RequirementFigures {
                id: r.id.clone(),
                team_kind: r.team_kind.clone(),
                needed: r.needed,
                called: mine.len() as u32,
                reached: mine.iter().filter(|c| reached(c)).count() as u32,
                accepted: mine.iter().filter(|c| accepted(c.outcome())).count() as u32,
                arrived: mine
                    .iter()
                    .filter(|c| c.outcome() == Some(CalloutState::Arrived))
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
        let s = c.outcome();
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
        callouts.iter().filter(|c| f(c.outcome())).count() as u32
    };
    rates.decline = rate(count(&|s| s == Some(CalloutState::Declined)), rates.called);
    rates.silence = rate(count(&silent), rates.called);
    rates.failure = rate(count(&|s| s == Some(CalloutState::Failed)), rates.called);
    rates.standby = rate(
        callouts
            .iter()
            .filter(|c| c.outcome() == Some(CalloutState::Standby) || c.promoted_at.is_some())
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
            objectives: v.objectives.clone(),
            channels: v.channels.clone(),
            drill_id: v.drill_id.clone(),
            cap: v.cap.clone(),
        },
        is_final: !v.status.is_active(),
        tiers: tiers.into_values().collect(),
        channels,
        summary: summary(v, callouts, &requirements, &rates),
        teams,
        rates,
        requirements,
        trend: vec![],
    }
}

/// The incident's headline figures, from its requirements' figures and its callouts.
fn summary(
    v: &IncidentView,
    callouts: &[CalloutView],
    reqs: &[RequirementFigures],
    rates: &Rates,
) -> Summary {
    let raised = ms_of(&Some(v.raised_at.clone())).unwrap_or(0);
    let mut waits: Vec<i64> = callouts
        .iter()
        .filter(|c| accepted(c.outcome()))
        .filter_map(|c| Some(ms_of(&c.answered_at)? - ms_of(&c.created_at)?))
        .collect();
    waits.sort_unstable();
    Summary {
        called: rates.called,
        reached: reqs.iter().map(|r| r.reached).sum(),
        accepted: reqs.iter().map(|r| r.accepted).sum(),
        arrived: reqs.iter().map(|r| r.arrived).sum(),
        needed: reqs.iter().map(|r| r.needed).sum(),
        first_accept_s: reqs
            .iter()
            .filter_map(|r| r.first_accept_s)
            .min_by(f64::total_cmp),
        median_accept_s: median(&waits),
        p90_accept_s: percentile(&waits, 0.9),
        fill_s: ms_of(&v.filled_at).map(|f| (f - raised) as f64 / 1000.0),
        decline: rates.decline,
        silence: rates.silence,
    }
}
