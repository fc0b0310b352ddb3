//! Test harness: a private `redis-server` per test, a seed pointing volunteers' webhooks at a
//! local receiver, and the real app on port 0 with a random key prefix and a manual clock.
#![allow(dead_code)]

pub mod nodes;
pub mod scenarios;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use muster::app::{App, Role};
use muster::clock::ManualClock;
use muster::config::Config;
use muster::redis_server::EmbeddedRedis;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The demo webhook secret (config/default.toml).
/// The audit chain's key in tests.
pub const AUDIT_KEY: &str = "test-audit-chain-key-0123456789";

pub const SECRET: &str = "whsec_bXVzdGVyLWRlbW8tY2l0eS13ZWJob29rLXNlY3JldA==";

/// A fresh temporary directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("muster-{tag}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A private redis-server for one test.
pub struct TestRedis {
    pub server: EmbeddedRedis,
    pub dir: PathBuf,
}

impl TestRedis {
    pub async fn start() -> TestRedis {
        let dir = temp_dir("redis");
        let server = EmbeddedRedis::start("redis-server", &dir, "always")
            .await
            .expect("redis-server starts (is it installed?)");
        TestRedis { server, dir }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// A plain connection, for reading keys straight from Redis.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl TestRedis {
    /// Every event of incident `id`, oldest first, read straight from its Redis stream.
    pub async fn incident_events(&self, id: &str) -> Vec<HashMap<String, String>> {
        let mut c = self.conn().await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("*:inc:{id}:events"))
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(keys.len(), 1, "one event stream for {id}: {keys:?}");
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&keys[0])
            .arg("-")
            .arg("+")
            .query_async(&mut c)
            .await
            .unwrap();
        reply
            .ids
            .into_iter()
            .map(|e| {
                e.map
                    .keys()
                    .map(|k| (k.clone(), e.get::<String>(k).unwrap_or_default()))
                    .collect()
            })
            .collect()
    }
}

/// The sum of metric `name`'s samples on `base`'s `/metrics` whose labels contain every one
/// of `labels` (e.g. `to="sms:gw1"`).
pub async fn metric(http: &reqwest::Client, base: &str, name: &str, labels: &[&str]) -> f64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
                && labels.iter().all(|x| l.contains(x))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One webhook the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub volunteer: String,
    pub webhook_id: String,
    pub signature_ok: bool,
    pub status: u16,
    pub body: Value,
}

impl Received {
    pub fn kind(&self) -> &str {
        self.body["type"].as_str().unwrap_or("")
    }
    pub fn token(&self) -> String {
        self.body["ack"]["token"].as_str().unwrap_or("").to_string()
    }
    pub fn callout_id(&self) -> String {
        self.body["callout_id"].as_str().unwrap_or("").to_string()
    }
}

struct ReceiverState {
    log: Vec<Received>,
    /// Volunteer → how many more attempts to answer with 500.
    fail_next: HashMap<String, usize>,
    delay: Duration,
    /// `true` while answers are held back (see [`Receiver::hold`]).
    gate: tokio::sync::watch::Sender<bool>,
    /// Requests waiting at the gate.
    waiting: usize,
}

/// A local webhook receiver standing in for volunteers' apps.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let state = Arc::new(Mutex::new(ReceiverState {
            log: Vec::new(),
            fail_next: HashMap::new(),
            delay: Duration::ZERO,
            gate: tokio::sync::watch::Sender::new(false),
            waiting: 0,
        }));
        let app = Router::new()
            .route("/hooks/{vid}", post(receive))
            .with_state(state.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        Receiver { addr, state }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next `n` attempts to `volunteer` fail with 500.
    pub fn fail_next(&self, volunteer: &str, n: usize) {
        self.state
            .lock()
            .unwrap()
            .fail_next
            .insert(volunteer.into(), n);
    }

    /// Every answer is delayed by `d` (to catch the app mid-send).
    pub fn set_delay(&self, d: Duration) {
        self.state.lock().unwrap().delay = d;
    }

    /// Holds every answer back until [`Receiver::release`]: the app's sends stay in flight.
    pub fn hold(&self) {
        self.state.lock().unwrap().gate.send_replace(true);
    }

    /// Lets the held answers (and any later ones) go.
    pub fn release(&self) {
        self.state.lock().unwrap().gate.send_replace(false);
    }

    /// Requests held at the gate right now.
    pub fn waiting(&self) -> usize {
        self.state.lock().unwrap().waiting
    }

    /// Everything received, failed attempts included.
    pub fn all(&self) -> Vec<Received> {
        self.state.lock().unwrap().log.clone()
    }

    /// Successfully received messages of one type.
    pub fn delivered(&self, kind: &str) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| r.status == 200 && r.kind() == kind)
            .collect()
    }
}

