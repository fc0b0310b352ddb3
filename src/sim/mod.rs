//! `muster sim`: a population of simulated volunteers answering webhooks and SMS, and the SMS
//! gateway they are reached through.
//!
//! Listens on `sim.addr` at `POST /hooks/{volunteer}`, checks each call-out's Standard Webhooks
//! signature, and answers it like a person would: accept (probability `sim.accept`), decline
//! (`sim.decline`) or stay silent, after a random delay in `sim.delay_min_ms..=delay_max_ms`,
//! by POSTing to the call-out's ack URL; an accepted volunteer reports arrival later with
//! probability `sim.arrive`. `GET /stats` shows what it did. Messages are de-duplicated by
//! `webhook-id`, as a real receiver should.
//!
//! As an SMS gateway (the generic kind, named by `sim.sms_gateway`, `sim` in the demo) it takes
//! `POST /sms/send` (`{to, text, id, status_url}`): at most `sim.sms_rate_per_sec` a second
//! (more get 429 with `Retry-After: 1`), refusing a share `sim.sms_fail` with 503, each message
//! id once. It posts a signed delivery receipt to `status_url`, and the volunteer behind the
//! number answers a call-out by SMS to muster's `/v1/sms/inbound/{gateway}`, with the same
//! probabilities and delays, typed sloppily (`23Y`, `Y23`, `２３ｙ`, ` 23 是 `, `23 1`, …); a
//! confirmation asking for arrival is answered `23D` or `23到` later.

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
    sms_received: AtomicU64,
    sms_throttled: AtomicU64,
    sms_refused: AtomicU64,
    sms_replies: AtomicU64,
    sms_receipts: AtomicU64,
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
    /// Signs SMS callbacks (the gateway's `secret`); `None` if muster has no such gateway.
    sms_key: Option<Vec<u8>>,
    /// Where SMS replies go.
    inbound_url: String,
    /// Token bucket of the simulated gateway: (tokens, last refill).
    bucket: std::sync::Mutex<(f64, std::time::Instant)>,
    /// Message id → the gateway's id, so a repeated send is taken once.
    sms_seen: Mutex<std::collections::HashMap<String, String>>,
}

/// A simulator serving on its own task.
pub struct Running {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    sim: Arc<Sim>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// What it did so far (the `GET /stats` document).
    pub fn stats(&self) -> Value {
        snapshot(&self.sim)
    }

    /// Stops serving.
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Starts the simulator on `listener`.
pub fn start(config: &Config, listener: tokio::net::TcpListener) -> anyhow::Result<Running> {
    // The gateway it plays: muster's simulated-drill gateway of that name, else the
    // configured one.
    let sms_key = crate::engine::drill_gateway(config)
        .filter(|g| g.name == config.sim.sms_gateway)
        .map(|g| g.secret)
        .or_else(|| {
            config
                .sms
                .gateway
                .iter()
                .find(|g| g.name == config.sim.sms_gateway)
                .map(|g| g.secret.clone())
        })
        .map(|s| decode_secret(&s));
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
        sms_key,
        inbound_url: format!(
            "{}/v1/sms/inbound/{}",
            config.sim.muster_url.trim_end_matches('/'),
            config.sim.sms_gateway
        ),
        bucket: std::sync::Mutex::new((config.sim.sms_rate_per_sec, std::time::Instant::now())),
        sms_seen: Mutex::new(std::collections::HashMap::new()),
    });
    let app = Router::new()
        .route("/hooks/{volunteer}", post(hook))
        .route("/sms/send", post(sms_send))
        .route("/stats", get(stats))
        .with_state(sim.clone());
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "simulator stopped");
        }
    });
    Ok(Running { addr, sim, task })
}

/// Runs the simulator until SIGINT/SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.sim.addr).await?;
    let running = start(&config, listener)?;
    if running.sim.sms_key.is_none() {
        tracing::warn!(
            gateway = config.sim.sms_gateway,
            "no [[sms.gateway]] of that name: SMS replies cannot be signed, muster will refuse them"
        );
    }
    tracing::info!(addr = %running.addr, accept = config.sim.accept, decline = config.sim.decline, "simulator answering as volunteers (webhooks and SMS)");
    let sim = running.sim.clone();
    let reporter = tokio::spawn(async move {
        let mut last = 0;
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let r = sim.stats.received.load(Ordering::Relaxed)
                + sim.stats.sms_received.load(Ordering::Relaxed);
            if r != last {
                last = r;
                tracing::info!(stats = %snapshot(&sim), "simulator");
            }
        }
    });
    let _ = tokio::signal::ctrl_c().await;
    reporter.abort();
    running.stop();
    Ok(())
}

