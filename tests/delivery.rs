//! Delivery under faults: receivers that fail, and muster restarting or crashing mid-fan-out.

mod common;

use common::*;
use muster::clock::ManualClock;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn flood() -> serde_json::Value {
    json!({"kind": "flood", "level": 4, "region": "990101001", "title": "内涝"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_twice_gets_exactly_one_successful_delivery() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    rx.fail_next("v0001", 2);
    rx.fail_next("v0002", 100);
    let clock = ManualClock::new();
    let seed = seed_dir(&rx.base(), 0);
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), clock.clone()).await;
    let (s, inc) = app.raise("demo-township-commander", flood()).await;
    assert_eq!(s, 201);
    let id = inc["id"].as_str().unwrap().to_string();
    let attempts = |vid: &'static str| {
        let rx = rx.clone();
        move || {
            rx.all()
                .into_iter()
                .filter(|r| r.volunteer == vid && r.kind() == "callout")
                .collect::<Vec<_>>()
        }
    };
    // Retries wait on the injected clock: move it past each backoff (1 s ± 20%).
    eventually(T, "v0002 exhausts its 4 attempts", || {
        clock.advance(1_300);
        let n = attempts("v0002")().len();
        async move { n >= 4 }
    })
    .await;
    eventually(T, "v0001 delivered", || async {
        attempts("v0001")().iter().any(|r| r.status == 200)
    })
    .await;
    let v1 = attempts("v0001")();
    assert_eq!(v1.len(), 3, "two failures then one success");
    assert_eq!(v1.iter().filter(|r| r.status == 200).count(), 1);
    assert!(
        v1.iter().all(|r| r.webhook_id == v1[0].webhook_id),
        "one message id across retries"
    );
    // More clock: no further attempt for either (the workers drained after each step).
    for _ in 0..5 {
        clock.advance(10_000);
        app.idle().await;
    }
    assert_eq!(attempts("v0001")().len(), 3);
    assert_eq!(attempts("v0002")().len(), 4, "1 + 3 retries, then failed");
    let (_, page) = app
        .get(
            &format!("/v1/incidents/{id}/callouts?limit=5000"),
            Some("demo-admin"),
        )
        .await;
    let state_of = |vid: &str| {
        page["callouts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["volunteer_id"] == vid)
            .unwrap()
            .clone()
    };
    assert_eq!(state_of("v0001")["state"], "notified");
    let failed = state_of("v0002");
    assert_eq!(failed["state"], "failed");
    assert!(
        failed["delivery_error"].as_str().unwrap().contains("500"),
        "{failed}"
    );
    let inc = app.incident(&id).await;
    assert_eq!(req(&inc, "rescue")["failed"], 1);
}

/// Raises a flood with a slow receiver and few delivery slots, so the fan-out is still going
/// when muster goes away; returns (incident id, number of callouts).
async fn raise_slowly(app: &TestApp, rx: &Receiver) -> (String, usize) {
    rx.set_delay(Duration::from_millis(60));
    let (s, inc) = app.raise("demo-township-commander", flood()).await;
    assert_eq!(s, 201);
    let id = inc["id"].as_str().unwrap().to_string();
    eventually(T, "fan-out under way", || async { rx.all().len() >= 10 }).await;
    let (_, page) = app
        .get(
            &format!("/v1/incidents/{id}/callouts?limit=5000"),
            Some("demo-admin"),
        )
        .await;
    (id, page["total"].as_u64().unwrap() as usize)
}

