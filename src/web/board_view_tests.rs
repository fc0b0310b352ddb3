use super::*;
use crate::domain::incident::{Mode, Status};
use crate::store::incidents::RequirementProgress;
use std::path::Path;

fn seed() -> Seed {
    Seed::load(Path::new("config/demo")).expect("the demo city loads")
}

fn incident() -> IncidentView {
    IncidentView {
        id: "0b9f5b7e-0000-4000-8000-000000000001".into(),
        kind: "flood".into(),
        level: 4,
        region: "330106001".into(),
        title: "西溪内涝".into(),
        mode: Mode::Drill,
        status: Status::Mustering,
        plan_id: "flood".into(),
        raised_at: "2026-11-29T08:00:00Z".into(),
        raised_by: "demo-township-commander".into(),
        location: None,
        filled_at: None,
        stood_down_at: None,
        channels: None,
        objectives: None,
        drill_id: None,
        cap: vec![],
        requirements: vec![RequirementProgress {
            id: "rescue".into(),
            team_kind: "rescue".into(),
            qualification: None,
            needed: 6,
            accepted: 2,
            standby: 0,
            declined: 1,
            pending: 0,
            notified: 1,
            silent: 1,
            arrived: 1,
            withdrawn: 0,
            failed: 1,
            stood_down: 0,
            called: 6,
            step: 1,
            tier: Tier::County,
            next_step_at: Some("2026-11-29T08:12:30Z".into()),
            short: false,
        }],
    }
}

fn callout(n: u32, team: &str, tier: Tier, ch: &str, state: CalloutState) -> CalloutView {
    CalloutView {
        id: format!("x.{n}"),
        volunteer_id: format!("v{n:04}"),
        volunteer_name: format!("志愿者{n}"),
        phone: "+86138****0000".into(),
        requirement_id: "rescue".into(),
        team_id: Some(team.into()),
        tier: Some(tier),
        step: 0,
        channel: ch.into(),
        state: Some(state),
        created_at: Some(format!("2026-11-29T08:00:{n:02}Z")),
        notified_at: None,
        answered_at: None,
        arrived_at: None,
        withdrawn_at: None,
        promoted_at: None,
        stood_down_at: None,
        stood_down_from: None,
        delivery_error: None,
        sms_delivery: None,
        sms_delivery_at: None,
    }
}

fn ev(kind: &str, at_ms: i64) -> TimelineEvent {
    TimelineEvent {
        id: format!("{at_ms}-0"),
        kind: kind.into(),
        at_ms: Some(at_ms),
        requirement: Some("rescue".into()),
        n: None,
        count: None,
        step: None,
        tier: None,
        level: None,
        needed: None,
        taken: None,
        detail: None,
    }
}

const T0: i64 = 1_795_939_200_000; // 2026-11-29T08:00:00Z

type TeamNames = HashMap<String, (String, String)>;

fn fixture() -> (Vec<CalloutView>, Vec<TimelineEvent>, TeamNames) {
    use CalloutState::*;
    let mut cs = vec![
        callout(1, "t-xx", Tier::Township, "webhook", Accepted),
        callout(2, "t-xx", Tier::Township, "webhook", Declined),
        callout(3, "t-xx", Tier::Township, "sms:aliyun", Silent),
        callout(4, "t-xh", Tier::County, "webhook", Arrived),
        callout(5, "t-xh", Tier::County, "sms:aliyun", Notified),
        callout(6, "t-xh", Tier::County, "webhook", Failed),
    ];
    for c in &mut cs[..5] {
        c.notified_at = Some("2026-11-29T08:00:30Z".into());
    }
    cs[0].answered_at = Some("2026-11-29T08:03:00Z".into());
    cs[1].answered_at = Some("2026-11-29T08:02:00Z".into());
    cs[3].answered_at = Some("2026-11-29T08:01:00Z".into());
    cs[2].sms_delivery = Some("delivered".into());
    cs[5].delivery_error = Some("HTTP 500".into());
    let mut step = ev("requirement.step", T0 + 600_000);
    step.step = Some(1);
    step.tier = Some(Tier::County);
    let mut raised = ev("incident.raised", T0);
    raised.requirement = None;
    let mut created = ev("callouts.created", T0 + 1_000);
    created.count = Some(3);
    let mut created2 = ev("callouts.created", T0 + 2_000);
    created2.count = Some(2);
    let events = vec![
        raised,
        created,
        created2,
        ev("callout.accepted", T0 + 61_000),
        ev("callout.declined", T0 + 62_000),
        ev("callout.accepted", T0 + 63_000),
        step,
    ];
    let teams = HashMap::from([
        (
            "t-xx".to_string(),
            ("西溪救援队".to_string(), "西溪街道".to_string()),
        ),
        (
            "t-xh".to_string(),
            ("西湖区救援队".to_string(), "西湖区".to_string()),
        ),
    ]);
    (cs, events, teams)
}

fn build(rows: Rows, lang: Lang) -> Board {
    let (cs, events, teams) = fixture();
    let inp = Inputs {
        callouts: &cs,
        events: &events,
        teams: &teams,
    };
    board(&seed(), &incident(), &inp, rows, T0 + 720_000, lang)
}

