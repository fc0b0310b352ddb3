//! SMS end to end against local gateways (generic kind): call-outs carry reply codes, replies
//! answer them (signed callbacks only, duplicates ignored, bare answers only when one callout is
//! open), throttling and a 30 s outage on the injected clock, failover to a second gateway.

mod common;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use common::*;
use muster::clock::ManualClock;
use muster::config::{SmsGateway, SmsGatewayKind};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const GW_SECRET: &str = "whsec_c21zLWdhdGV3YXktdGVzdC1zZWNyZXQ=";

/// What a gateway does with the next message.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Ok,
    Down,
    /// 429 with `Retry-After: 20` once per message id, then accept.
    ThrottleOnce,
}

#[derive(Clone, Debug)]
struct Sms {
    gateway: String,
    to: String,
    text: String,
    id: String,
    status: u16,
}

#[derive(Default)]
struct GwState {
    log: Vec<Sms>,
    modes: HashMap<String, Mode>,
    throttled: std::collections::HashSet<String>,
}

#[derive(Clone)]
struct Gateways {
    base: String,
    st: Arc<Mutex<GwState>>,
}

async fn gw_send(
    State(st): State<Arc<Mutex<GwState>>>,
    Path(gw): Path<String>,
    Json(v): Json<Value>,
) -> impl IntoResponse {
    let mut s = st.lock().unwrap();
    let id = v["id"].as_str().unwrap_or("").to_string();
    let mode = s.modes.get(&gw).copied().unwrap_or(Mode::Ok);
    let status = match mode {
        Mode::Ok => 200,
        Mode::Down => 503,
        Mode::ThrottleOnce if s.throttled.insert(id.clone()) => 429,
        Mode::ThrottleOnce => 200,
    };
    let n = s.log.len();
    s.log.push(Sms {
        gateway: gw.clone(),
        to: v["to"].as_str().unwrap_or("").into(),
        text: v["text"].as_str().unwrap_or("").into(),
        id,
        status,
    });
    let mut headers = axum::http::HeaderMap::new();
    if status == 429 {
        headers.insert("retry-after", "20".parse().unwrap());
    }
    (
        StatusCode::from_u16(status).unwrap(),
        headers,
        Json(json!({"id": format!("{gw}-{n}")})),
    )
}

impl Gateways {
    async fn start() -> Gateways {
        let st = Arc::new(Mutex::new(GwState::default()));
        let app = Router::new()
            .route("/send/{gw}", post(gw_send))
            .with_state(st.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        Gateways { base, st }
    }

    fn set(&self, gw: &str, mode: Mode) {
        self.st.lock().unwrap().modes.insert(gw.into(), mode);
    }

    fn log(&self) -> Vec<Sms> {
        self.st.lock().unwrap().log.clone()
    }

    /// Messages accepted (200), of call-outs only (not answers to replies).
    fn callouts(&self) -> Vec<Sms> {
        self.log()
            .into_iter()
            .filter(|m| m.status == 200 && m.id.ends_with("_callout"))
            .collect()
    }

    fn config(&self, name: &str) -> SmsGateway {
        SmsGateway {
            name: name.into(),
            kind: SmsGatewayKind::Generic,
            url: format!("{}/send/{name}", self.base),
            from: "muster".into(),
            key_id: "test-token".into(),
            secret: GW_SECRET.into(),
            callback_secret: String::new(),
            sign_name: String::new(),
            templates: BTreeMap::new(),
            rate_per_sec: 1000.0,
            concurrency: 16,
            timeout_ms: 2000,
        }
    }
}

/// The test seed with volunteers who have no webhook (SMS only) or, with `dead_webhooks`, a
/// webhook that refuses connections.
fn seed_with(dead_webhooks: bool) -> std::path::PathBuf {
    let seed = seed_dir("http://127.0.0.1:9", 0);
    if dead_webhooks {
        return seed;
    }
    let csv = std::fs::read_to_string(seed.join("volunteers.csv")).unwrap();
    let csv: Vec<String> = csv
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut f: Vec<&str> = l.split(',').collect();
            if i > 0 {
                f[4] = "";
            }
            f.join(",")
        })
        .collect();
    std::fs::write(seed.join("volunteers.csv"), csv.join("\n") + "\n").unwrap();
    seed
}

/// An app whose volunteers have no webhook (SMS only), with gateways `names` in that order.
async fn start(names: &[&str]) -> (TestRedis, Gateways, TestApp, ManualClock) {
    start_with(names, false).await
}

/// The same; with `dead_webhooks` every volunteer keeps a webhook that refuses connections.
async fn start_with(
    names: &[&str],
    dead_webhooks: bool,
) -> (TestRedis, Gateways, TestApp, ManualClock) {
    let redis = TestRedis::start().await;
    let gws = Gateways::start().await;
    let seed = seed_with(dead_webhooks);
    let mut c = config(&redis.url(), &prefix(), &seed);
    c.sms.gateway = names.iter().map(|n| gws.config(n)).collect();
    c.sms.retry_backoff_ms = vec![2_000, 10_000, 30_000];
    let clock = ManualClock::new();
    let app = TestApp::start(c, clock.clone()).await;
    (redis, gws, app, clock)
}

