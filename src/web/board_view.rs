//! The incident board as data: built from the API's own models — the incident with its
//! progress ([`IncidentView`]), its callouts as the caller may see them ([`CalloutView`], names
//! masked per role), its typed events ([`TimelineEvent`]) and team names — and unit-tested as
//! data. The template only lays it out.

use super::incidents::{Card, card, millis_of};
use super::lang::Lang;
use crate::api::callouts::CalloutView;
use crate::api::timeline::TimelineEvent;
use crate::domain::callout::CalloutState;
use crate::domain::region::Tier;
use crate::seed::Seed;
use crate::store::incidents::IncidentView;
use std::collections::{BTreeMap, HashMap};

/// Responders a board lists per page (the counts cover everyone).
pub const MAX_ROWS: usize = 500;
/// The most timeline lines a board shows (the newest).
pub const MAX_MOMENTS: usize = 300;

/// The board of one incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    /// The incident as its card shows it.
    pub card: Card,
    /// The plan in force.
    pub plan: String,
    /// Per requirement.
    pub requirements: Vec<Progress>,
    /// Per tier that called anyone (township, county, city).
    pub tiers: Vec<Tally>,
    /// Per team that called anyone, closest first as called.
    pub teams: Vec<Tally>,
    /// Per channel: how the messages are getting through.
    pub delivery: Vec<Health>,
    /// What happened, newest first (bursts of answers and deliveries merged per minute).
    pub timeline: Vec<Moment>,
    /// Callouts in all.
    pub total: usize,
    /// Callouts the responders' filter keeps.
    pub matching: usize,
    /// The page asked of those ([`MAX_ROWS`] a page), in the order asked.
    pub responders: Vec<Responder>,
    /// How the responders are sorted and filtered.
    pub rows: Rows,
}

impl Board {
    /// The number of the first row shown (1-based).
    pub fn first_row(&self) -> usize {
        self.rows.page * MAX_ROWS + 1
    }

    /// The number of the last row shown.
    pub fn last_row(&self) -> usize {
        self.rows.page * MAX_ROWS + self.responders.len()
    }

    /// More rows after these.
    pub fn has_next(&self) -> bool {
        self.last_row() < self.matching
    }
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
    /// When the next tier is called (RFC 3339), if a wait is running.
    pub next_step_at: Option<String>,
    /// How long until then, `m:ss`, as of the render (the page counts it down).
    pub next_in: Option<String>,
    /// The ladder ran out short.
    pub short: bool,
}

/// Callouts counted by where they are, for a tier or a team.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tally {
    /// The tier or team, by name.
    pub name: String,
    /// A team's region, by name ("" for a tier).
    pub region: String,
    /// Called.
    pub called: u32,
    /// Accepted (arrived included).
    pub accepted: u32,
    /// Arrived on site.
    pub arrived: u32,
    /// On standby.
    pub standby: u32,
    /// Not answered yet (not yet sent, or sent).
    pub waiting: u32,
    /// Declined.
    pub declined: u32,
    /// Silent after their step's wait.
    pub silent: u32,
    /// No channel could deliver.
    pub failed: u32,
}

/// How one channel is delivering.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Health {
    /// `webhook`, `sms:GATEWAY`, `none`.
    pub channel: String,
    /// Callouts on it.
    pub called: u32,
    /// Waiting for their first attempt.
    pub queued: u32,
    /// Failed an attempt and waiting for the next one.
    pub retrying: u32,
    /// Handed over (a webhook's 2xx, a gateway's acceptance).
    pub sent: u32,
    /// Confirmed delivered (a webhook's 2xx; an SMS delivery report).
    pub delivered: u32,
    /// Given up, or reported undelivered.
    pub failed: u32,
    /// Why, most frequent first: (reason, how many).
    pub reasons: Vec<(String, u32)>,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moment {
    /// `HH:MM:SS` UTC.
    pub at: String,
    /// `milestone`, `alert`, `answers`, `delivery` (for styling).
    pub tone: &'static str,
    /// What happened, in words.
    pub text: String,
}

