//! The registry, rosters and eligibility over the real API on a real Redis: who is called,
//! who is left out and why; scope; erasure; import.

mod common;

use common::*;
use muster::clock::{Clock, ManualClock};
use serde_json::{Value, json};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);
const ADMIN: &str = "demo-admin";
const CITY: &str = "demo-city-commander";

/// A township whose only active rescue team is a fresh one, `tt-rescue`.
async fn fresh_team(app: &TestApp) {
    let (s, b) = app
        .json(
            "PATCH",
            "/v1/teams/t990103003-rescue",
            ADMIN,
            json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = app
        .json(
            "POST",
            "/v1/teams",
            ADMIN,
            json!({"id": "tt-rescue", "name": "测试救援队", "kind": "rescue", "region": "990103003"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
}

/// Registers a volunteer in `tt-rescue`; returns its id.
async fn volunteer(app: &TestApp, rx: &Receiver, label: &str, phone: &str, extra: Value) -> String {
    let mut body = json!({
        "name": format!("测试{label}"),
        "phone": phone,
        "teams": ["tt-rescue"],
        "webhook": format!("{}/hooks/{label}", rx.base()),
        "qualifications": [{"code": "water_rescue", "valid_until": "2099-12-31"}],
        "insurance_valid_until": "2099-12-31",
        "home_region": "990103003",
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (s, b) = app.json("POST", "/v1/volunteers", ADMIN, body).await;
    assert_eq!(s, 201, "{b}");
    b["id"].as_str().unwrap().to_string()
}

async fn raise(app: &TestApp, mode: &str, extra: Value) -> String {
    let mut body =
        json!({"kind": "flood", "level": 4, "region": "990103003", "title": "内涝", "mode": mode});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (s, b) = app.raise(CITY, body).await;
    assert_eq!(s, 201, "{b}");
    b["id"].as_str().unwrap().to_string()
}

/// `(called ids, excluded id → reason)` of the rescue requirement, once selection ran.
async fn candidates(app: &TestApp, id: &str) -> (Vec<String>, Vec<(String, String)>) {
    let path = format!("/v1/incidents/{id}/candidates");
    let rescue = |b: &Value| {
        b["requirements"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["requirement_id"] == "rescue").cloned())
    };
    eventually(T, "selection stored", || async {
        rescue(&app.get(&path, Some(ADMIN)).await.1).is_some()
    })
    .await;
    let r = rescue(&app.get(&path, Some(ADMIN)).await.1).unwrap();
    let called = r["called"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["volunteer_id"].as_str().unwrap().to_string())
        .collect();
    let excluded = r["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["volunteer_id"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (called, excluded)
}

fn reason(ex: &[(String, String)], v: &str) -> String {
    ex.iter()
        .find(|(x, _)| x == v)
        .map(|(_, r)| r.clone())
        .unwrap_or_else(|| "called".into())
}

/// Accepts `label`'s callout of incident `id` (by the token the receiver got).
async fn accept(app: &TestApp, rx: &Receiver, label: &str, id: &str) {
    eventually(T, "call-out delivered", || async {
        rx.delivered("callout")
            .iter()
            .any(|r| r.volunteer == label && r.body["incident"]["id"] == id)
    })
    .await;
    let r = rx
        .delivered("callout")
        .into_iter()
        .find(|r| r.volunteer == label && r.body["incident"]["id"] == id)
        .unwrap();
    let (s, b) = app.ack(&r.token(), "accept").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["state"], "accepted");
}

async fn deployed_on(app: &TestApp, vid: &str, id: &str) {
    eventually(T, "deployment recorded", || async {
        let (_, b) = app.get(&format!("/v1/volunteers/{vid}"), Some(ADMIN)).await;
        b["deployments"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == id))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_eligibility_rule_excludes_with_its_reason() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let clock = ManualClock::new();
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), clock.clone()).await;
    fresh_team(&app).await;
    let ok = volunteer(&app, &rx, "ok", "+8613911110001", json!({})).await;
    let qual = volunteer(
        &app,
        &rx,
        "qual",
        "+8613911110002",
        json!({"qualifications": [{"code": "water_rescue", "valid_until": "2020-01-01"}]}),
    )
    .await;
    let noqual = volunteer(
        &app,
        &rx,
        "noqual",
        "+8613911110003",
        json!({"qualifications": []}),
    )
    .await;
    let ins = volunteer(
        &app,
        &rx,
        "ins",
        "+8613911110004",
        json!({"insurance_valid_until": "2020-01-01"}),
    )
    .await;
    let away = volunteer(&app, &rx, "away", "+8613911110005", json!({})).await;
    let rest = volunteer(&app, &rx, "rest", "+8613911110006", json!({})).await;
    let busy = volunteer(&app, &rx, "busy", "+8613911110007", json!({})).await;
    let susp = volunteer(
        &app,
        &rx,
        "susp",
        "+8613911110008",
        json!({"status": "suspended"}),
    )
    .await;
    let until = jiff::Timestamp::from_millisecond(clock.now_ms() + 86_400_000)
        .unwrap()
        .to_string();
    let (s, b) = app
        .json(
            "POST",
            &format!("/v1/volunteers/{away}/unavailability"),
            ADMIN,
            json!({"until": until, "reason": "出差"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");

    // Incident A: the registry rules.
    let a = raise(&app, "live", json!({})).await;
    let (called, ex) = candidates(&app, &a).await;
    assert_eq!(reason(&ex, &qual), "qualification_expired");
    assert_eq!(reason(&ex, &noqual), "qualification_missing");
    assert_eq!(reason(&ex, &ins), "insurance_expired");
    assert_eq!(reason(&ex, &away), "unavailable");
    assert_eq!(reason(&ex, &susp), "status");
    for v in [&ok, &rest, &busy] {
        assert!(called.contains(v), "{v} is called: {called:?}");
    }
    assert_eq!(called.len(), 3, "{called:?}");
    // `rest` serves on A, which is then stood down: they rest 12 hours.
    accept(&app, &rx, "rest", &a).await;
    deployed_on(&app, &rest, &a).await;
    let (s, _, b) = app
        .post(&format!("/v1/incidents/{a}/stand-down"), Some(CITY), "{}")
        .await;
    assert_eq!(s, 200, "{b}");

    // Incident B (live): `busy` accepts and stays deployed.
    let b_id = raise(&app, "live", json!({})).await;
    let (called, ex) = candidates(&app, &b_id).await;
    assert_eq!(reason(&ex, &rest), "resting", "{ex:?}");
    assert!(called.contains(&busy));
    accept(&app, &rx, "busy", &b_id).await;
    deployed_on(&app, &busy, &b_id).await;

    // Incident C (live): `busy` is engaged on B.
    let c = raise(&app, "live", json!({})).await;
    let (called, ex) = candidates(&app, &c).await;
    assert_eq!(reason(&ex, &busy), "engaged");
    assert_eq!(reason(&ex, &rest), "resting");
    assert!(called.contains(&ok));

    // A drill calls `busy` only when it allows deployed volunteers.
    let d = raise(&app, "drill", json!({})).await;
    assert_eq!(reason(&candidates(&app, &d).await.1, &busy), "engaged");
    let e = raise(&app, "drill", json!({"include_deployed": true})).await;
    assert!(candidates(&app, &e).await.0.contains(&busy));
    // …and a live raise may not ask for that.
    let (s, b) = app.raise(CITY, json!({"kind": "flood", "level": 4, "region": "990103003", "title": "x", "include_deployed": true})).await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "include_deployed");

    // A drill acceptance never blocks a live call-out.
    accept(&app, &rx, "ok", &e).await;
    // Thirteen hours later `rest` has rested, and `ok` (accepted on a drill only) is called.
    clock.advance(13 * 3_600_000);
    let f = raise(&app, "live", json!({})).await;
    let (called, ex) = candidates(&app, &f).await;
    assert!(called.contains(&rest), "{ex:?}");
    assert!(called.contains(&ok), "{ex:?}");
    assert_eq!(reason(&ex, &away), "unavailable", "still away: 13 h of 24");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_roster_decides_who_is_called_and_overrides_win() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let clock = ManualClock::at(1_795_305_600_000); // 2026-11-22T08:00:00+08:00
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), clock.clone()).await;
    fresh_team(&app).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            volunteer(
                &app,
                &rx,
                &format!("r{i}"),
                &format!("+861391111002{i}"),
                json!({}),
            )
            .await,
        );
    }
    let cover = volunteer(&app, &rx, "cover", "+8613911110030", json!({})).await;
    let roster = json!({"layers": [{"id": "day", "name": "白班", "members": ids, "on_call": 2, "shift": "1d", "start": "2026-11-01T08:00", "time_zone": "Asia/Shanghai"}]});
    let (s, b) = app
        .json("PUT", "/v1/teams/tt-rescue/roster", ADMIN, roster.clone())
        .await;
    assert_eq!(s, 200, "{b}");
    // 21 days after the start: shift 21 → members (42, 43) mod 4 = r2, r3.
    let (s, oc) = app
        .get("/v1/teams/tt-rescue/on-call", Some("demo-viewer"))
        .await;
    assert_eq!(s, 200, "{oc}");
    let on: Vec<&str> = oc["on_call"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["volunteer"].as_str().unwrap())
        .collect();
    assert_eq!(on, [ids[2].as_str(), ids[3].as_str()], "{oc}");
    assert_eq!(oc["on_call"][0]["source"], "layer");
    assert_eq!(oc["on_call"][0]["layer"], "day");
    assert!(
        oc["on_call"][0]["name"].as_str().unwrap().ends_with('*'),
        "viewer sees masked names: {oc}"
    );
    // The next day at 08:00 the hand-off puts r0 and r1 on.
    let (_, oc) = app
        .get(
            "/v1/teams/tt-rescue/on-call?at=2026-11-23T00:00:00Z",
            Some(ADMIN),
        )
        .await;
    assert_eq!(oc["on_call"][0]["volunteer"], ids[0].as_str(), "{oc}");
    // A bad roster is refused field by field; so is a stale version.
    let (s, b) = app.json("PUT", "/v1/teams/tt-rescue/roster", ADMIN, json!({"layers": [{"id": "x", "members": ["nobody"], "on_call": 3, "shift": "1d", "start": "2026-11-01T08:00", "time_zone": "Mars/Base"}]})).await;
    assert_eq!(s, 422, "{b}");
    let fields: Vec<&str> = b["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"layers[0].on_call") && fields.contains(&"layers[0].time_zone"),
        "{b}"
    );
    let mut stale = roster.clone();
    stale["version"] = json!(0);
    let (s, b) = app
        .json("PUT", "/v1/teams/tt-rescue/roster", ADMIN, stale)
        .await;
    assert_eq!(s, 409, "{b}");

    // r3 swaps with the cover for the day.
    let (s, b) = app.json("POST", "/v1/teams/tt-rescue/overrides", ADMIN, json!({"volunteer": cover, "replaces": ids[3], "start": "2026-11-21T00:00:00Z", "end": "2026-11-23T00:00:00Z", "note": "换班"})).await;
    assert_eq!(s, 201, "{b}");
    let (_, oc) = app.get("/v1/teams/tt-rescue/on-call", Some(ADMIN)).await;
    let on: Vec<&str> = oc["on_call"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["volunteer"].as_str().unwrap())
        .collect();
    assert_eq!(on, [ids[2].as_str(), cover.as_str()], "{oc}");
    assert_eq!(oc["on_call"][1]["source"], "override");

    // A raise calls exactly who is on call; the others are `not_on_call`.
    let id = raise(&app, "live", json!({})).await;
    let (mut called, ex) = candidates(&app, &id).await;
    called.sort();
    let mut want = vec![ids[2].clone(), cover.clone()];
    want.sort();
    assert_eq!(called, want);
    for v in [&ids[0], &ids[1], &ids[3]] {
        assert_eq!(reason(&ex, v), "not_on_call");
    }
    // r2 leaves the team: the layer no longer names them (in the same script as the
    // membership), the rotation goes on over who remains, and r2 is not called.
    let (s, b) = app
        .json(
            "PATCH",
            &format!("/v1/volunteers/{}", ids[2]),
            ADMIN,
            json!({"teams": ["t990101001-rescue"]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (_, r) = app.get("/v1/teams/tt-rescue/roster", Some(ADMIN)).await;
    assert_eq!(
        r["roster"]["layers"][0]["members"],
        json!([ids[0], ids[1], ids[3]]),
        "{r}"
    );
    let second = raise(&app, "live", json!({})).await;
    let (mut called, _) = candidates(&app, &second).await;
    called.sort();
    // 21 days after the start over three members: (42, 43) mod 3 = r0, r1.
    let mut want = vec![ids[0].clone(), ids[1].clone()];
    want.sort();
    assert_eq!(called, want, "the rotation over who remains");
    assert!(!called.contains(&ids[2]));

    // Schedules and calendar feeds.
    let (s, sch) = app
        .get(
            &format!("/v1/volunteers/{}/schedule?days=7", ids[0]),
            Some(ADMIN),
        )
        .await;
    assert_eq!(s, 200, "{sch}");
    let shifts = sch["shifts"].as_array().unwrap();
    assert!(!shifts.is_empty(), "{sch}");
    // Over three members r0 is on now (shift 21: 42 mod 3) and next day (shift 22: 44 mod 3),
    // one shift of two days from 08:00 local.
    assert_eq!(shifts[0]["start"], "2026-11-22T00:00:00Z", "{sch}");
    assert_eq!(shifts[0]["end"], "2026-11-24T00:00:00Z", "{sch}");
    let url = sch["calendar_url"].as_str().unwrap();
    let ics = app.http.get(url).send().await.unwrap();
    assert_eq!(ics.status(), 200);
    assert!(
        ics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/calendar")
    );
    let ics = ics.text().await.unwrap();
    assert!(
        ics.contains("DTSTART;TZID=Asia/Shanghai:20261122T080000"),
        "{ics}"
    );
    assert!(ics.contains("BEGIN:VTIMEZONE"), "{ics}");
    let forged = format!("{}x.ics", url.trim_end_matches(".ics"));
    let (_, team) = app.get("/v1/teams/tt-rescue", Some(ADMIN)).await;
    let team_feed = app
        .http
        .get(team["calendar_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        team_feed.matches("BEGIN:VEVENT").count() >= 2,
        "the team feed has every member's shifts: {team_feed}"
    );
    assert_eq!(app.http.get(&forged).send().await.unwrap().status(), 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn coordinators_act_only_within_their_scope() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), ManualClock::new()).await;
    let coord = "demo-county-coordinator"; // scope 990101
    let outside = "t990102001-rescue";
    let (s, b) = app
        .json(
            "PATCH",
            &format!("/v1/teams/{outside}"),
            coord,
            json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(s, 403, "{b}");
    let (s, b) = app
        .json(
            "PUT",
            &format!("/v1/teams/{outside}/roster"),
            coord,
            json!({"layers": []}),
        )
        .await;
    assert_eq!(s, 403, "{b}");
    let (s, b) = app
        .json(
            "POST",
            "/v1/teams",
            coord,
            json!({"id": "x", "name": "x", "kind": "rescue", "region": "990102001"}),
        )
        .await;
    assert_eq!(s, 403, "{b}");
    let body = json!({"name": "王五", "phone": "+8613911119999", "teams": [outside], "insurance_valid_until": "2099-01-01"});
    let (s, b) = app
        .json("POST", "/v1/volunteers", coord, body.clone())
        .await;
    assert_eq!(s, 403, "{b}");
    let (s, _) = app.get(&format!("/v1/teams/{outside}"), Some(coord)).await;
    assert_eq!(s, 404);
    let (s, b) = app
        .json(
            "POST",
            "/v1/volunteers",
            "demo-county-commander",
            body.clone(),
        )
        .await;
    assert_eq!(s, 403, "a commander does not keep the registry: {b}");
    // Inside the scope it works, and the phone is unique.
    let mut inside = body.clone();
    inside["teams"] = json!(["t990101002-rescue"]);
    let (s, v) = app
        .json("POST", "/v1/volunteers", coord, inside.clone())
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["phone"], "+8613911119999", "coordinators see the phone");
    let (s, b) = app.json("POST", "/v1/volunteers", coord, inside).await;
    assert_eq!(s, 409, "{b}");
    assert!(
        !b.to_string().contains("13911119999"),
        "the conflict masks the phone: {b}"
    );
    let vid = v["id"].as_str().unwrap();
    let (s, view) = app
        .get(&format!("/v1/volunteers/{vid}"), Some("demo-viewer"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(view["phone"], "+86 139****9999");
    assert_eq!(view["name"], "王*");
    // Moving them to a team outside the scope is refused; suspending works.
    let (s, _) = app
        .json(
            "PATCH",
            &format!("/v1/volunteers/{vid}"),
            coord,
            json!({"teams": [outside]}),
        )
        .await;
    assert_eq!(s, 403);
    let (s, b) = app
        .json(
            "PATCH",
            &format!("/v1/volunteers/{vid}"),
            coord,
            json!({"status": "suspended", "phone": "12"}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "phone");
    let (s, b) = app
        .json(
            "PATCH",
            &format!("/v1/volunteers/{vid}"),
            coord,
            json!({"status": "suspended"}),
        )
        .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("suspended")), "{b}");
    // A team of its own it can create and remove; its members lose the membership, and
    // one outside the scope it cannot remove.
    let (s, b) = app
        .json(
            "POST",
            "/v1/teams",
            coord,
            json!({"id": "t-temp", "name": "临时队", "kind": "rescue", "region": "990101002"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = app
        .json(
            "PATCH",
            &format!("/v1/volunteers/{vid}"),
            coord,
            json!({"teams": ["t990101002-rescue", "t-temp"]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        app.send(
            "DELETE",
            &format!("/v1/teams/{outside}"),
            Some(coord),
            vec![]
        )
        .await
        .0,
        403
    );
    assert_eq!(
        app.send("DELETE", "/v1/teams/t-temp", Some(coord), vec![])
            .await
            .0,
        204
    );
    assert_eq!(app.get("/v1/teams/t-temp", Some(coord)).await.0, 404);
    let (_, v) = app.get(&format!("/v1/volunteers/{vid}"), Some(coord)).await;
    assert_eq!(v["teams"], json!(["t990101002-rescue"]), "{v}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn erasure_leaves_no_name_or_phone_in_redis() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let pfx = prefix();
    let app = TestApp::start(config(&redis.url(), &pfx, &seed), ManualClock::new()).await;
    fresh_team(&app).await;
    let vid = volunteer(
        &app,
        &rx,
        "gone",
        "+8613987654321",
        json!({"name": "欧阳擦除"}),
    )
    .await;
    let other = volunteer(&app, &rx, "stay", "+8613987650000", json!({})).await;
    let roster = json!({"layers": [{"id": "d", "members": [vid, other], "on_call": 2, "shift": "1d", "start": "2026-11-01T08:00", "time_zone": "Asia/Shanghai"}]});
    assert_eq!(
        app.json("PUT", "/v1/teams/tt-rescue/roster", ADMIN, roster)
            .await
            .0,
        200
    );
    let until = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(48))
        .unwrap()
        .to_string();
    let id = raise(&app, "live", json!({})).await;
    accept(&app, &rx, "gone", &id).await;
    assert_eq!(
        app.json(
            "POST",
            &format!("/v1/volunteers/{vid}/unavailability"),
            ADMIN,
            json!({"until": until, "reason": "住院"})
        )
        .await
        .0,
        200
    );
    deployed_on(&app, &vid, &id).await;
    let before = dump(&redis, &pfx).await;
    assert!(
        before.contains("欧阳擦除") && before.contains("13987654321"),
        "the dump sees personal data"
    );

    let (s, b) = app
        .send(
            "DELETE",
            &format!("/v1/volunteers/{vid}"),
            Some(ADMIN),
            vec![],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"], "erased");
    let after = dump(&redis, &pfx).await;
    for needle in ["欧阳擦除", "13987654321", "987654321", "住院"] {
        assert!(
            !after.contains(needle),
            "`{needle}` is still in Redis:\n{}",
            after
                .lines()
                .filter(|l| l.contains(needle))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // The anonymised service record stays: the callout still names the id, accepted.
    let (_, cs) = app
        .get(&format!("/v1/incidents/{id}/callouts"), Some(ADMIN))
        .await;
    let mine = cs["callouts"]
        .as_array()
        .or(cs["items"].as_array())
        .unwrap()
        .iter()
        .find(|c| c["volunteer_id"] == vid.as_str())
        .cloned()
        .unwrap();
    assert_eq!(mine["state"], "accepted");
    assert_eq!(mine["volunteer_name"], "");
    // The roster no longer names them; the phone can be registered again.
    let (_, r) = app.get("/v1/teams/tt-rescue/roster", Some(ADMIN)).await;
    assert!(!r.to_string().contains(&vid), "{r}");
    assert_eq!(r["roster"]["layers"][0]["on_call"], 1);
    let (s, b) = app
        .json(
            "PATCH",
            &format!("/v1/volunteers/{vid}"),
            ADMIN,
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(s, 410, "{b}");
    volunteer(&app, &rx, "again", "+8613987654321", json!({})).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn import_keeps_good_rows_reports_bad_ones_and_is_idempotent() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), ManualClock::new()).await;
    let coord = "demo-county-coordinator";
    let utf8 = "\u{feff}姓名,手机号,所属队伍,资质,保险有效期,状态,备注\n\
        张一,13800000001,滨江街道救援队,water_rescue:2028/6/30,2027年12月31日,正常,\n\
        李二,+86 138 0000 0002,t990101001-rescue；t990101001-first_aid,,2027-12-31,暂停,组长\n\
        王三,12345,t990101001-rescue,,2027-12-31,,\n\
        赵四,13800000004,不存在的队,,2027-12-31,,\n\
        钱五,13800000005,t990101001-rescue,,31/12/2027,,\n\
        孙六,13800000001,t990101001-rescue,,2027-12-31,,\n\
        周七,13800000007,t990102001-rescue,,2027-12-31,,\n";
    let (s, r) = app.import(coord, utf8.as_bytes()).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["encoding"], "utf-8");
    assert_eq!(
        (r["rows"].as_u64(), r["created"].as_u64()),
        (Some(7), Some(2)),
        "{r}"
    );
    let lines: Vec<(u64, String)> = r["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["line"].as_u64().unwrap(),
                x["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        lines.iter().map(|l| l.0).collect::<Vec<_>>(),
        [4, 5, 6, 7, 8],
        "{lines:?}"
    );
    assert!(lines[0].1.contains("E.164"), "{lines:?}");
    assert!(lines[1].1.contains("unknown team"), "{lines:?}");
    assert!(lines[2].1.contains("date"), "{lines:?}");
    assert!(lines[3].1.contains("line 2"), "{lines:?}");
    assert!(lines[4].1.contains("outside your scope"), "{lines:?}");
    assert_eq!(r["ignored_columns"], json!(["备注"]));

    let gbk_text = "姓名,手机,队伍,保险到期\n吴八,13800000008,柳林镇救援队,2027/1/1\n郑九,bad,柳林镇救援队,2027/1/1\n";
    let (gbk, _, _) = encoding_rs::GBK.encode(gbk_text);
    let (s, r) = app.import(coord, &gbk).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["encoding"], "gbk");
    assert_eq!(
        (r["created"].as_u64(), r["rejected"][0]["line"].as_u64()),
        (Some(1), Some(3)),
        "{r}"
    );
    let (_, team) = app.get("/v1/teams/t990101002-rescue", Some(ADMIN)).await;
    assert!(team["member_list"].to_string().contains("吴八"), "{team}");

    // The same files again change nothing.
    let (_, r) = app.import(coord, utf8.as_bytes()).await;
    assert_eq!(
        (
            r["created"].as_u64(),
            r["updated"].as_u64(),
            r["unchanged"].as_u64()
        ),
        (Some(0), Some(0), Some(2)),
        "{r}"
    );
    let (_, r) = app.import(coord, &gbk).await;
    assert_eq!(
        (r["created"].as_u64(), r["unchanged"].as_u64()),
        (Some(0), Some(1)),
        "{r}"
    );
    // A viewer may not import; an empty body is a 400.
    assert_eq!(app.import("demo-viewer", utf8.as_bytes()).await.0, 403);
    assert_eq!(app.import(coord, &[]).await.0, 400);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn volunteers_report_unavailability_through_their_call_out_link() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let clock = ManualClock::new();
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), clock.clone()).await;
    fresh_team(&app).await;
    let a = volunteer(&app, &rx, "pa", "+8613911110041", json!({})).await;
    let b = volunteer(&app, &rx, "pb", "+8613911110042", json!({})).await;
    let id = raise(&app, "live", json!({})).await;
    let token = |label: &'static str| {
        let rx = &rx;
        let id = id.clone();
        async move {
            eventually(T, "call-out delivered", || async {
                rx.delivered("callout").iter().any(|r| r.volunteer == label)
            })
            .await;
            rx.delivered("callout")
                .into_iter()
                .find(|r| r.volunteer == label && r.body["incident"]["id"] == id.as_str())
                .unwrap()
                .token()
        }
    };
    // Through the page's form…
    let ta = token("pa").await;
    let page = app
        .http
        .post(app.url(&format!("/a/{ta}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("unavailable_hours=24")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text().await.unwrap().contains("已记录"),
        "the page confirms"
    );
    // …and through the API with the token as the credential.
    let tb = token("pb").await;
    let until = muster::clock::rfc3339(clock.now_ms() + 7_200_000);
    let (s, body) = app
        .json(
            "POST",
            &format!("/v1/acks/{tb}/unavailable"),
            "unused",
            json!({"until": until, "reason": "夜班"}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let (s, bad) = app
        .json(
            "POST",
            &format!("/v1/acks/{tb}/unavailable"),
            "unused",
            json!({"until": "yesterday"}),
        )
        .await;
    assert_eq!(
        (s, bad["errors"][0]["field"].as_str()),
        (422, Some("until")),
        "{bad}"
    );
    let swap = if &tb[5..6] == "A" { "B" } else { "A" };
    let forged = format!("{}{swap}{}", &tb[..5], &tb[6..]);
    assert_eq!(
        app.json(
            "POST",
            &format!("/v1/acks/{forged}/unavailable"),
            "unused",
            json!({"until": until})
        )
        .await
        .0,
        404
    );

    for (v, hours) in [(&a, 24), (&b, 2)] {
        let (_, view) = app.get(&format!("/v1/volunteers/{v}"), Some(ADMIN)).await;
        let u = &view["unavailable"][0];
        let until: jiff::Timestamp = u["until"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            until.as_millisecond(),
            clock.now_ms() + hours * 3_600_000,
            "{view}"
        );
    }
    // The city-wide listing shows the team (no roster: everyone on call) and who is away.
    let (s, all) = app.get("/v1/on-call", Some("demo-viewer")).await;
    assert_eq!(s, 200);
    let team = all["teams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["team"] == "tt-rescue")
        .unwrap()
        .clone();
    assert_eq!(team["has_roster"], false);
    let member = |v: &str| {
        team["on_call"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["volunteer"] == v)
            .cloned()
            .unwrap()
    };
    assert_eq!(member(&a)["source"], "no_roster");
    assert!(member(&a)["unavailable_until"].is_string(), "{team}");
    assert!(member(&b)["unavailable_until"].is_string(), "{team}");
    let (_, one) = app
        .get("/v1/teams/tt-rescue/on-call", Some("demo-viewer"))
        .await;
    assert_eq!(one["on_call"].as_array().unwrap().len(), 2, "{one}");
    assert_eq!(
        one["on_call"][0]["name"], "测***",
        "names masked for a viewer: {one}"
    );
    let second = raise(&app, "live", json!({})).await;
    let (_, ex) = candidates(&app, &second).await;
    assert_eq!(reason(&ex, &a), "unavailable");
    assert_eq!(reason(&ex, &b), "unavailable");
    clock.advance(3 * 3_600_000);
    let third = raise(&app, "live", json!({})).await;
    let (called, ex) = candidates(&app, &third).await;
    assert_eq!(reason(&ex, &a), "unavailable");
    assert!(called.contains(&b), "b is back after two hours");
    app.stop().await;
}
