//! Scenarios run on a single Redis and on a Cluster alike.

use super::*;
use muster::clock::ManualClock;
use serde_json::json;

const T: Duration = Duration::from_secs(20);

/// The muster loop on the Redis at `url`: 200 of 250 rescuers accept at once and exactly the
/// headcount (6) is accepted, the rest stand by; answering again changes nothing; an arrival,
/// a withdrawal that promotes the first on standby, and a stand-down that tells everyone
/// reached once and kills the tokens.
pub async fn fill_standby_withdraw_stand_down(url: &str) {
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 250);
    let app = TestApp::start(config(url, &prefix(), &seed), ManualClock::new()).await;

    let (s, inc) = app
        .raise(
            "demo-township-commander",
            json!({"kind": "flood", "level": 4, "region": "990101001", "title": "堤坝管涌"}),
        )
        .await;
    assert_eq!(s, 201, "{inc}");
    let id = inc["id"].as_str().unwrap().to_string();
    assert_eq!(inc["plan_id"], "flood");
    assert_eq!(inc["status"], "mustering");
    assert_eq!(req(&inc, "rescue")["needed"], 6);

    // Every rescue candidate is called once, in the township, with a signed webhook.
    eventually(T, "rescue call-outs delivered", || async {
        rx.delivered("callout")
            .iter()
            .filter(|r| r.body["requirement_id"] == "rescue")
            .count()
            >= 250
    })
    .await;
    let callouts: Vec<Received> = rx
        .delivered("callout")
        .into_iter()
        .filter(|r| r.body["requirement_id"] == "rescue")
        .collect();
    assert!(
        callouts.iter().all(|r| r.signature_ok),
        "every webhook is signed"
    );
    let mut per_volunteer: HashMap<String, usize> = HashMap::new();
    for r in &rx.delivered("callout") {
        *per_volunteer.entry(r.volunteer.clone()).or_default() += 1;
    }
    assert!(
        per_volunteer.values().all(|&n| n == 1),
        "nobody is called twice"
    );
    let first = &callouts[0].body;
    assert_eq!(first["incident"]["id"], id.as_str());
    assert_eq!(first["drill"], false);
    assert!(
        first["message"].as_str().unwrap().contains("堤坝管涌")
            || first["message"].as_str().unwrap().contains("CALL-OUT")
    );
    assert!(
        first["ack"]["accept_url"]
            .as_str()
            .unwrap()
            .contains("/v1/acks/")
    );

    // 200 volunteers accept at the same moment: exactly 6 get the places.
    let tokens: Vec<String> = callouts.iter().take(200).map(|r| r.token()).collect();
    let mut tasks = Vec::new();
    for t in tokens.clone() {
        let http = app.http.clone();
        let url = app.url(&format!("/v1/acks/{t}"));
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .json(&json!({"response": "accept"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let v: serde_json::Value = r.json().await.unwrap();
            (t, v["state"].as_str().unwrap().to_string())
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let accepted: Vec<&String> = results
        .iter()
        .filter(|(_, s)| s == "accepted")
        .map(|(t, _)| t)
        .collect();
    let standby = results.iter().filter(|(_, s)| s == "standby").count();
    assert_eq!(accepted.len(), 6, "exactly the headcount is accepted");
    assert_eq!(standby, 194);
    let inc = app.incident(&id).await;
    assert_eq!(req(&inc, "rescue")["accepted"], 6);
    assert_eq!(req(&inc, "rescue")["standby"], 194);

    // Answering again changes nothing.
    let (s, b) = app.ack(accepted[0], "accept").await;
    assert_eq!(
        (s, b["state"].as_str(), b["changed"].as_bool()),
        (200, Some("accepted"), Some(false))
    );

    // Arrival, then a withdrawal: the first on standby is promoted and told so.
    let (s, b) = app.ack(accepted[1], "arrived").await;
    assert_eq!((s, b["state"].as_str()), (200, Some("arrived")));
    let (s, b) = app.ack(accepted[0], "withdraw").await;
    assert_eq!((s, b["state"].as_str()), (200, Some("withdrawn")));
    eventually(T, "promoted notice", || async {
        rx.delivered("promoted").len() == 1
    })
    .await;
    let promoted = &rx.delivered("promoted")[0];
    // The promotion happens inside the incident's script, which cannot reach the volunteer's
    // own key on a Cluster: the projection records where they are deployed.
    eventually(
        T,
        "the promoted volunteer's deployment recorded",
        || async {
            let (_, v) = app
                .get(
                    &format!("/v1/volunteers/{}", promoted.volunteer),
                    Some("demo-admin"),
                )
                .await;
            v["deployments"]
                .as_array()
                .is_some_and(|d| d.iter().any(|x| x == id.as_str()))
        },
    )
    .await;
    let (s, b) = app.ack(&promoted.token(), "accept").await;
    assert_eq!(
        (s, b["state"].as_str()),
        (200, Some("accepted")),
        "the promoted callout holds a place"
    );
    let inc = app.incident(&id).await;
    let rescue = req(&inc, "rescue");
    assert_eq!(rescue["accepted"], 6, "{rescue}");
    assert_eq!(rescue["arrived"], 1);
    assert_eq!(rescue["standby"], 193);
    assert_eq!(rescue["withdrawn"], 1);

    // Stand down: everyone reached is told once; the tokens die.
    let (s, b) = app.stand_down(&id).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"], "stood_down");
    let reached = rx.delivered("callout").len();
    eventually(T, "stand-down notices", || async {
        rx.delivered("stand_down").len() == reached - 1
    })
    .await;
    // (the withdrawn volunteer is not told again)
    let (s, b) = app.ack(&tokens[199], "accept").await;
    assert_eq!(s, 410, "{b}");
    let inc = app.incident(&id).await;
    assert_eq!(inc["status"], "stood_down");
    app.stop().await;
}

/// Three real instances on the Redis at `url`; one is SIGKILLed in the middle of a
/// 5,000-callout fan-out: every callout still reaches the receiver, and the only duplicates are
/// re-sends whose first outcome was unknown, each counted in a survivor's `/metrics`.
pub async fn sigkill_mid_fan_out(url: &str) {
    use super::nodes::*;
    const T: Duration = Duration::from_secs(60);
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 5000);
    let mut nodes = Nodes::start(3, url, &prefix(), &seed, &[]).await;
    rx.set_delay(Duration::from_millis(5));
    let id = nodes
        .raise(
            0,
            serde_json::json!({"kind": "flood", "level": 4, "region": "990101001", "title": "多实例"}),
        )
        .await;
    eventually(T, "a first part of the fan-out", || async {
        delivered_of(&rx, &id).len() >= 800
    })
    .await;
    // SIGKILL the second instance mid-fan-out.
    nodes.kill(1);
    let delivered_at_kill = delivered_of(&rx, &id).len();

    // Every callout the incident created reaches the receiver.
    eventually(T, "every callout delivered", || async {
        let unique: std::collections::HashSet<String> = delivered_of(&rx, &id)
            .iter()
            .map(|r| r.callout_id())
            .collect();
        let t = sum_of(&nodes.incident(2, &id).await, "called");
        t >= 5000 && unique.len() as u64 == t
    })
    .await;
    let total = sum_of(&nodes.incident(2, &id).await, "called");
    assert!(
        (delivered_at_kill as u64) < total,
        "the kill happened mid-fan-out"
    );
    let dups = duplicates(&delivered_of(&rx, &id));
    let counted = nodes.resends().await;
    eprintln!(
        "fan-out of {total} callouts: {delivered_at_kill} delivered when node1 was killed, {dups} duplicates, {counted} re-sends counted"
    );
    assert!(
        dups as u64 <= counted,
        "{dups} duplicate deliveries but only {counted} re-sends counted"
    );
}

/// On the manual clock, on the Redis at `url`: a township whose only rescue team has two
/// members is short; nothing escalates before the step's five minutes, then the county's
/// on-call rescuers are called (nobody twice), four accept and the requirement is filled, and
/// no later step ever comes.
pub async fn short_township_escalates_to_the_county(url: &str) {
    const ADMIN: &str = "demo-admin";
    const MIN: i64 = 60_000;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let clock = ManualClock::new();
    let app = TestApp::start(config(url, &prefix(), &seed), clock.clone()).await;
    async fn raise(app: &TestApp, body: Value) -> String {
        let (s, b) = app.raise("demo-city-commander", body).await; // a city commander
        assert_eq!(s, 201, "{b}");
        b["id"].as_str().unwrap().to_string()
    }
    // 990103003's only rescue team has two members.
    assert_eq!(
        app.json(
            "PATCH",
            "/v1/teams/t990103003-rescue",
            ADMIN,
            json!({"status": "suspended"})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        app.json(
            "POST",
            "/v1/teams",
            ADMIN,
            json!({"id": "tiny", "name": "小队", "kind": "rescue", "region": "990103003"})
        )
        .await
        .0,
        201
    );
    for i in 0..2 {
        let (s, b) = app
            .json("POST", "/v1/volunteers", ADMIN, json!({"name": format!("小{i}"), "phone": format!("+861390000990{i}"), "teams": ["tiny"],
                "webhook": format!("{}/hooks/tiny{i}", rx.base()), "insurance_valid_until": "2099-01-01",
                "qualifications": [{"code": "water_rescue", "valid_until": "2099-01-01"}]}))
            .await;
        assert_eq!(s, 201, "{b}");
    }
    let id = raise(
        &app,
        json!({"kind": "flood", "level": 4, "region": "990103003", "title": "内涝"}),
    )
    .await;
    eventually(T, "two township call-outs", || async {
        rescue_callouts(&rx, &id).len() == 2
    })
    .await;
    for r in rescue_callouts(&rx, &id) {
        assert_eq!(app.ack(&r.token(), "accept").await.1["state"], "accepted");
    }
    let p = progress(&app, &id, "rescue").await;
    assert_eq!(
        (p["step"].as_u64(), p["accepted"].as_u64()),
        (Some(0), Some(2)),
        "{p}"
    );
    // Four minutes: still the township. Five: the county's on-call members are called.
    clock.advance(4 * MIN);
    app.idle().await;
    assert_eq!(
        rescue_callouts(&rx, &id).len(),
        2,
        "no escalation before the wait runs out"
    );
    clock.advance(MIN);
    eventually(T, "county call-outs", || async {
        rescue_callouts(&rx, &id).len() > 2
    })
    .await;
    let p = progress(&app, &id, "rescue").await;
    assert_eq!(
        (p["step"].as_u64(), p["tier"].as_str()),
        (Some(1), Some("county")),
        "{p}"
    );
    let county: Vec<Received> = rescue_callouts(&rx, &id)
        .into_iter()
        .filter(|r| !r.volunteer.starts_with("tiny"))
        .collect();
    let mut seen = std::collections::HashSet::new();
    assert!(
        county.iter().all(|r| seen.insert(r.volunteer.clone())),
        "nobody is called twice"
    );
    for r in county.iter().take(4) {
        assert_eq!(app.ack(&r.token(), "accept").await.1["state"], "accepted");
    }
    eventually(T, "rescue filled", || async {
        progress(&app, &id, "rescue").await["accepted"] == 6
    })
    .await;
    // Filled: later steps never come for rescue.
    let before = rescue_callouts(&rx, &id).len();
    clock.advance(30 * MIN);
    app.idle().await;
    assert_eq!(rescue_callouts(&rx, &id).len(), before);
    assert_eq!(progress(&app, &id, "rescue").await["step"], 1);
    app.stop().await;
}

/// Rescue call-outs of an incident the receiver got.
pub fn rescue_callouts(rx: &Receiver, id: &str) -> Vec<Received> {
    rx.delivered("callout")
        .into_iter()
        .filter(|r| r.body["incident"]["id"] == id && r.body["team_kind"] == "rescue")
        .collect()
}

/// One requirement's progress in an incident.
pub async fn progress(app: &TestApp, id: &str, rid: &str) -> Value {
    req(&app.incident(id).await, rid).clone()
}
