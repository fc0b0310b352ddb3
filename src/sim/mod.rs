//! `muster sim`: a population of simulated volunteers answering webhooks.
//!
//! Listens on `sim.addr` at `POST /hooks/{volunteer}`, checks each call-out's Standard Webhooks
//! signature, and answers it like a person would: accept (probability `sim.accept`), decline
//! (`sim.decline`) or stay silent, after a random delay in `sim.delay_min_ms..=delay_max_ms`,
//! by POSTing to the call-out's ack URL; an accepted volunteer reports arrival later with
//! probability `sim.arrive`. `GET /stats` shows what it did. Messages are de-duplicated by
//! `webhook-id`, as a real receiver should.

use crate::config::Config;
use crate::notify::webhook::{decode_secret, verify};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;

#[derive(Default)]
struct Stats {
    received: AtomicU64,
    rejected: AtomicU64,
    accepted: AtomicU64,
    declined: AtomicU64,
    silent: AtomicU64,
    arrived: AtomicU64,
    notices: AtomicU64,
    answer_errors: AtomicU64,
}

struct Sim {
    key: Vec<u8>,
    cfg: crate::config::Sim,
    rng: Mutex<StdRng>,
    seen: Mutex<HashSet<String>>,
    http: reqwest::Client,
    stats: Stats,
}

/// Runs the simulator until SIGINT/SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let sim = Arc::new(Sim {
        key: decode_secret(&config.webhook.secret),
        rng: Mutex::new(match config.sim.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => rand::make_rng(),
        }),
        cfg: config.sim.clone(),
        seen: Mutex::new(HashSet::new()),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        stats: Stats::default(),
    });
    let app = Router::new()
        .route("/hooks/{volunteer}", post(hook))
        .route("/stats", get(stats))
        .with_state(sim.clone());
    let listener = tokio::net::TcpListener::bind(&config.sim.addr).await?;
    tracing::info!(addr = %listener.local_addr()?, accept = config.sim.accept, decline = config.sim.decline, "simulator answering as volunteers");
    let reporter = {
        let sim = sim.clone();
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let r = sim.stats.received.load(Ordering::Relaxed);
                if r != last {
                    last = r;
                    tracing::info!(stats = %snapshot(&sim), "simulator");
                }
            }
        })
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    reporter.abort();
    Ok(())
}

fn snapshot(sim: &Sim) -> Value {
    let s = &sim.stats;
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    json!({
        "received": g(&s.received), "rejected": g(&s.rejected), "accepted": g(&s.accepted),
        "declined": g(&s.declined), "silent": g(&s.silent), "arrived": g(&s.arrived),
        "notices": g(&s.notices), "answer_errors": g(&s.answer_errors),
    })
}

async fn stats(State(sim): State<Arc<Sim>>) -> axum::Json<Value> {
    axum::Json(snapshot(&sim))
}

async fn hook(
    State(sim): State<Arc<Sim>>,
    Path(volunteer): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (id, ts, sig) = (
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
    );
    let Ok(ts) = ts.parse::<i64>() else {
        sim.stats.rejected.fetch_add(1, Ordering::Relaxed);
        return StatusCode::BAD_REQUEST;
    };
    if !verify(&sim.key, id, ts, &body, sig) {
        sim.stats.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(volunteer, "rejected a webhook with a bad signature");
        return StatusCode::UNAUTHORIZED;
    }
    if !sim.seen.lock().await.insert(id.to_string()) {
        return StatusCode::OK; // a retry of a message already handled
    }
    sim.stats.received.fetch_add(1, Ordering::Relaxed);
    let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let kind = msg["type"].as_str().unwrap_or("");
    let accept_url = msg["ack"]["accept_url"].as_str().map(String::from);
    let base = accept_url
        .as_deref()
        .and_then(|u| u.split('?').next())
        .map(String::from);
    match (kind, base) {
        ("callout", Some(base)) => {
            let (roll, delay, arrive, arrive_delay) = {
                let mut rng = sim.rng.lock().await;
                let lo = sim.cfg.delay_min_ms;
                let hi = sim.cfg.delay_max_ms.max(lo);
                (
                    rng.random::<f64>(),
                    rng.random_range(lo..=hi),
                    rng.random::<f64>() < sim.cfg.arrive,
                    rng.random_range(lo..=hi) * 3,
                )
            };
            let answer = if roll < sim.cfg.accept {
                "accept"
            } else if roll < sim.cfg.accept + sim.cfg.decline {
                "decline"
            } else {
                sim.stats.silent.fetch_add(1, Ordering::Relaxed);
                return StatusCode::OK;
            };
            let sim = sim.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let state = answer_callout(&sim, &base, answer).await;
                match answer {
                    "accept" => sim.stats.accepted.fetch_add(1, Ordering::Relaxed),
                    _ => sim.stats.declined.fetch_add(1, Ordering::Relaxed),
                };
                if arrive && state.as_deref() == Some("accepted") {
                    tokio::time::sleep(Duration::from_millis(arrive_delay)).await;
                    if answer_callout(&sim, &base, "arrived").await.as_deref() == Some("arrived") {
                        sim.stats.arrived.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        ("promoted", Some(base)) => {
            sim.stats.notices.fetch_add(1, Ordering::Relaxed);
            let sim = sim.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(sim.cfg.delay_max_ms)).await;
                if answer_callout(&sim, &base, "arrived").await.as_deref() == Some("arrived") {
                    sim.stats.arrived.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        _ => {
            sim.stats.notices.fetch_add(1, Ordering::Relaxed);
        }
    }
    StatusCode::OK
}

/// POSTs an answer; returns the callout's new state.
async fn answer_callout(sim: &Sim, url: &str, response: &str) -> Option<String> {
    let r = sim
        .http
        .post(url)
        .json(&json!({ "response": response }))
        .send()
        .await;
    match r {
        Ok(resp) if resp.status().is_success() => resp
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| v["state"].as_str().map(String::from)),
        Ok(resp) => {
            // 410 after a stand-down is normal; anything else is worth counting.
            if resp.status() != StatusCode::GONE {
                sim.stats.answer_errors.fetch_add(1, Ordering::Relaxed);
            }
            None
        }
        Err(_) => {
            sim.stats.answer_errors.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}
