//! The after-action report of a drill run on the manual clock against a scripted population:
//! known answer times, a decline, an arrival; every figure of the report is checked against
//! the value the script makes, in the API's JSON and CSV and on the command centre's page.

mod common;

use common::*;
use muster::clock::ManualClock;
use serde_json::json;

const SEC: i64 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_drill_gives_exactly_the_expected_report() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let clock = ManualClock::new();
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), clock.clone()).await;
    let id = raised(
        &app,
        "demo-township-commander",
        json!({"kind": "flood", "level": 4, "region": "990101001", "title": "演练：东门内涝",
               "mode": "drill"}),
    )
    .await;
    app.idle().await;
    let rescue: Vec<Received> = rx
        .delivered("callout")
        .into_iter()
        .filter(|r| r.body["incident"]["id"] == id.as_str() && r.body["requirement_id"] == "rescue")
        .collect();
    assert!(
        rescue.len() >= 6,
        "the township's rescuers were called: {}",
        rescue.len()
    );
    // The script: 30 s in, one accepts; 45 s, one declines; 90 s, one accepts; 150 s, one
    // accepts; 200 s, the first arrives.
    let script: [(i64, usize, &str); 5] = [
        (30, 0, "accept"),
        (45, 1, "decline"),
        (90, 2, "accept"),
        (150, 3, "accept"),
        (200, 0, "arrived"),
    ];
    let mut now = 0;
    for (t, who, answer) in script {
        clock.advance((t - now) * SEC);
        now = t;
        let (s, b) = app.ack(&rescue[who].token(), answer).await;
        assert_eq!(s, 200, "{answer}: {b}");
        app.idle().await;
    }
    let (s, r) = app
        .get(&format!("/v1/incidents/{id}/report"), Some("demo-viewer"))
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["final"], false);
    assert_eq!(r["incident"]["mode"], "drill");
    let q = r["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["id"] == "rescue")
        .unwrap()
        .clone();
    let called = q["called"].as_u64().unwrap();
    assert_eq!(called, rescue.len() as u64);
    assert_eq!(q["reached"], called, "every webhook answered 2xx");
    assert_eq!(q["accepted"], 3);
    assert_eq!(q["arrived"], 1);
    assert_eq!(q["first_accept_s"], 30.0);
    // Called at 0 s; accepted after 30, 90, 150 s.
    assert_eq!(q["median_accept_s"], 90.0);
    assert_eq!(q["p90_accept_s"], 150.0);
    assert_eq!(q["fill_s"], serde_json::Value::Null, "6 needed, 3 accepted");
    assert_eq!(q["steps"][0]["step"], 0);
    assert_eq!(q["steps"][0]["at_s"], 0.0);
    let rates = &r["rates"];
    let all = rates["called"].as_f64().unwrap();
    assert_eq!(rates["decline"], 1.0 / all);
    assert_eq!(rates["failure"], 0.0);
    // Viewers read the non-responders masked.
    let names: Vec<String> = r["teams"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["non_responders"].as_array().unwrap().clone())
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    assert!(
        !names.is_empty() && names.iter().all(|n| n.contains('*')),
        "{names:?}"
    );

    // Stood down, the report is final and its figures stay.
    let (s, _, _) = app
        .post(
            &format!("/v1/incidents/{id}/stand-down"),
            Some("demo-township-commander"),
            "",
        )
        .await;
    assert_eq!(s, 200);
    app.idle().await;
    let (_, after) = app
        .get(&format!("/v1/incidents/{id}/report"), Some("demo-viewer"))
        .await;
    assert_eq!(after["final"], true);
    assert_eq!(
        after["requirements"], r["requirements"],
        "the same figures, final"
    );

    // One row per callout as CSV; names in full for a coordinator.
    let resp = app
        .http
        .get(app.url(&format!("/v1/incidents/{id}/report?format=csv")))
        .bearer_auth("demo-county-coordinator")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = resp.text().await.unwrap();
    assert_eq!(
        text.lines().count() as f64,
        all + 1.0,
        "a header and a row per callout"
    );
    assert!(!text.contains('*'), "a coordinator reads names whole");
    let (s, b) = app
        .get(
            &format!("/v1/incidents/{id}/report?format=pdf"),
            Some("demo-viewer"),
        )
        .await;
    assert_eq!(s, 422, "{b}");

    // The command centre's printable page shows the same figures.
    let browser = browser();
    let (s, _) = sign_in(&app, &browser, "demo-township-commander").await;
    assert_eq!(s, 303);
    let page = browser
        .get(app.url(&format!("/incidents/{id}/report")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("演练总结报告"), "{html}");
    for figure in ["0:30", "1:30", "2:30"] {
        assert!(
            html.contains(figure),
            "first accept, median, p90: {figure} in {html}"
        );
    }
    let csv = browser
        .get(app.url(&format!("/incidents/{id}/report.csv")))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.text().await.unwrap().lines().count() as f64, all + 1.0);
}

