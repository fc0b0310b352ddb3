//! Command-centre benchmark (`make bench`, or `cargo bench --bench board`), against the real
//! `muster` binary on a private `redis-server`.
//!
//! One township rescue team of N members (no roster: all on call); a raise calls every one.
//! 200 SSE viewers of that incident connect as it is raised and follow the fan-out; each one's
//! lag is the time from the moment the incident reached its final state (every call-out
//! delivered, as the API answers, polled every 5 ms) to the moment that viewer's stream showed
//! it. Then the board of the N-callout incident is rendered again and again; its time is the
//! server's own (`Server-Timing`). muster's peak RSS (VmHWM) is read from /proc.
//! Budgets: board ≤ 100 ms at 10,000 callouts; every viewer ≤ 1 s; RSS ≤ 150 MiB.
//!
//! `cargo test --all-targets` runs it once small (500 volunteers, 20 viewers) so it cannot rot.

mod common;

use axum::Router;
use axum::routing::post;
use muster::redis_server::EmbeddedRedis;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real binary, serving on `port`.
fn muster(port: u16, redis: &str, seed: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_muster"))
        .arg("serve")
        .env("MUSTER__HTTP__ADDR", format!("127.0.0.1:{port}"))
        .env("MUSTER__REDIS__URL", redis)
        .env("MUSTER__SEED__DIR", seed)
        // BENCH_LOG=muster::web::board=debug: where a board's time goes.
        .env(
            "MUSTER__LOG__LEVEL",
            std::env::var("BENCH_LOG").unwrap_or_else(|_| "error".into()),
        )
        .env(
            "MUSTER__WEBHOOK__SECRET",
            "whsec_YmVuY2htYXJrLXNlY3JldC1ieXRlcw==",
        )
        .stdout(if std::env::var("BENCH_LOG").is_ok() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .expect("muster starts")
}

/// Peak resident memory of a process, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Whether an incident view has every call-out of its rescue requirement delivered.
fn is_final(v: &Value, n: usize) -> bool {
    v["requirements"].as_array().is_some_and(|rs| {
        rs.iter().any(|r| {
            r["id"] == "rescue"
                && r["pending"] == 0
                && r["called"].as_u64() == Some(n as u64)
                && r["notified"].as_u64() == Some(n as u64)
        })
    })
}

/// One SSE viewer: reads the stream until it shows the final state; answers when.
async fn viewer(base: String, id: String, n: usize) -> Instant {
    let mut resp = reqwest::Client::new()
        .get(format!("{base}/v1/incidents/{id}/events"))
        .bearer_auth("demo-viewer")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut buf = String::new();
    loop {
        let chunk = resp.chunk().await.unwrap().expect("the stream ended early");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let data: String = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            if (event.contains("event: progress") || event.contains("event: snapshot"))
                && serde_json::from_str::<Value>(&data).is_ok_and(|v| is_final(&v, n))
            {
                return Instant::now();
            }
        }
    }
}

struct Figures {
    viewers_p50_ms: f64,
    viewers_max_ms: f64,
    board_p50_ms: f64,
    board_max_ms: f64,
    details_p50_ms: f64,
    rss_mib: f64,
}

async fn run(n: usize, viewers: usize) -> Figures {
    let dir = std::env::temp_dir().join(format!("muster-board-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = format!("http://{}", listener.local_addr().unwrap());
    let rx = Router::new().route("/hooks/{v}", post(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, rx).await.unwrap() });
    let seed_dir = common::big_team_seed(&dir, &receiver, n, "滨江街道救援队");
    let mut redis = EmbeddedRedis::start("redis-server", &dir.join("redis"), "everysec")
        .await
        .unwrap();
    let port = free_port();
    let mut child = muster(port, &redis.url(), &seed_dir);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
        != 200
    {
        assert!(Instant::now() < deadline, "muster did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Raise; the viewers connect as the fan-out runs.
    let r = http
        .post(format!("{base}/v1/incidents"))
        .bearer_auth("demo-township-commander")
        .json(&serde_json::json!({"kind": "flood", "level": 4, "region": "990101001", "title": "大屏压力测试"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let watchers: Vec<_> = (0..viewers)
        .map(|_| tokio::spawn(viewer(base.clone(), id.clone(), n)))
        .collect();
    let reached = loop {
        let v: Value = http
            .get(format!("{base}/v1/incidents/{id}"))
            .bearer_auth("demo-admin")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if is_final(&v, n) {
            break Instant::now();
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(60),
            "the fan-out never finished: {v}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let mut lags: Vec<f64> = Vec::new();
    for w in watchers {
        let seen = tokio::time::timeout(Duration::from_secs(30), w)
            .await
            .expect("a viewer never saw the final state")
            .unwrap();
        lags.push(seen.saturating_duration_since(reached).as_secs_f64() * 1000.0);
    }
    lags.sort_by(f64::total_cmp);

    // The board of the whole fan-out, as a signed-in commander sees it.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = browser
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = form.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = form[at..].split('"').next().unwrap().to_string();
    let r = browser
        .post(format!("{base}/login"))
        .form(&[
            ("token", "demo-township-commander"),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let timed = |path: String| {
        let browser = browser.clone();
        async move {
            let r = browser.get(path).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let t = r.headers()["server-timing"]
                .to_str()
                .unwrap()
                .trim_start_matches("app;dur=")
                .parse::<f64>()
                .unwrap();
            let body = r.text().await.unwrap();
            assert!(
                body.contains(&format!("/{n}")) || body.contains("响应人员"),
                "a board"
            );
            t
        }
    };
    let mut board = Vec::new();
    let mut details = Vec::new();
    for _ in 0..20 {
        board.push(timed(format!("{base}/incidents/{id}")).await);
        details.push(timed(format!("{base}/incidents/{id}/details")).await);
    }
    board.sort_by(f64::total_cmp);
    details.sort_by(f64::total_cmp);
    let rss = peak_rss_mib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    redis.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Figures {
        viewers_p50_ms: lags[lags.len() / 2],
        viewers_max_ms: lags[lags.len() - 1],
        board_p50_ms: board[board.len() / 2],
        board_max_ms: board[board.len() - 1],
        details_p50_ms: details[details.len() / 2],
        rss_mib: rss,
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("muster command-centre benchmark (2 cores, the real binary, local redis AOF everysec)");
        let (n, viewers) = if full { (10_000, 200) } else { (500, 20) };
        let f = run(n, viewers).await;
        println!(
            "{viewers} SSE viewers of a {n}-callout fan-out: final state seen p50 {:.0} ms, max {:.0} ms after reached (budget 1000 ms)",
            f.viewers_p50_ms, f.viewers_max_ms
        );
        println!(
            "board of {n} callouts (server time): p50 {:.1} ms, max {:.1} ms (budget 100 ms); its live details p50 {:.1} ms",
            f.board_p50_ms, f.board_max_ms, f.details_p50_ms
        );
        println!("muster peak RSS over the run: {:.0} MiB (budget 150 MiB)", f.rss_mib);
    });
}
