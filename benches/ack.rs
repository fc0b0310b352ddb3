//! Ack benchmark (`make bench`, or `cargo bench --bench ack`): volunteers' answers over HTTP
//! against the same server's `/healthz`, as a ratio, from the same load generator.
//!
//! A township rescue team of N members (N = 10,000; no roster, all on call) on a private
//! `redis-server` (AOF everysec) is called out; a local receiver keeps each call-out's ack
//! token. The first 6 accept and fill the requirement; the stand-by notices to everyone else
//! (a fan-out, measured by the fan-out benchmark) go out before the measured runs. Then a
//! load generator in its own process (this binary with `--generate`, so its CPU is not counted
//! as muster's) — C connections with keep-alive, each sending its next request as soon as the
//! last is answered — sends, as the baseline, N/2 `GET /healthz`; then
//! `POST /v1/acks/{token}` `accept` for half the other tokens (token check, one read of the
//! callout, mode and headcounts — full — a read-only check of the volunteer's other
//! deployments, and the headcount script in standby-only mode) and `decline` for the rest
//! (the token check and the headcount script). Each run prints the sustained rate, p50/p99
//! latency and how busy redis-server was; the ratios say what the ack path costs beyond HTTP.
//! The generator shares the two cores with muster and Redis, so both rates are lower than a
//! separate client machine would see; the ratio is what carries over.
//!
//! It runs on a single `redis-server`, then on a local Cluster of three masters and three
//! replicas (Redis CPU is then the sum over the six nodes). `cargo test --all-targets` runs it
//! once on 300 volunteers so it cannot rot.

mod common;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The volunteers' receiver: keeps each call-out's ack token, counts the stand-by notices.
/// Once the tokens are in, it stops reading bodies as JSON (the notices that follow a fill
/// cost this process little, so the acks' own cost is what is measured).
#[derive(Clone, Default)]
struct Inbox {
    tokens: Arc<Mutex<Vec<String>>>,
    collecting: Arc<AtomicBool>,
    notices: Arc<AtomicUsize>,
}

async fn hook(State(inbox): State<Inbox>, body: String) -> &'static str {
    if !inbox.collecting.load(Ordering::Relaxed) {
        if body.contains("\"type\":\"standby\"") {
            inbox.notices.fetch_add(1, Ordering::Relaxed);
        }
        return "ok";
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body)
        && v["type"] == "callout"
        && let Some(t) = v["ack"]["token"].as_str()
    {
        inbox.tokens.lock().unwrap().push(t.to_string());
    }
    "ok"
}

