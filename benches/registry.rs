//! Registry and roster benchmark (`make bench-registry`, or `cargo bench --bench registry`).
//!
//! Builds a generated city of 111 regions, 1,000 teams and 100,000 volunteers on a private
//! `redis-server` (AOF `everysec`), then measures:
//! 1. importing the 100,000-row CSV through the same code as `muster import volunteers`;
//! 2. "who is on call now" for all 1,000 teams, through `GET /v1/on-call` (the whole answer,
//!    JSON included) and through the roster engine alone;
//! 3. selection for one requirement (roster, registry and deployment checks) in a township;
//! 4. raise → first callout handed to its channel (received by a local webhook receiver).
//!
//! `BENCH_VOLUNTEERS` scales the city down for a quick run; `BENCH_DETAIL=1` also prints where
//! the time of one on-call listing goes.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::post;
use muster::app::{App, Role};
use muster::clock::SystemClock;
use muster::config::Config;
use muster::domain::incident::Mode;
use muster::domain::plan::Requirement;
use muster::domain::region::RegionCode;
use muster::engine::select::{Ask, select};
use muster::redis_server::EmbeddedRedis;
use muster::seed::Seed;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn hook(State(a): State<Arrivals>, Path(_v): Path<String>, body: String) -> &'static str {
    let now = Instant::now();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body)
        && let Some(id) = v["incident"]["id"].as_str()
    {
        a.lock().unwrap().entry(id.to_string()).or_insert(now);
    }
    "ok"
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

/// Writes the generated city's seed directory; returns it and the CSV of volunteers.
fn generate(dir: &FsPath, receiver: &str, volunteers: usize) -> (PathBuf, Vec<u8>) {
    let demo = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("config/demo");
    let seed = dir.join("seed");
    std::fs::create_dir_all(seed.join("plans")).unwrap();
    std::fs::create_dir_all(seed.join("templates")).unwrap();
    for sub in ["plans", "templates"] {
        for e in std::fs::read_dir(demo.join(sub)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), seed.join(sub).join(e.file_name())).unwrap();
        }
    }
    std::fs::write(
        seed.join("tokens.toml"),
        "[[token]]\nname = \"bench\"\ntoken = \"bench-admin\"\nrole = \"admin\"\nscope = \"880100\"\n",
    )
    .unwrap();
    let mut regions =
        String::from("[[region]]\ncode = \"880100\"\nname = \"基准市\"\ntier = \"city\"\n");
    let mut teams = String::from(
        "custom_kinds = []\n\n[default_roster]\nshift = \"1d\"\nstart = \"2026-01-01T08:00\"\ntime_zone = \"Asia/Shanghai\"\non_call_share = 0.1\n\n",
    );
    let mut team_ids: Vec<(String, String)> = Vec::new(); // (id, kind)
    let mut team = |id: String, kind: &str, region: &str, teams: &mut String| {
        writeln!(
            teams,
            "[[team]]\nid = \"{id}\"\nname = \"{id}\"\nkind = \"{kind}\"\nregion = \"{region}\"\n"
        )
        .unwrap();
        team_ids.push((id, kind.to_string()));
    };
    let kinds = [
        "rescue",
        "first_aid",
        "fire",
        "public_security",
        "psych_support",
    ];
    for c in 1..=10 {
        let county = format!("8801{c:02}");
        writeln!(regions, "[[region]]\ncode = \"{county}\"\nname = \"区{c}\"\ntier = \"county\"\nparent = \"880100\"\n").unwrap();
        for t in 1..=10 {
            let town = format!("{county}{t:03}");
            writeln!(regions, "[[region]]\ncode = \"{town}\"\nname = \"镇{c}-{t}\"\ntier = \"township\"\nparent = \"{county}\"\n").unwrap();
            for (k, n) in [
                ("rescue", 3),
                ("first_aid", 3),
                ("public_security", 1),
                ("psych_support", 1),
            ] {
                for i in 0..n {
                    team(format!("t{town}-{k}-{i}"), k, &town, &mut teams);
                }
            }
        }
        for k in ["fire", "public_security", "psych_support"] {
            for i in 0..5 {
                team(format!("t{county}-{k}-{i}"), k, &county, &mut teams);
            }
        }
    }
    for k in kinds {
        for i in 0..10 {
            team(format!("t880100-{k}-{i}"), k, "880100", &mut teams);
        }
    }
    std::fs::write(seed.join("regions.toml"), regions).unwrap();
    std::fs::write(seed.join("teams.toml"), teams).unwrap();
    std::fs::write(
        seed.join("volunteers.csv"),
        "id,name,phone,locale,webhook,teams,home_region,status,insurance_valid_until,qualifications\n",
    )
    .unwrap();
    let mut csv = String::from("name,phone,teams,webhook,insurance_valid_until,qualifications\n");
    for i in 0..volunteers {
        let (tid, kind) = &team_ids[i % team_ids.len()];
        let q = if kind == "rescue" {
            "water_rescue:2099-12-31"
        } else {
            ""
        };
        writeln!(
            csv,
            "志愿者{i},+86150{i:08},{tid},{receiver}/hooks/b{i},2099-12-31,{q}"
        )
        .unwrap();
    }
    (seed, csv.into_bytes())
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this as a quick smoke
    // test of the benchmark itself, on a small city.
    let full = std::env::args().any(|a| a == "--bench");
    let volunteers: usize = std::env::var("BENCH_VOLUNTEERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 100_000 } else { 2_000 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(volunteers));
}

