//! The muster loop end to end on a real Redis: raise → callouts → concurrent acceptances fill
//! exactly the headcount → standby → withdraw promotes → stand-down notices.

mod common;

use common::scenarios::*;
use common::*;
use muster::clock::ManualClock;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_acceptors_fill_exactly_the_headcount() {
    let redis = TestRedis::start().await;
    fill_standby_withdraw_stand_down(&redis.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_fills_and_reports_progress_live() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), ManualClock::new()).await;
    let (s, inc) = app
        .raise(
            "demo-county-commander",
            json!({"kind": "fire", "level": 4, "region": "990101002", "title": "仓库火情", "mode": "drill"}),
        )
        .await;
    assert_eq!(s, 201, "{inc}");
    let id = inc["id"].as_str().unwrap().to_string();
    assert_eq!(inc["mode"], "drill");

    // Watch the SSE stream while answering.
    let sse = app
        .http
        .get(app.url(&format!("/v1/incidents/{id}/events")))
        .bearer_auth("demo-viewer")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    assert!(
        sse.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );

    eventually(T, "call-outs", || async {
        rx.delivered("callout").len() >= 30
    })
    .await;
    let all = rx.delivered("callout");
    assert!(
        all[0].body["message"]
            .as_str()
            .unwrap()
            .starts_with("【演练】")
            || all[0].body["message"]
                .as_str()
                .unwrap()
                .starts_with("[DRILL]")
    );
    assert_eq!(all[0].body["drill"], true);
    // Fire teams exist only at county level: the township incident calls the county's.
    let fire: Vec<_> = all
        .iter()
        .filter(|r| r.body["requirement_id"] == "fire")
        .collect();
    let inc = app.incident(&id).await;
    assert_eq!(req(&inc, "fire")["tier"], "county");
    for r in fire.iter().take(8) {
        assert_eq!(app.ack(&r.token(), "accept").await.0, 200);
    }
    for r in all
        .iter()
        .filter(|r| r.body["requirement_id"] == "first_aid")
        .take(3)
    {
        assert_eq!(app.ack(&r.token(), "accept").await.0, 200);
    }
    eventually(T, "status filled", || async {
        app.incident(&id).await["status"] == "filled"
    })
    .await;

    // The stream carried the answers and the fill.
    let mut body = String::new();
    let mut stream = sse;
    while !body.contains("event: incident.filled") {
        let chunk = tokio::time::timeout(T, stream.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        body.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(body.starts_with("event: snapshot"), "{body}");
    assert!(body.contains("event: callout.accepted"));
    assert!(body.contains("event: progress"));

    // Listing shows it in scope and hides it out of scope.
    let (s, list) = app
        .get("/v1/incidents", Some("demo-county-commander"))
        .await;
    assert_eq!(s, 200);
    assert!(
        list["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == id.as_str())
    );
    let (_, list) = app
        .get("/v1/incidents", Some("demo-township-commander"))
        .await;
    assert!(
        !list["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == id.as_str())
    );

    // Callouts list: viewers see masked phones, coordinators the full number.
    let (s, page) = app
        .get(
            &format!("/v1/incidents/{id}/callouts?limit=5"),
            Some("demo-viewer"),
        )
        .await;
    assert_eq!(s, 200);
    let phone = page["callouts"][0]["phone"].as_str().unwrap();
    assert!(phone.contains("****"), "{phone}");
    let (_, page) = app
        .get(
            &format!("/v1/incidents/{id}/callouts?limit=5"),
            Some("demo-admin"),
        )
        .await;
    assert!(!page["callouts"][0]["phone"].as_str().unwrap().contains('*'));
    assert_eq!(
        page["total"].as_u64().unwrap() as usize,
        rx.delivered("callout").len()
    );
    app.stop().await;
}

/// A volunteer counts on one live incident at a time: accepting a second is refused with a
/// reason and changes nothing there, sequentially and when both answers race; a drill never
/// engages anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_volunteer_accepted_on_one_live_incident_is_not_counted_on_another() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 30);
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), ManualClock::new()).await;
    let raise = |kind: &'static str, mode: &'static str| {
        let app = &app;
        async move {
            let (s, inc) = app
                .raise(
                    "demo-admin",
                    json!({"kind": kind, "level": 4, "region": "990101001", "title": kind, "mode": mode}),
                )
                .await;
            assert_eq!(s, 201, "{inc}");
            inc["id"].as_str().unwrap().to_string()
        }
    };
    let a = raise("flood", "live").await;
    let b = raise("earthquake", "live").await;
    // The extra rescuers x0000.. are called by the rescue requirement of A and B.
    let token = |inc: &str, v: &str| {
        rx.delivered("callout")
            .into_iter()
            .find(|r| r.volunteer == v && r.body["incident"]["id"] == inc)
            .map(|r| r.token())
    };
    eventually(T, "both incidents call every extra rescuer", || async {
        (0..30).all(|i| {
            let v = format!("x{i:04}");
            token(&a, &v).is_some() && token(&b, &v).is_some()
        })
    })
    .await;
    // Sequentially: accepted on A, then refused on B.
    let (s, r) = app.ack(&token(&a, "x0000").unwrap(), "accept").await;
    assert_eq!((s, r["state"].as_str()), (200, Some("accepted")), "{r}");
    let (s, r) = app.ack(&token(&b, "x0000").unwrap(), "accept").await;
    assert_eq!(s, 409, "{r}");
    assert!(r["detail"].as_str().unwrap().starts_with("engaged"), "{r}");
    assert!(r["detail"].as_str().unwrap().contains(&a), "{r}");
    // The call-out page says so in the volunteer's words.
    let page = app
        .http
        .post(app.url(&format!("/a/{}", token(&b, "x0000").unwrap())))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("response=accept")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("another incident") || page.contains("另一起事件"),
        "{page}"
    );
    // After withdrawing from A they may accept B.
    let (s, _) = app.ack(&token(&a, "x0000").unwrap(), "withdraw").await;
    assert_eq!(s, 200);
    let (s, r) = app.ack(&token(&b, "x0000").unwrap(), "accept").await;
    assert_eq!((s, r["state"].as_str()), (200, Some("accepted")), "{r}");
    // Racing: both answers of each of 29 volunteers at once.
    let mut tasks = Vec::new();
    for i in 1..30 {
        let v = format!("x{i:04}");
        for inc in [&a, &b] {
            let t = token(inc, &v).unwrap();
            let (http, url) = (app.http.clone(), app.url(&format!("/v1/acks/{t}")));
            tasks.push(tokio::spawn(async move {
                let r = http
                    .post(url)
                    .json(&json!({"response": "accept"}))
                    .send()
                    .await
                    .unwrap();
                r.status().as_u16()
            }));
        }
    }
    let mut statuses = HashMap::new();
    for t in tasks {
        *statuses.entry(t.await.unwrap()).or_insert(0) += 1;
    }
    assert!(
        statuses.contains_key(&409),
        "some raced into engagement: {statuses:?}"
    );
    assert_eq!(
        statuses.keys().filter(|s| ![200, 409].contains(*s)).count(),
        0,
        "{statuses:?}"
    );
    // Nobody is counted (accepted or arrived) on both.
    let counted = |inc: &str| {
        let app = &app;
        let inc = inc.to_string();
        async move {
            let (_, list) = app
                .get(&format!("/v1/incidents/{inc}/callouts"), Some("demo-admin"))
                .await;
            list["callouts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| matches!(c["state"].as_str(), Some("accepted" | "arrived")))
                .map(|c| c["volunteer_id"].as_str().unwrap().to_string())
                .collect::<std::collections::HashSet<_>>()
        }
    };
    let (ca, cb) = (counted(&a).await, counted(&b).await);
    assert!(!ca.is_empty() && !cb.is_empty(), "{ca:?} {cb:?}");
    assert!(
        ca.is_disjoint(&cb),
        "counted twice: {:?}",
        ca.intersection(&cb)
    );
    // A is full now, so an acceptance there can only go to standby, which claims nobody (it
    // does not count): it is still refused for one deployed on B, and changes nothing.
    assert_eq!(ca.len(), 6, "A's rescuers are all counted: {ca:?}");
    let (s, r) = app.ack(&token(&a, "x0000").unwrap(), "accept").await;
    assert_eq!(s, 409, "{r}");
    let detail = r["detail"].as_str().unwrap();
    assert!(detail.starts_with("engaged") && detail.contains(&b), "{r}");
    assert!(detail.contains("withdrawn"), "still withdrawn on A: {r}");
    // One counted nowhere who accepts at a full requirement goes to standby.
    let (_, list) = app
        .get(&format!("/v1/incidents/{a}/callouts"), Some("demo-admin"))
        .await;
    let notified: std::collections::HashSet<String> = list["callouts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["requirement_id"] == "rescue" && c["state"] == "notified")
        .map(|c| c["volunteer_id"].as_str().unwrap().to_string())
        // Not one of those the race left unanswered on A because B counts them (they would
        // rightly be refused as engaged).
        .filter(|v| !cb.contains(v))
        .collect();
    let free = rx
        .delivered("callout")
        .into_iter()
        .find(|r| r.body["incident"]["id"] == a.as_str() && notified.contains(&r.volunteer))
        .expect("a rescuer reached on A who has not answered");
    let (s, r) = app.ack(&free.token(), "accept").await;
    assert_eq!((s, r["state"].as_str()), (200, Some("standby")), "{r}");
    // A drill that calls the deployed is not blocked by their engagement, and engages nobody.
    let engaged = ca.iter().next().unwrap().clone();
    let (s, drill) = app
        .raise(
            "demo-admin",
            json!({"kind": "flood", "level": 4, "region": "990101001", "title": "演练",
                   "mode": "drill", "include_deployed": true}),
        )
        .await;
    assert_eq!(s, 201, "{drill}");
    let d = drill["id"].as_str().unwrap().to_string();
    eventually(T, "the drill calls the deployed volunteer", || async {
        token(&d, &engaged).is_some()
    })
    .await;
    let (s, r) = app.ack(&token(&d, &engaged).unwrap(), "accept").await;
    assert_eq!(s, 200, "{r}");
    let (s, r) = app.ack(&token(&a, &engaged).unwrap(), "arrived").await;
    assert_eq!((s, r["state"].as_str()), (200, Some("arrived")), "{r}");
}

/// An acceptance that claims nobody (the path of one read to find its requirement full) is
/// applied only when it cannot count: while a place is free it changes nothing and says so,
/// so the acceptance claims the volunteer first; once the requirement is full it goes to
/// standby.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unclaimed_acceptance_never_takes_a_free_place() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), ManualClock::new()).await;
    let id = raised(
        &app,
        "demo-township-commander",
        json!({"kind": "flood", "level": 4, "region": "990101001", "title": "东门内涝"}),
    )
    .await;
    app.idle().await;
    let called = rescue_callouts(&rx, &id);
    assert!(called.len() > 7, "{}", called.len());
    let store = app.store();
    let iid = muster::domain::incident::IncidentId::parse(&id).unwrap();
    let n = |r: &Received| -> u32 { r.callout_id().rsplit('.').next().unwrap().parse().unwrap() };
    let now = 0;
    // Five of six places taken: the sixth is free, so nothing changes.
    for r in called.iter().take(5) {
        let (s, b) = app.ack(&r.token(), "accept").await;
        assert_eq!((s, b["state"].as_str()), (200, Some("accepted")), "{b}");
    }
    let late = &called[6];
    let out = store
        .accept_to_standby(&iid, n(late), now, "web")
        .await
        .unwrap();
    assert!(
        out.is_none(),
        "a free place is not taken unclaimed: {out:?}"
    );
    let state = |r: &Received| {
        let (app, cid, id) = (&app, r.callout_id(), &id);
        async move {
            let (_, list) = app
                .get(&format!("/v1/incidents/{id}/callouts"), Some("demo-admin"))
                .await;
            list["callouts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == cid.as_str())
                .map(|c| c["state"].as_str().unwrap().to_string())
                .unwrap_or_else(|| panic!("no callout {cid}: {list}"))
        }
    };
    assert_eq!(state(late).await, "notified");
    // The sixth accepts through the API (claimed, counted); now the unclaimed path puts the
    // late one on standby.
    let (s, b) = app.ack(&called[5].token(), "accept").await;
    assert_eq!((s, b["state"].as_str()), (200, Some("accepted")), "{b}");
    let out = store
        .accept_to_standby(&iid, n(late), now, "web")
        .await
        .unwrap();
    assert!(
        matches!(&out, Some(muster::store::callouts::AckOutcome::Changed { state, .. }) if state == "standby"),
        "{out:?}"
    );
    assert_eq!(state(late).await, "standby");
    // An accepted one answering again through it changes nothing.
    let out = store
        .accept_to_standby(&iid, n(&called[0]), now, "web")
        .await
        .unwrap();
    assert!(
        matches!(&out, Some(muster::store::callouts::AckOutcome::Unchanged { state }) if state == "accepted"),
        "{out:?}"
    );
}
