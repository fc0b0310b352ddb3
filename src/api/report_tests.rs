use super::figures::{median, percentile};
use super::*;
use crate::domain::callout::CalloutState;
use crate::domain::incident::{Mode, Status};
use crate::store::incidents::RequirementProgress;

const T0: i64 = 1_795_939_200_000; // 2026-11-29T08:00:00Z

fn at(ms_after: i64) -> Option<String> {
    Some(crate::clock::rfc3339(T0 + ms_after))
}

fn incident(status: Status) -> IncidentView {
    IncidentView {
        id: "0b9f5b7e-0000-4000-8000-000000000001".into(),
        kind: "flood".into(),
        level: 4,
        region: "990101001".into(),
        title: "演练".into(),
        mode: Mode::Drill,
        status,
        plan_id: "flood".into(),
        raised_at: crate::clock::rfc3339(T0),
        raised_by: "demo-county-trainer".into(),
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
            needed: 2,
            accepted: 2,
            standby: 1,
            declined: 1,
            pending: 0,
            notified: 0,
            silent: 1,
            arrived: 1,
            withdrawn: 0,
            failed: 1,
            stood_down: 0,
            called: 7,
            step: 1,
            tier: Tier::County,
            next_step_at: None,
            short: false,
        }],
    }
}

/// Seven callouts: called at 0 s (township) or 300 s (county); answers at known times.
fn callouts() -> Vec<CalloutView> {
    use CalloutState::*;
    let c = |n: u32, team: &str, tier: Tier, called: i64, state: CalloutState| CalloutView {
        id: format!("x.{n}"),
        volunteer_id: format!("v{n}"),
        volunteer_name: format!("志愿者{n}"),
        phone: String::new(),
        requirement_id: "rescue".into(),
        team_id: Some(team.into()),
        tier: Some(tier),
        step: u32::from(tier == Tier::County),
        channel: "webhook".into(),
        state: Some(state),
        created_at: at(called),
        notified_at: at(called + 1_000),
        answered_at: None,
        arrived_at: None,
        withdrawn_at: None,
        promoted_at: None,
        stood_down_at: None,
        stood_down_from: None,
        delivery_error: None,
        sms_delivery: None,
        sms_delivery_at: None,
    };
    let mut cs = vec![
        c(1, "town", Tier::Township, 0, Accepted),
        c(2, "town", Tier::Township, 0, Declined),
        c(3, "town", Tier::Township, 0, Silent),
        c(4, "county", Tier::County, 300_000, Arrived),
        c(5, "county", Tier::County, 300_000, Standby),
        c(6, "county", Tier::County, 300_000, Failed),
        c(7, "county", Tier::County, 300_000, Notified),
    ];
    cs[0].answered_at = at(40_000); // 40 s after being called
    cs[1].answered_at = at(20_000);
    cs[3].answered_at = at(360_000); // 60 s after being called
    cs[3].arrived_at = at(900_000);
    cs[4].answered_at = at(400_000); // 100 s
    cs[5].notified_at = None;
    cs[5].delivery_error = Some("HTTP 500".into());
    cs[6].channel = "sms:sim".into();
    cs[6].sms_delivery = Some("undelivered".into());
    cs
}

fn events() -> Vec<TimelineEvent> {
    let step = |n: u32, tier: Tier, ms: i64| TimelineEvent {
        id: format!("{ms}-0"),
        kind: "requirement.step".into(),
        at_ms: Some(T0 + ms),
        requirement: Some("rescue".into()),
        n: None,
        count: None,
        step: Some(n),
        tier: Some(tier),
        level: None,
        needed: None,
        taken: None,
        detail: None,
    };
    vec![step(0, Tier::Township, 0), step(1, Tier::County, 300_000)]
}

