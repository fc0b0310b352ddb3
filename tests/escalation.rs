//! The escalation ladder on the injected clock: the township fills (no escalation); the
//! township is short and the county fills; every step is short and the requirement is `short`
//! with the command centres alerted; a filled requirement tells the unanswered to stand by.
//! A 15-minute ladder runs in well under a second: the test moves the clock, nothing sleeps.

mod common;

use common::scenarios::*;
use common::*;
use muster::clock::ManualClock;
use serde_json::{Value, json};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);
const ADMIN: &str = "demo-admin";
const CITY: &str = "demo-city-commander";
const MIN: i64 = 60_000;

async fn start(
    extra: impl FnOnce(&std::path::Path, &str),
) -> (TestRedis, Receiver, TestApp, ManualClock) {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    extra(&seed, &rx.base());
    let clock = ManualClock::new();
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), clock.clone()).await;
    (redis, rx, app, clock)
}

async fn raise(app: &TestApp, body: Value) -> String {
    let (s, b) = app.raise(CITY, body).await;
    assert_eq!(s, 201, "{b}");
    b["id"].as_str().unwrap().to_string()
}

/// Waits until more than `over` rescuers are called and every one of them was reached.
async fn township_called(app: &TestApp, rx: &Receiver, id: &str, over: u64) {
    eventually(T, "township rescue called", || async {
        let called = progress(app, id, "rescue").await["called"]
            .as_u64()
            .unwrap();
        called > over && rescue_callouts(rx, id).len() as u64 == called
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_township_that_fills_does_not_escalate_and_tells_the_rest_to_stand_by() {
    let (_r, rx, app, clock) = start(|_, _| {}).await;
    let id = raise(
        &app,
        json!({"kind": "flood", "level": 4, "region": "990101001", "title": "内涝"}),
    )
    .await;
    township_called(&app, &rx, &id, 6).await;
    let called = rescue_callouts(&rx, &id);
    assert!(
        called
            .iter()
            .all(|r| r.body["incident"]["id"] == id.as_str())
    );
    // One of the rest declines before the headcount is reached: no standby notice for them.
    let decliner = &called[6];
    let (s, b) = app.ack(&decliner.token(), "decline").await;
    assert_eq!((s, b["state"].as_str()), (200, Some("declined")), "{b}");
    for r in called.iter().take(6) {
        let (s, b) = app.ack(&r.token(), "accept").await;
        assert_eq!((s, b["state"].as_str()), (200, Some("accepted")), "{b}");
    }
    // Everyone else who was reached and has not answered is told to stand by, once.
    let others = called.len() - 7;
    let told = || {
        rx.delivered("standby")
            .into_iter()
            .filter(|r| r.body["incident"]["id"] == id.as_str() && r.body["team_kind"] == "rescue")
            .collect::<Vec<_>>()
    };
    eventually(T, "standby notices", || async { told().len() >= others }).await;
    app.idle().await;
    let told = told();
    assert_eq!(told.len(), others, "one notice each");
    let mut who: Vec<_> = told.iter().map(|r| r.volunteer.clone()).collect();
    who.sort();
    who.dedup();
    assert_eq!(who.len(), others, "nobody told twice");
    let answered: Vec<_> = called.iter().take(7).map(|r| r.volunteer.clone()).collect();
    assert!(
        told.iter().all(|r| !answered.contains(&r.volunteer)),
        "nobody who answered is told to stand by"
    );
    // An hour later the rescue requirement is still on its first step: nobody else was called.
    // Checked with the workers drained after each step of the clock, never after a sleep.
    for _ in 0..12 {
        clock.advance(5 * MIN);
        app.idle().await;
    }
    let p = progress(&app, &id, "rescue").await;
    assert_eq!(
        (p["step"].as_u64(), p["tier"].as_str()),
        (Some(0), Some("township")),
        "{p}"
    );
    assert_eq!(p["accepted"], 6);
    assert_eq!(
        rescue_callouts(&rx, &id).len(),
        called.len(),
        "no escalation"
    );
    assert_eq!(
        rx.delivered("standby")
            .iter()
            .filter(|r| r.body["incident"]["id"] == id.as_str() && r.body["team_kind"] == "rescue")
            .count(),
        others
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_short_township_escalates_to_the_county_which_fills() {
    let redis = TestRedis::start().await;
    short_township_escalates_to_the_county(&redis.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exhausted_ladder_is_short_and_alerts_the_command_centres() {
    let (redis, rx, app, clock) = start(|seed, base| {
        // Command centres of the city and of county 990101 take alerts.
        let regions = std::fs::read_to_string(seed.join("regions.toml")).unwrap();
        let regions = regions
            .replacen("tier = \"city\"\n", &format!("tier = \"city\"\nalert_webhook = \"{base}/hooks/cc-city\"\n"), 1)
            .replacen("code = \"990101\"\nname = \"东湖区\"\n", &format!("code = \"990101\"\nname = \"东湖区\"\nalert_webhook = \"{base}/hooks/cc-990101\"\n"), 1);
        std::fs::write(seed.join("regions.toml"), regions).unwrap();
        // A plan nobody can fill (a certificate nobody holds), with a short custom ladder.
        std::fs::write(
            seed.join("plans/chemical.toml"),
            "name = \"危化\"\nkinds = [\"chemical\"]\nlevels = [1, 2, 3, 4]\n\n[[requirement]]\nid = \"hazmat\"\nteam_kind = \"fire\"\nqualification = \"hazmat_cert\"\nneeded = 3\n\n\
             [[step]]\nscope = \"township\"\npool = \"on_call\"\nwait = \"1m\"\n\n[[step]]\nscope = \"county\"\npool = \"all\"\nwait = \"2m\"\n\n[[step]]\nscope = \"city\"\npool = \"all\"\nwait = \"3m\"\n",
        )
        .unwrap();
    })
    .await;
    let id = raise(
        &app,
        json!({"kind": "chemical", "level": 2, "region": "990101001", "title": "危化品泄漏"}),
    )
    .await;
    // Every step finds only excluded volunteers, so the ladder runs to its last step at once
    // and waits there.
    eventually(T, "last step reached and waiting", || async {
        let p = progress(&app, &id, "hazmat").await;
        p["step"] == 2 && p["next_step_at"].is_string()
    })
    .await;
    let (_, c) = app
        .get(&format!("/v1/incidents/{id}/candidates"), Some(ADMIN))
        .await;
    let steps: Vec<u64> = c["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [0, 1, 2], "{c}");
    assert!(c.to_string().contains("qualification_missing"), "{c}");
    clock.advance(3 * MIN - 1000);
    app.idle().await;
    assert_eq!(app.incident(&id).await["status"], "mustering");
    // The city's command centre is down for its first six attempts: more than a volunteer's
    // message is retried (three waits of 1 s here). Its alert waits in the queue meanwhile.
    rx.fail_next("cc-city", 6);
    clock.advance(1000);
    eventually(T, "short", || async {
        app.incident(&id).await["status"] == "short"
    })
    .await;
    eventually(T, "the county's command centre alerted", || async {
        rx.delivered("shortfall").len() == 1
    })
    .await;
    let tries = |rx: &Receiver| rx.all().iter().filter(|r| r.volunteer == "cc-city").count();
    eventually(T, "the city's first attempt failed", || async {
        tries(&rx) == 1
    })
    .await;
    // Each attempt waits for the (injected) clock; the seventh gets through.
    for attempt in 2..=7 {
        eventually(T, "the alert is retried", || async {
            clock.advance(2_000);
            tokio::time::sleep(Duration::from_millis(20)).await;
            tries(&rx) >= attempt
        })
        .await;
    }
    eventually(T, "both command centres alerted", || async {
        rx.delivered("shortfall")
            .iter()
            .filter(|r| r.body["incident"]["id"] == id.as_str())
            .count()
            == 2
    })
    .await;
    let city: Vec<Received> = rx
        .all()
        .into_iter()
        .filter(|r| r.volunteer == "cc-city")
        .collect();
    assert_eq!(city.len(), 7, "six failures and one delivery");
    assert!(
        city.iter().all(|r| r.webhook_id == city[0].webhook_id),
        "every attempt carries the same webhook-id, so a repeat can be dropped"
    );
    let events = redis.incident_events(&id).await;
    let of = |t: &str| events.iter().filter(|e| e["type"] == t).count();
    assert_eq!(
        (of("alert.retry"), of("alert.delivered")),
        (6, 2),
        "{events:?}"
    );
    let alerts = rx.delivered("shortfall");
    let mut to: Vec<&str> = alerts.iter().map(|r| r.volunteer.as_str()).collect();
    to.sort();
    assert_eq!(to, ["cc-990101", "cc-city"]);
    assert_eq!(
        (
            alerts[0].body["needed"].as_u64(),
            alerts[0].body["short_by"].as_u64()
        ),
        (Some(3), Some(3))
    );
    assert!(alerts.iter().all(|r| r.signature_ok), "alerts are signed");
    // Nothing fires twice.
    clock.advance(60 * MIN);
    app.idle().await;
    assert_eq!(rx.delivered("shortfall").len(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upgrade_calls_out_only_the_difference() {
    let (_r, rx, app, clock) = start(|_, _| {}).await;
    let id = raise(
        &app,
        json!({"kind": "flood", "level": 4, "region": "990101001", "title": "内涝"}),
    )
    .await;
    township_called(&app, &rx, &id, 8).await;
    let first_wave = rescue_callouts(&rx, &id);
    for r in first_wave.iter().take(8) {
        assert_eq!(app.ack(&r.token(), "accept").await.0, 200);
    }
    let p = progress(&app, &id, "rescue").await;
    assert_eq!(
        (p["accepted"].as_u64(), p["standby"].as_u64()),
        (Some(6), Some(2)),
        "{p}"
    );

    // Bad upgrades change nothing.
    let path = format!("/v1/incidents/{id}/level");
    assert_eq!(
        app.json("POST", &path, "demo-viewer", json!({"level": 2}))
            .await
            .0,
        403
    );
    let (s, b) = app.json("POST", &path, CITY, json!({"level": 7})).await;
    assert_eq!(
        (s, b["errors"][0]["field"].as_str()),
        (422, Some("level")),
        "{b}"
    );
    let (s, b) = app.json("POST", &path, CITY, json!({})).await;
    assert_eq!(s, 422, "{b}");

    // Level 4 → 2: the severe plan raises rescue to 20 and adds fire and psych.
    let (s, inc) = app.json("POST", &path, CITY, json!({"level": 2})).await;
    assert_eq!(s, 200, "{inc}");
    assert_eq!(
        (inc["level"].as_u64(), inc["plan_id"].as_str()),
        (Some(2), Some("flood-severe"))
    );
    assert_eq!(req(&inc, "rescue")["needed"], 20);
    assert_eq!(
        req(&inc, "rescue")["accepted"],
        8,
        "the two on standby are promoted at once"
    );
    eventually(T, "promotions delivered", || async {
        rx.delivered("promoted")
            .iter()
            .filter(|r| r.body["incident"]["id"] == id.as_str())
            .count()
            == 2
    })
    .await;
    // New requirements are called out; nobody already called is called again.
    eventually(T, "fire and psych called", || async {
        let inc = app.incident(&id).await;
        req(&inc, "fire")["called"].as_u64() > Some(0)
            && req(&inc, "psych")["called"].as_u64() > Some(0)
    })
    .await;
    app.idle().await;
    assert_eq!(
        rescue_callouts(&rx, &id).len(),
        first_wave.len(),
        "the township's rescuers were all called already"
    );
    let mut seen = std::collections::HashSet::new();
    for r in rx
        .delivered("callout")
        .iter()
        .filter(|r| r.body["incident"]["id"] == id.as_str())
    {
        assert!(
            seen.insert(r.volunteer.clone()),
            "{} called twice",
            r.volunteer
        );
    }
    // Rescue is still short of 20: its ladder goes on to the county when the wait runs out.
    clock.advance(5 * MIN);
    eventually(T, "county rescuers called", || async {
        rescue_callouts(&rx, &id).len() > first_wave.len()
    })
    .await;
    // The township's unanswered rescuers are now silent (and could still accept).
    let p = progress(&app, &id, "rescue").await;
    let unanswered = first_wave.len() as u64 - 8;
    assert_eq!(p["silent"].as_u64(), Some(unanswered), "{p}");
    let late = &first_wave[first_wave.len() - 1];
    assert_eq!(
        app.ack(&late.token(), "accept").await.1["state"],
        "accepted"
    );
    // Downgrading is refused; the same level again changes nothing.
    let (s, b) = app.json("POST", &path, CITY, json!({"level": 3})).await;
    assert_eq!(
        (s, b["errors"][0]["field"].as_str()),
        (422, Some("level")),
        "{b}"
    );
    let (s, b) = app.json("POST", &path, CITY, json!({"level": 2})).await;
    assert_eq!((s, b["level"].as_u64()), (200, Some(2)));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_renotify_step_calls_the_silent_again_with_the_same_link() {
    let (_r, rx, app, clock) = start(|seed, _| {
        // The flood plan with a ladder whose second step re-sends to those still silent.
        let plan = std::fs::read_to_string(seed.join("plans/flood.toml")).unwrap();
        let plan = format!(
            "{plan}\n[[step]]\nscope = \"township\"\npool = \"on_call\"\nwait = \"2m\"\n\n\
             [[step]]\nscope = \"county\"\npool = \"on_call\"\nwait = \"3m\"\nrenotify = true\n"
        );
        std::fs::write(seed.join("plans/flood.toml"), plan).unwrap();
    })
    .await;
    let id = raise(
        &app,
        json!({"kind": "flood", "level": 4, "region": "990101001", "title": "内涝"}),
    )
    .await;
    township_called(&app, &rx, &id, 2).await;
    let first = rescue_callouts(&rx, &id);
    // Two answer (one yes, one no); everyone else stays silent.
    assert_eq!(app.ack(&first[0].token(), "accept").await.0, 200);
    assert_eq!(app.ack(&first[1].token(), "decline").await.0, 200);
    let silent: Vec<&Received> = first[2..].iter().collect();
    clock.advance(2 * MIN);
    eventually(T, "the silent are called again", || async {
        let again = rescue_callouts(&rx, &id)
            .into_iter()
            .filter(|r| silent.iter().any(|s| s.volunteer == r.volunteer))
            .count();
        again == 2 * silent.len()
    })
    .await;
    let all = rescue_callouts(&rx, &id);
    for s in &silent {
        let mine: Vec<&Received> = all.iter().filter(|r| r.volunteer == s.volunteer).collect();
        assert_eq!(mine.len(), 2, "called once, re-sent once: {}", s.volunteer);
        assert_ne!(mine[0].webhook_id, mine[1].webhook_id, "a new message");
        assert_eq!(mine[0].token(), mine[1].token(), "the same ack link");
        assert!(mine[1].signature_ok);
        let text = mine[1].body["message"].as_str().unwrap();
        assert!(
            text.contains("再次提醒") || text.starts_with("REMINDER"),
            "the recall template, in the volunteer's locale: {text}"
        );
    }
    for answered in &first[..2] {
        assert_eq!(
            all.iter()
                .filter(|r| r.volunteer == answered.volunteer)
                .count(),
            1,
            "those who answered are not called again"
        );
    }
    // A re-sent call-out is answered like the first: the silent can still accept.
    let late = silent[0].token();
    let (s, b) = app.ack(&late, "accept").await;
    assert_eq!((s, b["state"].as_str()), (200, Some("accepted")), "{b}");
    let p = progress(&app, &id, "rescue").await;
    assert_eq!(
        (p["step"].as_u64(), p["accepted"].as_u64()),
        (Some(1), Some(2)),
        "{p}"
    );
    // Nothing is re-sent again while the step waits.
    clock.advance(MIN);
    app.idle().await;
    let again: usize = rescue_callouts(&rx, &id)
        .iter()
        .filter(|r| silent.iter().any(|s| s.volunteer == r.volunteer))
        .count();
    assert_eq!(again, 2 * silent.len());
    app.stop().await;
}

/// A handler that begins several steps in a row (each finding nobody new) and dies before
/// calling out or arming the last: the re-delivered timer event must carry on from the step
/// begun, call it out and arm its wait, not drop it as stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_step_begun_by_a_handler_that_died_is_still_called_out_and_armed() {
    let (redis, rx, app, clock) = start(|_, _| {}).await;
    let id = raise(
        &app,
        json!({"kind": "flood", "level": 4, "region": "990101001", "title": "管涌"}),
    )
    .await;
    // Townships have no public-security team: `security` waits at step 1 (county on call).
    eventually(T, "security armed at step 1", || async {
        let p = progress(&app, &id, "security").await;
        p["step"] == 1 && p["next_step_at"].is_string()
    })
    .await;
    let before = progress(&app, &id, "security").await["called"]
        .as_u64()
        .unwrap();
    // What a dying handler leaves: steps 2 and 3 begun, nobody called at them, no timer.
    let mut c = redis.conn().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*:inc:{id}"))
        .query_async(&mut c)
        .await
        .unwrap();
    let prefix = keys[0].split(":{p").next().unwrap().to_string();
    let store = muster::store::Store::connect(&redis.url(), &prefix, 4)
        .await
        .unwrap();
    let iid = muster::domain::incident::IncidentId::parse(&id).unwrap();
    let now = muster::clock::Clock::now_ms(&clock);
    for (step, tier) in [(2, "county"), (3, "city")] {
        let s = store
            .step_begin(&iid, "security", step, tier, now, false)
            .await
            .unwrap();
        assert_eq!(s, muster::store::ladder::StepStart::Go);
    }
    // Step 1's wait runs out: its event finds step 3 begun.
    clock.advance(5 * MIN);
    eventually(T, "step 3 called out and armed", || async {
        let p = progress(&app, &id, "security").await;
        p["step"] == 3
            && p["tier"] == "city"
            && p["next_step_at"].is_string()
            && p["called"].as_u64().unwrap() > before
    })
    .await;
    // The city's security volunteers got their call-outs.
    eventually(T, "the city called", || async {
        rx.delivered("callout")
            .iter()
            .filter(|r| {
                r.body["incident"]["id"] == id.as_str() && r.body["team_kind"] == "public_security"
            })
            .count() as u64
            > before
    })
    .await;
    // Its wait ends in 10 minutes and the requirement goes short once.
    clock.advance(10 * MIN);
    eventually(T, "short after the city's wait", || async {
        progress(&app, &id, "security").await["short"] == true
    })
    .await;
    app.stop().await;
}