async fn receive(
    State(st): State<Arc<Mutex<ReceiverState>>>,
    Path(vid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let id = h("webhook-id");
    let ts: i64 = h("webhook-timestamp").parse().unwrap_or(0);
    let key = muster::notify::webhook::decode_secret(SECRET);
    let signature_ok =
        muster::notify::webhook::verify(&key, &id, ts, &body, &h("webhook-signature"));
    let (delay, mut gate) = {
        let mut s = st.lock().unwrap();
        s.waiting += 1;
        (s.delay, s.gate.subscribe())
    };
    let _ = gate.wait_for(|held| !*held).await;
    st.lock().unwrap().waiting -= 1;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut s = st.lock().unwrap();
    let status = match s.fail_next.get_mut(&vid) {
        Some(n) if *n > 0 => {
            *n -= 1;
            500
        }
        _ => 200,
    };
    s.log.push(Received {
        volunteer: vid,
        webhook_id: id,
        signature_ok,
        status,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    StatusCode::from_u16(status).unwrap()
}

/// Writes a test seed: the demo city with volunteers' webhooks on `receiver`, plus
/// `extra_rescuers` more members of the rescue team of township 990101001, plus a `hazmat`
/// plan covering level 1 only (so other levels have no plan).
pub fn seed_dir(receiver: &str, extra_rescuers: usize) -> PathBuf {
    let dir = temp_dir("seed");
    let demo = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("config/demo");
    copy_dir(&demo, &dir);
    // Every volunteer gets a webhook on the receiver (the demo's SMS-only ones too): these
    // tests run without SMS gateways (tests/sms.rs has its own).
    let csv = std::fs::read_to_string(dir.join("volunteers.csv")).unwrap();
    let mut csv: String = csv
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut f: Vec<String> = l.split(',').map(String::from).collect();
            if i > 0 && f.len() > 4 && f[4].is_empty() {
                f[4] = format!("{receiver}/hooks/{}", f[0]);
            }
            f.join(",") + "\n"
        })
        .collect();
    csv = csv.replace("http://127.0.0.1:8081", receiver);
    for i in 0..extra_rescuers {
        csv.push_str(&format!(
            "x{i:04},Extra {i},+8613700{i:06},en,{receiver}/hooks/x{i:04},t990101001-rescue,990101001,active,2027-12-31,water_rescue:2028-06-30\n"
        ));
    }
    std::fs::write(dir.join("volunteers.csv"), csv).unwrap();
    // Without the demo's default rotation every member of a team is on call, so these tests
    // see the whole team called; the roster tests put rosters in place through the API.
    let teams = std::fs::read_to_string(dir.join("teams.toml")).unwrap();
    let start = teams.find("[default_roster]").unwrap();
    let end = start + teams[start..].find("\n\n").unwrap();
    std::fs::write(
        dir.join("teams.toml"),
        format!("{}{}", &teams[..start], &teams[end..]),
    )
    .unwrap();
    std::fs::write(
        dir.join("plans/hazmat.toml"),
        "name = \"hazmat\"\nkinds = [\"hazmat\"]\nlevels = [1]\n\n[[requirement]]\nid = \"fire\"\nteam_kind = \"fire\"\nneeded = 4\n",
    )
    .unwrap();
    dir
}

fn copy_dir(from: &FsPath, to: &FsPath) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// Test configuration: fast reclaim and scheduler ticks, 1 s (manual clock) retry backoff.
pub fn config(redis_url: &str, prefix: &str, seed: &FsPath) -> Config {
    let mut c = Config::default();
    c.audit.key = AUDIT_KEY.into();
    c.http.addr = "127.0.0.1:0".into();
    c.redis.url = Some(redis_url.into());
    c.redis.prefix = prefix.into();
    c.seed.dir = seed.to_path_buf();
    c.engine.partitions = 4;
    c.engine.reclaim_idle_ms = 1_000;
    c.engine.reclaim_interval_ms = 200;
    c.engine.scheduler_tick_ms = 10;
    c.webhook.secret = SECRET.into();
    c.webhook.timeout_ms = 2_000;
    c.webhook.retry_backoff_ms = vec![1_000, 1_000, 1_000];
    c.log.level = "warn".into();
    c
}

/// The app running on its own runtime, so a test can crash it by dropping that runtime.
pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    rt: Option<tokio::runtime::Runtime>,
    app: Option<App>,
}