/// Runs one drill of the flood plan in township 990101001 on the manual clock: the first
/// `accepts.len()` rescuers called accept after the given seconds, then it is stood down at
/// 300 s. Answers the incident id.
async fn scripted_drill(
    app: &TestApp,
    rx: &Receiver,
    clock: &ManualClock,
    title: &str,
    accepts: &[i64],
) -> String {
    let (s, d) = app
        .json(
            "POST",
            "/v1/drills",
            "demo-county-trainer",
            json!({"kind": "flood", "level": 4, "region": "990101001", "title": title, "channels": "real"}),
        )
        .await;
    assert_eq!(s, 201, "{d}");
    let id = d["incident_id"].as_str().unwrap().to_string();
    app.idle().await;
    let rescue: Vec<Received> = rx
        .delivered("callout")
        .into_iter()
        .filter(|r| r.body["incident"]["id"] == id.as_str() && r.body["requirement_id"] == "rescue")
        .collect();
    let mut now = 0;
    for (who, t) in accepts.iter().enumerate() {
        clock.advance((t - now) * SEC);
        now = *t;
        let (s, b) = app.ack(&rescue[who].token(), "accept").await;
        assert_eq!(s, 200, "{b}");
        app.idle().await;
    }
    clock.advance((300 - now) * SEC);
    let (s, _, _) = app
        .post(
            &format!("/v1/incidents/{id}/stand-down"),
            Some("demo-county-trainer"),
            "",
        )
        .await;
    assert_eq!(s, 200);
    app.idle().await;
    clock.advance(3_600 * SEC);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_drill_reports_its_trend_against_the_first() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let clock = ManualClock::new();
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), clock.clone()).await;
    // A raise is not a trend: a live incident of the same plan is left out.
    let live = raised(
        &app,
        "demo-township-commander",
        json!({"kind": "flood", "level": 4, "region": "990101001", "title": "真实内涝"}),
    )
    .await;
    let (s, _, _) = app
        .post(
            &format!("/v1/incidents/{live}/stand-down"),
            Some("demo-township-commander"),
            "",
        )
        .await;
    assert_eq!(s, 200);
    app.idle().await;
    let first = scripted_drill(&app, &rx, &clock, "第一次演练", &[60, 120, 240]).await;
    let second = scripted_drill(&app, &rx, &clock, "第二次演练", &[20, 40, 100]).await;

    let (s, r1) = app
        .get(
            &format!("/v1/incidents/{first}/report"),
            Some("demo-county-trainer"),
        )
        .await;
    assert_eq!(s, 200, "{r1}");
    assert_eq!(
        r1["trend"],
        json!([]),
        "the first drill has nothing to compare with"
    );
    let (_, r2) = app
        .get(
            &format!("/v1/incidents/{second}/report"),
            Some("demo-county-trainer"),
        )
        .await;
    let trend = r2["trend"].as_array().unwrap();
    assert_eq!(trend.len(), 1, "{}", r2["trend"]);
    assert_eq!(trend[0]["incident_id"], first.as_str());
    assert_eq!(trend[0]["title"], "第一次演练");
    assert_eq!(
        trend[0]["summary"], r1["summary"],
        "the first drill's own figures"
    );
    let (was, now) = (&r1["summary"], &r2["summary"]);
    assert_eq!(was["first_accept_s"], 60.0);
    assert_eq!(was["median_accept_s"], 120.0);
    assert_eq!(was["p90_accept_s"], 240.0);
    assert_eq!(now["first_accept_s"], 20.0);
    assert_eq!(now["median_accept_s"], 40.0);
    assert_eq!(now["p90_accept_s"], 100.0);
    assert_eq!(now["accepted"], 3);
    assert_eq!(was["accepted"], 3);
    assert_eq!(
        now["called"], was["called"],
        "the same township, the same people called"
    );

    // The printable page shows the trend.
    let browser = browser();
    sign_in(&app, &browser, "demo-county-trainer").await;
    let html = browser
        .get(app.url(&format!("/incidents/{second}/report")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("第一次演练"), "{html}");
    assert!(
        html.contains("0:20") && html.contains("1:00"),
        "both first accepts: {html}"
    );
}
