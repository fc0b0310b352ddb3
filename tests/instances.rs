//! Several `muster serve` instances share one Redis, and any of them can die.
//! - Three real processes; one is SIGKILLed in the middle of a 5,000-callout fan-out: every
//!   callout still reaches the receiver, and the only duplicates are re-sends whose first
//!   outcome was unknown, each counted in a survivor's `/metrics`.
//! - Three real processes on one clock (`engine.clock_offset_file`); twice, as a step's wait
//!   runs out, the process holding the step's work is SIGKILLed: each step begins exactly once
//!   and every callout of every step arrives.
//! - The same with three in-process instances on a manual clock.

mod common;

use common::nodes::*;
use common::scenarios::*;
use common::*;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_one_instance_mid_fan_out_loses_no_callout() {
    let redis = TestRedis::start().await;
    sigkill_mid_fan_out(&redis.url()).await;
}

/// The consumer (node name) holding an unacknowledged entry of the fan-out group (a step being
/// run) or, failing that, of the notifier (the step's messages being sent).
async fn node_at_work(redis: &TestRedis) -> Option<String> {
    let mut c = redis.conn().await;
    for (pattern, group) in [("*:bus", "fanout"), ("*:deliveries", "notifier")] {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(pattern)
            .query_async(&mut c)
            .await
            .unwrap();
        for k in keys {
            let pending: redis::RedisResult<Vec<(String, String, u64, u64)>> =
                redis::cmd("XPENDING")
                    .arg(&k)
                    .arg(group)
                    .arg("-")
                    .arg("+")
                    .arg(1)
                    .query_async(&mut c)
                    .await;
            if let Some((_, consumer, _, _)) = pending.ok().and_then(|p| p.into_iter().next()) {
                return Some(consumer);
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_the_instance_running_an_escalation_step_fires_each_step_once() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    // One clock for all three processes: wall time plus the offset in this file.
    let clock = temp_dir("clock").join("offset");
    let set_offset = |ms: i64| {
        let tmp = clock.with_extension("tmp");
        std::fs::write(&tmp, ms.to_string()).unwrap();
        std::fs::rename(&tmp, &clock).unwrap();
    };
    set_offset(0);
    let mut nodes = Nodes::start(
        3,
        &redis.url(),
        &prefix(),
        &seed,
        &[
            (
                "MUSTER__ENGINE__CLOCK_OFFSET_FILE",
                clock.display().to_string(),
            ),
            ("MUSTER__ENGINE__SCHEDULER_TICK_MS", "10".into()),
        ],
    )
    .await;
    // Slow answers keep each step's messages in flight long enough to kill their sender.
    rx.set_delay(Duration::from_millis(150));
    let id = nodes
        .raise(
            0,
            serde_json::json!({"kind": "flood", "level": 4, "region": "990101001", "title": "多实例升级"}),
        )
        .await;
    let mut offset = 0;
    let mut alive = vec![0, 1, 2];
    for round in 1..=2 {
        let at = alive[0];
        // Wait for the current step to be armed and its messages sent.
        eventually(T, "the step armed and its messages delivered", || async {
            let inc = nodes.incident(at, &id).await;
            let all_armed = inc["requirements"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["next_step_at"].is_string());
            all_armed
                && delivered_of(&rx, &id).len() as u64 >= sum_of(&inc, "called")
                && node_at_work(&redis).await.is_none()
        })
        .await;
        let inc = nodes.incident(at, &id).await;
        let before: Vec<u64> = inc["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["step"].as_u64().unwrap())
            .collect();
        let latest = inc["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r["next_step_at"]
                    .as_str()
                    .unwrap()
                    .parse::<jiff::Timestamp>()
                    .unwrap()
                    .as_millisecond()
            })
            .max()
            .unwrap();
        // Every process's time jumps past the waits; the instance that picks the step up
        // (or, if it finished already, the one sending its messages) is SIGKILLed.
        offset = offset.max(latest - muster::clock::wall_ms() + 1_000);
        set_offset(offset);
        let started = Instant::now();
        let victim = loop {
            if let Some(name) = node_at_work(&redis).await {
                break name;
            }
            assert!(started.elapsed() < T, "round {round}: no step started");
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let v: usize = victim.trim_start_matches("node").parse().unwrap();
        nodes.kill(v);
        alive.retain(|a| *a != v);
        eprintln!("round {round}: killed {victim} at work on the next step");
        let at = alive[0];
        eventually(T, "every requirement on a later step or short", || async {
            let inc = nodes.incident(at, &id).await;
            inc["requirements"]
                .as_array()
                .unwrap()
                .iter()
                .zip(&before)
                .all(|(r, b)| r["step"].as_u64().unwrap() > *b || r["short"] == true)
        })
        .await;
    }
    // Every callout of every step reaches the receiver; each step began once; duplicates are
    // only counted re-sends.
    let at = alive[0];
    eventually(T, "every callout delivered", || async {
        let inc = nodes.incident(at, &id).await;
        let unique: std::collections::HashSet<String> = delivered_of(&rx, &id)
            .iter()
            .map(|r| r.callout_id())
            .collect();
        unique.len() as u64 == sum_of(&inc, "called") && node_at_work(&redis).await.is_none()
    })
    .await;
    let inc = nodes.incident(at, &id).await;
    let steps = step_events(&redis, &id).await;
    for r in inc["requirements"].as_array().unwrap() {
        let rid = r["id"].as_str().unwrap();
        let reached = r["step"].as_u64().unwrap();
        assert!(reached >= 2, "{rid} reached step {reached}");
        for step in 1..=reached {
            let step = step.to_string();
            let began = steps.iter().filter(|(q, s)| q == rid && *s == step).count();
            assert_eq!(began, 1, "{rid} step {step} began {began} times: {steps:?}");
        }
    }
    let dups = duplicates(&delivered_of(&rx, &id));
    let counted = nodes.resends().await;
    assert!(
        dups as u64 <= counted,
        "{dups} duplicate deliveries but only {counted} re-sends counted"
    );
}

/// The incident's `requirement.step` events: (requirement, step).
async fn step_events(redis: &TestRedis, id: &str) -> Vec<(String, String)> {
    redis
        .incident_events(id)
        .await
        .into_iter()
        .filter(|e| e["type"] == "requirement.step")
        .map(|e| (e["requirement"].clone(), e["step"].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_dying_during_an_escalation_step_fires_it_once_elsewhere() {
    use muster::clock::ManualClock;
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let pfx = prefix();
    let clock = ManualClock::new();
    let mut apps = Vec::new();
    for i in 0..3 {
        let mut c = config(&redis.url(), &pfx, &seed);
        c.engine.consumer = Some(format!("node{i}"));
        apps.push(TestApp::start(c, clock.clone()).await);
    }
    let (s, inc) = apps[0]
        .raise(
            "demo-township-commander",
            serde_json::json!({"kind": "flood", "level": 4, "region": "990101001", "title": "多实例升级"}),
        )
        .await;
    assert_eq!(s, 201, "{inc}");
    let id = inc["id"].as_str().unwrap().to_string();
    eventually(T, "first step armed everywhere", || async {
        let inc = apps[2].incident(&id).await;
        inc["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["next_step_at"].is_string())
    })
    .await;
    let before = rx.delivered("callout").len();
    // The waits run out; one instance dies at that moment, whatever it was doing.
    clock.advance(5 * 60_000);
    let victim = apps.remove(1);
    victim.kill();
    eventually(T, "rescue and first aid on step 1", || async {
        let inc = apps[0].incident(&id).await;
        req(&inc, "rescue")["step"] == 1 && req(&inc, "first_aid")["step"] == 1
    })
    .await;
    // Every callout the incident has reaches the receiver (the victim's unfinished work is
    // reclaimed by the others after `reclaim_idle_ms`).
    eventually(T, "every callout delivered", || async {
        let inc = apps[0].incident(&id).await;
        let total: u64 = inc["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["called"].as_u64().unwrap())
            .sum();
        let seen: std::collections::HashSet<String> = rx
            .delivered("callout")
            .iter()
            .map(|r| r.callout_id())
            .collect();
        total > before as u64
            && seen.len() as u64 == total
            && inc["requirements"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["next_step_at"].is_string() || r["accepted"] == r["needed"])
    })
    .await;
    // Each step began exactly once.
    let steps = step_events(&redis, &id).await;
    for rid in ["rescue", "first_aid"] {
        let ones = steps.iter().filter(|(r, s)| r == rid && s == "1").count();
        assert_eq!(ones, 1, "{rid} step 1 began {ones} times: {steps:?}");
    }
    for a in apps {
        a.stop().await;
    }
}
