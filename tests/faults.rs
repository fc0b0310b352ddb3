//! Redis going away under a running muster: the API answers 503 with `Retry-After` (never a
//! panic, never a 5xx of another kind), and when the test's own `redis-server` comes back with
//! its AOF, everything answered 2xx before is there and the workers resume by themselves —
//! new call-outs go out and escalation timers fire, with no restart of muster.

mod common;

use common::*;
use muster::clock::ManualClock;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_restart_loses_nothing_acknowledged_and_work_resumes() {
    let redis = TestRedis::start().await; // appendfsync always
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let clock = ManualClock::new();
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), clock.clone()).await;
    let body = json!({"kind": "flood", "level": 4, "region": "990101001", "title": "内涝"});
    let (s, inc) = app.raise("demo-township-commander", body.clone()).await;
    assert_eq!(s, 201, "{inc}");
    let id = inc["id"].as_str().unwrap().to_string();
    let rescue = |rx: &Receiver, id: &str| -> Vec<Received> {
        rx.delivered("callout")
            .into_iter()
            .filter(|r| r.body["incident"]["id"] == id && r.body["team_kind"] == "rescue")
            .collect()
    };
    eventually(T, "rescue call-outs", || async {
        rescue(&rx, &id).len() >= 10
    })
    .await;
    let called = rescue(&rx, &id);
    for r in called.iter().take(3) {
        let (s, b) = app.ack(&r.token(), "accept").await;
        assert_eq!((s, b["state"].as_str()), (200, Some("accepted")), "{b}");
    }

    // Redis dies.
    redis.server.kill().await;
    let (s, h, b) = app
        .post(
            &format!("/v1/acks/{}", called[3].token()),
            None,
            "{\"response\":\"accept\"}",
        )
        .await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(h["retry-after"], "1");
    assert_eq!(h["content-type"], "application/problem+json");
    let (s, h, _) = app
        .post(
            "/v1/incidents",
            Some("demo-township-commander"),
            &body.to_string(),
        )
        .await;
    assert_eq!((s, h.get("retry-after").is_some()), (503, true));
    let (s, _) = app
        .get(&format!("/v1/incidents/{id}"), Some("demo-viewer"))
        .await;
    assert_eq!(s, 503);
    assert_eq!(app.get("/readyz", None).await.0, 503);
    assert_eq!(
        app.get("/healthz", None).await.0,
        200,
        "muster itself is alive"
    );

    // It comes back (same data directory, AOF): everything acknowledged is there.
    redis.server.restart().await.unwrap();
    eventually(T, "ready again", || async {
        app.get("/readyz", None).await.0 == 200
    })
    .await;
    let inc = app.incident(&id).await;
    assert_eq!(req(&inc, "rescue")["accepted"], 3, "{inc}");
    // The refused answer can be given again now.
    let (s, b) = app.ack(&called[3].token(), "accept").await;
    assert_eq!((s, b["state"].as_str()), (200, Some("accepted")), "{b}");
    // Workers resumed by themselves: a new incident is called out…
    let (s, inc2) = app
        .raise(
            "demo-county-commander",
            json!({"kind": "fire", "level": 4, "region": "990101002", "title": "山火"}),
        )
        .await;
    assert_eq!(s, 201, "{inc2}");
    let id2 = inc2["id"].as_str().unwrap().to_string();
    eventually(T, "new call-outs after the restart", || async {
        rx.delivered("callout")
            .iter()
            .any(|r| r.body["incident"]["id"] == id2.as_str())
    })
    .await;
    // …and the first incident's escalation timer still fires on time.
    let before = rx
        .delivered("callout")
        .iter()
        .filter(|r| r.body["incident"]["id"] == id.as_str())
        .count();
    clock.advance(5 * 60_000);
    eventually(T, "escalation after the restart", || async {
        req(&app.incident(&id).await, "rescue")["step"] == 1
    })
    .await;
    eventually(T, "county call-outs", || async {
        rx.delivered("callout")
            .iter()
            .filter(|r| r.body["incident"]["id"] == id.as_str())
            .count()
            > before
    })
    .await;
    app.stop().await;
}
