//! Erasure and retention: after a volunteer is erased, and again after their incident is past
//! `retention.incident_days`, no Redis key holds their name or phone; their service record and
//! the audit entries stay, the retired incident keeps its final report, and its per-callout
//! keys are gone.

mod common;

use common::*;
use muster::clock::ManualClock;
use serde_json::json;

const NAME: &str = "欧阳留存";
const PHONE: &str = "13811112222";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erased_and_retired_nothing_personal_is_left_and_records_stay() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let clock = ManualClock::new();
    let pfx = prefix();
    let app = TestApp::start(config(&redis.url(), &pfx, &seed), clock.clone()).await;
    let coord = "demo-county-coordinator";
    let (s, v) = app
        .json(
            "POST",
            "/v1/volunteers",
            coord,
            json!({"name": NAME, "phone": format!("+86{PHONE}"), "teams": ["t990101001-rescue"],
                   "home_region": "990101001", "webhook": format!("{}/hooks/x", rx.base()),
                   "insurance_valid_until": "2030-12-31",
                   "qualifications": [{"code": "water_rescue", "valid_until": "2030-12-31"}]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let vid = v["id"].as_str().unwrap().to_string();
    let id = raised(
        &app,
        "demo-township-commander",
        json!({"kind": "flood", "level": 4, "region": "990101001", "title": "东门内涝"}),
    )
    .await;
    app.idle().await;
    let call = rx
        .delivered("callout")
        .into_iter()
        .find(|r| r.body["incident"]["id"] == id.as_str() && r.volunteer == "x")
        .expect("the new volunteer is called");
    app.ack(&call.token(), "accept").await;
    app.ack(&call.token(), "arrived").await;
    clock.advance(3_600_000);
    let (s, _, _) = app
        .post(
            &format!("/v1/incidents/{id}/stand-down"),
            Some("demo-township-commander"),
            "",
        )
        .await;
    assert_eq!(s, 200);
    app.idle().await;
    let (_, before) = app
        .get(&format!("/v1/incidents/{id}/report"), Some("demo-viewer"))
        .await;

    // The dump does find them while they are registered (so its finding nothing means it).
    let d = dump(&redis, &pfx).await;
    assert!(
        d.contains(NAME) && d.contains(PHONE),
        "before erasure the dump holds them"
    );
    let (s, _) = app
        .json("DELETE", &format!("/v1/volunteers/{vid}"), coord, json!({}))
        .await;
    assert_eq!(s, 200);
    app.idle().await;
    let d = dump(&redis, &pfx).await;
    assert!(!d.contains(NAME), "the name is gone after erasure");
    assert!(!d.contains(PHONE), "the phone is gone after erasure");

    // A year and a day later the incident is retired.
    clock.advance(366 * 86_400_000);
    let n = muster::api::report::retire_due(&app.ctx(), muster::clock::Clock::now_ms(&clock))
        .await
        .unwrap();
    assert_eq!(n, 1, "one incident past retention");
    let again = muster::api::report::retire_due(&app.ctx(), muster::clock::Clock::now_ms(&clock))
        .await
        .unwrap();
    assert_eq!(again, 0, "once");
    let inc = app.incident(&id).await;
    assert_eq!(inc["status"], "closed");
    let mut c = redis.conn().await;
    let store = app.store();
    let iid = muster::domain::incident::IncidentId::parse(&id).unwrap();
    let left: i64 = redis::cmd("EXISTS")
        .arg(store.keys.callouts(&iid))
        .arg(store.keys.requirement_callouts(&iid))
        .arg(store.keys.called(&iid))
        .arg(store.keys.events(&iid))
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(left, 0, "per-callout keys are gone");
    let (s, after) = app
        .get(&format!("/v1/incidents/{id}/report"), Some("demo-viewer"))
        .await;
    assert_eq!(s, 200, "{after}");
    assert_eq!(
        after["requirements"], before["requirements"],
        "the report stays"
    );
    let (_, recs) = app.get("/v1/service-records", Some(coord)).await;
    let mine: Vec<&serde_json::Value> = recs["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["volunteer_id"] == vid.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "the service record stays");
    assert_eq!(mine[0]["hours"], 1.0);
    assert_eq!(mine[0]["volunteer_name"], serde_json::Value::Null);
    let (_, log) = app
        .get("/v1/audit?action=incident.", Some("demo-admin"))
        .await;
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"incident.retire") && actions.contains(&"incident.raise"),
        "{actions:?}"
    );
    let d = dump(&redis, &pfx).await;
    assert!(
        !d.contains(NAME) && !d.contains(PHONE),
        "nothing personal after retention either"
    );
    app.stop().await;
}