async fn raise(app: &TestApp, kind: &str) -> String {
    let (s, b) = app
        .raise(
            "demo-township-commander",
            json!({"kind": kind, "level": 4, "region": "990101001", "title": "河堤险情"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    b["id"].as_str().unwrap().to_string()
}

/// The number of callouts of an incident once its fan-out is done (every requirement has
/// reached a step that waits).
async fn called(app: &TestApp, id: &str) -> usize {
    eventually(T, "the fan-out done", || async {
        let inc = app.incident(id).await;
        inc["requirements"]
            .as_array()
            .is_some_and(|rs| rs.iter().all(|r| r["next_step_at"].is_string()))
    })
    .await;
    let (_, page) = app
        .get(
            &format!("/v1/incidents/{id}/callouts?limit=5000"),
            Some("demo-admin"),
        )
        .await;
    page["total"].as_u64().unwrap_or(0) as usize
}

async fn callout_of(app: &TestApp, id: &str, phone_tail: &str) -> Value {
    let (_, page) = app
        .get(
            &format!("/v1/incidents/{id}/callouts?limit=5000"),
            Some("demo-admin"),
        )
        .await;
    page["callouts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["phone"].as_str().unwrap_or("").ends_with(phone_tail))
        .cloned()
        .unwrap_or(Value::Null)
}

/// POSTs a JSON `body` to `path` signed as a gateway's callback (Standard Webhooks, `key`).
async fn signed_post(
    app: &TestApp,
    path: &str,
    key: &[u8],
    wid: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let ts = muster::clock::wall_ms() / 1000;
    let sig = muster::notify::webhook::sign(key, wid, ts, &body);
    let r = app
        .http
        .post(app.url(path))
        .header("content-type", "application/json")
        .header("webhook-id", wid)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Posts a signed (or, with `sign` false, forged) inbound SMS.
async fn reply(
    app: &TestApp,
    gw: &str,
    from: &str,
    text: &str,
    id: &str,
    sign: bool,
) -> (u16, Value) {
    let body = serde_json::to_vec(&json!({"from": from, "text": text, "id": id})).unwrap();
    let key = if sign {
        muster::notify::webhook::decode_secret(GW_SECRET)
    } else {
        b"not-the-secret".to_vec()
    };
    signed_post(
        app,
        &format!("/v1/sms/inbound/{gw}"),
        &key,
        &format!("cb_{id}"),
        body,
    )
    .await
}

/// Posts a signed delivery receipt (generic gateway body).
async fn receipt(app: &TestApp, gw: &str, gw_id: &str, status: &str) -> (u16, Value) {
    let body = serde_json::to_vec(&json!({"id": gw_id, "status": status})).unwrap();
    let key = muster::notify::webhook::decode_secret(GW_SECRET);
    let path = format!("/v1/sms/status/{gw}");
    signed_post(app, &path, &key, &format!("rc_{gw_id}_{status}"), body).await
}

/// The reply code in a call-out text ("…回复23Y…" or "…Reply 23Y…").
fn code_of(text: &str) -> String {
    let at = text
        .find("回复")
        .map(|i| i + "回复".len())
        .or_else(|| text.find("Reply ").map(|i| i + "Reply ".len()))
        .expect("a reply instruction");
    text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect()
}

fn tail(phone: &str) -> String {
    phone[phone.len() - 4..].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_callouts_carry_codes_and_signed_replies_answer_them() {
    let (_r, gws, app, _clock) = start(&["gw1"]).await;
    let id = raise(&app, "flood").await;
    let total = called(&app, &id).await;
    assert!(total > 10, "{total} {}", app.incident(&id).await);
    eventually(T, "every call-out sent by SMS", || async {
        gws.callouts().len() == total
    })
    .await;
    let all = gws.callouts();
    for m in &all {
        assert!(
            m.text.starts_with("【应急召集】") || m.text.starts_with("CALL-OUT"),
            "{}",
            m.text
        );
        let code = code_of(&m.text);
        assert!((2..=4).contains(&code.len()), "{}", m.text);
        assert!(
            muster::domain::template::sms_segments(&m.text) <= 2,
            "{}",
            m.text
        );
    }
    // The Chinese-speaking volunteers' messages, for the replies below.
    let sent: Vec<Sms> = all
        .into_iter()
        .filter(|m| m.text.starts_with("【"))
        .collect();
    let first = &sent[0];
    let code = code_of(&first.text);
    let c = callout_of(&app, &id, &tail(&first.to)).await;
    assert_eq!(c["state"], "notified");
    assert_eq!(c["channel"], "sms:gw1");

    // Forged and unsigned callbacks change nothing.
    let (s, _) = reply(&app, "gw1", &first.to, &format!("{code}Y"), "in-0", false).await;
    assert_eq!(s, 401);
    let r = app
        .http
        .post(app.url("/v1/sms/inbound/gw1"))
        .json(&json!({"from": first.to, "text": format!("{code}Y"), "id": "in-00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        callout_of(&app, &id, &tail(&first.to)).await["state"],
        "notified"
    );

    // A sloppy, full-width, coded accept answers it, and is confirmed by SMS.
    let wide: String = format!(" {code} ｙ ")
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                char::from_u32(c as u32 + 0xFEE0).unwrap()
            } else {
                c
            }
        })
        .collect();
    let (s, b) = reply(&app, "gw1", &first.to, &wide, "in-1", true).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["messages"][0]["result"], "answered");
    assert_eq!(
        callout_of(&app, &id, &tail(&first.to)).await["state"],
        "accepted"
    );
    eventually(T, "the accept is confirmed", || async {
        gws.log()
            .iter()
            .any(|m| m.to == first.to && m.text.contains("已确认出动") && m.text.contains(&code))
    })
    .await;
    // The same callback again (same gateway message id) changes nothing and sends nothing.
    let before = gws.log().len();
    let (s, b) = reply(&app, "gw1", &first.to, "N", "in-1", true).await;
    assert_eq!(
        (s, b["messages"][0]["result"].as_str()),
        (200, Some("duplicate"))
    );
    app.idle().await;
    assert_eq!(gws.log().len(), before);
    assert_eq!(
        callout_of(&app, &id, &tail(&first.to)).await["state"],
        "accepted"
    );
    // On arrival: `{code} 到` checks in, and is confirmed.
    let (_, b) = reply(&app, "gw1", &first.to, &format!("{code} 到"), "in-1b", true).await;
    assert_eq!(b["messages"][0]["result"], "answered");
    assert_eq!(
        callout_of(&app, &id, &tail(&first.to)).await["state"],
        "arrived"
    );
    eventually(T, "the arrival is confirmed", || async {
        gws.log()
            .iter()
            .any(|m| m.to == first.to && m.text.contains("已报到"))
    })
    .await;

    // A bare 否 from a number with one open callout declines it.
    let second = &sent[1];
    let (_, b) = reply(&app, "gw1", &second.to, "否", "in-2", true).await;
    assert_eq!(b["messages"][0]["result"], "answered");
    assert_eq!(
        callout_of(&app, &id, &tail(&second.to)).await["state"],
        "declined"
    );

    // An unknown number gets no answer.
    let before = gws.log().len();
    let (_, b) = reply(&app, "gw1", "+8613000000000", "Y", "in-3", true).await;
    assert_eq!(b["messages"][0]["result"], "unknown_number");
    app.idle().await;
    assert_eq!(gws.log().len(), before);

    // STOP opts the number out: confirmed, and later messages skip SMS for it.
    let third = &sent[2];
    let (_, b) = reply(&app, "gw1", &third.to, "退订", "in-4", true).await;
    assert_eq!(b["messages"][0]["result"], "stop");
    eventually(T, "the opt-out is confirmed", || async {
        gws.log()
            .iter()
            .any(|m| m.to == third.to && m.text.contains("已退订"))
    })
    .await;

    // Commanders see the opt-out on the volunteer.
    let vid = callout_of(&app, &id, &tail(&third.to)).await["volunteer_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, v) = app
        .get(
            &format!("/v1/volunteers/{vid}"),
            Some("demo-county-commander"),
        )
        .await;
    assert!(v["sms_opt_out_at"].is_string(), "{v}");

    // After the stand-down, a coded reply gets a polite "already over".
    let (s, _) = app
        .json(
            "POST",
            &format!("/v1/incidents/{id}/stand-down"),
            "demo-township-commander",
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    let fourth = &sent[3];
    let (_, b) = reply(
        &app,
        "gw1",
        &fourth.to,
        &format!("{}Y", code_of(&fourth.text)),
        "in-5",
        true,
    )
    .await;
    assert_eq!(b["messages"][0]["result"], "closed");
    eventually(T, "told it is over", || async {
        gws.log()
            .iter()
            .any(|m| m.to == fourth.to && m.text.contains("召集已结束"))
    })
    .await;
    // The opted-out number got no stand-down SMS (it has no other channel: failed).
    app.idle().await;
    assert!(
        !gws.log()
            .iter()
            .any(|m| m.to == third.to && m.id.ends_with("_stand_down")),
        "no SMS after STOP"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_open_callouts_and_a_bare_yes_ask_which_and_an_old_code_touches_nothing() {
    let (_r, gws, app, clock) = start(&["gw1"]).await;
    let flood = raise(&app, "flood").await;
    let n1 = called(&app, &flood).await;
    eventually(T, "flood call-outs sent", || async {
        gws.callouts().len() == n1
    })
    .await;
    let quake = raise(&app, "earthquake").await;
    let n2 = called(&app, &quake).await;
    eventually(T, "earthquake call-outs sent", || async {
        gws.callouts().len() == n1 + n2
    })
    .await;
    // A number called by both incidents.
    let sent = gws.callouts();
    let mut by_number: HashMap<String, Vec<Sms>> = HashMap::new();
    for m in &sent {
        by_number.entry(m.to.clone()).or_default().push(m.clone());
    }
    let (phone, two) = by_number
        .iter()
        .find(|(_, v)| v.len() == 2)
        .expect("someone is called twice");
    let (c1, c2) = (code_of(&two[0].text), code_of(&two[1].text));
    assert_ne!(c1, c2, "one number's open callouts have different codes");
    let (_, b) = reply(&app, "gw1", phone, "Y", "w-1", true).await;
    assert_eq!(b["messages"][0]["result"], "which");
    eventually(T, "asked which", || async {
        gws.log().iter().any(|m| {
            // The number's volunteer may read Chinese or English.
            &m.to == phone
                && (m.text.contains("多条") || m.text.contains("several"))
                && m.text.contains(&c1)
                && m.text.contains(&c2)
        })
    })
    .await;
    assert_eq!(
        callout_of(&app, &flood, &tail(phone)).await["state"],
        "notified"
    );
    assert_eq!(
        callout_of(&app, &quake, &tail(phone)).await["state"],
        "notified"
    );
    // With the code, it answers that one only.
    let (_, b) = reply(&app, "gw1", phone, &format!("{c2}是"), "w-2", true).await;
    assert_eq!(b["messages"][0]["result"], "answered");
    let (f, q) = (
        callout_of(&app, &flood, &tail(phone)).await["state"].clone(),
        callout_of(&app, &quake, &tail(phone)).await["state"].clone(),
    );
    let states = [f.as_str().unwrap(), q.as_str().unwrap()];
    assert!(
        states.contains(&"accepted") && states.contains(&"notified"),
        "{states:?}"
    );

    // Eight days on, a new incident calls the number again under a new code; a late reply with
    // the first code (expired) touches nothing.
    for a in [&flood, &quake] {
        app.json(
            "POST",
            &format!("/v1/incidents/{a}/stand-down"),
            "demo-township-commander",
            json!({}),
        )
        .await;
    }
    clock.advance(8 * 24 * 3600 * 1000);
    let fire = raise(&app, "flood").await;
    eventually(T, "the new call-out sent to the number", || async {
        gws.callouts().iter().filter(|m| &m.to == phone).count() == 3
    })
    .await;
    let newest = gws
        .callouts()
        .into_iter()
        .rfind(|m| &m.to == phone)
        .unwrap();
    let c3 = code_of(&newest.text);
    assert!(c3 != c1 && c3 != c2, "codes are not reused: {c1} {c2} {c3}");
    let (_, b) = reply(&app, "gw1", phone, &format!("{c1}Y"), "w-3", true).await;
    assert_eq!(b["messages"][0]["result"], "unknown_code");
    assert_eq!(
        callout_of(&app, &fire, &tail(phone)).await["state"],
        "notified"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_second_outage_ends_with_every_message_sent_once() {
    let (_r, gws, app, clock) = start(&["gw1"]).await;
    gws.set("gw1", Mode::Down);
    let id = raise(&app, "flood").await;
    let total = called(&app, &id).await;
    eventually(T, "first attempts refused", || async {
        gws.log().len() >= total
    })
    .await;
    // 30 s of outage on the injected clock, a second at a time, each retry due in that second
    // made before the next (the workers drained), however slow the machine.
    for _ in 0..30 {
        clock.advance(1_000);
        app.idle().await;
    }
    gws.set("gw1", Mode::Ok);
    eventually(T, "every message sent", || async {
        clock.advance(1_000);
        tokio::time::sleep(Duration::from_millis(10)).await;
        gws.callouts().len() >= total
    })
    .await;
    app.idle().await;
    let mut per: HashMap<String, usize> = HashMap::new();
    for m in gws.callouts() {
        *per.entry(m.id).or_default() += 1;
    }
    assert_eq!(per.len(), total);
    assert!(per.values().all(|n| *n == 1), "each message accepted once");
    let refused = gws.log().iter().filter(|m| m.status == 503).count();
    assert!(
        refused >= 2 * total,
        "retried through the outage: {refused}"
    );

    // A reply while the gateway is down again: the answer is recorded at once, and its SMS
    // confirmation waits in the queue until the gateway is back, then goes exactly once.
    gws.set("gw1", Mode::Down);
    let m = gws
        .callouts()
        .into_iter()
        .find(|m| m.text.starts_with("【"))
        .unwrap();
    let (_, b) = reply(
        &app,
        "gw1",
        &m.to,
        &format!("{}Y", code_of(&m.text)),
        "o-1",
        true,
    )
    .await;
    assert_eq!(b["messages"][0]["result"], "answered");
    assert_eq!(
        callout_of(&app, &id, &tail(&m.to)).await["state"],
        "accepted"
    );
    let confirmations = |status: u16| {
        gws.log()
            .iter()
            .filter(|x| x.to == m.to && x.id.starts_with("msg_note_") && x.status == status)
            .count()
    };
    eventually(T, "the confirmation refused", || async {
        confirmations(503) >= 1
    })
    .await;
    gws.set("gw1", Mode::Ok);
    eventually(
        T,
        "the confirmation sent once the gateway is back",
        || async {
            clock.advance(2_000);
            tokio::time::sleep(Duration::from_millis(10)).await;
            confirmations(200) == 1
        },
    )
    .await;
    for _ in 0..20 {
        clock.advance(5_000);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(confirmations(200), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_honoured_and_a_dead_gateway_fails_over() {
    let (_r, gws, app, clock) = start(&["gw1", "gw2"]).await;
    // gw1 throttles each message once with Retry-After: 20.
    gws.set("gw1", Mode::ThrottleOnce);
    let id = raise(&app, "flood").await;
    let total = called(&app, &id).await;
    eventually(T, "each message throttled once", || async {
        gws.log().iter().filter(|m| m.status == 429).count() == total
    })
    .await;
    // 15 s later (more than the 2 s backoff, less than Retry-After) nothing is retried:
    // checked with the workers drained after each second, so a retry due then would be seen.
    for _ in 0..15 {
        clock.advance(1_000);
        app.idle().await;
    }
    assert_eq!(gws.callouts().len(), 0, "Retry-After honoured");
    eventually(T, "sent after the wait", || async {
        clock.advance(1_000);
        tokio::time::sleep(Duration::from_millis(10)).await;
        gws.callouts().len() == total
    })
    .await;
    assert!(gws.callouts().iter().all(|m| m.gateway == "gw1"));

    // gw1 now down for good: after its four attempts the messages go through gw2.
    gws.set("gw1", Mode::Down);
    let quake = raise(&app, "earthquake").await;
    let n2 = called(&app, &quake).await;
    // The messages of the quake's first n2 callouts only: the clock runs on while they fail
    // over, so the flood and the quake itself may widen to their next step meanwhile and call
    // more volunteers through gw1.
    let quake_msgs = format!("msg_{}_", quake.replace('-', ""));
    let first_step = |id: &str| {
        id.strip_prefix(&quake_msgs)
            .and_then(|rest| rest.split('_').next())
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| (1..=n2).contains(&n))
    };
    eventually(T, "failed over to gw2", || async {
        clock.advance(5_000);
        tokio::time::sleep(Duration::from_millis(10)).await;
        gws.callouts()
            .iter()
            .filter(|m| m.gateway == "gw2" && first_step(&m.id))
            .count()
            == n2
    })
    .await;
    let c = callout_of(
        &app,
        &quake,
        &tail(
            &gws.callouts()
                .iter()
                .find(|m| m.gateway == "gw2")
                .unwrap()
                .to,
        ),
    )
    .await;
    assert_eq!(c["channel"], "sms:gw2");
    let tries_gw1 = gws
        .log()
        .iter()
        .filter(|m| m.gateway == "gw1" && m.status == 503 && first_step(&m.id))
        .count();
    assert_eq!(tries_gw1, 4 * n2, "four attempts on gw1 each");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_receipts_move_forward_only_and_never_touch_the_answer() {
    let (_r, gws, app, _clock) = start(&["gw1"]).await;
    let id = raise(&app, "flood").await;
    let total = called(&app, &id).await;
    eventually(T, "every call-out sent", || async {
        gws.callouts().len() == total
    })
    .await;
    // The gateway answered `gw1-N` for the N-th message it logged.
    let log = gws.log();
    let (i, m) = log
        .iter()
        .enumerate()
        .find(|(_, m)| m.status == 200 && m.id.ends_with("_callout") && m.text.starts_with("【"))
        .unwrap();
    let gw_id = format!("gw1-{i}");
    let who = tail(&m.to);
    assert!(callout_of(&app, &id, &who).await["sms_delivery"].is_null());
    let (s, b) = receipt(&app, "gw1", &gw_id, "sent").await;
    assert_eq!((s, b["applied"].as_u64()), (200, Some(1)));
    assert_eq!(callout_of(&app, &id, &who).await["sms_delivery"], "sent");
    // The volunteer accepts before the "delivered" receipt comes in.
    let (_, b) = reply(
        &app,
        "gw1",
        &m.to,
        &format!("{}Y", code_of(&m.text)),
        "r-1",
        true,
    )
    .await;
    assert_eq!(b["messages"][0]["result"], "answered");
    let (_, b) = receipt(&app, "gw1", &gw_id, "delivered").await;
    assert_eq!(b["applied"], 1);
    let c = callout_of(&app, &id, &who).await;
    assert_eq!(
        (c["sms_delivery"].as_str(), c["state"].as_str()),
        (Some("delivered"), Some("accepted"))
    );
    // A late "sent" or "undelivered" does not move it back; an unknown id changes nothing.
    for late in ["sent", "undelivered"] {
        let (_, b) = receipt(&app, "gw1", &gw_id, late).await;
        assert_eq!(b["applied"], 0, "{late}");
    }
    let (_, b) = receipt(&app, "gw1", "gw1-999999", "delivered").await;
    assert_eq!(b["applied"], 0);
    let c = callout_of(&app, &id, &who).await;
    assert_eq!(
        (c["sms_delivery"].as_str(), c["state"].as_str()),
        (Some("delivered"), Some("accepted"))
    );
    // A forged receipt is refused; an unknown gateway is 404.
    let r = app
        .http
        .post(app.url("/v1/sms/status/gw1"))
        .json(&json!({"id": gw_id, "status": "undelivered"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (s, _) = receipt(&app, "nosuch", &gw_id, "sent").await;
    assert_eq!(s, 404);
    app.stop().await;
}

/// Stand-ins for a Twilio-compatible and an Aliyun-style gateway: each checks the request the
/// way the real one would (basic auth; HMAC-SHA1 request signature) and logs what it got.
#[derive(Default)]
struct Vendors {
    /// (gateway, to, text or template parameters, auth ok)
    log: Vec<(String, String, String, bool)>,
    twilio_down: bool,
}

async fn twilio_send(
    State(st): State<Arc<Mutex<Vendors>>>,
    Path(sid): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> impl IntoResponse {
    use base64::Engine;
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{sid}:tw-token"))
    );
    let auth_ok = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&want);
    let f: HashMap<String, String> = muster::notify::sms::form_decode(&body)
        .into_iter()
        .collect();
    let mut s = st.lock().unwrap();
    s.log.push((
        "twilio".into(),
        f.get("To").cloned().unwrap_or_default(),
        f.get("Body").cloned().unwrap_or_default(),
        auth_ok,
    ));
    if s.twilio_down {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({})));
    }
    let n = s.log.len();
    (StatusCode::CREATED, Json(json!({"sid": format!("SM{n}")})))
}

async fn aliyun_send(
    State(st): State<Arc<Mutex<Vendors>>>,
    body: axum::body::Bytes,
) -> impl IntoResponse {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let f = muster::notify::sms::form_decode(&body);
    let get = |k: &str| {
        f.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut rest: Vec<(&str, &str)> = f
        .iter()
        .filter(|(k, _)| k != "Signature")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    rest.sort();
    let to_sign = format!(
        "POST&%2F&{}",
        muster::notify::sms::percent_encode(&muster::notify::sms::form_encode(&rest))
    );
    let mut mac = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(b"ali-secret&").unwrap();
    mac.update(to_sign.as_bytes());
    let sig_ok = get("Signature")
        == base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let mut s = st.lock().unwrap();
    s.log.push((
        "aliyun".into(),
        get("PhoneNumbers"),
        format!("{} {}", get("TemplateCode"), get("TemplateParam")),
        sig_ok && get("SignName") == "应急召集",
    ));
    let n = s.log.len();
    Json(json!({"Code": "OK", "BizId": format!("biz{n}"), "RequestId": "r"}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_and_aliyun_gateways_end_to_end() {
    let redis = TestRedis::start().await;
    let st = Arc::new(Mutex::new(Vendors::default()));
    let vendor = Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            post(twilio_send),
        )
        .route("/aliyun/", post(aliyun_send))
        .with_state(st.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, vendor).await.unwrap() });
    let seed = seed_with(false);
    let mut c = config(&redis.url(), &prefix(), &seed);
    c.sms.retry_backoff_ms = vec![1_000];
    let gw = |name: &str, kind: SmsGatewayKind, url: String| SmsGateway {
        name: name.into(),
        kind,
        url,
        from: "+15005550006".into(),
        key_id: String::new(),
        secret: String::new(),
        callback_secret: String::new(),
        sign_name: String::new(),
        templates: BTreeMap::new(),
        rate_per_sec: 1000.0,
        concurrency: 8,
        timeout_ms: 2000,
    };
    let mut tw = gw("twilio", SmsGatewayKind::Twilio, base.clone());
    tw.key_id = "AC42".into();
    tw.secret = "tw-token".into();
    let mut ali = gw("aliyun", SmsGatewayKind::Aliyun, format!("{base}/aliyun/"));
    ali.key_id = "ali-id".into();
    ali.secret = "ali-secret".into();
    ali.callback_secret = GW_SECRET.into();
    ali.sign_name = "应急召集".into();
    ali.templates = [("callout".to_string(), "SMS_100".to_string())].into();
    c.sms.gateway = vec![tw, ali];
    assert!(c.problems().is_empty(), "{:?}", c.problems());
    let clock = ManualClock::new();
    let app = TestApp::start(c, clock.clone()).await;

    // Twilio first: every call-out goes out with basic auth, carrying its code.
    let id = raise(&app, "flood").await;
    let total = called(&app, &id).await;
    let sent = |gw: &str| -> Vec<(String, String, String, bool)> {
        st.lock()
            .unwrap()
            .log
            .iter()
            .filter(|m| m.0 == gw)
            .cloned()
            .collect()
    };
    eventually(T, "call-outs through Twilio", || async {
        sent("twilio").len() == total
    })
    .await;
    assert!(
        sent("twilio").iter().all(|m| m.3),
        "basic auth on every send"
    );
    let (_, to, text, _) = sent("twilio")
        .into_iter()
        .find(|m| m.2.starts_with("【"))
        .unwrap();
    // A Twilio inbound callback (form, X-Twilio-Signature over the full public URL it was
    // configured with, query string included).
    let url = app.url("/v1/sms/inbound/twilio?source=twilio&v=2");
    let fields = [
        ("From", to.as_str()),
        ("Body", &format!("{}Y", code_of(&text))),
        ("MessageSid", "SMin1"),
    ];
    let body = muster::notify::sms::form_encode(&fields);
    let owned: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sig = muster::notify::sms::twilio_signature("tw-token", &url, &owned);
    let post_form = |sig: String, body: String| {
        app.http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", sig)
            .body(body)
            .send()
    };
    let r = post_form("forged".into(), body.clone()).await.unwrap();
    assert_eq!(r.status(), 401);
    let problem: Value = r.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("not signed by gateway `twilio`"),
        "{detail}"
    );
    assert!(!detail.contains("Bearer"), "{detail}");
    // Signed over the URL without its query string: refused too.
    let bare = app.url("/v1/sms/inbound/twilio");
    let wrong = muster::notify::sms::twilio_signature("tw-token", &bare, &owned);
    let r = post_form(wrong, body.clone()).await.unwrap();
    assert_eq!(r.status(), 401);
    let r = post_form(sig, body).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/xml; charset=utf-8");
    assert!(
        r.text().await.unwrap().ends_with("<Response/>"),
        "TwiML, as Twilio expects"
    );
    assert_eq!(callout_of(&app, &id, &tail(&to)).await["state"], "accepted");
    // A Twilio status callback for that message.
    let n = st
        .lock()
        .unwrap()
        .log
        .iter()
        .position(|m| m.0 == "twilio" && m.1 == to)
        .unwrap()
        + 1;
    let surl = app.url("/v1/sms/status/twilio");
    let fields = [
        ("MessageSid", format!("SM{n}")),
        ("MessageStatus", "delivered".to_string()),
    ];
    let owned: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let r = app
        .http
        .post(&surl)
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "x-twilio-signature",
            muster::notify::sms::twilio_signature("tw-token", &surl, &owned),
        )
        .body(muster::notify::sms::form_encode(&[
            ("MessageSid", &fields[0].1),
            ("MessageStatus", &fields[1].1),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        callout_of(&app, &id, &tail(&to)).await["sms_delivery"],
        "delivered"
    );

    // Twilio down: after its two attempts each call-out goes through Aliyun, signed, as a
    // template with its parameters.
    st.lock().unwrap().twilio_down = true;
    let quake = raise(&app, "earthquake").await;
    let n2 = called(&app, &quake).await;
    eventually(T, "failed over to Aliyun", || async {
        clock.advance(1_500);
        tokio::time::sleep(Duration::from_millis(10)).await;
        sent("aliyun").len() == n2
    })
    .await;
    let ali_sent = sent("aliyun");
    assert!(
        ali_sent.iter().all(|m| m.3),
        "signed with the AccessKey secret, sign name set"
    );
    assert!(
        ali_sent
            .iter()
            .all(|m| m.1.starts_with("13") && !m.1.starts_with('+')),
        "Chinese numbers without +86"
    );
    let (_, to2, params, _) = ali_sent[0].clone();
    assert!(params.starts_with("SMS_100 {"), "{params}");
    let p: Value = serde_json::from_str(params.trim_start_matches("SMS_100 ")).unwrap();
    let code = p["code"].as_str().unwrap().to_string();
    // Variables in the volunteer's words, bounded, never empty.
    for m in &ali_sent {
        let v: Value = serde_json::from_str(m.2.split_once(' ').unwrap().1).unwrap();
        for (k, x) in v.as_object().unwrap() {
            let x = x.as_str().unwrap();
            assert!(!x.is_empty() && x.chars().count() <= 35, "{k}: {x:?}");
        }
        assert!(
            ["地震", "Earthquake"].contains(&v["kind"].as_str().unwrap()),
            "{v}"
        );
        let level = v["level"].as_str().unwrap();
        assert!(level.contains('Ⅳ') || level.contains("IV"), "{v}");
        assert!(!v["team_kind"].as_str().unwrap().contains('_'), "{v}");
    }
    // An Aliyun push (JSON array, number without +86) authenticated the way Aliyun can: its
    // secret in the callback URL's path, no signature headers. Answered as Aliyun expects.
    let body = serde_json::to_vec(
        &json!([{"phone_number": to2, "content": format!("{code} 是"), "sequence_id": 77,
                 "send_time": "2026-11-29 10:00:00", "dest_code": "1234", "sign_name": "应急召集"}]),
    )
    .unwrap();
    let path_secret = GW_SECRET;
    let post_push = |path: String, body: Vec<u8>| {
        app.http
            .post(app.url(&path))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = post_push("/v1/sms/inbound/aliyun/not-the-secret".into(), body.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = post_push("/v1/sms/inbound/aliyun".into(), body.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "unsigned, no path secret");
    let r = post_push(format!("/v1/sms/inbound/aliyun/{path_secret}"), body)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["code"].as_i64(), v["msg"].as_str()),
        (Some(0), Some("成功")),
        "{v}"
    );
    assert_eq!(v["messages"][0]["result"], "answered", "{v}");
    // Its delivery report (SmsReport) the same way.
    let biz = st
        .lock()
        .unwrap()
        .log
        .iter()
        .position(|m| m.0 == "aliyun" && m.1 == to2)
        .unwrap()
        + 1;
    let report = serde_json::to_vec(&json!([{"phone_number": to2, "success": true,
        "err_code": "DELIVERED", "err_msg": "用户接收成功", "biz_id": format!("biz{biz}"),
        "send_time": "2026-11-29 10:00:00", "report_time": "2026-11-29 10:00:05", "sms_size": "1"}]))
    .unwrap();
    let r = post_push(format!("/v1/sms/status/aliyun/{path_secret}"), report)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 0);
    let c = callout_of(&app, &quake, &to2[to2.len() - 4..]).await;
    assert_eq!(
        (c["state"].as_str(), c["channel"].as_str()),
        (Some("accepted"), Some("sms:aliyun"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_keeps_failing_hands_the_call_out_to_sms() {
    // Every webhook points at a port nobody listens on.
    let (_r, gws, app, clock) = start_with(&["gw1"], true).await;
    let id = raise(&app, "flood").await;
    let total = called(&app, &id).await;
    // Four webhook attempts (1 s apart on the manual clock), then the SMS gateway.
    eventually(T, "every call-out handed to SMS", || async {
        clock.advance(1_300);
        tokio::time::sleep(Duration::from_millis(10)).await;
        gws.callouts().len() == total
    })
    .await;
    let m = &gws.callouts()[0];
    let c = callout_of(&app, &id, &tail(&m.to)).await;
    assert_eq!(c["channel"], "sms:gw1");
    assert_eq!(c["state"], "notified");
    // The recorder is global to this test process: count this test's own label only.
    let failovers = metric(
        &app.http,
        &app.url(""),
        "muster_delivery_failovers_total",
        &["to=\"sms:gw1\""],
    )
    .await;
    assert_eq!(failovers as usize, total, "one failover per call-out");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_down_for_good_leaves_sms_only_callouts_failed_and_says_why() {
    let (_r, gws, app, clock) = start(&["gw1"]).await;
    gws.set("gw1", Mode::Down);
    let id = raise(&app, "flood").await;
    let total = called(&app, &id).await;
    // Four attempts (2 s, 10 s and 30 s apart on the manual clock), then nothing is left.
    eventually(T, "every callout failed", || async {
        clock.advance(5_000);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let (_, page) = app
            .get(
                &format!("/v1/incidents/{id}/callouts?limit=5000"),
                Some("demo-admin"),
            )
            .await;
        page["callouts"]
            .as_array()
            .is_some_and(|cs| cs.len() == total && cs.iter().all(|c| c["state"] == "failed"))
    })
    .await;
    let (_, page) = app
        .get(
            &format!("/v1/incidents/{id}/callouts?limit=5000"),
            Some("demo-admin"),
        )
        .await;
    let err = page["callouts"][0]["delivery_error"].as_str().unwrap_or("");
    assert!(
        err.contains("503") && err.contains("after 4 attempts"),
        "{err}"
    );
    assert_eq!(gws.log().len(), 4 * total, "four attempts each, no more");
    let inc = app.incident(&id).await;
    let failed: u64 = inc["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["failed"].as_u64().unwrap())
        .sum();
    assert_eq!(failed as usize, total);
    app.stop().await;
}

/// Floods last weeks: a call-out still open after the 7-day reuse window keeps its code — a
/// reply with it still answers it, and no new call-out to the number is given it — and a
/// number with nothing open is told so in its own words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_stays_bound_while_its_callout_is_open_however_long() {
    let (_r, gws, app, clock) = start(&["gw1"]).await;
    let flood = raise(&app, "flood").await;
    let n = called(&app, &flood).await;
    eventually(T, "call-outs sent", || async { gws.callouts().len() == n }).await;
    let first = gws.callouts().remove(0);
    let (phone, c1) = (first.to.clone(), code_of(&first.text));
    clock.advance(8 * 24 * 3600 * 1000);
    let (_, b) = reply(&app, "gw1", &phone, &format!("{c1}Y"), "late-1", true).await;
    assert_eq!(b["messages"][0]["result"], "answered", "{b}");
    let state = callout_of(&app, &flood, &tail(&phone)).await["state"].clone();
    assert!(
        state == "accepted" || state == "standby",
        "the 8-day-old code answered its open call-out: {state}"
    );

    // Issuing: the number's old open code is never handed to a new callout, even when every
    // other two-digit code has been used since; codes of closed callouts past the window are
    // pruned and reused.
    let store = app.store();
    let now = muster::clock::Clock::now_ms(&clock);
    let fresh_phone = "+8613999990000";
    let open_ref = format!("{flood}.1");
    let c_open = store.sms_code(fresh_phone, &open_ref, now).await.unwrap();
    let closed_ref = "00000000-0000-4000-8000-000000000001.1";
    let c_closed = store
        .sms_code(fresh_phone, closed_ref, now + 1)
        .await
        .unwrap();
    let later = now + 8 * 24 * 3600 * 1000;
    let mut issued = Vec::new();
    for i in 0..95 {
        let cref = format!("00000000-0000-4000-8000-{:012}.1", 100 + i);
        issued.push(store.sms_code(fresh_phone, &cref, later + i).await.unwrap());
    }
    assert!(
        !issued.contains(&c_open),
        "{c_open} reused while open: {issued:?}"
    );
    assert!(
        issued.contains(&c_closed),
        "{c_closed} (closed, old) is reused: {issued:?}"
    );

    // Stood down: a bare reply finds nothing open and is told so (not "not understood").
    app.json(
        "POST",
        &format!("/v1/incidents/{flood}/stand-down"),
        "demo-township-commander",
        json!({}),
    )
    .await;
    let (_, b) = reply(&app, "gw1", &phone, "Y", "late-2", true).await;
    assert_eq!(b["messages"][0]["result"], "nothing_open", "{b}");
    eventually(T, "told nothing is open", || async {
        gws.log().iter().any(|m| {
            m.to == phone
                && (m.text.contains("没有待回复") || m.text.contains("no call-out waiting"))
        })
    })
    .await;
    app.stop().await;
}

/// An `undelivered` receipt hands the call-out to the next channel, as a failed send does: the
/// second gateway gets the same call-out (same reply code) once, however often the receipt
/// comes; a delivered or answered call-out is not handed on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undelivered_receipt_hands_the_call_out_to_the_next_channel() {
    let (_r, gws, app, clock) = start(&["gw1", "gw2"]).await;
    let id = raise(&app, "flood").await;
    let total = called(&app, &id).await;
    eventually(T, "every call-out sent", || async {
        gws.callouts().len() == total
    })
    .await;
    let log = gws.log();
    let sent: Vec<(usize, &Sms)> = log
        .iter()
        .enumerate()
        .filter(|(_, m)| m.gateway == "gw1" && m.status == 200 && m.id.ends_with("_callout"))
        .collect();
    assert!(sent.len() >= 3, "{}", sent.len());
    let (lost_i, lost) = sent[0];
    let (ok_i, ok) = sent[1];
    let (answered_i, answered) = sent[2];
    let (_, b) = receipt(&app, "gw1", &format!("gw1-{ok_i}"), "delivered").await;
    assert_eq!(b["applied"], 1);
    let (_, b) = reply(
        &app,
        "gw1",
        &answered.to,
        &format!("{}N", code_of(&answered.text)),
        "r-u",
        true,
    )
    .await;
    assert_eq!(b["messages"][0]["result"], "answered");
    for (i, _) in [(lost_i, lost), (ok_i, ok), (answered_i, answered)] {
        for _ in 0..2 {
            receipt(&app, "gw1", &format!("gw1-{i}"), "undelivered").await;
        }
    }
    clock.advance(1_000);
    app.idle().await;
    let again: Vec<Sms> = gws
        .log()
        .into_iter()
        .filter(|m| m.gateway == "gw2" && m.status == 200)
        .collect();
    assert_eq!(
        again.len(),
        1,
        "only the undelivered, unanswered one, once: {again:?}"
    );
    assert_eq!(
        code_of(&again[0].text),
        code_of(&lost.text),
        "the same reply code"
    );
    let c = callout_of(&app, &id, &tail(&lost.to)).await;
    assert_eq!(c["channel"], "sms:gw2", "{c}");
    assert_eq!(c["state"], "notified", "{c}");
    // The volunteer answers the call-out that reached them.
    let (_, b) = reply(
        &app,
        "gw2",
        &lost.to,
        &format!("{}Y", code_of(&again[0].text)),
        "r-v",
        true,
    )
    .await;
    assert_eq!(b["messages"][0]["result"], "answered", "{b}");
    app.stop().await;
}
