//! CAP 1.2 alerts in, through the real HTTP API: the four examples of the specification's
//! appendix (adapted copies with GB/T 2260 geocodes of the demo city, in `tests/cap/`), an
//! Exercise → drill → Update → Cancel sequence, proposals when `cap.auto_raise` is off, and
//! every malformed case, after which nothing was raised.

mod common;

use common::*;
use muster::clock::ManualClock;
use muster::config::{CapSender, Config};
use serde_json::{Value, json};

const SENDER_SECRET: &str = "whsec_Y2FwLXNlbmRlci10ZXN0LXNlY3JldA==";

fn example(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/cap/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The test seed plus two plans a deployment might map CAP events to.
fn cap_config(redis: &TestRedis, rx: &Receiver) -> Config {
    let seed = seed_dir(&rx.base(), 0);
    std::fs::write(
        seed.join("plans/missing-person.toml"),
        "name = \"走失人员搜寻\"\nkinds = [\"missing_person\"]\nlevels = [1, 2, 3, 4]\n\n[[requirement]]\nid = \"search\"\nteam_kind = \"rescue\"\nneeded = 2\n",
    )
    .unwrap();
    std::fs::write(
        seed.join("plans/civil-security.toml"),
        "name = \"社会安全\"\nkinds = [\"civil_security\"]\nlevels = [1, 2, 3, 4]\n\n[[requirement]]\nid = \"security\"\nteam_kind = \"public_security\"\nneeded = 2\n",
    )
    .unwrap();
    let mut c = config(&redis.url(), &prefix(), &seed);
    for (event, kind) in [
        ("Child Abduction", "missing_person"),
        ("Security", "civil_security"),
        ("SEVERE THUNDERSTORM", "flood"),
    ] {
        c.cap.kinds.insert(event.into(), kind.into());
    }
    c.cap.sender = vec![CapSender {
        name: "ews".into(),
        secret: SENDER_SECRET.into(),
        scope: "990101".into(),
    }];
    c
}

/// Posts `xml` with a token (or, with `None`, signed as the configured sender `ews`).
async fn post_cap(app: &TestApp, token: Option<&str>, xml: &str) -> (u16, Value) {
    let mut req = app
        .http
        .post(app.url("/v1/cap"))
        .header("content-type", "application/cap+xml")
        .body(xml.to_string());
    match token {
        Some(t) => req = req.bearer_auth(t),
        None => {
            let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
            let ts = muster::clock::wall_ms() / 1000;
            let key = muster::notify::webhook::decode_secret(SENDER_SECRET);
            let sig = muster::notify::webhook::sign(&key, &id, ts, xml.as_bytes());
            req = req
                .header("webhook-id", id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", sig);
        }
    }
    let r = req.send().await.unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn incident_count(app: &TestApp) -> usize {
    let (_, l) = app
        .get("/v1/incidents?status=all", Some("demo-admin"))
        .await;
    l["incidents"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_four_examples_of_the_specification() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let app = TestApp::start(cap_config(&redis, &rx), ManualClock::new()).await;

    // A.1 is for the whole city: the county's sender may not raise there.
    let a1 = example("a1-hsas.xml");
    let (s, b) = post_cap(&app, None, &a1).await;
    assert_eq!(s, 403, "{b}");
    let (s, inc) = post_cap(&app, Some("demo-city-commander"), &a1).await;
    assert_eq!(s, 201, "{inc}");
    assert_eq!(
        inc["kind"], "civil_security",
        "category Security through [cap.kinds]"
    );
    assert_eq!(inc["region"], "990100", "areaDesc 示范市 names the city");
    assert_eq!(inc["level"], 2, "Severe");
    assert_eq!(inc["mode"], "live");
    assert_eq!(inc["title"], "Homeland Security Sets Code ORANGE");
    assert_eq!(
        inc["cap"],
        json!(["hsas@dhs.gov,43b080713727,2003-04-02T14:39:01-05:00"])
    );
    let (s, again) = post_cap(&app, Some("demo-city-commander"), &a1).await;
    assert_eq!(s, 200, "a repeat answers the same incident: {again}");
    assert_eq!(again["id"], inc["id"]);

    // A.2, signed by the configured sender: its geocode is the county.
    let (s, inc) = post_cap(&app, None, &example("a2-thunderstorm.xml")).await;
    assert_eq!(s, 201, "{inc}");
    assert_eq!(
        (&inc["kind"], &inc["region"], &inc["level"]),
        (&json!("flood"), &json!("990101"), &json!(2))
    );
    assert_eq!(inc["raised_by"], "ews");
    assert_eq!(inc["title"], "SEVERE THUNDERSTORM WARNING");

    // A.4: a township.
    let (s, inc) = post_cap(&app, None, &example("a4-amber.xml")).await;
    assert_eq!(s, 201, "{inc}");
    assert_eq!(
        (&inc["kind"], &inc["region"], &inc["level"]),
        (&json!("missing_person"), &json!("990101002"), &json!(2))
    );

    // A.3 updates an alert muster has not seen: 422, nothing changes.
    let update = example("a3-earthquake-update.xml");
    let before = incident_count(&app).await;
    let (s, b) = post_cap(&app, None, &update).await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "alert.references");
    assert_eq!(incident_count(&app).await, before);
    // Once the alert it updates is in, its Minor severity is recorded, never a downgrade.
    let (s, eq) = post_cap(&app, None, &example("a3-earthquake-alert.xml")).await;
    assert_eq!(s, 201, "{eq}");
    assert_eq!(
        (&eq["kind"], &eq["level"]),
        (&json!("earthquake"), &json!(3))
    );
    let (s, up) = post_cap(&app, None, &update).await;
    assert_eq!(s, 200, "{up}");
    assert_eq!(up["id"], eq["id"]);
    assert_eq!(up["level"], 3, "Minor (4) does not lower level 3");
    assert_eq!(
        up["cap"],
        json!([
            "trinet@caltech.edu,TRI13970876.1,2003-06-11T20:30:00-07:00",
            "trinet@caltech.edu,TRI13970876.2,2003-06-11T20:56:00-07:00"
        ])
    );
    let (_, tl) = app
        .get(
            &format!("/v1/incidents/{}/timeline", eq["id"].as_str().unwrap()),
            Some("demo-viewer"),
        )
        .await;
    let notes: Vec<&str> = tl["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "cap.received")
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert_eq!(notes.len(), 1, "{tl}");
    assert!(notes[0].contains("never a silent downgrade"), "{notes:?}");
    app.idle().await;
    app.stop().await;
}

/// An alert of the demo's flood kind for 滨江街道, in English and Chinese.
fn flood_alert(id: &str, status: &str, msg_type: &str, severity: &str, refs: &str) -> String {
    let refs = if refs.is_empty() {
        String::new()
    } else {
        format!("<references>{refs}</references>")
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{id}</identifier><sender>ews@demo.example</sender>
  <sent>2026-11-29T08:00:00+08:00</sent><status>{status}</status><msgType>{msg_type}</msgType>
  <scope>Public</scope>{refs}
  <info><language>en-US</language><category>Met</category><event>Flood</event>
    <urgency>Immediate</urgency><severity>{severity}</severity><certainty>Likely</certainty>
    <headline>River Flood Exercise</headline><area><areaDesc>Riverside</areaDesc></area></info>
  <info><language>zh-CN</language><category>Met</category><event>洪水</event>
    <urgency>Immediate</urgency><severity>{severity}</severity><certainty>Likely</certainty>
    <headline>滨江街道防汛演练</headline>
    <area><areaDesc>滨江街道</areaDesc><geocode><valueName>GB/T 2260</valueName><value>990101001</value></geocode></area></info>
</alert>"#
    )
}

fn reference(id: &str) -> String {
    format!("ews@demo.example,{id},2026-11-29T08:00:00+08:00")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exercise_is_a_drill_that_updates_and_cancels() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let app = TestApp::start(cap_config(&redis, &rx), ManualClock::new()).await;

    // Test, System and Draft are answered and never raised.
    for status in ["Test", "System", "Draft"] {
        let (s, b) = post_cap(
            &app,
            None,
            &flood_alert(&format!("T-{status}"), status, "Alert", "Severe", ""),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["outcome"], "recorded", "{b}");
    }
    assert_eq!(incident_count(&app).await, 0);

    let (s, inc) = post_cap(
        &app,
        None,
        &flood_alert("EX-1", "Exercise", "Alert", "Moderate", ""),
    )
    .await;
    assert_eq!(s, 201, "{inc}");
    assert_eq!(inc["mode"], "drill", "Exercise raises a drill");
    assert_eq!(inc["channels"], "real");
    assert_eq!(inc["level"], 3);
    assert_eq!(
        inc["title"], "滨江街道防汛演练",
        "the zh-CN info is preferred"
    );
    let id = inc["id"].as_str().unwrap().to_string();
    app.idle().await;
    let called = rx.delivered("callout");
    assert!(!called.is_empty() && called.iter().all(|r| r.body["drill"] == true));

    // Update, more severe: an upgrade to the severe plan.
    let (s, up) = post_cap(
        &app,
        None,
        &flood_alert("EX-2", "Exercise", "Update", "Severe", &reference("EX-1")),
    )
    .await;
    assert_eq!(s, 200, "{up}");
    assert_eq!((&up["id"], &up["level"]), (&json!(id), &json!(2)));
    // Update, less severe (the references name both earlier alerts): recorded, level kept.
    let refs = format!("{} {}", reference("EX-1"), reference("EX-2"));
    let (s, down) = post_cap(
        &app,
        None,
        &flood_alert("EX-3", "Exercise", "Update", "Minor", &refs),
    )
    .await;
    assert_eq!(s, 200, "{down}");
    assert_eq!(down["level"], 2);
    // A repeat of an Update changes nothing again.
    let (s, _) = post_cap(
        &app,
        None,
        &flood_alert("EX-2", "Exercise", "Update", "Severe", &reference("EX-1")),
    )
    .await;
    assert_eq!(s, 200);
    // An unknown reference.
    let (s, b) = post_cap(
        &app,
        None,
        &flood_alert("EX-9", "Exercise", "Update", "Severe", &reference("NOPE")),
    )
    .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "alert.references");
    // Cancel stands it down.
    let (s, c) = post_cap(
        &app,
        None,
        &flood_alert("EX-4", "Exercise", "Cancel", "Minor", &reference("EX-3")),
    )
    .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["status"], "stood_down");
    assert_eq!(c["cap"].as_array().unwrap().len(), 4, "{c}");
    app.idle().await;
    assert!(
        !rx.delivered("stand_down").is_empty(),
        "those who accepted are told; at least notices went out"
    );
    let (_, r) = app
        .get(&format!("/v1/incidents/{id}/report"), Some("demo-viewer"))
        .await;
    assert_eq!(r["incident"]["cap"].as_array().unwrap().len(), 4);
    assert_eq!(incident_count(&app).await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actual_alert_waits_for_a_commander_when_auto_raise_is_off() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let mut c = cap_config(&redis, &rx);
    c.cap.auto_raise = false;
    let app = TestApp::start(c, ManualClock::new()).await;

    let (s, p) = post_cap(
        &app,
        None,
        &flood_alert("ACT-1", "Actual", "Alert", "Moderate", ""),
    )
    .await;
    assert_eq!(s, 202, "{p}");
    assert_eq!(p["outcome"], "proposed");
    let pid = p["proposal"]["id"].as_str().unwrap().to_string();
    assert_eq!(p["proposal"]["status"], "pending");
    assert_eq!(incident_count(&app).await, 0, "nothing raised yet");
    let (_, l) = app.get("/v1/cap/proposals", Some("demo-viewer")).await;
    assert_eq!(l["proposals"][0]["id"], pid.as_str());
    // An exercise still raises at once.
    let (s, _) = post_cap(
        &app,
        None,
        &flood_alert("EXR-1", "Exercise", "Alert", "Moderate", ""),
    )
    .await;
    assert_eq!(s, 201);

    let confirm = format!("/v1/cap/proposals/{pid}/confirm");
    let (s, _, _) = app.post(&confirm, Some("demo-viewer"), "").await;
    assert_eq!(s, 403);
    let (s, _, _) = app
        .post(&confirm, Some("demo-township-commander"), "")
        .await;
    assert_eq!(s, 201, "a commander in scope confirms");
    let (s, _, again) = app
        .post(&confirm, Some("demo-township-commander"), "")
        .await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(
        again["id"],
        pid.as_str(),
        "the incident has the proposal's id"
    );
    assert_eq!(again["mode"], "live");
    // The alert again, and an Update of it, now find the incident.
    let (s, rep) = post_cap(
        &app,
        None,
        &flood_alert("ACT-1", "Actual", "Alert", "Moderate", ""),
    )
    .await;
    assert_eq!((s, &rep["id"]), (200, &json!(pid)));
    let (s, up) = post_cap(
        &app,
        None,
        &flood_alert("ACT-2", "Actual", "Update", "Severe", &reference("ACT-1")),
    )
    .await;
    assert_eq!((s, &up["level"]), (200, &json!(2)), "{up}");

    // Rejected, a proposal raises nothing and cannot be confirmed; a Cancel withdraws one.
    let (_, p2) = post_cap(
        &app,
        None,
        &flood_alert("ACT-3", "Actual", "Alert", "Minor", ""),
    )
    .await;
    let p2 = p2["proposal"]["id"].as_str().unwrap().to_string();
    let (s, _, r) = app
        .post(
            &format!("/v1/cap/proposals/{p2}/reject"),
            Some("demo-county-commander"),
            "",
        )
        .await;
    assert_eq!((s, &r["status"]), (200, &json!("rejected")));
    let (s, _, _) = app
        .post(
            &format!("/v1/cap/proposals/{p2}/confirm"),
            Some("demo-county-commander"),
            "",
        )
        .await;
    assert_eq!(s, 409);
    let (_, p3) = post_cap(
        &app,
        None,
        &flood_alert("ACT-4", "Actual", "Alert", "Minor", ""),
    )
    .await;
    let (s, w) = post_cap(
        &app,
        None,
        &flood_alert("ACT-5", "Actual", "Cancel", "Minor", &reference("ACT-4")),
    )
    .await;
    assert_eq!(s, 200, "{w}");
    assert_eq!(w["outcome"], "withdrawn");
    assert_eq!(w["proposal"]["id"], p3["proposal"]["id"]);
    assert_eq!(
        incident_count(&app).await,
        2,
        "the confirmed one and the exercise"
    );
    app.idle().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_alerts_are_refused_naming_the_element_and_raise_nothing() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let app = TestApp::start(cap_config(&redis, &rx), ManualClock::new()).await;
    let good = flood_alert("OK-1", "Actual", "Alert", "Moderate", "");
    let decl = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
    let xxe = good
        .replace(
            decl,
            r#"<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>"#,
        )
        .replace(
            "<headline>滨江街道防汛演练</headline>",
            "<headline>&xxe;</headline>",
        );
    let laughs = good.replace(
        decl,
        r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>"#,
    ).replace("<headline>滨江街道防汛演练</headline>", "<headline>&lol3;</headline>");
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("XXE", xxe, 400, "DOCTYPE"),
        ("billion laughs", laughs, 400, "DOCTYPE"),
        ("not XML", "{\"alert\": 1}".into(), 400, "body"),
        ("cut short", good[..good.len() / 2].to_string(), 400, "body"),
        (
            "no identifier",
            good.replace("<identifier>OK-1</identifier>", ""),
            400,
            "alert.identifier",
        ),
        (
            "no severity",
            good.replace("<severity>Moderate</severity>", ""),
            400,
            "alert.info.severity",
        ),
        (
            "no info",
            {
                let start = good.find("<info>").unwrap();
                let end = good.rfind("</info>").unwrap() + "</info>".len();
                format!("{}{}", &good[..start], &good[end..])
            },
            400,
            "alert.info",
        ),
        ("CAP 1.1", good.replace("cap:1.2", "cap:1.1"), 400, "alert"),
        (
            "unknown severity",
            good.replace("Moderate", "Unknown"),
            422,
            "alert.info.severity",
        ),
        (
            "unknown region",
            good.replace("990101001", "110101001").replace(
                "<areaDesc>滨江街道</areaDesc>",
                "<areaDesc>Atlantis</areaDesc>",
            ),
            422,
            "alert.info.area",
        ),
        (
            "unknown kind",
            good.replace("<event>洪水</event>", "<event>Volcano</event>")
                .replace("<event>Flood</event>", "<event>Volcano</event>"),
            422,
            "alert.info.event",
        ),
    ];
    for (what, xml, status, element) in cases {
        let (s, b) = post_cap(&app, Some("demo-county-commander"), &xml).await;
        assert_eq!(s, status, "{what}: {b}");
        assert_eq!(b["errors"][0]["field"], element, "{what}: {b}");
        assert!(
            !b.to_string().contains("root:"),
            "{what}: no file was read: {b}"
        );
    }
    // Over 1 MiB: 413. (On a connection of its own: the server answers before reading the
    // whole body and closes that connection, which a pooled one would be reused after.)
    let big = good.replace("<headline>", &format!("<headline>{}", "洪".repeat(400_000)));
    let r = reqwest::Client::new()
        .post(app.url("/v1/cap"))
        .bearer_auth("demo-county-commander")
        .header("content-type", "application/cap+xml")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Not XML by its media type: 415.
    let r = app
        .http
        .post(app.url("/v1/cap"))
        .bearer_auth("demo-county-commander")
        .header("content-type", "application/json")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // No credentials, a bad signature, a viewer.
    let r = app
        .http
        .post(app.url("/v1/cap"))
        .header("content-type", "application/cap+xml")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .http
        .post(app.url("/v1/cap"))
        .header("content-type", "application/cap+xml")
        .header("webhook-id", "msg_1")
        .header(
            "webhook-timestamp",
            (muster::clock::wall_ms() / 1000).to_string(),
        )
        .header("webhook-signature", "v1,bm90IGEgc2lnbmF0dXJl")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (s, _) = post_cap(&app, Some("demo-viewer"), &good).await;
    assert_eq!(s, 403);
    assert_eq!(incident_count(&app).await, 0, "nothing was raised");
    // The good alert itself is taken.
    let (s, b) = post_cap(&app, Some("demo-county-commander"), &good).await;
    assert_eq!(s, 201, "{b}");
    app.idle().await;
    app.stop().await;
}
