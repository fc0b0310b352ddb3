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
    let (s, _, b) = app
        .post(
            &format!("/v1/incidents/{id}/stand-down"),
            Some("demo-township-commander"),
            "",
        )
        .await;
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
