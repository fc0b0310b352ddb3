//! SMS simulator run (`make bench`, or `cargo bench --bench sms_sim -- --bench`).
//!
//! The demo city with 5,000 volunteers who have no webhook (SMS only), spread over its 32
//! teams (half of each on call, the demo rotation); muster's only channel is the simulator's
//! SMS gateway (`muster sim` in-process: 200 messages/s, 2 % refused with 503, replies after
//! 1–8 s typed sloppily). A level-1 flood in township 990101001 needs 48 volunteers across
//! five requirements. Prints the time from the raise until the incident is `filled`, the
//! messages the gateway took, the retries (throttled or refused sends), the replies and the
//! receipts.
//!
//! `cargo test --all-targets` runs it once on 500 volunteers with short delays so it cannot rot.

mod common;

use muster::app::{App, Role};
use muster::clock::SystemClock;
use muster::config::{Config, SmsGateway, SmsGatewayKind};
use muster::redis_server::EmbeddedRedis;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SECRET: &str = "whsec_c2ltLXNtcy1iZW5jaC1zZWNyZXQtYnl0ZXM=";

/// The demo seed with `n` SMS-only volunteers spread over the demo teams; `quick`: the severe
/// flood plan's ladder waits 1 s a step (so a small population fills it by escalating).
fn seed(dir: &Path, n: usize, quick: bool) -> PathBuf {
    let seed = common::demo_seed(dir, &["regions.toml", "tokens.toml", "teams.toml"]);
    if quick {
        let plan = seed.join("plans/flood-severe.toml");
        let mut text = std::fs::read_to_string(&plan).unwrap();
        for (scope, pool) in [
            ("township", "on_call"),
            ("county", "on_call"),
            ("county", "all"),
            ("city", "all"),
        ] {
            write!(
                text,
                "\n[[step]]\nscope = \"{scope}\"\npool = \"{pool}\"\nwait = \"1s\"\n"
            )
            .unwrap();
        }
        std::fs::write(plan, text).unwrap();
    }
    let teams: Vec<(String, String)> = std::fs::read_to_string(seed.join("teams.toml"))
        .unwrap()
        .split("[[team]]")
        .skip(1)
        .filter_map(|t| {
            let get = |k: &str| {
                t.lines()
                    .find_map(|l| l.strip_prefix(&format!("{k} = \"")))
                    .map(|v| v.trim_end_matches('"').to_string())
            };
            Some((get("id")?, get("region")?))
        })
        .collect();
    let mut csv = String::from(
        "id,name,phone,locale,webhook,teams,home_region,status,insurance_valid_until,qualifications\n",
    );
    for i in 0..n {
        let (team, region) = &teams[i % teams.len()];
        let locale = if i % 4 == 3 { "en" } else { "zh-CN" };
        writeln!(csv, "s{i:05},志愿者{i},+86151{i:08},{locale},,{team},{region},active,2099-12-31,water_rescue:2099-12-31").unwrap();
    }
    std::fs::write(seed.join("volunteers.csv"), csv).unwrap();
    seed
}

/// The sum of a metric's samples whose line contains every one of `parts`.
fn metric(text: &str, parts: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#') && parts.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn run(n: usize, full: bool) {
    let dir = std::env::temp_dir().join(format!("muster-smssim-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut redis = EmbeddedRedis::start("redis-server", &dir.join("redis"), "everysec")
        .await
        .unwrap();
    // The simulator's port first: muster's gateway points at it.
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_addr = sim_listener.local_addr().unwrap();
    let mut config = Config::default();
    config.audit.key = "bench-audit-chain-key".into();
    config.http.addr = "127.0.0.1:0".into();
    config.redis.url = Some(redis.url());
    config.seed.dir = seed(&dir, n, !full);
    config.log.level = "error".into();
    config.webhook.secret = SECRET.into();
    config.sms.gateway = vec![SmsGateway {
        name: "sim".into(),
        kind: SmsGatewayKind::Generic,
        url: format!("http://{sim_addr}/sms/send"),
        from: "muster".into(),
        key_id: "bench".into(),
        secret: SECRET.into(),
        callback_secret: String::new(),
        sign_name: String::new(),
        templates: Default::default(),
        rate_per_sec: 100.0,
        concurrency: 32,
        timeout_ms: 5000,
    }];
    config.sms.retry_backoff_ms = vec![1000, 2000, 5000];
    let app = App::build(config.clone(), Role::All, Arc::new(SystemClock))
        .await
        .unwrap();
    let base = format!("http://{}", app.addr.unwrap());
    config.sim.muster_url = base.clone();
    config.sim.seed = Some(7);
    if !full {
        config.sim.delay_min_ms = 100;
        config.sim.delay_max_ms = 500;
    }
    let sim = muster::sim::start(&config, sim_listener).unwrap();
    let http = reqwest::Client::new();
    let t0 = Instant::now();
    let r = http
        .post(format!("{base}/v1/incidents"))
        .bearer_auth("demo-township-commander")
        .json(&serde_json::json!({"kind": "flood", "level": 1, "region": "990101001", "title": "特大洪涝"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let inc: Value = r.json().await.unwrap();
    let id = inc["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    let filled = loop {
        let v: Value = http
            .get(format!("{base}/v1/incidents/{id}"))
            .bearer_auth("demo-viewer")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["status"] == "filled" {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "not filled in 120 s: {}",
            v["requirements"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let secs = t0.elapsed().as_secs_f64();
    let needed: u64 = filled["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["needed"].as_u64().unwrap())
        .sum();
    let called: u64 = filled["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["called"].as_u64().unwrap())
        .sum();
    // Let the replies in flight land, then read both sides' counters.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = sim.stats();
    let m = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    println!(
        "{n} SMS-only volunteers: flood level 1 ({needed} needed) filled in {secs:.2} s; {called} called"
    );
    println!(
        "  muster sent {} messages (call-outs and notices) and retried {} (refused 503 or throttled 429); the gateway took {} in all (answers to replies included); {} replies, {} receipts",
        metric(&m, &["muster_sms_sends_total{", "outcome=\"sent\""]),
        metric(&m, &["muster_sms_sends_total{", "outcome=\"error\""])
            + metric(&m, &["muster_sms_sends_total{", "outcome=\"throttled\""]),
        s["sms"]["received"],
        s["sms"]["replies"],
        s["sms"]["receipts"],
    );
    assert_eq!(filled["status"], "filled");
    sim.stop();
    app.stop().await;
    redis.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!(
            "muster SMS simulator run (2 cores, local redis, in-process simulator as the gateway)"
        );
        if full {
            run(5_000, true).await;
        } else {
            run(500, false).await;
        }
    });
}