fn snapshot(sim: &Sim) -> Value {
    let s = &sim.stats;
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    json!({
        "received": g(&s.received), "rejected": g(&s.rejected), "accepted": g(&s.accepted),
        "declined": g(&s.declined), "silent": g(&s.silent), "arrived": g(&s.arrived),
        "notices": g(&s.notices), "answer_errors": g(&s.answer_errors),
        "sms": {
            "received": g(&s.sms_received), "throttled": g(&s.sms_throttled),
            "refused": g(&s.sms_refused), "replies": g(&s.sms_replies),
            "receipts": g(&s.sms_receipts),
        },
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

/// `POST /sms/send`: the simulated gateway takes a message.
async fn sms_send(
    State(sim): State<Arc<Sim>>,
    axum::Json(m): axum::Json<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let field = |k: &str| m[k].as_str().unwrap_or("").to_string();
    let (to, text, id, status_url) = (field("to"), field("text"), field("id"), field("status_url"));
    if to.is_empty() || id.is_empty() {
        return (StatusCode::BAD_REQUEST, "to and id are required").into_response();
    }
    // The rate: a token bucket refilled at sms_rate_per_sec, one second's worth deep.
    let rate = sim.cfg.sms_rate_per_sec.max(0.1);
    let throttled = {
        let mut b = sim.bucket.lock().expect("bucket lock");
        let now = std::time::Instant::now();
        b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * rate).min(rate.max(1.0));
        b.1 = now;
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            false
        } else {
            true
        }
    };
    if throttled {
        sim.stats.sms_throttled.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "slow down",
        )
            .into_response();
    }
    if let Some(gw_id) = sim.sms_seen.lock().await.get(&id) {
        return axum::Json(json!({ "id": gw_id })).into_response();
    }
    let (refuse, roll, delay, arrive, arrive_delay, variant) = {
        let mut rng = sim.rng.lock().await;
        let lo = sim.cfg.delay_min_ms;
        let hi = sim.cfg.delay_max_ms.max(lo);
        (
            rng.random::<f64>() < sim.cfg.sms_fail,
            rng.random::<f64>(),
            rng.random_range(lo..=hi),
            rng.random::<f64>() < sim.cfg.arrive,
            rng.random_range(lo..=hi) * 3,
            rng.random_range(0..8u8),
        )
    };
    if refuse {
        sim.stats.sms_refused.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::SERVICE_UNAVAILABLE, "simulated outage").into_response();
    }
    let gw_id = {
        let mut seen = sim.sms_seen.lock().await;
        let gw_id = format!("sim-{}", seen.len() + 1);
        seen.insert(id.clone(), gw_id.clone());
        gw_id
    };
    sim.stats.sms_received.fetch_add(1, Ordering::Relaxed);
    let sim2 = sim.clone();
    let receipt_id = gw_id.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if !status_url.is_empty()
            && sim2
                .callback(
                    &status_url,
                    json!({"id": receipt_id, "status": "delivered"}),
                )
                .await
        {
            sim2.stats.sms_receipts.fetch_add(1, Ordering::Relaxed);
        }
        // The volunteer behind the number reads it.
        let Some((code, letter)) = instruction(&text) else {
            return; // a notice: nothing to answer
        };
        let reply = match letter {
            'Y' if roll < sim2.cfg.accept => sloppy(&code, variant, true),
            'Y' if roll < sim2.cfg.accept + sim2.cfg.decline => sloppy(&code, variant, false),
            'Y' => {
                sim2.stats.silent.fetch_add(1, Ordering::Relaxed);
                return;
            }
            _ if arrive => {
                tokio::time::sleep(Duration::from_millis(arrive_delay)).await;
                if variant % 2 == 0 {
                    format!("{code}D")
                } else {
                    format!("{code} 到")
                }
            }
            _ => return,
        };
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let n = sim2.stats.sms_replies.fetch_add(1, Ordering::Relaxed) + 1;
        let body = json!({"from": to, "text": reply, "id": format!("simin-{n}-{}", uuid::Uuid::new_v4().simple())});
        if !sim2.callback(&sim2.inbound_url, body).await {
            sim2.stats.answer_errors.fetch_add(1, Ordering::Relaxed);
        }
    });
    axum::Json(json!({ "id": gw_id })).into_response()
}

impl Sim {
    /// POSTs a callback signed as the gateway; whether muster took it (2xx).
    async fn callback(&self, url: &str, body: Value) -> bool {
        let Some(key) = &self.sms_key else {
            return false;
        };
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let id = format!("simcb_{}", uuid::Uuid::new_v4().simple());
        let ts = crate::clock::wall_ms() / 1000;
        let sig = crate::notify::webhook::sign(key, &id, ts, &body);
        let r = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(body)
            .send()
            .await;
        matches!(r, Ok(resp) if resp.status().is_success())
    }
}

/// The reply instruction of a message: the code after 回复 / Reply and the letter it asks for
/// (`Y` for a call-out, `D` for arrival).
fn instruction(text: &str) -> Option<(String, char)> {
    for marker in ["回复", "Reply ", "reply "] {
        for (i, _) in text.match_indices(marker) {
            let after = &text[i + marker.len()..];
            let code: String = after.chars().take_while(char::is_ascii_digit).collect();
            let letter = after[code.len()..].chars().next();
            if (2..=4).contains(&code.len())
                && let Some(l @ ('Y' | 'D')) = letter
            {
                return Some((code, l));
            }
        }
    }
    None
}

/// An answer typed the way people do: either order, full-width, spaces, Chinese.
fn sloppy(code: &str, variant: u8, accept: bool) -> String {
    let wide: String = code
        .chars()
        .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap_or(c))
        .collect();
    match (accept, variant) {
        (true, 0) => format!("{code}Y"),
        (true, 1) => format!("Y{code}"),
        (true, 2) => format!("{wide}ｙ"),
        (true, 3) => format!(" {code} 是 "),
        (true, 4) => format!("{code} 1"),
        (true, 5) => format!("好{code}"),
        (true, 6) => format!("{code}y。"),
        (true, _) => format!("{code} YES"),
        (false, 0 | 1) => format!("{code}N"),
        (false, 2) => format!("{code} 2"),
        (false, 3) => format!("{wide}不"),
        (false, 4) => format!("否 {code}"),
        (false, _) => format!("n{code}"),
    }
}

#[cfg(test)]
mod tests;
