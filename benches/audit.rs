//! What the audit log costs the raise path (`make bench`, or `cargo bench --bench audit`).
//!
//! On a private `redis-server` (AOF `everysec`), raises incidents through the store's raise
//! script — the step that writes the incident, its bus event and (audited) its audit entry —
//! in alternating blocks with and without the entry, and compares the latencies. The script
//! alone is where the entry's share is largest: over HTTP the request's parsing, planning and
//! answer dilute it further. The ack path writes no audit entry (a volunteer's answer is not a
//! command action; it is in the incident's own event stream), so it is not measured here.
//! `BENCH_RAISES` sets the number of raises of each kind (default 4,000; `cargo test
//! --all-targets` runs it once with 200).

use muster::domain::incident::{IncidentId, Level, Mode};
use muster::redis_server::EmbeddedRedis;
use muster::seed::Seed;
use muster::store::audit::AuditEntry;
use muster::store::incidents::{NewIncident, Origin};
use std::time::Instant;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("BENCH_RAISES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 4_000 } else { 200 });
    let dir = std::env::temp_dir().join(format!("muster-bench-audit-{}", std::process::id()));
    let mut redis = EmbeddedRedis::start("redis-server", &dir.join("redis"), "everysec")
        .await
        .unwrap();
    let store = muster::store::Store::connect(&redis.url(), "bench", 8)
        .await
        .unwrap();
    let seed = Seed::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/demo"
    )))
    .unwrap();
    let region = muster::domain::region::RegionCode::parse("990101001").unwrap();
    let plan = muster::domain::plan::choose(
        &seed.plans,
        &seed.regions,
        "flood",
        Level::new(4).unwrap(),
        &region,
    )
    .unwrap();
    let new = |audited: bool| {
        let id = IncidentId::random();
        NewIncident {
            id,
            kind: "flood".into(),
            level: 4,
            region: region.to_string(),
            title: "基准测试：东门内涝".into(),
            mode: Mode::Live,
            location: None,
            include_deployed: false,
            ladder: plan.ladder.clone(),
            plan_id: plan.id.clone(),
            requirements: plan.requirements.clone(),
            raised_by: "滨江街道指挥中心".into(),
            now: muster::clock::wall_ms(),
            origin: Origin::default(),
            audit: if audited {
                AuditEntry {
                    at: muster::clock::wall_ms(),
                    actor: "滨江街道指挥中心".into(),
                    role: "commander".into(),
                    scope: "990101001".into(),
                    action: "incident.raise".into(),
                    target: id.to_string(),
                    region: "990101001".into(),
                    request: "0123456789abcdef0123456789abcdef".into(),
                    addr: "10.0.0.17".into(),
                    detail: "flood level 4 live `基准测试：东门内涝`".into(),
                }
            } else {
                AuditEntry::default()
            },
        }
    };
    // Warm up the scripts and the connection.
    for _ in 0..n.min(200) {
        store.raise(&new(true)).await.unwrap();
        store.raise(&new(false)).await.unwrap();
    }
    let (mut with, mut without) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for block in 0..n / 100 {
        for audited in [block % 2 == 0, block % 2 == 1] {
            for _ in 0..100 {
                let inc = new(audited);
                let t = Instant::now();
                store.raise(&inc).await.unwrap();
                let us = t.elapsed().as_secs_f64() * 1e6;
                if audited {
                    with.push(us)
                } else {
                    without.push(us)
                }
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mw, mo) = (mean(&with), mean(&without));
    let (p50w, p50o) = (pct(&mut with, 0.5), pct(&mut without, 0.5));
    let (p99w, p99o) = (pct(&mut with, 0.99), pct(&mut without, 0.99));
    println!("raise script, {n} raises each, alternating blocks of 100:");
    println!("  without audit entry: mean {mo:.0} µs, p50 {p50o:.0} µs, p99 {p99o:.0} µs");
    println!("  with audit entry:    mean {mw:.0} µs, p50 {p50w:.0} µs, p99 {p99w:.0} µs");
    println!(
        "  the entry adds {:+.1} % (mean), {:+.1} % (p50)",
        (mw / mo - 1.0) * 100.0,
        (p50w / p50o - 1.0) * 100.0
    );
    redis.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
