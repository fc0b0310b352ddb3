//! Three real `muster serve` processes share one Redis. One is SIGKILLed in the middle of a
//! 5,000-callout fan-out: every callout still reaches the receiver, and the only duplicates are
//! re-sends whose first outcome was unknown, each counted in a survivor's `/metrics`.

mod common;

use common::*;
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(redis_url: &str, prefix: &str, seed: &std::path::Path, port: u16, name: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_muster"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("serve")
        .env("MUSTER__REDIS__URL", redis_url)
        .env("MUSTER__REDIS__PREFIX", prefix)
        .env("MUSTER__SEED__DIR", seed)
        .env("MUSTER__HTTP__ADDR", format!("127.0.0.1:{port}"))
        .env("MUSTER__ENGINE__CONSUMER", name)
        .env("MUSTER__ENGINE__RECLAIM_IDLE_MS", "2000")
        .env("MUSTER__ENGINE__RECLAIM_INTERVAL_MS", "300")
        .env("MUSTER__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn resends(http: &reqwest::Client, port: u16) -> u64 {
    let text = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("muster_delivery_resends_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_one_instance_mid_fan_out_loses_no_callout() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 5000);
    let pfx = prefix();
    let ports = [free_port(), free_port(), free_port()];
    let mut procs: Vec<Child> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| serve(&redis.url(), &pfx, &seed, *p, &format!("node{i}")))
        .collect();
    let http = reqwest::Client::new();
    for p in ports {
        let start = Instant::now();
        loop {
            if let Ok(r) = http
                .get(format!("http://127.0.0.1:{p}/readyz"))
                .send()
                .await
                && r.status() == 200
            {
                break;
            }
            assert!(start.elapsed() < T, "instance on {p} never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    rx.set_delay(Duration::from_millis(5));
    let r = http
        .post(format!("http://127.0.0.1:{}/v1/incidents", ports[0]))
        .bearer_auth("demo-township-commander")
        .json(&serde_json::json!({"kind": "flood", "level": 4, "region": "990101001", "title": "多实例"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let inc: serde_json::Value = r.json().await.unwrap();
    let id = inc["id"].as_str().unwrap().to_string();
    let mine = |rx: &Receiver| -> Vec<Received> {
        rx.delivered("callout")
            .into_iter()
            .filter(|r| r.body["incident"]["id"] == id.as_str())
            .collect()
    };
    eventually(T, "a first part of the fan-out", || async {
        mine(&rx).len() >= 800
    })
    .await;
    // SIGKILL the second instance mid-fan-out.
    procs[1].kill().unwrap();
    procs[1].wait().unwrap();
    let delivered_at_kill = mine(&rx).len();

    // Every callout the incident created reaches the receiver.
    let total = || async {
        let v: serde_json::Value = http
            .get(format!("http://127.0.0.1:{}/v1/incidents/{id}", ports[2]))
            .bearer_auth("demo-viewer")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["called"].as_u64().unwrap())
            .sum::<u64>()
    };
    eventually(T, "every callout delivered", || async {
        let mut unique = std::collections::HashSet::new();
        for r in mine(&rx) {
            unique.insert(r.callout_id());
        }
        let t = total().await;
        t >= 5000 && unique.len() as u64 == t
    })
    .await;
    assert!(
        delivered_at_kill < total().await as usize,
        "the kill happened mid-fan-out"
    );
    let mut per: HashMap<String, usize> = HashMap::new();
    for r in mine(&rx) {
        *per.entry(r.callout_id()).or_default() += 1;
    }
    let duplicates: usize = per.values().map(|n| n - 1).sum();
    let counted = resends(&http, ports[0]).await + resends(&http, ports[2]).await;
    eprintln!(
        "fan-out of {} callouts: {delivered_at_kill} delivered when node1 was killed, {duplicates} duplicates, {counted} re-sends counted",
        per.len()
    );
    assert!(
        duplicates as u64 <= counted,
        "{duplicates} duplicate deliveries but only {counted} re-sends counted"
    );
    for p in procs.iter_mut() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(p.id().to_string())
            .status();
    }
    for mut p in procs {
        let _ = p.wait();
    }
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
