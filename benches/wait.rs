//! What `redis.wait_replicas = 1` costs a change (`make bench`, or `cargo bench --bench wait`).
//!
//! A redis-server master and one replica on this machine (TCP, AOF off: the replica link is
//! what is measured), and muster on the master with `wait_replicas` 0, then 1: K raises over
//! HTTP one after another (each answered 201 before the next), their latency compared.
//! `BENCH_RAISES` sets K (default 400; `cargo test --all-targets` runs 20).

mod common;

use axum::Router;
use axum::routing::post;
use muster::app::{App, Role};
use muster::clock::SystemClock;
use muster::config::Config;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn node(dir: &std::path::Path, port: u16, replica_of: Option<u16>) -> Child {
    let d = dir.join(port.to_string());
    std::fs::create_dir_all(&d).unwrap();
    let mut cmd = Command::new("redis-server");
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
    ])
    .arg("--dir")
    .arg(&d)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if let Some(m) = replica_of {
        cmd.args(["--replicaof", "127.0.0.1", &m.to_string()]);
    }
    cmd.spawn().expect("redis-server starts")
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn raises(
    master: u16,
    seed: &std::path::Path,
    wait: u32,
    k: usize,
    prefix: &str,
) -> Vec<f64> {
    let mut config = Config::default();
    config.audit.key = "bench-audit-chain-key".into();
    config.http.addr = "127.0.0.1:0".into();
    config.redis.url = Some(format!("redis://127.0.0.1:{master}"));
    config.redis.prefix = prefix.into();
    config.redis.wait_replicas = wait;
    config.seed.dir = seed.to_path_buf();
    config.log.level = "error".into();
    config.webhook.secret = "whsec_YmVuY2htYXJrLXNlY3JldC1ieXRlcw==".into();
    let app = App::build(config, Role::All, Arc::new(SystemClock))
        .await
        .unwrap();
    let base = format!("http://{}", app.addr.unwrap());
    let http = reqwest::Client::new();
    let mut lat = Vec::with_capacity(k);
    for i in 0..k + 10 {
        let t = Instant::now();
        let r = http
            .post(format!("{base}/v1/incidents"))
            .bearer_auth("demo-township-commander")
            .json(&serde_json::json!({"kind": "flood", "level": 4, "region": "990101001", "title": format!("WAIT {i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
        if i >= 10 {
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    app.stop().await;
    lat
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let k: usize = std::env::var("BENCH_RAISES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 400 } else { 20 });
    let dir = std::env::temp_dir().join(format!("muster-bench-wait-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = format!("http://{}", listener.local_addr().unwrap());
    let rx = Router::new().route("/hooks/{v}", post(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, rx).await.unwrap() });
    let seed = common::big_team_seed(&dir, &receiver, 50, "wait");
    let (mp, rp) = (free_port(), free_port());
    let mut master = node(&dir, mp, None);
    let mut replica = node(&dir, rp, Some(mp));
    // The replica in sync before measuring.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let up = async {
            let mut c = redis::Client::open(format!("redis://127.0.0.1:{rp}"))
                .ok()?
                .get_multiplexed_async_connection()
                .await
                .ok()?;
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut c)
                .await
                .ok()?;
            Some(info.contains("master_link_status:up"))
        }
        .await;
        if up == Some(true) {
            break;
        }
        assert!(Instant::now() < deadline, "the replica never linked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut without = raises(mp, &seed, 0, k, "w0").await;
    let mut with = raises(mp, &seed, 1, k, "w1").await;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (m0, m1) = (mean(&without), mean(&with));
    println!("raises over HTTP, {k} one after another, master + one replica on this machine:");
    println!(
        "  wait_replicas = 0: mean {m0:.2} ms, p50 {:.2} ms, p99 {:.2} ms",
        pct(&mut without, 0.5),
        pct(&mut without, 0.99)
    );
    println!(
        "  wait_replicas = 1: mean {m1:.2} ms, p50 {:.2} ms, p99 {:.2} ms",
        pct(&mut with, 0.5),
        pct(&mut with, 0.99)
    );
    println!(
        "  WAIT adds {:+.2} ms ({:+.0} %) to a raise on average",
        m1 - m0,
        (m1 / m0 - 1.0) * 100.0
    );
    let _ = replica.kill();
    let _ = master.kill();
    let _ = replica.wait();
    let _ = master.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
