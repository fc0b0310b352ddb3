//! Scheduled drills: a drill on simulated channels reaches only the simulator (its webhook and
//! SMS endpoints), never a real receiver or gateway; a drill scheduled for later fires once
//! on the injected clock however many instances run; a scheduled drill can be cancelled; a
//! trainer stands down a drill but not a live incident; bad schedules are refused.

mod common;

use axum::Router;
use axum::routing::post;
use common::*;
use muster::clock::{ManualClock, rfc3339};
use muster::config::{Config, SmsGateway};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const TRAINER: &str = "demo-county-trainer";
const MIN: i64 = 60_000;

/// A stand-in for a real SMS gateway: it counts what it is sent.
async fn real_gateway() -> (String, Arc<AtomicUsize>) {
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    let app = Router::new().route(
        "/send",
        post(move || {
            let count = count.clone();
            async move {
                let k = count.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({"id": format!("real-{k}")}))
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (base, n)
}

fn gateway(name: &str, url: String) -> SmsGateway {
    serde_json::from_value(json!({
        "name": name, "kind": "generic", "url": url, "key_id": "k",
        "secret": "whsec_cmVhbC1nYXRld2F5LXNlY3JldA==", "rate_per_sec": 1000.0,
    }))
    .unwrap()
}

/// A simulator whose volunteers never answer, so what it receives is all there is to count.
fn silent_simulator(c: &Config) -> muster::sim::Running {
    let mut sc = c.clone();
    sc.sim.accept = 0.0;
    sc.sim.decline = 0.0;
    sc.sim.seed = Some(7);
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    muster::sim::start(&sc, tokio::net::TcpListener::from_std(l).unwrap()).unwrap()
}

async fn drill(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    app.json("POST", "/v1/drills", token, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_drill_reaches_only_the_simulator() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let (gw_base, real_sms) = real_gateway().await;
    let seed = seed_dir(&rx.base(), 0);
    let mut c = config(&redis.url(), &prefix(), &seed);
    c.sms.gateway = vec![gateway("real", format!("{gw_base}/send"))];
    // The simulator listens first, so its address can be configured.
    let sim = silent_simulator(&c);
    c.drill.simulator_url = Some(format!("http://{}", sim.addr));
    let app = TestApp::start(c, ManualClock::new()).await;

    // One rescuer of the township is reachable by SMS only.
    let (s, v) = app
        .json(
            "POST",
            "/v1/volunteers",
            "demo-county-coordinator",
            json!({"name": "短信 队员", "phone": "+8613900001111", "teams": ["t990101001-rescue"],
                   "home_region": "990101001", "insurance_valid_until": "2030-12-31",
                   "qualifications": [{"code": "water_rescue", "valid_until": "2030-12-31"}]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    let (s, d) = drill(
        &app,
        TRAINER,
        json!({"kind": "flood", "level": 4, "region": "990101001", "title": "汛前演练",
               "objectives": "township rescue musters within 10 minutes"}),
    )
    .await;
    assert_eq!(s, 201, "{d}");
    assert_eq!(d["channels"], "simulated", "simulated is the default");
    assert_eq!(d["status"], "running", "due now: raised before the answer");
    let iid = d["incident_id"].as_str().unwrap().to_string();
    app.idle().await;

    let inc = app.incident(&iid).await;
    assert_eq!(inc["mode"], "drill");
    assert_eq!(inc["channels"], "simulated");
    assert_eq!(inc["drill_id"], d["id"]);
    assert_eq!(inc["raised_by"], d["created_by"], "the trainer's name");
    assert_eq!(
        inc["objectives"],
        "township rescue musters within 10 minutes"
    );
    let called: u64 = inc["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["called"].as_u64().unwrap())
        .sum();
    assert!(called > 5, "the drill called out: {called}");
    let (_, cs) = app
        .get(
            &format!("/v1/incidents/{iid}/callouts"),
            Some("demo-county-coordinator"),
        )
        .await;
    let cs = cs["callouts"].as_array().unwrap();
    let by_sms = cs.iter().filter(|c| c["channel"] == "sms:sim").count();
    let by_hook = cs.iter().filter(|c| c["channel"] == "webhook").count();
    assert_eq!(
        by_sms, 1,
        "the SMS-only rescuer, through the simulator's gateway"
    );
    assert_eq!(by_sms + by_hook, called as usize, "every callout was sent");

    // Nothing reached a real receiver or gateway; the simulator received every message.
    assert_eq!(rx.all().len(), 0, "the real webhook receiver counts zero");
    assert_eq!(
        real_sms.load(Ordering::SeqCst),
        0,
        "the real gateway counts zero"
    );
    let stats = sim.stats();
    assert_eq!(stats["received"], by_hook as u64, "{stats}");
    assert_eq!(stats["rejected"], 0, "every webhook was signed");
    assert_eq!(stats["sms"]["received"], 1, "{stats}");

    // Its report names the objectives; the trainer stands it down, and the simulator is told.
    let (s, r) = app
        .get(&format!("/v1/incidents/{iid}/report"), Some(TRAINER))
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        r["incident"]["objectives"],
        "township rescue musters within 10 minutes"
    );
    let (s, _, b) = app
        .post(
            &format!("/v1/incidents/{iid}/stand-down"),
            Some(TRAINER),
            "",
        )
        .await;
    assert_eq!(s, 200, "{b}");
    app.idle().await;
    assert_eq!(
        rx.all().len(),
        0,
        "stand-down notices went to the simulator too"
    );
    let (_, d) = app
        .get(
            &format!("/v1/drills/{}", d["id"].as_str().unwrap()),
            Some("demo-viewer"),
        )
        .await;
    assert_eq!(d["status"], "finished");
    assert_eq!(d["incident_status"], "stood_down");

    // A trainer may not stand down a live incident.
    let live = raised(
        &app,
        "demo-township-commander",
        json!({"kind": "flood", "level": 4, "region": "990101001", "title": "真实内涝"}),
    )
    .await;
    let (s, _, b) = app
        .post(
            &format!("/v1/incidents/{live}/stand-down"),
            Some(TRAINER),
            "",
        )
        .await;
    assert_eq!(s, 403, "{b}");
    sim.stop();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_drill_fires_once_across_two_instances_and_a_cancelled_one_never() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let clock = ManualClock::new();
    let c = config(&redis.url(), &prefix(), &seed);
    let a = TestApp::start(c.clone(), clock.clone()).await;
    let b = TestApp::start(c, clock.clone()).await;
    let at = rfc3339(muster::clock::Clock::now_ms(&clock) + 30 * MIN);

    // Several drills due at the same instant, so both schedulers race for them.
    let mut drills = Vec::new();
    for i in 0..6 {
        let (s, d) = drill(
            &a,
            TRAINER,
            json!({"kind": "flood", "level": 4, "region": "990101001",
                   "title": format!("夜间演练 {i}"), "at": at, "channels": "real"}),
        )
        .await;
        assert_eq!(s, 201, "{d}");
        assert_eq!(d["status"], "scheduled");
        assert_eq!(d["at"], at.as_str());
        drills.push(d);
    }
    let later = {
        let (s, d) = drill(
            &b,
            TRAINER,
            json!({"kind": "flood", "level": 4, "region": "990101002", "title": "取消的演练",
                   "at": at, "channels": "real"}),
        )
        .await;
        assert_eq!(s, 201, "{d}");
        d["id"].as_str().unwrap().to_string()
    };
    let (s, d) = b
        .json(
            "POST",
            &format!("/v1/drills/{later}/cancel"),
            TRAINER,
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["status"], "cancelled");
    assert_eq!(d["cancelled_by"], d["created_by"], "the trainer");
    let (s, _) = b
        .json(
            "POST",
            &format!("/v1/drills/{later}/cancel"),
            TRAINER,
            json!({}),
        )
        .await;
    assert_eq!(s, 409, "cancelled twice");

    // Before its time nothing fires.
    clock.advance(29 * MIN);
    a.idle().await;
    b.idle().await;
    assert!(
        rx.all().is_empty(),
        "nothing called before the drills' time"
    );
    let (_, l) = a.get("/v1/drills", Some("demo-viewer")).await;
    assert!(
        l["drills"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "scheduled" || d["status"] == "cancelled"),
        "{l}"
    );

    clock.advance(MIN);
    a.idle().await;
    b.idle().await;
    for d in &drills {
        let id = d["id"].as_str().unwrap();
        let (_, v) = b
            .get(&format!("/v1/drills/{id}"), Some("demo-viewer"))
            .await;
        assert_eq!(v["status"], "running", "{v}");
        let iid = v["incident_id"].as_str().unwrap();
        let raised = redis
            .incident_events(iid)
            .await
            .iter()
            .filter(|e| e.get("type").map(String::as_str) == Some("incident.raised"))
            .count();
        assert_eq!(raised, 1, "drill {id} raised its incident once");
        // Each volunteer called once per drill, whichever instance fired it.
        let hooks: Vec<Received> = rx
            .delivered("callout")
            .into_iter()
            .filter(|r| r.body["incident"]["id"] == iid)
            .collect();
        let mut vols: Vec<&str> = hooks.iter().map(|r| r.volunteer.as_str()).collect();
        let n = vols.len();
        vols.sort();
        vols.dedup();
        assert!(
            n > 0 && vols.len() == n,
            "{n} call-outs, {} volunteers",
            vols.len()
        );
        assert!(hooks.iter().all(|r| r.body["drill"] == true));
    }
    let (_, all) = a.get("/v1/incidents?status=all", Some("demo-viewer")).await;
    let incidents = all["incidents"].as_array().unwrap();
    assert_eq!(
        incidents.len(),
        drills.len(),
        "one incident per drill, none for the cancelled one"
    );

    // A started drill cannot be cancelled.
    let first = drills[0]["id"].as_str().unwrap();
    let (s, _) = a
        .json(
            "POST",
            &format!("/v1/drills/{first}/cancel"),
            TRAINER,
            json!({}),
        )
        .await;
    assert_eq!(s, 409);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_schedules_are_refused_and_nothing_is_kept() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let clock = ManualClock::new();
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), clock.clone()).await;
    let ok = json!({"kind": "flood", "level": 4, "region": "990101001", "title": "演练",
                    "channels": "real"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let past = rfc3339(muster::clock::Clock::now_ms(&clock) - 10 * MIN);
    for (token, body, status, field) in [
        ("demo-viewer", ok.clone(), 403, ""),
        ("demo-county-coordinator", ok.clone(), 403, ""),
        (TRAINER, with("region", json!("990102001")), 403, ""),
        (TRAINER, with("at", json!(past)), 422, "at"),
        (TRAINER, with("at", json!("tomorrow 9am")), 422, "at"),
        (TRAINER, with("kind", json!("volcano")), 422, "kind"),
        (
            TRAINER,
            with("channels", json!("carrier-pigeon")),
            422,
            "channels",
        ),
        // No simulator is configured here: a simulated drill would have nowhere to go.
        (
            TRAINER,
            with("channels", json!("simulated")),
            422,
            "channels",
        ),
        (
            TRAINER,
            with("objectives", json!("x".repeat(2001))),
            422,
            "objectives",
        ),
        (TRAINER, with("title", json!("")), 422, "title"),
    ] {
        let (s, b) = drill(&app, token, body.clone()).await;
        assert_eq!(s, status, "{body} → {b}");
        if !field.is_empty() {
            assert_eq!(b["errors"][0]["field"], field, "{b}");
        }
    }
    let (_, l) = app.get("/v1/drills", Some("demo-admin")).await;
    assert_eq!(l["drills"], json!([]), "nothing was scheduled");

    // The same idempotency key schedules once; a commander may schedule too.
    let keyed = with("idempotency_key", json!("drill-2026-12"));
    let (s1, d1) = drill(&app, "demo-township-commander", keyed.clone()).await;
    let (s2, d2) = drill(&app, "demo-township-commander", keyed).await;
    assert_eq!((s1, s2), (201, 200), "{d1} {d2}");
    assert_eq!(d1["id"], d2["id"]);
    app.idle().await;
    let (_, l) = app.get("/v1/drills", Some("demo-viewer")).await;
    assert_eq!(l["drills"].as_array().unwrap().len(), 1);
    let id = d1["id"].as_str().unwrap();
    let (s, _) = app
        .json(
            "POST",
            &format!("/v1/drills/{id}/cancel"),
            "demo-county-trainer",
            json!({}),
        )
        .await;
    assert_eq!(s, 409, "it is running");
    app.stop().await;
}
