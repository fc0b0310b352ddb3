//! muster on a real local Redis Cluster (three masters, three replicas, started and stopped by
//! each test): the muster loop, an escalation on the manual clock, an instance SIGKILLed
//! mid-fan-out, a slot migration of an incident's partition during a fan-out, a master
//! failover with `redis.wait_replicas = 1`, and a master that stops answering (SIGSTOP).

mod common;

use common::scenarios::*;
use common::*;
use muster::clock::ManualClock;
use muster::local_cluster::LocalCluster as TestCluster;
use muster::store::conn::slot_of;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_muster_loop_runs_on_a_cluster() {
    let cluster = TestCluster::start().await;
    fill_standby_withdraw_stand_down(&cluster.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_escalation_runs_on_the_manual_clock_on_a_cluster() {
    let cluster = TestCluster::start().await;
    short_township_escalates_to_the_county(&cluster.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_one_instance_mid_fan_out_on_a_cluster_loses_no_callout() {
    let cluster = TestCluster::start().await;
    sigkill_mid_fan_out(&cluster.url()).await;
}

/// Delivered call-outs of incident `id`, one per callout.
fn unique_callouts(rx: &Receiver, id: &str) -> HashSet<String> {
    rx.delivered("callout")
        .iter()
        .filter(|r| r.body["incident"]["id"] == id)
        .map(|r| r.callout_id())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_incident_partition_migrates_to_another_master_during_its_fan_out() {
    let cluster = TestCluster::start().await;
    let rx = Receiver::start().await;
    rx.set_delay(Duration::from_millis(3));
    let seed = seed_dir(&rx.base(), 3000);
    let app = TestApp::start(config(&cluster.url(), &prefix(), &seed), ManualClock::new()).await;
    let (s, inc) = app
        .raise(
            "demo-township-commander",
            json!({"kind": "flood", "level": 4, "region": "990101001", "title": "迁移中"}),
        )
        .await;
    assert_eq!(s, 201, "{inc}");
    let id = inc["id"].as_str().unwrap().to_string();
    let iid = muster::domain::incident::IncidentId::parse(&id).unwrap();
    eventually(T, "a first part of the fan-out", || async {
        unique_callouts(&rx, &id).len() >= 300
    })
    .await;

    // Move the partition's slot (the incident's keys and the partition's streams) key by key
    // to another master while the fan-out runs, and answer call-outs meanwhile.
    let slot = slot_of(app.store().keys.incident(&iid).as_bytes());
    let from = cluster.master_of_slot(slot).await;
    let to = cluster.other_master(slot).await;
    let at_start = unique_callouts(&rx, &id).len();
    let tokens: Vec<String> = rx
        .delivered("callout")
        .iter()
        .filter(|r| r.body["incident"]["id"] == id && r.body["requirement_id"] == "rescue")
        .take(30)
        .map(|r| r.token())
        .collect();
    let answers = {
        let http = app.http.clone();
        let base = app.url("");
        tokio::spawn(async move {
            let mut states = Vec::new();
            for t in tokens {
                let deadline = Instant::now() + T;
                loop {
                    let r = http
                        .post(format!("{base}/v1/acks/{t}"))
                        .json(&json!({"response": "accept"}))
                        .send()
                        .await
                        .unwrap();
                    if r.status() == 200 {
                        let v: serde_json::Value = r.json().await.unwrap();
                        states.push(v["state"].as_str().unwrap().to_string());
                        break;
                    }
                    assert_eq!(r.status(), 503, "only 'try again' while the slot moves");
                    assert!(Instant::now() < deadline, "an answer never went through");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            states
        })
    };
    cluster
        .migrate_slot(slot, to, 1, Duration::from_millis(40))
        .await;
    assert_eq!(cluster.master_of_slot(slot).await, to);
    assert_ne!(from, to);
    let states = answers.await.unwrap();

    // Everyone called is reached once (a duplicate only as a counted re-send), and the
    // counters add up: 6 places taken, the other answers on standby. The whole team of 3,000
    // is called unless the fan-out's step was cut off by the move (a call that timed out while
    // the slot moved) after the answers had filled the requirement: the step's event is then
    // handled again and, by design, a filled requirement calls nobody more.
    let progress = || async {
        let inc = app.incident(&id).await;
        let reqs = inc["requirements"].as_array().unwrap().clone();
        let called: u64 = reqs.iter().map(|r| r["called"].as_u64().unwrap()).sum();
        let rescue = reqs.iter().find(|r| r["id"] == "rescue").unwrap().clone();
        let filled = rescue["accepted"].as_u64() >= rescue["needed"].as_u64();
        (called, filled)
    };
    eventually(T, "every callout delivered", || async {
        let (called, filled) = progress().await;
        (called >= 3000 || filled) && unique_callouts(&rx, &id).len() as u64 == called
    })
    .await;
    app.idle().await;
    let (called, filled) = progress().await;
    assert_eq!(
        unique_callouts(&rx, &id).len() as u64,
        called,
        "every callout created is delivered"
    );
    assert!(
        called >= 3000 || filled,
        "the fan-out stopped at {called} with the requirement unfilled"
    );
    let total = unique_callouts(&rx, &id).len();
    assert!(
        at_start < total,
        "the slot moved mid-fan-out ({at_start} of {total} delivered when it began)"
    );
    let mut per: HashMap<String, usize> = HashMap::new();
    for r in rx.delivered("callout") {
        *per.entry(r.callout_id()).or_default() += 1;
    }
    let dups: usize = per.values().map(|n| n - 1).sum();
    let resends = metric(
        &app.http,
        &app.url(""),
        "muster_delivery_resends_total",
        &[],
    )
    .await;
    assert!(
        dups as f64 <= resends,
        "{dups} duplicates, {resends} re-sends counted"
    );
    let accepted = states.iter().filter(|s| *s == "accepted").count();
    let standby = states.iter().filter(|s| *s == "standby").count();
    assert_eq!((accepted, standby), (6, 24), "{states:?}");
    let inc = app.incident(&id).await;
    let rescue = req(&inc, "rescue");
    assert_eq!(
        (rescue["accepted"].as_u64(), rescue["standby"].as_u64()),
        (Some(6), Some(24)),
        "{rescue}"
    );
    for r in inc["requirements"].as_array().unwrap() {
        assert_eq!(r["pending"], 0, "nothing left undelivered: {r}");
        assert_eq!(r["failed"], 0, "{r}");
    }
    eprintln!(
        "slot {slot} moved from node {from} to node {to} with {at_start} of {total} delivered; \
         {dups} duplicates, {} re-sends counted",
        resends as u64
    );

    // The moved partition keeps working: a stand-down reaches everyone reached.
    let (s, b) = app.stand_down(&id).await;
    assert_eq!(s, 200, "{b}");
    eventually(T, "stand-down notices", || async {
        let told: HashSet<String> = rx
            .delivered("stand_down")
            .iter()
            .filter(|r| r.body["incident"]["id"] == id)
            .map(|r| r.callout_id())
            .collect();
        told.len() == total
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_master_failover_with_wait_replicas_loses_no_answered_change() {
    let mut cluster = TestCluster::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 60);
    let mut cfg = config(&cluster.url(), &prefix(), &seed);
    cfg.redis.wait_replicas = 1;
    cfg.redis.wait_timeout_ms = 1000;
    let app = TestApp::start(cfg, ManualClock::new()).await;
    let (s, ready) = app.get("/readyz", None).await;
    assert_eq!(s, 200, "{ready}");
    assert_eq!(ready["redis"], "cluster");
    assert_eq!(ready["cluster_state"], "ok");
    assert_eq!(ready["slots_ok"], 16384);
    assert_eq!(ready["masters"].as_array().unwrap().len(), 3, "{ready}");
    assert!(
        ready["masters"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["replicas"] == 1),
        "{ready}"
    );
    assert_eq!(ready["replicas_ok"], true);
    let (s, inc) = app
        .raise(
            "demo-township-commander",
            json!({"kind": "flood", "level": 4, "region": "990101001", "title": "主从切换"}),
        )
        .await;
    assert_eq!(s, 201, "{inc}");
    let id = inc["id"].as_str().unwrap().to_string();
    let iid = muster::domain::incident::IncidentId::parse(&id).unwrap();
    eventually(T, "call-outs", || async {
        unique_callouts(&rx, &id).len() >= 60
    })
    .await;
    let tokens: Vec<String> = rx
        .delivered("callout")
        .iter()
        .filter(|r| r.body["incident"]["id"] == id && r.body["requirement_id"] == "rescue")
        .take(40)
        .map(|r| r.token())
        .collect();
    assert_eq!(tokens.len(), 40);

    // Answers go in one by one; after the tenth 2xx the master holding the incident is
    // SIGKILLed, and its replica takes over. With no replica left to confirm, changes are
    // answered 503 until the dead node is back (as a replica of the new master). Every answer
    // that got a 2xx must be there after.
    let slot = slot_of(app.store().keys.incident(&iid).as_bytes());
    let master = cluster.master_of_slot(slot).await;
    let replica = cluster.replica_of(master).await;
    let mut confirmed: Vec<(String, String)> = Vec::new();
    let mut refused_during_failover = 0;
    let mut restarted = false;
    let started = Instant::now();
    for (i, t) in tokens.iter().enumerate() {
        if i == 10 {
            cluster.nodes[master].kill();
        }
        loop {
            assert!(started.elapsed() < T, "answers never went through again");
            let (s, b) = app.ack(t, "decline").await;
            if s == 200 {
                confirmed.push((t.clone(), b["state"].as_str().unwrap().to_string()));
                break;
            }
            assert!(s == 503, "{s} {b}");
            refused_during_failover += 1;
            if !restarted && cluster.master_of_slot(slot).await == replica {
                cluster.nodes[master].restart();
                restarted = true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    cluster.wait_ok().await;
    assert_eq!(
        cluster.master_of_slot(slot).await,
        replica,
        "the replica took over"
    );
    eventually(T, "readyz: every master replicated again", || async {
        let (s, r) = app.get("/readyz", None).await;
        s == 200 && r["replicas_ok"] == true && r["masters"].as_array().unwrap().len() == 3
    })
    .await;
    // Every confirmed decline is there, on the promoted replica.
    let inc = app.incident(&id).await;
    let declined: u64 = inc["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["declined"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(confirmed.len(), 40);
    assert!(confirmed.iter().all(|(_, s)| s == "declined"));
    assert_eq!(declined, 40, "every confirmed answer survived the failover");
    eprintln!(
        "failover: {refused_during_failover} answers refused (503) while the replica took over, \
         none of the 40 confirmed lost"
    );
    // And the deployment goes on: a new incident fills its call-outs.
    let (s, inc2) = app
        .raise(
            "demo-township-commander",
            json!({"kind": "fire", "level": 4, "region": "990101001", "title": "切换后"}),
        )
        .await;
    assert_eq!(s, 201, "{inc2}");
    let id2 = inc2["id"].as_str().unwrap().to_string();
    eventually(T, "call-outs after the failover", || async {
        !unique_callouts(&rx, &id2).is_empty()
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_master_that_stops_answering_never_hangs_the_api() {
    let cluster = TestCluster::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 20);
    let app = TestApp::start(config(&cluster.url(), &prefix(), &seed), ManualClock::new()).await;
    let id = raised(
        &app,
        "demo-township-commander",
        json!({"kind": "flood", "level": 4, "region": "990101001", "title": "节点停顿"}),
    )
    .await;
    let iid = muster::domain::incident::IncidentId::parse(&id).unwrap();
    let path = format!("/v1/incidents/{id}");
    let (s, _) = app.get(&path, Some("demo-township-commander")).await;
    assert_eq!(s, 200);
    eventually(T, "call-outs", || async {
        unique_callouts(&rx, &id).len() >= 20
    })
    .await;

    // The master holding the incident stops answering (SIGSTOP) with its connections open:
    // every read of the incident must still be answered — 503 until its replica has taken
    // over and muster has noticed, 200 after — and none may wait longer than the bound on a
    // cluster call (6 s) and a retry.
    let slot = slot_of(app.store().keys.incident(&iid).as_bytes());
    let master = cluster.master_of_slot(slot).await;
    cluster.nodes[master].freeze(true);
    let frozen_at = Instant::now();
    let mut answers = Vec::new();
    while frozen_at.elapsed() < Duration::from_secs(12) {
        let asked = Instant::now();
        let (s, b) = tokio::time::timeout(
            Duration::from_secs(15),
            app.get(&path, Some("demo-township-commander")),
        )
        .await
        .expect("the API answered while a master was frozen");
        assert!(s == 200 || s == 503, "{s} {b}");
        assert!(
            asked.elapsed() < Duration::from_secs(14),
            "a read waited {:?}",
            asked.elapsed()
        );
        answers.push((s, asked.elapsed()));
        if s == 200 {
            break;
        }
    }
    eprintln!("while frozen: {answers:?}");
    // Its replica took over, and muster followed it there while the old master was still
    // frozen (the client itself refreshes its slot map only on errors, never on timeouts).
    assert_eq!(
        answers.last().map(|a| a.0),
        Some(200),
        "the incident was not read from the promoted replica: {answers:?}"
    );
    let (s, b) = app.stand_down(&id).await;
    assert_eq!(s, 200, "a write on the promoted replica: {b}");
    // The workers follow it too: the stand-down notices go out from the incident's partition
    // streams, now on the promoted replica, with the old master still frozen.
    eventually(
        T,
        "stand-down notices while the old master is frozen",
        || async {
            rx.delivered("stand_down")
                .iter()
                .any(|r| r.body["incident"]["id"] == id.as_str())
        },
    )
    .await;
    cluster.nodes[master].freeze(false);
    // Thawed (a replica now, or a master again if no failover happened): reads are answered
    // 200 again, from whichever node holds the slot.
    eventually(T, "the incident is read again after the thaw", || async {
        app.get(&path, Some("demo-township-commander")).await.0 == 200
    })
    .await;
    let (s, inc) = app.get(&path, Some("demo-township-commander")).await;
    assert_eq!(s, 200);
    assert_eq!(inc["id"], id.as_str());
    app.stop().await;
}
