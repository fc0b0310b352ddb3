//! Fan-out benchmark (`make bench`, or `cargo bench --bench fanout`).
//!
//! One township rescue team of N members (no roster: all on call) on a private
//! `redis-server`; a raise calls every one of them. Measures the time from the raise until the
//! local webhook receiver has every call-out (signed, delivered, answered 200), for N = 10,000
//! and N = 100,000 — the budgets are 1 s and 5 s — and the lateness of escalation timers with
//! 100,000 armed. The fan-outs run on a single `redis-server` and again on a local Cluster of
//! three masters and three replicas (each node AOF everysec, all on this machine).
//!
//! `cargo test --all-targets` runs it once on 1,000 volunteers so it cannot rot.

mod common;

use axum::Router;
use axum::routing::post;
use muster::redis_server::EmbeddedRedis;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// mimalloc: the fan-out allocates many small, short-lived buffers on several threads, where
/// glibc's allocator spent a third of the process's time (measured with `perf`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One call-out body muster sent, kept for the bare sender to send the same bytes.
static SAMPLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// Keeps one body muster sent (nginx passes `/hooks/b0` here).
async fn capture(body: axum::body::Bytes) -> &'static str {
    let _ = SAMPLE.set(body.to_vec());
    "ok"
}

/// The baseline: a bare sender that signs (HMAC-SHA256, as muster does) and POSTs `body` `n`
/// times to the same nginx, over `c` keep-alive connections, with nothing else to do (no
/// Redis, no selection, no bookkeeping). Answers its rate (per s).
async fn bare_sender(nginx: &mut common::Nginx, n: usize, c: usize, body: &[u8]) -> f64 {
    let receiver = nginx.url.clone();
    let before = nginx.delivered();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(c)
        .build()
        .unwrap();
    let key = muster::notify::webhook::decode_secret("whsec_YmVuY2htYXJrLXNlY3JldC1ieXRlcw==");
    let next = Arc::new(AtomicUsize::new(0));
    let body = Arc::new(body.to_vec());
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..c)
        .map(|_| {
            let (client, key, next, body, receiver) = (
                client.clone(),
                key.clone(),
                next.clone(),
                body.clone(),
                receiver.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let id = format!("bare-{i}");
                    let ts = muster::clock::wall_ms() / 1000;
                    let sig = muster::notify::webhook::sign(&key, &id, ts, &body);
                    let r = client
                        .post(format!("{receiver}/hooks/b{}", i + 1))
                        .header("content-type", "application/json")
                        .header("webhook-id", &id)
                        .header("webhook-timestamp", ts.to_string())
                        .header("webhook-signature", sig)
                        .body(body.as_ref().clone())
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    // nginx logs a request after answering it: wait for the last lines, then check the count.
    let t1 = Instant::now();
    while nginx.delivered() - before < n && t1.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(
        nginx.delivered() - before,
        n,
        "nginx logged every bare POST"
    );
    rate
}

/// What one fan-out run measured.
struct Run {
    /// Raise → every call-out delivered.
    secs: f64,
    /// Raise → the first call-out delivered.
    first_ms: f64,
    /// Redis CPU (all nodes) per call-out, µs.
    redis_us: f64,
    /// This process's CPU (muster) per 1,000 deliveries, s.
    proc_s_per_k: f64,
    /// nginx's CPU (the receiver) per 1,000 deliveries, s.
    nginx_s_per_k: f64,
    /// Redis CPU per 1,000 deliveries, s.
    redis_s_per_k: f64,
    mem_per_volunteer: f64,
    mem_per_callout: f64,
    rss_mib: u64,
}

/// `raises` incidents raised back to back, each calling a team of `n`, on a single node or a
/// Cluster; the clock stops when nginx has logged every call-out of all of them. `warm`: one
/// raise of the same team first, delivered in full before the clock starts (muster already
/// running: connections open, caches filled).
async fn fan_out(n: usize, raises: usize, cluster: bool, warm: bool) -> Run {
    let dir = std::env::temp_dir().join(format!("muster-fanout-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    let rx = Router::new().route("/hooks/{v}", post(capture));
    tokio::spawn(async move { axum::serve(listener, rx).await.unwrap() });
    let mut nginx = common::Nginx::start(&dir, Some(&upstream)).await;
    let redis = common::BenchRedis::start(&dir, cluster).await;
    let mem_empty = redis.used_memory().await;
    let app = common::big_team_app_on(&dir, &nginx.url, n, &redis.url()).await;
    let mem_seeded = redis.used_memory().await;
    let mut mem_before = mem_seeded;
    let base = format!("http://{}", app.addr.unwrap());
    let client = reqwest::Client::new();
    let raise = |i: usize| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let r = client
                .post(format!("{base}/v1/incidents"))
                .bearer_auth("demo-township-commander")
                .json(
                    &serde_json::json!({"kind": "flood", "level": 4, "region": "990101001",
                    "title": format!("fan-out {i}")}),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
    };
    let mut before = 0;
    if warm {
        raise(1000).await;
        let deadline = Instant::now() + Duration::from_secs(300);
        while nginx.delivered() < n {
            assert!(
                Instant::now() < deadline,
                "warm-up: only {} of {n} delivered",
                nginx.delivered()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Its last outcomes land before the measured raise.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        before = nginx.delivered();
        mem_before = redis.used_memory().await;
    }
    // BENCH_DETAIL=1: progress every 500 ms and Redis's command statistics for the run.
    let detail = std::env::var("BENCH_DETAIL").is_ok();
    let cpu0 = redis.cpu_seconds().await;
    let proc0 = common::process_cpu();
    let nginx0 = nginx.cpu_seconds();
    let total = n * raises;
    let t0 = Instant::now();
    for i in 0..raises {
        raise(i).await;
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut next_report = Duration::from_millis(500);
    let mut first_ms = None;
    let got = |nginx: &mut common::Nginx| nginx.delivered() - before;
    while got(&mut nginx) < total {
        if first_ms.is_none() && got(&mut nginx) > 0 {
            first_ms = Some(t0.elapsed().as_secs_f64() * 1000.0);
        }
        if detail && t0.elapsed() >= next_report {
            eprintln!(
                "  {:>5.1} s: {} delivered; pending: {}",
                t0.elapsed().as_secs_f64(),
                got(&mut nginx),
                pending(&app.ctx.store).await
            );
            next_report += Duration::from_millis(500);
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {total} delivered",
            got(&mut nginx)
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = redis.cpu_seconds().await - cpu0;
    let proc = common::process_cpu() - proc0;
    let nginx_cpu = nginx.cpu_seconds() - nginx0;
    assert_eq!(nginx.failed(), 0, "nginx answered every call-out 2xx");
    // Settle: the notifier's last outcomes and the projection's last events land.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mem_live = redis.used_memory().await;
    let run = Run {
        secs,
        first_ms: first_ms.unwrap_or(secs * 1000.0),
        redis_us: cpu * 1e6 / total as f64,
        proc_s_per_k: proc * 1000.0 / total as f64,
        nginx_s_per_k: nginx_cpu * 1000.0 / total as f64,
        redis_s_per_k: cpu * 1000.0 / total as f64,
        mem_per_volunteer: mem_seeded.saturating_sub(mem_empty) as f64 / n as f64,
        mem_per_callout: mem_live.saturating_sub(mem_before) as f64 / total as f64,
        rss_mib: rss_mib(),
    };
    println!(
        "  {}{}: first call-out after {:.0} ms; CPU per 1,000 deliveries: muster {:.3} s, redis \
         {:.3} s ({:.0} µs per call-out), nginx {:.3} s; redis memory {:.0} bytes per \
         volunteer, {:.0} per live callout; RSS {} MiB",
        redis.name(),
        if warm { ", already running" } else { "" },
        run.first_ms,
        run.proc_s_per_k,
        run.redis_s_per_k,
        run.redis_us,
        run.nginx_s_per_k,
        run.mem_per_volunteer,
        run.mem_per_callout,
        run.rss_mib
    );
    if detail && let common::BenchRedis::Single(r) = &redis {
        let mut rc = redis::Client::open(r.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut rc)
            .await
            .unwrap();
        for l in stats.lines().filter(|l| l.starts_with("cmdstat_")) {
            eprintln!("  {l}");
        }
    }
    app.stop().await;
    redis.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    run
}

/// Unacknowledged entries per partition stream and group, and entries not yet read
/// (`BENCH_DETAIL`).
async fn pending(store: &muster::store::Store) -> String {
    let mut c = store.conn();
    let mut out = Vec::new();
    for p in 0..store.keys.partitions() {
        for (s, g) in [
            (store.keys.bus(p), "fanout"),
            (store.keys.deliveries(p), "notifier"),
        ] {
            let v: redis::RedisResult<redis::Value> = redis::cmd("XPENDING")
                .arg(&s)
                .arg(g)
                .query_async(&mut c)
                .await;
            if let Ok(redis::Value::Array(a)) = v
                && let Some(redis::Value::Int(n)) = a.first()
                && *n > 0
            {
                out.push(format!("p{p}/{g} {n}"));
            }
        }
    }
    out.join(", ")
}

/// This process's resident memory (VmRSS), MiB.
fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

/// Arms `n` timers due over the next few seconds on a running app and measures how late each
/// fires (its `requirement.step_due` reaching the bus is what the metric records).
async fn timers(n: usize) -> (f64, f64) {
    let dir = std::env::temp_dir().join(format!("muster-timers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut redis = EmbeddedRedis::start("redis-server", &dir.join("redis"), "everysec")
        .await
        .unwrap();
    let store = muster::store::Store::connect(&redis.url(), "bench", 8)
        .await
        .unwrap();
    let spread_ms = 4000;
    let ids: Vec<_> = (0..n.div_ceil(4))
        .map(|_| muster::domain::incident::IncidentId::random())
        .collect();
    // Arm them all (concurrently) for a window that opens once arming is surely done.
    let t_arm = Instant::now();
    let lead: i64 = if n > 10_000 { 30_000 } else { 3_000 };
    let start = muster::clock::wall_ms() + lead;
    use futures::StreamExt;
    futures::stream::iter(
        ids.iter()
            .enumerate()
            .flat_map(|(i, id)| (0..4).map(move |r| (i, r, id))),
    )
    .map(|(i, r, id)| {
        let store = store.clone();
        async move {
            let due = start + ((i * 4 + r) as i64 * spread_ms) / n as i64;
            store.arm_timer(id, &format!("r{r}"), 0, due).await.unwrap();
        }
    })
    .buffer_unordered(256)
    .collect::<Vec<()>>()
    .await;
    assert!(
        t_arm.elapsed() < Duration::from_secs(29),
        "arming took too long"
    );
    while muster::clock::wall_ms() < start - 200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One firing loop per partition, as the scheduler runs them; lateness is measured per timer
    // as (time fired) - (due).
    let mut late = Vec::with_capacity(n);
    let end = Instant::now() + Duration::from_millis(spread_ms as u64 + 10_000);
    let mut c = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut fired_total = 0;
    while fired_total < ids.len() * 4 && Instant::now() < end {
        let now = muster::clock::wall_ms();
        for p in 0..store.keys.partitions() {
            fired_total += store.fire_timers(p, now, 5000).await.unwrap() as usize;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for p in 0..store.keys.partitions() {
        let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(store.keys.bus(p))
            .arg("-")
            .arg("+")
            .query_async(&mut c)
            .await
            .unwrap();
        for e in entries.ids {
            let due: i64 = e.get::<String>("due").unwrap().parse().unwrap();
            let at: i64 = e.id.split('-').next().unwrap().parse().unwrap();
            late.push((at - due) as f64);
        }
    }
    assert_eq!(late.len(), ids.len() * 4, "every timer fired exactly once");
    late.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| late[((late.len() - 1) as f64 * q) as usize];
    redis.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    (p(0.5), p(0.99))
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    muster::telemetry::init_logging("text", "error");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("muster fan-out benchmark (2 cores, local redis AOF everysec, receiver: local nginx, one worker)");
        let sizes: &[usize] = if full { &[10_000, 100_000] } else { &[1_000] };
        let mut report = common::Report::new("fanout");
        let mut rates = Vec::new();
        // BENCH_ONLY=sustained-single or sustained-cluster: only the five raises on that store
        // (to profile them).
        let only = std::env::var("BENCH_ONLY").unwrap_or_default();
        for cluster in [false, true] {
            if (only == "sustained-cluster" && !cluster) || (only == "sustained-single" && cluster) {
                continue;
            }
            let on = if cluster { "3-master cluster" } else { "single redis-server" };
            let mut runs: Vec<(String, usize, Run)> = Vec::new();
            for &n in sizes.iter().filter(|_| only.is_empty()) {
                runs.push((format!("{n} call-outs"), n, fan_out(n, 1, cluster, false).await));
                runs.push((
                    format!("{n} call-outs, already running"),
                    n,
                    fan_out(n, 1, cluster, true).await,
                ));
            }
            // The sustained case: five raises of the largest-but-one size, back to back.
            let n5 = sizes[0];
            runs.push((format!("5 raises of {n5} back to back"), n5 * 5, fan_out(n5, 5, cluster, false).await));
            for (what, total, run) in runs {
                let rate = total as f64 / run.secs;
                println!(
                    "raise → all of {what} delivered ({on}): {:>6.2} s  ({rate:.0} per s)",
                    run.secs
                );
                let key = format!("{what}, {on}");
                report.add(&format!("fan-out seconds: {key}"), run.secs, "s");
                report.add(&format!("first call-out: {key}"), run.first_ms, "ms");
                report.add(&format!("redis CPU per call-out: {key}"), run.redis_us, "µs");
                report.add(&format!("muster CPU per 1,000 deliveries: {key}"), run.proc_s_per_k, "s");
                report.add(&format!("nginx CPU per 1,000 deliveries: {key}"), run.nginx_s_per_k, "s");
                report.add(&format!("redis CPU per 1,000 deliveries: {key}"), run.redis_s_per_k, "s");
                report.add(&format!("redis bytes per volunteer: {key}"), run.mem_per_volunteer, "bytes");
                report.add(&format!("redis bytes per live callout: {key}"), run.mem_per_callout, "bytes");
                report.add(&format!("process RSS after: {key}"), run.rss_mib as f64, "MiB");
                rates.push((key, rate));
            }
        }
        // The baseline, in the same run on the same machine: the bare sender's best
        // concurrency for the same bodies to the same kind of receiver.
        let body = SAMPLE.get().cloned().expect("nginx passed one call-out body through");
        let sweep_n = sizes[0];
        let mut best = (0, 0.0);
        let sweep_dir = std::env::temp_dir().join(format!("muster-bare-{}", std::process::id()));
        let mut nginx = common::Nginx::start(&sweep_dir, None).await;
        for c in [16, 64, 128, 256, 512] {
            let r = bare_sender(&mut nginx, sweep_n, c, &body).await;
            println!("bare sender, {sweep_n} signed POSTs of {} bytes, {c:>3} connections: {r:>6.0} per s", body.len());
            report.add(&format!("bare sender rate at {c} connections"), r, "per s");
            if r > best.1 {
                best = (c, r);
            }
        }
        drop(nginx);
        let _ = std::fs::remove_dir_all(&sweep_dir);
        let (c, bare) = best;
        println!("best bare sender: {bare:.0} per s at {c} connections");
        for (key, rate) in rates {
            println!("  muster, {key}: {rate:>6.0} per s = {:.2}× the bare sender", rate / bare);
            report.ratio(
                &format!("fan-out rate: {key}"),
                rate,
                "per s",
                &format!("best bare sender ({c} connections)"),
                bare,
            );
        }
        let n = if full { 100_000 } else { 2_000 };
        let (p50, p99) = timers(n).await;
        println!("escalation timers, {n} armed: lateness p50 {p50:.0} ms, p99 {p99:.0} ms (budget p99 250 ms)");
        report.add(&format!("timer lateness p50, {n} armed"), p50, "ms");
        report.add(&format!("timer lateness p99, {n} armed"), p99, "ms");
        report.write();
    });
}