async fn run(volunteers: usize) {
    let dir = std::env::temp_dir().join(format!("muster-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let arrivals: Arrivals = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = format!("http://{}", listener.local_addr().unwrap());
    let rx = Router::new()
        .route("/hooks/{v}", post(hook))
        .with_state(arrivals.clone());
    tokio::spawn(async move { axum::serve(listener, rx).await.unwrap() });
    let (seed_dir, csv) = generate(&dir, &receiver, volunteers);
    let mut redis = EmbeddedRedis::start("redis-server", &dir.join("redis"), "everysec")
        .await
        .unwrap();
    let url = redis.url();
    println!(
        "muster registry benchmark: {volunteers} volunteers, 1000 teams, 111 regions (2 cores, local redis, AOF everysec)"
    );

    // 1. Import.
    let seed = Seed::load(&seed_dir).unwrap();
    let store = muster::store::Store::connect(&url, "bench", 8)
        .await
        .unwrap();
    // The teams exist before volunteers join them (as `muster import` sees them).
    store
        .seed(&seed.teams, &[], muster::clock::wall_ms(), |_, _| None)
        .await
        .unwrap();
    let lk = muster::import::Lookup::new(
        seed.teams.clone(),
        &seed.regions,
        &seed.templates,
        Box::new(|_| true),
    );
    let t0 = Instant::now();
    let report = muster::import::import(&store, &csv, &lk, muster::clock::wall_ms(), |_, _| {})
        .await
        .unwrap();
    let import_s = t0.elapsed().as_secs_f64();
    assert_eq!(report.created, volunteers, "{:?}", report.rejected.first());
    let t0 = Instant::now();
    let again = muster::import::import(&store, &csv, &lk, muster::clock::wall_ms(), |_, _| {})
        .await
        .unwrap();
    let reimport_s = t0.elapsed().as_secs_f64();
    assert_eq!(again.unchanged, volunteers);
    println!(
        "import {volunteers} rows (CSV, UTF-8):           {import_s:>8.2} s   ({:.0} rows/s)",
        volunteers as f64 / import_s
    );
    println!("re-import, nothing changes:                {reimport_s:>8.2} s");

    // The service on that Redis (seeding writes the teams and their default rosters).
    let mut config = Config::default();
    config.audit.key = "bench-audit-chain-key".into();
    config.http.addr = "127.0.0.1:0".into();
    config.redis.url = Some(url.clone());
    config.redis.prefix = "bench".into();
    config.seed.dir = seed_dir.clone();
    config.log.level = "error".into();
    config.webhook.secret = "whsec_YmVuY2htYXJrLXNlY3JldC1ieXRlcw==".into();
    muster::telemetry::init_logging("text", "error");
    let app = App::build(config, Role::All, Arc::new(SystemClock))
        .await
        .unwrap();
    let base = format!("http://{}", app.addr.unwrap());
    let http = reqwest::Client::new();

    // 2. Who is on call, every team.
    let mut http_ms = Vec::new();
    let mut bytes = 0;
    let mut members = 0;
    for i in 0..120 {
        let t = Instant::now();
        let r = http
            .get(format!("{base}/v1/on-call"))
            .bearer_auth("bench-admin")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body = r.bytes().await.unwrap();
        if i >= 20 {
            http_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        bytes = body.len();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        members = v["teams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["on_call"].as_array().unwrap().len())
            .sum::<usize>();
    }
    let ids: Vec<String> = app
        .ctx
        .store
        .all_teams()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    let mut engine_ms = Vec::new();
    for i in 0..120 {
        let t = Instant::now();
        let rosters = app.ctx.rosters.get(&app.ctx.store, &ids).await.unwrap();
        let now = jiff::Timestamp::now();
        let n: usize = rosters
            .iter()
            .flatten()
            .map(|r| r.on_call_at(now).len())
            .sum();
        assert!(n > 0);
        if i >= 20 {
            engine_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    if std::env::var("BENCH_DETAIL").is_ok() {
        let t = Instant::now();
        let teams = app.ctx.store.all_teams().await.unwrap();
        let a = t.elapsed();
        let rosters = app.ctx.rosters.get(&app.ctx.store, &ids).await.unwrap();
        let b = t.elapsed();
        let now = jiff::Timestamp::now();
        let vids: Vec<String> = rosters
            .iter()
            .flatten()
            .flat_map(|r| r.on_call_at(now))
            .map(|o| o.volunteer)
            .collect();
        let c = t.elapsed();
        let facts = app.ctx.store.on_call_facts(&vids).await.unwrap();
        let d = t.elapsed();
        println!(
            "detail: teams {a:?}, rosters {:?}, on_call_at {:?}, facts {:?} ({} teams, {} facts)",
            b - a,
            c - b,
            d - c,
            teams.len(),
            facts.len()
        );
    }
    println!(
        "on-call, all 1000 teams, GET /v1/on-call:   p50 {:>6.1} ms  p99 {:>6.1} ms  ({members} members on call, {} KiB of JSON)",
        pct(&mut http_ms, 0.5),
        pct(&mut http_ms, 0.99),
        bytes / 1024
    );
    println!(
        "on-call, all 1000 teams, roster engine:     p50 {:>6.1} ms  p99 {:>6.1} ms",
        pct(&mut engine_ms, 0.5),
        pct(&mut engine_ms, 0.99)
    );

    // 3. Selection for one requirement in a township (3 rescue teams, 300 members).
    let region = RegionCode::parse("880105005").unwrap();
    let req = Requirement {
        id: "rescue".into(),
        team_kind: "rescue".into(),
        qualification: Some("water_rescue".into()),
        needed: 6,
    };
    let mut sel_ms = Vec::new();
    for i in 0..120 {
        let ask = Ask {
            region: &region,
            scope: muster::domain::region::Tier::Township,
            pool: muster::domain::ladder::Pool::OnCall,
            requirement: &req,
            mode: Mode::Live,
            include_deployed: false,
            incident: "bench",
            now_ms: muster::clock::wall_ms(),
        };
        let t = Instant::now();
        let s = select(&app.ctx, &ask).await.unwrap();
        assert!(!s.candidates.is_empty());
        if i >= 20 {
            sel_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    println!(
        "selection, one requirement (300 members):  p50 {:>6.1} ms  p99 {:>6.1} ms",
        pct(&mut sel_ms, 0.5),
        pct(&mut sel_ms, 0.99)
    );

    // 4. Raise → first callout handed to its channel.
    let mut raise_ms = Vec::new();
    for i in 0..60 {
        let c = 1 + i % 10;
        let t = 1 + (i / 10) % 10;
        let body = serde_json::json!({"kind": "flood", "level": 4, "region": format!("8801{c:02}{t:03}"), "title": format!("基准 {i}")});
        let t0 = Instant::now();
        let r = http
            .post(format!("{base}/v1/incidents"))
            .bearer_auth("bench-admin")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let id = r.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        let first = loop {
            if let Some(at) = arrivals.lock().unwrap().get(&id) {
                break *at;
            }
            assert!(Instant::now() < deadline, "no callout of {id} arrived");
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        raise_ms.push(first.duration_since(t0).as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(50)).await; // let its fan-out finish
    }
    println!(
        "raise → first callout at the receiver:    p50 {:>6.1} ms  p99 {:>6.1} ms  (60 raises, budget p50 20 / p99 100)",
        pct(&mut raise_ms, 0.5),
        pct(&mut raise_ms, 0.99)
    );

    let mut c = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut c)
        .await
        .unwrap();
    let used: f64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    println!(
        "redis memory after the run:                {:>8.1} MiB ({:.0} B per volunteer, callouts included)",
        used / 1048576.0,
        used / volunteers as f64
    );
    app.stop().await;
    redis.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