#[test]
fn every_figure_comes_from_the_record() {
    let r = report(&incident(Status::Mustering), &callouts(), &events());
    assert!(!r.is_final, "still running");
    assert_eq!(r.incident.mode, "drill");
    let q = &r.requirements[0];
    assert_eq!(
        (q.needed, q.called, q.reached, q.accepted, q.arrived),
        (2, 7, 5, 3, 1)
    );
    assert_eq!(q.first_accept_s, Some(40.0));
    // Waits of those who accepted: 40, 60, 100 s.
    assert_eq!(q.median_accept_s, Some(60.0));
    assert_eq!(q.p90_accept_s, Some(100.0));
    // The second acceptance (the headcount) came at 360 s.
    assert_eq!(q.fill_s, Some(360.0));
    assert_eq!(
        q.steps.iter().map(|s| (s.step, s.at_s)).collect::<Vec<_>>(),
        [(0, 0.0), (1, 300.0)]
    );
    let town = &r.tiers[0];
    assert_eq!(
        (town.tier, town.called, town.reached, town.accepted),
        (Some(Tier::Township), 3, 3, 1)
    );
    let county = &r.tiers[1];
    assert_eq!(
        (
            county.called,
            county.reached,
            county.accepted,
            county.arrived
        ),
        (4, 2, 2, 1)
    );
    let webhook = r.channels.iter().find(|c| c.channel == "webhook").unwrap();
    assert_eq!(
        (webhook.attempted, webhook.delivered, webhook.failed),
        (6, 5, 1)
    );
    assert_eq!(webhook.reach_rate, Some(5.0 / 6.0));
    assert_eq!(
        webhook.failure_reasons,
        [Reason {
            reason: "HTTP 500".into(),
            count: 1
        }]
    );
    let sms = r.channels.iter().find(|c| c.channel == "sms:sim").unwrap();
    assert_eq!(
        (sms.attempted, sms.delivered),
        (1, 0),
        "an undelivered report is not reach"
    );
    assert_eq!(r.teams.len(), 2);
    assert_eq!(
        (
            r.teams[0].called,
            r.teams[0].accepted,
            r.teams[0].declined,
            r.teams[0].silent
        ),
        (3, 1, 1, 1)
    );
    assert_eq!(r.teams[0].non_responders, ["志愿者3"]);
    assert_eq!(r.teams[1].non_responders, ["志愿者7"]);
    assert_eq!(r.rates.called, 7);
    assert_eq!(r.rates.decline, Some(1.0 / 7.0));
    assert_eq!(r.rates.silence, Some(2.0 / 7.0));
    assert_eq!(r.rates.failure, Some(1.0 / 7.0));
    assert_eq!(r.rates.standby, Some(1.0 / 7.0));
    assert_eq!(r.rates.promotions, 0);
}

#[test]
fn after_the_stand_down_the_report_is_final_and_counts_what_was() {
    let mut cs = callouts();
    cs[0].state = Some(CalloutState::StoodDown);
    cs[0].stood_down_from = Some(CalloutState::Accepted);
    let r = report(&incident(Status::StoodDown), &cs, &events());
    assert!(r.is_final);
    assert_eq!(
        r.requirements[0].accepted, 3,
        "the stood-down acceptance still counts"
    );
    assert_eq!(r.requirements[0].first_accept_s, Some(40.0));
}

#[test]
fn percentiles_by_nearest_rank() {
    assert_eq!(median(&[]), None);
    assert_eq!(median(&[1000, 3000]), Some(2.0));
    assert_eq!(percentile(&[1000], 0.9), Some(1.0));
    let ten: Vec<i64> = (1..=10).map(|s| s * 1000).collect();
    assert_eq!(percentile(&ten, 0.9), Some(9.0));
    assert_eq!(percentile(&ten, 0.5), Some(5.0));
}

#[test]
fn csv_rows_are_one_per_callout_and_safe_in_a_spreadsheet() {
    let mut cs = callouts();
    cs[0].volunteer_name = "=HYPERLINK(\"x\")".into();
    cs[1].volunteer_name = "王, 五".into();
    let text = csv(&cs);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8, "a header and seven rows");
    assert!(lines[0].starts_with("callout,volunteer_id,name,"));
    assert!(
        lines[1].contains("\"'=HYPERLINK(\"\"x\"\")\""),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains("\"王, 五\""), "{}", lines[2]);
    assert!(lines[4].contains(",arrived,"), "{}", lines[4]);
}