fn per_message(rx: &Receiver) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in rx.delivered("callout") {
        *m.entry(r.webhook_id).or_default() += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_incident_loses_no_callout_and_sends_none_twice() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let prefix = prefix();
    let mut cfg = config(&redis.url(), &prefix, &seed);
    cfg.webhook.concurrency = 4;
    let app = TestApp::start(cfg.clone(), ManualClock::new()).await;
    let (id, total) = raise_slowly(&app, &rx).await;
    assert!(total > 60, "{total}");
    app.stop().await;
    let sent_before = rx.delivered("callout").len();
    assert!(
        sent_before < total,
        "the restart happened mid-fan-out ({sent_before}/{total})"
    );

    rx.set_delay(Duration::ZERO);
    let app = TestApp::start(cfg, ManualClock::new()).await;
    eventually(T, "every callout delivered", || async {
        per_message(&rx).len() == total
    })
    .await;
    app.idle().await;
    let counts = per_message(&rx);
    assert!(
        counts.values().all(|&n| n == 1),
        "a message went out twice: {counts:?}"
    );
    let inc = app.incident(&id).await;
    let sum = |k: &str| -> u64 {
        inc["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[k].as_u64().unwrap())
            .sum()
    };
    assert_eq!(
        sum("notified") as usize,
        total,
        "every callout is notified and awaiting an answer: {inc}"
    );
    assert_eq!(sum("pending"), 0, "none is left unsent: {inc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_incident_loses_no_callout() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let prefix = prefix();
    let mut cfg = config(&redis.url(), &prefix, &seed);
    cfg.webhook.concurrency = 4;
    let app = TestApp::start(cfg.clone(), ManualClock::new()).await;
    let (_id, total) = raise_slowly(&app, &rx).await;
    app.kill();
    let sent_before = rx.all().len();
    assert!(sent_before < total);

    rx.set_delay(Duration::ZERO);
    let _app = TestApp::start(cfg, ManualClock::new()).await;
    // The dead instance's unfinished entries are reclaimed after engine.reclaim_idle_ms.
    eventually(T, "every callout delivered", || async {
        per_message(&rx).len() == total
    })
    .await;
    let counts = per_message(&rx);
    let dups: usize = counts.values().map(|n| n - 1).sum();
    // Only messages whose send was in flight at the crash (at most the 4 delivery slots)
    // may go out twice: their first outcome is unknown.
    assert!(dups <= 4, "{dups} duplicates: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callout_delivered_after_stand_down_gets_its_own_notice() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    // The receiver holds every answer: the call-outs are still in flight when the incident
    // is stood down, so the stand-down sweep finds them `pending` and cannot tell them yet.
    rx.hold();
    let clock = ManualClock::new();
    let seed = seed_dir(&rx.base(), 0);
    let mut c = config(&redis.url(), &prefix(), &seed);
    c.webhook.timeout_ms = 30_000; // held sends must not time out
    let app = TestApp::start(c, clock.clone()).await;
    let (s, inc) = app.raise("demo-township-commander", flood()).await;
    assert_eq!(s, 201);
    let id = inc["id"].as_str().unwrap().to_string();
    let total_of = || async {
        let (_, page) = app
            .get(&format!("/v1/incidents/{id}/callouts"), Some("demo-admin"))
            .await;
        page["total"].as_u64().unwrap_or(0) as usize
    };
    // Every call-out created and in flight at the receiver's gate.
    eventually(T, "every call-out in flight", || async {
        let total = total_of().await;
        total > 0 && rx.waiting() == total
    })
    .await;
    let (s, b) = app
        .json(
            "POST",
            &format!("/v1/incidents/{id}/stand-down"),
            "demo-township-commander",
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(
        rx.all().is_empty(),
        "nothing answered before the stand-down"
    );
    // The stand-down sweep (on the bus) closes every callout, still in flight, before the
    // receiver lets the call-outs through.
    eventually(T, "every callout closed by the sweep", || async {
        let (_, page) = app
            .get(
                &format!("/v1/incidents/{id}/callouts?limit=5000"),
                Some("demo-admin"),
            )
            .await;
        page["callouts"]
            .as_array()
            .is_some_and(|cs| cs.iter().all(|c| c["state"] == "stood_down"))
    })
    .await;
    rx.release();
    let (_, page) = app
        .get(
            &format!("/v1/incidents/{id}/callouts?limit=5000"),
            Some("demo-admin"),
        )
        .await;
    let total = page["total"].as_u64().unwrap() as usize;
    // Each call-out that reached its volunteer after the stand-down is followed by a notice.
    eventually(T, "every late call-out followed by its notice", || async {
        let called = rx.delivered("callout").len();
        called > 0 && rx.delivered("stand_down").len() == called
    })
    .await;
    app.idle().await;
    let called: Vec<String> = rx
        .delivered("callout")
        .iter()
        .map(|r| r.volunteer.clone())
        .collect();
    let mut told: Vec<String> = rx
        .delivered("stand_down")
        .iter()
        .map(|r| r.volunteer.clone())
        .collect();
    let mut sorted = called.clone();
    sorted.sort();
    told.sort();
    assert_eq!(
        told, sorted,
        "exactly the volunteers reached are told, once each"
    );
    assert!(called.len() <= total);
    // The notices came from the late path (the sweep had nothing reached to tell): each told
    // callout carries its late-notice mark.
    let mut c = redis.conn().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*:inc:{id}:co"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "one callout hash per incident");
    let all: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(&keys[0])
        .query_async(&mut c)
        .await
        .unwrap();
    let marked = all
        .values()
        .filter(|json| serde_json::from_str::<serde_json::Value>(json).unwrap()["sdn"].is_string())
        .count();
    assert_eq!(marked, called.len());
    app.stop().await;
}

/// A batch outliving `reclaim_idle_ms` on a stalled machine is handed back by the reclaim to
/// the very process still working on it; that process must not start it a second time. Here
/// the idle bound (50 ms) is shorter than the heartbeat (100 ms) and every receiver answers
/// after 600 ms, so every batch is reclaimed while alive: still one call-out per volunteer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_reclaimed_by_the_process_working_on_it_is_not_sent_twice() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    rx.set_delay(Duration::from_millis(600));
    let seed = seed_dir(&rx.base(), 0);
    let mut cfg = config(&redis.url(), &prefix(), &seed);
    cfg.engine.reclaim_idle_ms = 50;
    cfg.engine.reclaim_interval_ms = 50;
    let app = TestApp::start(cfg, ManualClock::new()).await;
    let (s, inc) = app.raise("demo-township-commander", flood()).await;
    assert_eq!(s, 201, "{inc}");
    let id = inc["id"].as_str().unwrap().to_string();
    eventually(T, "every call-out answered", || async {
        let (_, page) = app
            .get(
                &format!("/v1/incidents/{id}/callouts?limit=5000"),
                Some("demo-admin"),
            )
            .await;
        let list = page["callouts"].as_array().cloned().unwrap_or_default();
        !list.is_empty() && list.iter().all(|c| c["state"] != "pending")
    })
    .await;
    app.idle().await;
    let mut per_volunteer: HashMap<String, usize> = HashMap::new();
    for r in rx.delivered("callout") {
        if r.body["incident"]["id"] == id.as_str() {
            *per_volunteer.entry(r.volunteer.clone()).or_default() += 1;
        }
    }
    assert!(!per_volunteer.is_empty());
    let twice: Vec<_> = per_volunteer.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    app.stop().await;
}

/// Two partitions' delivery streams can hand out the same entry id (the same millisecond, on
/// two streams). Each entry is its own work: the second is not taken for the first, still
/// running, and left for a reclaim half a minute later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_with_the_same_id_in_two_partitions_both_go_out_at_once() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let mut cfg = config(&redis.url(), &prefix(), &seed);
    cfg.engine.reclaim_idle_ms = 60_000; // a skipped entry would wait a minute
    let app = TestApp::start(cfg, ManualClock::new()).await;
    let store = app.store();
    // Two incidents in two different partitions.
    let mut by_partition: HashMap<u16, String> = HashMap::new();
    for i in 0..40 {
        if by_partition.len() == 2 {
            break;
        }
        let (s, inc) = app
            .raise(
                "demo-township-commander",
                json!({"kind": "flood", "level": 4, "region": "990101001", "title": format!("同号{i}")}),
            )
            .await;
        assert_eq!(s, 201, "{inc}");
        let id = inc["id"].as_str().unwrap().to_string();
        let iid = muster::domain::incident::IncidentId::parse(&id).unwrap();
        by_partition
            .entry(store.keys.partition_of(&iid))
            .or_insert(id);
    }
    assert_eq!(by_partition.len(), 2, "two partitions used");
    app.idle().await;
    // A standby notice to callout 1 of each, as two entries with one id, while the receiver is
    // slow (the first is still running when the second is read).
    rx.set_delay(Duration::from_millis(500));
    let mut c = redis.conn().await;
    let same_id = format!("{}-0", muster::clock::wall_ms() + 1000);
    for (p, id) in &by_partition {
        let _: String = redis::cmd("XADD")
            .arg(store.keys.deliveries(*p))
            .arg(&same_id)
            .arg("i")
            .arg(id)
            .arg("ns")
            .arg("1")
            .arg("k")
            .arg("standby")
            .arg("a")
            .arg(1)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    eventually(Duration::from_secs(10), "both standby notices", || async {
        let told: std::collections::HashSet<String> = rx
            .delivered("standby")
            .iter()
            .map(|r| r.body["incident"]["id"].as_str().unwrap_or("").to_string())
            .collect();
        by_partition.values().all(|id| told.contains(id))
    })
    .await;
    app.stop().await;
}