#[test]
fn progress_counts_down_to_the_next_tier() {
    let b = build(Rows::default(), Lang::Zh);
    let r = &b.requirements[0];
    assert_eq!((r.needed, r.accepted, r.waiting, r.silent), (6, 2, 1, 1));
    assert_eq!(r.tier, "县区");
    assert_eq!(r.next_in.as_deref(), Some("0:30"), "12:00 → 12:30");
    assert_eq!(b.card.colour, "蓝色");
    assert!(b.card.drill);
}

#[test]
fn tiers_and_teams_are_tallied_from_the_callouts() {
    let b = build(Rows::default(), Lang::Zh);
    let names: Vec<&str> = b.tiers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["乡镇", "县区"], "township before county");
    let town = &b.tiers[0];
    assert_eq!(
        (town.called, town.accepted, town.declined, town.silent),
        (3, 1, 1, 1)
    );
    let county = &b.tiers[1];
    assert_eq!(
        (
            county.called,
            county.accepted,
            county.arrived,
            county.waiting,
            county.failed
        ),
        (3, 1, 1, 1, 1)
    );
    assert_eq!(b.teams.len(), 2);
    assert_eq!(b.teams[0].name, "西溪救援队");
    assert_eq!(b.teams[0].region, "西溪街道");
    assert_eq!(b.teams[1].called, 3);
}

#[test]
fn delivery_health_is_per_channel_with_reasons() {
    let b = build(Rows::default(), Lang::Zh);
    let webhook = b.delivery.iter().find(|h| h.channel == "webhook").unwrap();
    assert_eq!(
        (
            webhook.called,
            webhook.sent,
            webhook.delivered,
            webhook.failed
        ),
        (4, 3, 3, 1)
    );
    assert_eq!(webhook.reasons, vec![("HTTP 500".to_string(), 1)]);
    let sms = b
        .delivery
        .iter()
        .find(|h| h.channel == "sms:aliyun")
        .unwrap();
    assert_eq!(
        (sms.called, sms.sent, sms.delivered),
        (2, 2, 1),
        "an SMS counts as delivered on its delivery report only"
    );
}

#[test]
fn a_stood_down_callout_counts_as_what_it_was() {
    let (mut cs, events, teams) = fixture();
    cs[0].state = Some(CalloutState::StoodDown);
    cs[0].stood_down_from = Some(CalloutState::Accepted);
    let inp = Inputs {
        callouts: &cs,
        events: &events,
        teams: &teams,
    };
    let b = board(&seed(), &incident(), &inp, Rows::default(), T0, Lang::Zh);
    assert_eq!(b.tiers[0].accepted, 1);
}

#[test]
fn the_timeline_merges_bursts_and_puts_the_newest_first() {
    let b = build(Rows::default(), Lang::En);
    let lines: Vec<(&str, &str)> = b
        .timeline
        .iter()
        .map(|m| (m.at.as_str(), m.text.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            ("08:10:00", "Rescue: step 2, calling county teams"),
            ("08:01:01", "Rescue: accepted 2 · declined 1"),
            ("08:00:01", "Rescue: called 5"),
            ("08:00:00", "Raised"),
        ]
    );
}

#[test]
fn responders_sort_and_filter_as_asked() {
    let open = build(
        Rows {
            sort: String::new(),
            only: "open".into(),
            ..Default::default()
        },
        Lang::Zh,
    );
    assert_eq!(open.total, 6);
    assert_eq!(open.matching, 2, "the silent and the notified one");
    assert!(open.responders.iter().all(|r| r.open));
    let by_state = build(
        Rows {
            sort: "state".into(),
            ..Default::default()
        },
        Lang::Zh,
    );
    let states: Vec<&str> = by_state.responders.iter().map(|r| r.state).collect();
    assert_eq!(
        states,
        [
            "silent", "notified", "failed", "declined", "accepted", "arrived"
        ]
    );
    let answered = build(
        Rows {
            sort: "answered".into(),
            ..Default::default()
        },
        Lang::Zh,
    );
    assert_eq!(answered.responders[0].answered, "08:01:00");
    assert_eq!(answered.responders[0].team, "西湖区救援队");
    assert_eq!(by_state.rows.sort_link("name"), "?sort=name#responders");
    assert_eq!(open.rows.sort_link("called"), "?only=open#responders");
    assert_eq!(open.rows.page_link(2), "?only=open&page=2#responders");
    assert_eq!(
        (open.first_row(), open.last_row(), open.has_next()),
        (1, 2, false)
    );
    let past = build(
        Rows {
            page: 1,
            ..Default::default()
        },
        Lang::Zh,
    );
    assert!(past.responders.is_empty(), "six rows fit the first page");
    assert_eq!(past.matching, 6);
}

#[test]
fn words_follow_the_language() {
    assert_eq!(
        clock_time(&Some("2026-11-29T15:04:05.123Z".into())),
        "15:04:05"
    );
    assert_eq!(clock_time(&None), "");
    assert_eq!(state_words(Some(CalloutState::Silent), Lang::Zh), "未回复");
    assert_eq!(state_words(Some(CalloutState::Silent), Lang::En), "silent");
    assert_eq!(tier_words(Some(Tier::County), Lang::Zh), "县区");
    assert_eq!(
        countdown(&Some("2026-11-29T08:00:00Z".into()), T0 + 1),
        None
    );
}