/// One responder row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responder {
    /// The volunteer (the board names only the rows it shows).
    pub volunteer_id: String,
    /// Name (masked per role).
    pub name: String,
    /// The team kind they were called for, by name.
    pub requirement: String,
    /// The team they were called through, by name.
    pub team: String,
    /// The tier that called them.
    pub tier: &'static str,
    /// `webhook`, `sms:GATEWAY`.
    pub channel: String,
    /// The state's wire name (for styling).
    pub state: &'static str,
    /// The state in words.
    pub state_text: &'static str,
    /// Called and has not answered (waiting or silent): the ones to chase.
    pub open: bool,
    /// Times, `HH:MM:SS` (UTC), or "".
    pub called: String,
    /// Answered at.
    pub answered: String,
    /// Arrived at.
    pub arrived: String,
}

/// A tier in words.
pub fn tier_words(t: Option<Tier>, l: Lang) -> &'static str {
    match t {
        Some(Tier::Township) => l.t("乡镇", "township"),
        Some(Tier::County) => l.t("县区", "county"),
        Some(Tier::City) => l.t("市", "city"),
        None => "",
    }
}

/// A callout state in words.
pub fn state_words(s: Option<CalloutState>, l: Lang) -> &'static str {
    use CalloutState::*;
    match s {
        Some(Pending) => l.t("待发送", "pending"),
        Some(Notified) => l.t("已通知", "notified"),
        Some(Accepted) => l.t("已接受", "accepted"),
        Some(Standby) => l.t("候补", "standby"),
        Some(Declined) => l.t("已拒绝", "declined"),
        Some(Silent) => l.t("未回复", "silent"),
        Some(Withdrawn) => l.t("已撤回", "withdrawn"),
        Some(Arrived) => l.t("已到达", "arrived"),
        Some(StoodDown) => l.t("已解除", "stood down"),
        Some(Failed) => l.t("发送失败", "failed"),
        None => "",
    }
}

/// `HH:MM:SS` of an RFC 3339 time, or "".
pub fn clock_time(t: &Option<String>) -> String {
    t.as_deref()
        .and_then(|t| t.split('T').nth(1))
        .map(|t| t.chars().take(8).collect())
        .unwrap_or_default()
}

/// `HH:MM:SS` of a time in milliseconds.
fn clock_of(ms: i64) -> String {
    clock_time(&Some(crate::clock::rfc3339(ms)))
}

/// `m:ss` from now until `at`, or `None` once it has passed.
fn countdown(at: &Option<String>, now_ms: i64) -> Option<String> {
    let left = millis_of(at.as_deref()?)? - now_ms;
    (left >= 0).then(|| format!("{}:{:02}", left / 60_000, (left / 1000) % 60))
}

impl Tally {
    fn count(&mut self, state: Option<CalloutState>) {
        use CalloutState::*;
        self.called += 1;
        match state {
            Some(Accepted) => self.accepted += 1,
            Some(Arrived) => {
                self.accepted += 1;
                self.arrived += 1
            }
            Some(Standby) => self.standby += 1,
            Some(Pending | Notified) => self.waiting += 1,
            Some(Declined) => self.declined += 1,
            Some(Silent) => self.silent += 1,
            Some(Failed) => self.failed += 1,
            Some(Withdrawn | StoodDown) | None => {}
        }
    }
}

impl Health {
    fn count(&mut self, c: &CalloutView) {
        self.called += 1;
        let sms = c.channel.starts_with("sms");
        let undelivered = c.sms_delivery.as_deref() == Some("undelivered");
        if c.notified_at.is_some() {
            self.sent += 1;
            if !sms || c.sms_delivery.as_deref() == Some("delivered") {
                self.delivered += 1;
            }
        }
        match c.state {
            Some(CalloutState::Failed) => self.failed += 1,
            _ if undelivered => self.failed += 1,
            Some(CalloutState::Pending) if c.delivery_error.is_some() => self.retrying += 1,
            Some(CalloutState::Pending) => self.queued += 1,
            _ => {}
        }
    }
}

/// Everything the board shows, besides the incident: the callouts (as the caller may see
/// them), the incident's events, and team id → (name, region name).
pub struct Inputs<'a> {
    /// Every callout of the incident, in the order they were made.
    pub callouts: &'a [CalloutView],
    /// The incident's events, oldest first.
    pub events: &'a [TimelineEvent],
    /// Team names and their regions' names.
    pub teams: &'a HashMap<String, (String, String)>,
}

