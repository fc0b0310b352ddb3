//! Service records on the manual clock: exact hours from arrival or acceptance, a withdrawal
//! after arrival, drills counted as training; the stand-down handled twice gives the same
//! records; the CSV opens as GBK with Chinese headers; a correction is audited; an erased
//! volunteer's records stay, without the name.

mod common;

use common::*;
use muster::clock::ManualClock;
use serde_json::{Value, json};

const SEC: i64 = 1000;
const COORD: &str = "demo-county-coordinator";

fn rescuers(rx: &Receiver, id: &str) -> Vec<Received> {
    rx.delivered("callout")
        .into_iter()
        .filter(|r| r.body["incident"]["id"] == id && r.body["requirement_id"] == "rescue")
        .collect()
}

fn record<'a>(rs: &'a Value, vid: &str) -> &'a Value {
    rs["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["volunteer_id"] == vid)
        .unwrap_or_else(|| panic!("no record of {vid}: {rs}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hours_are_exact_written_once_and_exported() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let clock = ManualClock::new();
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), clock.clone()).await;
    let cmd = "demo-township-commander";
    let id = raised(
        &app,
        cmd,
        json!({"kind": "flood", "level": 4, "region": "990101001", "title": "东门内涝"}),
    )
    .await;
    app.idle().await;
    let calls = rescuers(&rx, &id);
    let (a, b, c) = (&calls[0], &calls[1], &calls[2]);
    // t = 60 s A accepts, 120 s B accepts, 180 s C accepts, 300 s C arrives, 600 s A arrives,
    // 1800 s C withdraws, 7200 s stand-down.
    let script: [(i64, &Received, &str); 6] = [
        (60, a, "accept"),
        (120, b, "accept"),
        (180, c, "accept"),
        (300, c, "arrived"),
        (600, a, "arrived"),
        (1800, c, "withdraw"),
    ];
    let mut now = 0;
    for (t, who, answer) in script {
        clock.advance((t - now) * SEC);
        now = t;
        let (s, body) = app.ack(&who.token(), answer).await;
        assert_eq!(s, 200, "{answer}: {body}");
        app.idle().await;
    }
    clock.advance((7200 - now) * SEC);
    let (s, _, _) = app
        .post(&format!("/v1/incidents/{id}/stand-down"), Some(cmd), "")
        .await;
    assert_eq!(s, 200);
    app.idle().await;

    let (s, ra) = app
        .get(
            &format!("/v1/volunteers/{}/service-records", a.volunteer),
            Some(COORD),
        )
        .await;
    assert_eq!(s, 200, "{ra}");
    let r = record(&ra, &a.volunteer);
    assert_eq!(r["hours"], 1.83, "600 s → 7200 s: 6600 s");
    assert_eq!(r["basis"], "arrival");
    assert_eq!(r["ended"], "stood_down");
    assert_eq!(r["mode"], "live");
    assert_eq!(r["team_id"], "t990101001-rescue");
    assert_eq!(r["recorded_by"], "滨江街道应急指挥中心");
    assert_eq!(ra["totals"]["live_hours"], 1.83);
    assert_eq!(ra["totals"]["training_hours"], 0.0);
    let (_, rb) = app
        .get(
            &format!("/v1/volunteers/{}/service-records", b.volunteer),
            Some(COORD),
        )
        .await;
    let r = record(&rb, &b.volunteer);
    assert_eq!(r["hours"], 1.97, "nobody checked B in: 120 s → 7200 s");
    assert_eq!(r["basis"], "acceptance");
    let (_, rc) = app
        .get(
            &format!("/v1/volunteers/{}/service-records", c.volunteer),
            Some(COORD),
        )
        .await;
    let r = record(&rc, &c.volunteer);
    assert_eq!(r["hours"], 0.42, "arrived 300 s, withdrew 1800 s");
    assert_eq!(r["ended"], "withdrawn");
    // Someone who never accepted has no record.
    let (_, rd) = app
        .get(
            &format!("/v1/volunteers/{}/service-records", calls[3].volunteer),
            Some(COORD),
        )
        .await;
    assert_eq!(rd["records"], json!([]));

    // The stand-down handled again writes nothing new.
    let (_, before) = app.get("/v1/service-records", Some(COORD)).await;
    let n = before["records"].as_array().unwrap().len();
    assert_eq!(n, 3, "{before}");
    let store = app.store();
    let iid = muster::domain::incident::IncidentId::parse(&id).unwrap();
    let last = calls.len() as u32 + 100;
    store
        .stand_down_sweep(
            &iid,
            muster::clock::Clock::now_ms(&clock) + 3_600_000,
            1,
            last,
        )
        .await
        .unwrap();
    let (_, after) = app.get("/v1/service-records", Some(COORD)).await;
    assert_eq!(
        after["records"], before["records"],
        "the same records, the same hours"
    );

    // A drill's hours are training hours.
    let drill = raised(
        &app,
        cmd,
        json!({"kind": "flood", "level": 4, "region": "990101001", "title": "夜间演练", "mode": "drill"}),
    )
    .await;
    app.idle().await;
    // A and B rest after their live deployment, and so does C, who was on site before
    // withdrawing: someone else is called.
    let dcalls = rescuers(&rx, &drill);
    assert!(!dcalls.is_empty(), "the drill calls rescuers");
    for who in [a, b, c] {
        assert!(
            dcalls.iter().all(|d| d.volunteer != who.volunteer),
            "{} rests after the live deployment",
            who.volunteer
        );
    }
    let dcall = dcalls[0].clone();
    app.ack(&dcall.token(), "accept").await;
    clock.advance(1800 * SEC);
    app.post(&format!("/v1/incidents/{drill}/stand-down"), Some(cmd), "")
        .await;
    app.idle().await;
    let (_, rt) = app
        .get(
            &format!("/v1/volunteers/{}/service-records", dcall.volunteer),
            Some(COORD),
        )
        .await;
    assert_eq!(rt["totals"]["live_hours"], 0.0, "{rt}");
    assert_eq!(rt["totals"]["training_hours"], 0.5);
    assert_eq!(record(&rt, &dcall.volunteer)["mode"], "drill");

    // Excel: GBK with Chinese headers.
    let resp = app
        .http
        .get(app.url("/v1/service-records?format=csv&encoding=gbk"))
        .bearer_auth(COORD)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("gbk")
    );
    let bytes = resp.bytes().await.unwrap();
    let (text, _, bad) = encoding_rs::GBK.decode(&bytes);
    assert!(!bad, "valid GBK");
    assert!(
        text.starts_with("记录编号,志愿者编号,志愿者姓名,服务项目"),
        "{text}"
    );
    assert!(
        text.contains("服务时长（小时）") && text.contains("1.83") && text.contains("演练培训"),
        "{text}"
    );
    let utf8 = app
        .http
        .get(app.url("/v1/service-records?format=csv"))
        .bearer_auth(COORD)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(utf8.starts_with("\u{feff}".as_bytes()), "UTF-8 with a BOM");

    // A certificate for A: its code verifies; a changed code, or a changed period, does not.
    let b2 = browser();
    let (s, _) = sign_in(&app, &b2, COORD).await;
    assert_eq!(s, 303);
    let page = b2
        .get(app.url(&format!("/volunteers/{}/certificate", a.volunteer)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("志愿服务记录证明") && page.contains("1.83"),
        "{page}"
    );
    let code = page
        .split("<strong id=\"code\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap()
        .to_string();
    let (s, v) = app.get(&format!("/verify/{code}"), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["issuer"], "东湖区应急指挥中心");
    assert_eq!(v["live_hours"], 1.83);
    let shown = v["volunteer"].as_str().unwrap();
    assert!(shown.contains('*'), "masked: {shown}");
    assert!(
        !v.to_string().contains(&a.volunteer),
        "no id, no phone: {v}"
    );
    let lower = code.to_lowercase();
    let (_, again) = app.get(&format!("/verify/{lower}"), None).await;
    assert_eq!(again["valid"], true, "as people type it");
    let mut wrong = code.clone().into_bytes();
    wrong[0] = if wrong[0] == b'A' { b'B' } else { b'A' };
    let (_, bad) = app
        .get(
            &format!("/verify/{}", String::from_utf8(wrong).unwrap()),
            None,
        )
        .await;
    assert_eq!(bad, json!({"valid": false}));
    let key = app.store().keys.certificate(&code.replace('-', ""));
    let mut conn = redis.conn().await;
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("to")
        .arg("2099-12-31")
        .query_async(&mut conn)
        .await
        .unwrap();
    let (_, forged) = app.get(&format!("/verify/{code}"), None).await;
    assert_eq!(
        forged["valid"], false,
        "a changed period no longer matches its code"
    );
    let html = b2
        .get(app.url(&format!("/verify/{lower}")))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("无法核验"), "{html}");

    // A correction with a reason, audited; then erasure keeps the record without the name.
    let rid = record(&rb, &b.volunteer)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, fixed) = app
        .json(
            "PATCH",
            &format!("/v1/service-records/{rid}"),
            COORD,
            json!({"hours": 1.5, "reason": "签到表显示 10:30 离开"}),
        )
        .await;
    assert_eq!(s, 200, "{fixed}");
    assert_eq!(fixed["hours"], 1.5);
    assert_eq!(fixed["recorded_hours"], 1.97);
    let (s, bad) = app
        .json(
            "PATCH",
            &format!("/v1/service-records/{rid}"),
            COORD,
            json!({"hours": -1, "reason": ""}),
        )
        .await;
    assert_eq!(s, 422, "{bad}");
    let (s, _) = app
        .json(
            "PATCH",
            &format!("/v1/service-records/{rid}"),
            "demo-viewer",
            json!({"hours": 1, "reason": "x"}),
        )
        .await;
    assert_eq!(s, 403);
    let (_, log) = app
        .get("/v1/audit?action=service.", Some("demo-admin"))
        .await;
    assert_eq!(log["entries"].as_array().unwrap().len(), 1, "{log}");
    let (s, _) = app
        .json(
            "DELETE",
            &format!("/v1/volunteers/{}", b.volunteer),
            COORD,
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, rb) = app
        .get(
            &format!("/v1/volunteers/{}/service-records", b.volunteer),
            Some(COORD),
        )
        .await;
    let r = record(&rb, &b.volunteer);
    assert_eq!(r["volunteer_name"], Value::Null, "anonymised");
    assert_eq!(r["hours"], 1.5, "the record and its correction stay");
    app.stop().await;
}