impl Inbox {
    /// Waits until `n` call-outs' tokens are in (then stops reading bodies); answers them.
    async fn tokens(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.tokens.lock().unwrap().len() < n {
            assert!(
                Instant::now() < deadline,
                "the call-outs did not all arrive"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Let the fan-out's tail settle, so it does not share the measured run.
        tokio::time::sleep(Duration::from_secs(2)).await;
        self.collecting.store(false, Ordering::Relaxed);
        self.tokens.lock().unwrap().clone()
    }

    /// Waits until `n` stand-by notices have arrived since the count was last reset.
    async fn notices(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.notices.load(Ordering::Relaxed) < n {
            assert!(
                Instant::now() < deadline,
                "the stand-by notices did not all arrive ({} of {n})",
                self.notices.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Clears the tokens and the count and reads call-outs again (for the next incident).
    fn restart(&self) {
        self.tokens.lock().unwrap().clear();
        self.notices.store(0, Ordering::Relaxed);
        self.collecting.store(true, Ordering::Relaxed);
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Sends one request per item of `work` over `c` concurrent keep-alive connections; answers
/// the rate (requests/s) and the latencies (ms). Every answer must be 200.
async fn load(client: &reqwest::Client, work: Vec<reqwest::Request>, c: usize) -> (f64, Vec<f64>) {
    let n = work.len();
    let queue = Arc::new(Mutex::new(work));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (queue, client) = (queue.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let Some(req) = queue.lock().unwrap().pop() else {
                    break;
                };
                let t = Instant::now();
                let r = client.execute(req).await.expect("the server answers");
                let status = r.status();
                let _ = r.bytes().await;
                assert_eq!(status, 200, "every request is answered 200");
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            lat
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (n as f64 / t0.elapsed().as_secs_f64(), all)
}

/// Sends `work` open-loop at `rate` requests a second (each at its scheduled time, whatever the
/// earlier ones are doing) and answers each one's latency from its scheduled time (ms), so a
/// stall shows in every request it delays. 200 or 409 (a volunteer engaged elsewhere).
async fn fixed_rate(client: &reqwest::Client, work: Vec<reqwest::Request>, rate: f64) -> Vec<f64> {
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(work.len());
    for (i, req) in work.into_iter().enumerate() {
        let at = t0 + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(at.into()).await;
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let r = client.execute(req).await.expect("the server answers");
            let status = r.status().as_u16();
            let _ = r.bytes().await;
            assert!(status == 200 || status == 409, "answered {status}");
            at.elapsed().as_secs_f64() * 1000.0
        }));
    }
    let mut lat = Vec::with_capacity(tasks.len());
    for t in tasks {
        lat.push(t.await.unwrap());
    }
    lat
}

/// The load generator's own process: `--generate BASE FILE C MODE` sends one request per line
/// of FILE (`healthz`, or `TOKEN ANSWER`) to BASE — over C keep-alive connections, each sending
/// its next request when the last is answered (MODE `closed`), or open-loop at MODE requests a
/// second — and prints `RESULT rate latencies…` (ms).
async fn generator(args: &[String]) {
    let (base, file, c, mode) = (&args[0], &args[1], args[2].parse().unwrap(), &args[3]);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(c)
        .build()
        .unwrap();
    let work: Vec<reqwest::Request> = std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| match l.split_once(' ') {
            Some((token, answer)) => client
                .post(format!("{base}/v1/acks/{token}"))
                .json(&serde_json::json!({ "response": answer }))
                .build()
                .unwrap(),
            None => client.get(format!("{base}/healthz")).build().unwrap(),
        })
        .collect();
    let (rate, lat) = if mode == "closed" {
        load(&client, work, c).await
    } else {
        let n = work.len() as f64;
        let t0 = Instant::now();
        let lat = fixed_rate(&client, work, mode.parse().unwrap()).await;
        (n / t0.elapsed().as_secs_f64(), lat)
    };
    let lat: Vec<String> = lat.iter().map(|l| format!("{l:.3}")).collect();
    println!("RESULT {rate} {}", lat.join(" "));
}

/// Runs the generator (above) as a separate process, so that its CPU is not muster's, and
/// answers its rate and latencies.
async fn generate(
    dir: &std::path::Path,
    base: &str,
    lines: Vec<String>,
    c: usize,
    mode: &str,
) -> (f64, Vec<f64>) {
    let file = dir.join("generator-work.txt");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let args = [
        base.to_string(),
        file.display().to_string(),
        c.to_string(),
        mode.to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--generate")
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(result) = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")) else {
        panic!(
            "the load generator failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let mut f = result.split(' ').map(|v| v.parse::<f64>().unwrap());
    let rate = f.next().unwrap();
    (rate, f.collect())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--generate") {
        generator(&args[i + 1..]).await;
        return;
    }
    let full = args.iter().any(|a| a == "--bench");
    let n: usize = std::env::var("BENCH_ACKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 10_000 } else { 300 });
    let c: usize = std::env::var("BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let mut report = common::Report::new("ack");
    // BENCH_ONLY=single or BENCH_ONLY=cluster: one of the two (to profile it).
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    for cluster in [false, true] {
        if (only == "single" && cluster) || (only == "cluster" && !cluster) {
            continue;
        }
        run(n, c, cluster, &mut report).await;
    }
    report.write();
}

/// Prints Redis's per-command statistics (`reset`: clears them instead).
async fn commandstats(url: &str, reset: bool) {
    let mut c = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    if reset {
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut c)
            .await
            .unwrap();
        return;
    }
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut c)
        .await
        .unwrap();
    for l in stats.lines().filter(|l| l.starts_with("cmdstat_")) {
        eprintln!("  {l}");
    }
}

/// The requirement's headcount in the benchmark's plan (township rescue, level 4).
const FILL: usize = 6;

/// Accepts one token after another (each answered 200): the requirement fills.
async fn fill(
    client: &reqwest::Client,
    tokens: &[String],
    req: &impl Fn(&String, &str) -> reqwest::Request,
) {
    for t in tokens {
        let r = client.execute(req(t, "accept")).await.unwrap();
        assert_eq!(r.status(), 200, "a filling accept is answered 200");
    }
}

/// One run on a single `redis-server` or on a local 3-master Cluster.
async fn run(n: usize, c: usize, cluster: bool, report: &mut common::Report) {
    let dir =
        std::env::temp_dir().join(format!("muster-bench-ack-{}-{cluster}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let inbox = Inbox {
        collecting: Arc::new(AtomicBool::new(true)),
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = format!("http://{}", listener.local_addr().unwrap());
    let rx = Router::new()
        .route("/hooks/{v}", post(hook))
        .with_state(inbox.clone());
    tokio::spawn(async move { axum::serve(listener, rx).await.unwrap() });
    let redis = common::BenchRedis::start(&dir, cluster).await;
    let app = common::big_team_app_on(&dir, &receiver, n, &redis.url()).await;
    let base = format!("http://{}", app.addr.unwrap());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(c)
        .build()
        .unwrap();
    let r = client
        .post(format!("{base}/v1/incidents"))
        .bearer_auth("demo-township-commander")
        .json(&serde_json::json!({"kind": "flood", "level": 4, "region": "990101001", "title": "ack benchmark"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let first_incident: serde_json::Value = r.json().await.unwrap();
    let all = inbox.tokens(n).await;
    let req = |t: &String, answer: &str| {
        client
            .post(format!("{base}/v1/acks/{t}"))
            .json(&serde_json::json!({"response": answer}))
            .build()
            .unwrap()
    };
    // The first six accept and fill the requirement; everyone else is then told to stand by.
    // Those notices are a fan-out (the fan-out benchmark measures it): they go out before the
    // measured runs, whose accepts are then answered `standby` — the common case when
    // thousands are called for a handful of places.
    fill(&client, &all[..FILL], &req).await;
    inbox.notices(n - FILL).await;
    let (first, second) = all[FILL..].split_at((all.len() - FILL) / 2);
    let answers = |tokens: &[String], answer: &str| -> Vec<String> {
        tokens.iter().map(|t| format!("{t} {answer}")).collect()
    };
    let health: Vec<String> = vec!["healthz".to_string(); first.len()];
    let p0 = common::process_cpu();
    let (h_rate, mut h_lat) = generate(&dir, &base, health, c, "closed").await;
    let h_proc = common::process_cpu() - p0;
    // BENCH_DETAIL=1 (single node): Redis's command statistics for the accepts.
    let detail = std::env::var("BENCH_DETAIL").is_ok() && !cluster;
    if detail {
        commandstats(&redis.url(), true).await;
    }
    let cpu0 = redis.cpu_seconds().await;
    let p1 = common::process_cpu();
    if detail {
        eprintln!("accepts begin");
    }
    let t0 = Instant::now();
    let (a_rate, mut a_lat) = generate(&dir, &base, answers(first, "accept"), c, "closed").await;
    let (a_wall, cpu1) = (t0.elapsed().as_secs_f64(), redis.cpu_seconds().await);
    let a_proc = common::process_cpu() - p1;
    if detail {
        eprintln!("redis commands during {} accepts:", first.len());
        commandstats(&redis.url(), false).await;
    }
    let p2 = common::process_cpu();
    let t1 = Instant::now();
    let (d_rate, mut d_lat) = generate(&dir, &base, answers(second, "decline"), c, "closed").await;
    let (d_wall, cpu2) = (t1.elapsed().as_secs_f64(), redis.cpu_seconds().await);
    let d_proc = common::process_cpu() - p2;
    let k = first.len();
    println!(
        "acks over HTTP on a {}, {k} tokens each, {c} keep-alive connections, generator in its own process:",
        redis.name()
    );
    println!(
        "  GET /healthz (baseline):   {h_rate:>7.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
        pct(&mut h_lat, 0.5),
        pct(&mut h_lat, 0.99)
    );
    println!(
        "  accept (to standby):       {a_rate:>7.0} req/s, p50 {:.2} ms, p99 {:.2} ms, redis-server busy {:.0} % of the run ({:.0} µs CPU per ack)",
        pct(&mut a_lat, 0.5),
        pct(&mut a_lat, 0.99),
        (cpu1 - cpu0) / a_wall * 100.0,
        (cpu1 - cpu0) * 1e6 / k as f64
    );
    println!(
        "  decline (ack only):        {d_rate:>7.0} req/s, p50 {:.2} ms, p99 {:.2} ms, redis-server busy {:.0} % of the run ({:.0} µs CPU per ack)",
        pct(&mut d_lat, 0.5),
        pct(&mut d_lat, 0.99),
        (cpu2 - cpu1) / d_wall * 100.0,
        (cpu2 - cpu1) * 1e6 / second.len() as f64
    );
    println!(
        "  ratio to healthz: accept {:.2}×, decline {:.2}×",
        a_rate / h_rate,
        d_rate / h_rate
    );
    // Where the time goes: CPU per request of this process (muster; the healthz run is its
    // HTTP part alone) and of Redis.
    let k2 = second.len() as f64;
    let (h_us, a_us, d_us) = (
        h_proc * 1e6 / k as f64,
        a_proc * 1e6 / k as f64,
        d_proc * 1e6 / k2,
    );
    println!(
        "  CPU per request (µs): healthz {h_us:.0} (HTTP alone); accept {a_us:.0} + redis {:.0}; decline {d_us:.0} + redis {:.0}",
        (cpu1 - cpu0) * 1e6 / k as f64,
        (cpu2 - cpu1) * 1e6 / k2
    );
    let on = redis.name();
    report.add(&format!("process CPU per healthz, {on}"), h_us, "µs");
    report.add(&format!("process CPU per accept, {on}"), a_us, "µs");
    report.add(&format!("process CPU per decline, {on}"), d_us, "µs");
    report.add(&format!("healthz rate, {on}"), h_rate, "per s");
    report.ratio(
        &format!("accept rate, {on}"),
        a_rate,
        "per s",
        "healthz, same run",
        h_rate,
    );
    report.ratio(
        &format!("decline rate, {on}"),
        d_rate,
        "per s",
        "healthz, same run",
        h_rate,
    );
    report.add(&format!("accept p99, {on}"), pct(&mut a_lat, 0.99), "ms");
    report.add(&format!("decline p99, {on}"), pct(&mut d_lat, 0.99), "ms");
    report.add(
        &format!("redis CPU per accept, {on}"),
        (cpu1 - cpu0) * 1e6 / k as f64,
        "µs",
    );
    report.add(
        &format!("redis CPU per decline, {on}"),
        (cpu2 - cpu1) * 1e6 / second.len() as f64,
        "µs",
    );

    // Latency at a fixed rate: the first incident stands down (so nobody is engaged on it), a
    // second calls the same team again, and its answers (accept and decline in turn) arrive
    // open-loop at `rate` a second.
    let rate: f64 = if n >= 10_000 { 5000.0 } else { 500.0 };
    let first_id = first_incident["id"].as_str().unwrap().to_string();
    let r = client
        .post(format!("{base}/v1/incidents/{first_id}/stand-down"))
        .bearer_auth("demo-township-commander")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    inbox.restart();
    let r = client
        .post(format!("{base}/v1/incidents"))
        .bearer_auth("demo-township-commander")
        .json(&serde_json::json!({"kind": "flood", "level": 4, "region": "990101001", "title": "fixed rate"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // The six who served on the first are resting, so not called again; six more fill it.
    let second_round = inbox.tokens(n - FILL).await;
    fill(&client, &second_round[..FILL], &req).await;
    inbox.notices(n - 2 * FILL).await;
    let second_round = &second_round[FILL..];
    let work: Vec<String> = second_round
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{t} {}", if i % 2 == 0 { "accept" } else { "decline" }))
        .collect();
    let (_, mut fixed) = generate(&dir, &base, work, c, &rate.to_string()).await;
    let (p50, p99) = (pct(&mut fixed, 0.5), pct(&mut fixed, 0.99));
    println!(
        "  at a fixed {rate:.0}/s (accept and decline in turn, {} answers): p50 {p50:.2} ms, p99 {p99:.2} ms (budget p99 20 ms)",
        second_round.len()
    );
    report.add(&format!("ack p50 at a fixed {rate:.0}/s, {on}"), p50, "ms");
    report.add(&format!("ack p99 at a fixed {rate:.0}/s, {on}"), p99, "ms");
    app.stop().await;
    redis.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