/// The board of `v`.
pub fn board(
    seed: &Seed,
    v: &IncidentView,
    inp: &Inputs<'_>,
    rows: Rows,
    now_ms: i64,
    lang: Lang,
) -> Board {
    let team_kind = |k: &str| super::lang::team_kind(seed, lang, k);
    let req_names: HashMap<&str, String> = v
        .requirements
        .iter()
        .map(|r| (r.id.as_str(), team_kind(&r.team_kind)))
        .collect();
    let req_name = |id: &str| req_names.get(id).cloned().unwrap_or_else(|| id.to_string());
    let team_name = |id: &Option<String>| match id {
        Some(t) => inp
            .teams
            .get(t)
            .cloned()
            .unwrap_or_else(|| (t.clone(), String::new())),
        None => (lang.t("未记录", "not recorded").to_string(), String::new()),
    };

    let mut tiers: BTreeMap<u8, Tally> = BTreeMap::new();
    let mut teams: Vec<Tally> = Vec::new();
    let mut team_at: HashMap<Option<&str>, usize> = HashMap::new();
    let mut delivery: BTreeMap<&str, Health> = BTreeMap::new();
    let mut reasons: BTreeMap<&str, BTreeMap<&str, u32>> = BTreeMap::new();
    for c in inp.callouts {
        let s = c.outcome();
        let rank = match c.tier {
            Some(Tier::Township) => 0,
            Some(Tier::County) => 1,
            Some(Tier::City) => 2,
            None => 3,
        };
        tiers
            .entry(rank)
            .or_insert_with(|| Tally {
                name: tier_words(c.tier, lang).to_string(),
                ..Default::default()
            })
            .count(s);
        let at = *team_at.entry(c.team_id.as_deref()).or_insert_with(|| {
            let (name, region) = team_name(&c.team_id);
            teams.push(Tally {
                name,
                region,
                ..Default::default()
            });
            teams.len() - 1
        });
        teams[at].count(s);
        delivery.entry(&c.channel).or_default().count(c);
        if let Some(e) = &c.delivery_error {
            *reasons
                .entry(&c.channel)
                .or_default()
                .entry(e.as_str())
                .or_default() += 1;
        }
    }
    let delivery = delivery
        .into_iter()
        .map(|(ch, mut h)| {
            h.channel = ch.to_string();
            let mut rs: Vec<(String, u32)> = reasons
                .remove(ch)
                .unwrap_or_default()
                .into_iter()
                .map(|(r, n)| (r.to_string(), n))
                .collect();
            rs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            h.reasons = rs;
            h
        })
        .collect();

    let mut picked: Vec<&CalloutView> = inp
        .callouts
        .iter()
        .filter(|c| rows.keeps(c.outcome()))
        .collect();
    let matching = picked.len();
    sort_rows(&mut picked, &rows.sort, &|c| team_name(&c.team_id).0);
    let responders = picked
        .into_iter()
        .skip(rows.page.saturating_mul(MAX_ROWS))
        .take(MAX_ROWS)
        .map(|c| {
            use CalloutState::*;
            Responder {
                volunteer_id: c.volunteer_id.clone(),
                name: c.volunteer_name.clone(),
                requirement: req_name(&c.requirement_id),
                team: team_name(&c.team_id).0,
                tier: tier_words(c.tier, lang),
                channel: c.channel.clone(),
                state: c.state.map_or("", CalloutState::as_str),
                state_text: state_words(c.state, lang),
                open: matches!(c.state, Some(Pending | Notified | Silent)),
                called: clock_time(&c.created_at),
                answered: clock_time(&c.answered_at),
                arrived: clock_time(&c.arrived_at),
            }
        })
        .collect();

    Board {
        card: card(seed, v, now_ms, lang),
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
                tier: tier_words(Some(r.tier), lang),
                next_in: countdown(&r.next_step_at, now_ms),
                next_step_at: r.next_step_at.clone(),
                short: r.short,
            })
            .collect(),
        tiers: tiers.into_values().collect(),
        teams,
        delivery,
        timeline: timeline(inp.events, &req_name, seed, &v.kind, lang),
        total: inp.callouts.len(),
        matching,
        responders,
        rows,
    }
}

#[path = "board_rows.rs"]
mod rows;
pub use rows::Rows;
use rows::sort_rows;

#[path = "board_timeline.rs"]
mod timeline;
use timeline::timeline;

#[cfg(test)]
#[path = "board_view_tests.rs"]
mod tests;