impl TestApp {
    pub async fn start(config: Config, clock: ManualClock) -> TestApp {
        muster::telemetry::init_logging("text", &config.log.level);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let app = rt
            .spawn(async move { App::build(config, Role::All, Arc::new(clock)).await })
            .await
            .unwrap()
            .expect("app builds");
        TestApp {
            addr: app.addr.unwrap(),
            http: reqwest::Client::new(),
            rt: Some(rt),
            app: Some(app),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Waits until the app's workers are idle: every consumer group of every partition's
    /// `bus` and `deliveries` streams has read every entry and acknowledged it (a handler
    /// acknowledges only what it finished, so an entry being worked on is pending), and no
    /// retry or escalation timer is due on the app's clock. Checked three times in a row, so
    /// work that one step enqueues for the next is seen. "Nothing more happened" is asserted
    /// after this, never after a fixed sleep.
    pub async fn idle(&self) {
        let app = self.app.as_ref().unwrap();
        let store = app.ctx.store.clone();
        let clock = app.ctx.clock.clone();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut quiet = 0;
        while quiet < 3 {
            assert!(Instant::now() < deadline, "the workers never went idle");
            if busy(&store, clock.now_ms()).await {
                quiet = 0;
            } else {
                quiet += 1;
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    }

    /// The app's engine context (for running one of its sweeps now).
    pub fn ctx(&self) -> std::sync::Arc<muster::engine::Ctx> {
        self.app.as_ref().unwrap().ctx.clone()
    }

    /// The app's own store (its Redis and key prefix), for checks below the API.
    pub fn store(&self) -> muster::store::Store {
        self.app.as_ref().unwrap().ctx.store.clone()
    }

    /// Graceful stop: in-flight work finishes.
    pub async fn stop(mut self) {
        let app = self.app.take().unwrap();
        let rt = self.rt.take().unwrap();
        rt.spawn(app.stop()).await.unwrap();
        rt.shutdown_background();
    }

    /// A crash: every task of the app stops where it is.
    pub fn kill(mut self) {
        std::mem::forget(self.app.take());
        self.rt.take().unwrap().shutdown_background();
    }

    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, HeaderMap, Value) {
        let mut r = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut r = self.http.get(self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Any request with a raw body; JSON bodies get the JSON content type.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let is_json = serde_json::from_slice::<Value>(&body).is_ok_and(|v| v.is_object());
        let mut r = self.http.request(m, self.url(path)).body(body);
        if is_json {
            r = r.header("content-type", "application/json");
        }
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `POST /v1/volunteers:import` of a CSV body as `token`.
    pub async fn import(&self, token: &str, csv: &[u8]) -> (u16, Value) {
        self.send("POST", "/v1/volunteers:import", Some(token), csv.to_vec())
            .await
    }

    /// A JSON request.
    pub async fn json(&self, method: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.send(method, path, Some(token), body.to_string().into_bytes())
            .await
    }

    /// Raises an incident as `token`; returns the status and body.
    /// `POST /v1/incidents/{id}/stand-down` as the township commander: status and body.
    pub async fn stand_down(&self, id: &str) -> (u16, Value) {
        let path = format!("/v1/incidents/{id}/stand-down");
        let (s, _, b) = self.post(&path, Some("demo-township-commander"), "").await;
        (s, b)
    }

    pub async fn raise(&self, token: &str, body: Value) -> (u16, Value) {
        let (s, _, b) = self
            .post("/v1/incidents", Some(token), &body.to_string())
            .await;
        (s, b)
    }

    pub async fn incident(&self, id: &str) -> Value {
        let (s, b) = self
            .get(&format!("/v1/incidents/{id}"), Some("demo-admin"))
            .await;
        assert_eq!(s, 200, "{b}");
        b
    }

    /// Answers a callout by token.
    pub async fn ack(&self, token: &str, response: &str) -> (u16, Value) {
        let (s, _, b) = self
            .post(
                &format!("/v1/acks/{token}"),
                None,
                &format!("{{\"response\":\"{response}\"}}"),
            )
            .await;
        (s, b)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            std::mem::forget(self.app.take());
            rt.shutdown_background();
        }
    }
}

/// Requirement `rid` of an incident body.
pub fn req<'a>(incident: &'a Value, rid: &str) -> &'a Value {
    incident["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == rid)
        .unwrap()
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes (then panics with `what`).
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out after {timeout:?} waiting for: {what}");
}

/// A prefix no other test uses.
pub fn prefix() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// Whether any worker has work: an unread or unacknowledged stream entry, or a due retry or
/// timer.
async fn busy(store: &muster::store::Store, now: i64) -> bool {
    let mut c = store.conn();
    for p in 0..store.keys.partitions() {
        for (stream, groups) in [
            (store.keys.bus(p), &["fanout", "projection"][..]),
            (store.keys.deliveries(p), &["notifier"][..]),
        ] {
            let info: redis::Value = match redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(&stream)
                .query_async(&mut c)
                .await
            {
                Ok(v) => v,
                Err(_) => continue, // no stream yet: nothing to do
            };
            let last: String = redis::cmd("XINFO")
                .arg("STREAM")
                .arg(&stream)
                .query_async::<redis::Value>(&mut c)
                .await
                .ok()
                .and_then(|v| field_of(&v, "last-generated-id"))
                .unwrap_or_default();
            let redis::Value::Array(gs) = info else {
                return true;
            };
            let mut seen = 0;
            for g in &gs {
                let name = field_of(g, "name").unwrap_or_default();
                if !groups.contains(&name.as_str()) {
                    continue;
                }
                seen += 1;
                let pending: i64 = field_of(g, "pending")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                let read = field_of(g, "last-delivered-id").unwrap_or_default();
                if pending > 0 || read != last {
                    return true;
                }
            }
            if seen < groups.len() && !last.is_empty() && last != "0-0" {
                return true; // a group not created yet has entries to read
            }
        }
        for zset in [store.keys.delayed(p), store.keys.timers(p)] {
            let due: i64 = redis::cmd("ZCOUNT")
                .arg(&zset)
                .arg("-inf")
                .arg(now)
                .query_async(&mut c)
                .await
                .unwrap_or(1);
            if due > 0 {
                return true;
            }
        }
    }
    // A scheduled drill due now, or claimed and not yet raised.
    store.drills_pending(now).await.unwrap_or(1) > 0
}

/// A field of an XINFO reply (a flat list or a map of names and values), as text.
fn field_of(v: &redis::Value, name: &str) -> Option<String> {
    let pairs: Vec<(redis::Value, redis::Value)> = match v {
        redis::Value::Array(a) => a
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect(),
        redis::Value::Map(m) => m.clone(),
        _ => return None,
    };
    pairs.into_iter().find_map(|(k, v)| {
        (redis::from_redis_value::<String>(k).ok()? == name)
            .then(|| redis::from_redis_value::<String>(v).ok())
            .flatten()
    })
}

// The command centre over HTTP.

/// A browser-like client: keeps cookies, does not follow redirects (they are checked).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of the hidden `csrf` field of a page.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_string()
}

/// Signs in with `token`; answers the status of the POST and the page `/` then shows.
pub async fn sign_in(app: &TestApp, b: &reqwest::Client, token: &str) -> (u16, String) {
    let form = b.get(app.url("/login")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let csrf = csrf_of(&form.text().await.unwrap());
    let r = b
        .post(app.url("/login"))
        .form(&[("token", token), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let home = b.get(app.url("/")).send().await.unwrap();
    (status, home.text().await.unwrap())
}

/// Raises an incident that must be created (201) and answers its id.
pub async fn raised(app: &TestApp, token: &str, body: Value) -> String {
    let (s, inc) = app.raise(token, body).await;
    assert_eq!(s, 201, "{inc}");
    inc["id"].as_str().unwrap().to_string()
}

/// Every key name and value of the deployment under `prefix`, as text: each key's name, then
/// every string inside its value (hash fields, list and set members, stream fields), one per
/// line — what a check for leftover personal data reads.
pub async fn dump(redis: &TestRedis, prefix: &str) -> String {
    fn strings(v: &redis::Value, out: &mut String) {
        match v {
            redis::Value::BulkString(b) => {
                out.push_str(&String::from_utf8_lossy(b));
                out.push('\n');
            }
            redis::Value::SimpleString(s) => {
                out.push_str(s);
                out.push('\n');
            }
            redis::Value::Array(items) | redis::Value::Set(items) => {
                items.iter().for_each(|i| strings(i, out))
            }
            redis::Value::Map(m) => m.iter().for_each(|(a, b)| {
                strings(a, out);
                strings(b, out);
            }),
            _ => {}
        }
    }
    let mut c = redis.conn().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut c)
        .await
        .unwrap();
    let mut out = String::new();
    for k in keys {
        let t: String = redis::cmd("TYPE")
            .arg(&k)
            .query_async(&mut c)
            .await
            .unwrap();
        let (read, extra): (&str, &[&str]) = match t.as_str() {
            "string" => ("GET", &[]),
            "hash" => ("HGETALL", &[]),
            "list" => ("LRANGE", &["0", "-1"]),
            "set" => ("SMEMBERS", &[]),
            "zset" => ("ZRANGE", &["0", "-1"]),
            "stream" => ("XRANGE", &["-", "+"]),
            "none" => continue, // gone since it was listed (a finished transient key)
            other => panic!("unexpected type {other} of {k}"),
        };
        let v: redis::Value = redis::cmd(read)
            .arg(&k)
            .arg(extra)
            .query_async(&mut c)
            .await
            .unwrap();
        out.push_str(&k);
        out.push('\n');
        strings(&v, &mut out);
    }
    out
}
