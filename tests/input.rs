//! Strict input: control characters are refused in every free text that reaches an SMS, a
//! webhook or a screen; a coordinator cannot place a volunteer's home outside its scope (by
//! the API or an import); the volunteer page says so when its form makes no sense; and the
//! page no longer shows the dangling "Answer at" of the link-bearing template.

mod common;

use common::*;
use muster::clock::ManualClock;
use serde_json::{Value, json};
use std::time::Duration;

const ADMIN: &str = "demo-admin";
const COORD: &str = "demo-county-coordinator"; // scope 990101

async fn app() -> (TestRedis, Receiver, TestApp) {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), ManualClock::new()).await;
    (redis, rx, app)
}

fn field_of(b: &Value) -> &str {
    b["errors"][0]["field"].as_str().unwrap_or("")
}

fn reason_of(b: &Value) -> &str {
    b["errors"][0]["reason"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_are_refused_in_every_free_text() {
    let (_r, _rx, app) = app().await;
    let inc =
        |title: &str| json!({"kind": "flood", "level": 4, "region": "990101001", "title": title});
    for (title, what) in [
        ("管涌\u{0}险情", "U+0000"),
        ("\u{1b}[2J清屏", "U+001B"),
        ("第一行\n第二行", "line break"),
        ("C1\u{85}", "U+0085"),
        ("反向\u{202E}文字", "U+202E"),
    ] {
        let (s, b) = app.raise(ADMIN, inc(title)).await;
        assert_eq!((s, field_of(&b)), (422, "title"), "{title:?}: {b}");
        assert!(reason_of(&b).contains(what), "{title:?}: {b}");
    }
    let mut loc = inc("x");
    loc["location"] = json!({"addr": "堤\u{7}段"});
    let (s, b) = app.raise(ADMIN, loc).await;
    assert_eq!((s, field_of(&b)), (422, "location"), "{b}");
    let mut key = inc("x");
    key["idempotency_key"] = json!("k\u{0}");
    let (s, b) = app.raise(ADMIN, key).await;
    assert_eq!((s, field_of(&b)), (422, "idempotency_key"), "{b}");
    // Nothing was raised.
    let (_, list) = app.get("/v1/incidents", Some(ADMIN)).await;
    assert_eq!(list["incidents"].as_array().unwrap().len(), 0, "{list}");

    // Volunteers: name and qualification codes.
    let vol = |name: &str| json!({"name": name, "phone": "+8613911112222", "teams": ["t990101001-rescue"]});
    let (s, b) = app
        .json("POST", "/v1/volunteers", COORD, vol("张\u{0}三"))
        .await;
    assert_eq!((s, field_of(&b)), (422, "name"), "{b}");
    let mut q = vol("张三");
    q["qualifications"] = json!([{"code": "water\u{1}rescue", "valid_until": "2030-01-01"}]);
    let (s, b) = app.json("POST", "/v1/volunteers", COORD, q).await;
    assert_eq!((s, field_of(&b)), (422, "qualifications[0].code"), "{b}");
    let (s, b) = app.json("POST", "/v1/volunteers", COORD, vol("张三")).await;
    assert_eq!(s, 201, "{b}");
    let vid = b["id"].as_str().unwrap().to_string();
    let (s, b) = app
        .json(
            "PATCH",
            &format!("/v1/volunteers/{vid}"),
            COORD,
            json!({"name": "李\r四"}),
        )
        .await;
    assert_eq!((s, field_of(&b)), (422, "name"), "{b}");
    // A reason may be several lines, never a control character.
    let until = muster::clock::rfc3339(muster::clock::wall_ms() + 30 * 86_400_000);
    let path = format!("/v1/volunteers/{vid}/unavailability");
    let (s, b) = app
        .json(
            "POST",
            &path,
            COORD,
            json!({"until": &until, "reason": "出差\u{0}"}),
        )
        .await;
    assert_eq!((s, field_of(&b)), (422, "reason"), "{b}");
    let (s, b) = app
        .json(
            "POST",
            &path,
            COORD,
            json!({"until": &until, "reason": "出差\n周五回"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");

    // Teams: name on create and update; roster layer names and override notes.
    let team =
        json!({"id": "t-ctl", "name": "救援\u{8}队", "kind": "rescue", "region": "990101001"});
    let (s, b) = app.json("POST", "/v1/teams", COORD, team).await;
    assert_eq!((s, field_of(&b)), (422, "name"), "{b}");
    let (s, b) = app
        .json(
            "PATCH",
            "/v1/teams/t990101001-rescue",
            COORD,
            json!({"name": "\u{9b}31m"}),
        )
        .await;
    assert_eq!((s, field_of(&b)), (422, "name"), "{b}");
    let (s, b) = app
        .json(
            "PUT",
            "/v1/teams/t990101001-rescue/roster",
            COORD,
            json!({"layers": [{"id": "d", "name": "白\u{0}班", "members": [&vid], "on_call": 1, "shift": "1d", "start": "2026-11-01T08:00", "time_zone": "Asia/Shanghai"}]}),
        )
        .await;
    assert_eq!((s, field_of(&b)), (422, "layers[0].name"), "{b}");
    let (s, b) = app
        .json(
            "POST",
            "/v1/teams/t990101001-rescue/overrides",
            COORD,
            json!({"volunteer": vid, "start": "2026-11-24T00:00:00Z", "end": "2026-11-25T00:00:00Z", "note": "换\u{1b}班"}),
        )
        .await;
    assert_eq!((s, field_of(&b)), (422, "overrides[0].note"), "{b}");
    let (_, t) = app.get("/v1/teams/t990101001-rescue", Some(ADMIN)).await;
    assert!(!t.to_string().contains("\\u0000"), "{t}");

    // Import: a name with a control character is a rejected row, the others are kept.
    let csv = "姓名,手机号,所属队伍\n好人,13700000011,t990101001-rescue\n坏\u{0}人,13700000012,t990101001-rescue\n";
    let (s, b) = app.import(COORD, csv.as_bytes()).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["created"], 1, "{b}");
    assert!(
        b["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("U+0000"),
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_home_region_outside_the_coordinators_scope_is_refused() {
    let (_r, _rx, app) = app().await;
    let body = json!({"name": "王五", "phone": "+8613911113333", "teams": ["t990101001-rescue"], "home_region": "990102001"});
    let (s, b) = app
        .json("POST", "/v1/volunteers", COORD, body.clone())
        .await;
    assert_eq!((s, field_of(&b)), (422, "home_region"), "{b}");
    assert!(
        reason_of(&b).contains("outside this token's scope 990101"),
        "{b}"
    );
    // The admin (city scope) may; the county coordinator may not move them out by PATCH.
    let mut inside = body.clone();
    inside["home_region"] = json!("990101002");
    let (s, b) = app.json("POST", "/v1/volunteers", COORD, inside).await;
    assert_eq!(s, 201, "{b}");
    let vid = b["id"].as_str().unwrap();
    let (s, b) = app
        .json(
            "PATCH",
            &format!("/v1/volunteers/{vid}"),
            COORD,
            json!({"home_region": "990103001"}),
        )
        .await;
    assert_eq!((s, field_of(&b)), (422, "home_region"), "{b}");
    let (_, v) = app.get(&format!("/v1/volunteers/{vid}"), Some(ADMIN)).await;
    assert_eq!(v["home_region"], "990101002", "{v}");
    // An import row placing a volunteer's home outside the scope is rejected.
    let csv = "姓名,手机号,所属队伍,所属乡镇\n甲,13700000021,t990101001-rescue,990102002\n乙,13700000022,t990101001-rescue,990101003\n";
    let (s, b) = app.import(COORD, csv.as_bytes()).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["created"], 1, "{b}");
    assert_eq!(b["rejected"][0]["line"], 2, "{b}");
    assert!(
        b["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("home region 990102002 is outside your scope"),
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_volunteer_page_says_when_its_form_makes_no_sense() {
    let (_r, rx, app) = app().await;
    let (s, inc) = app
        .raise(
            ADMIN,
            json!({"kind": "flood", "level": 4, "region": "990101001", "title": "内涝"}),
        )
        .await;
    assert_eq!(s, 201, "{inc}");
    eventually(Duration::from_secs(20), "a call-out", || async {
        !rx.delivered("callout").is_empty()
    })
    .await;
    let co = rx.delivered("callout").remove(0);
    let token = co.token();
    let url = app.url(&format!("/a/{token}"));
    // The page shows what the call-out is about, without the template's link clause.
    let page = app
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("内涝"), "{page}");
    assert!(
        !page.contains("请点击  确认") && !page.contains("Answer at"),
        "{page}"
    );
    assert!(
        page.contains("能来请点“我能来”") || page.contains("I can come"),
        "{page}"
    );
    for form in [
        "response=maybe",
        "response=",
        "unavailable_hours=0",
        "unavailable_hours=99999",
        "unavailable_hours=abc",
        "%zz=%%",
    ] {
        let r = app
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 422, "{form}");
        let text = r.text().await.unwrap();
        assert!(
            text.contains("未能识别您的选择") || text.contains("was not understood"),
            "{form}: {text}"
        );
        assert!(
            text.contains("name=\"response\""),
            "the buttons are still there: {text}"
        );
    }
    // Nothing changed: the callout is still unanswered, the volunteer not unavailable.
    let id = inc["id"].as_str().unwrap();
    let (_, list) = app
        .get(&format!("/v1/incidents/{id}/callouts"), Some(ADMIN))
        .await;
    let mine = list["callouts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == co.callout_id())
        .unwrap()
        .clone();
    assert_eq!(mine["state"], "notified", "{mine}");
    let (_, v) = app
        .get(
            &format!("/v1/volunteers/{}", mine["volunteer_id"].as_str().unwrap()),
            Some(ADMIN),
        )
        .await;
    assert_eq!(
        v["unavailable"].as_array().map(Vec::len).unwrap_or(0),
        0,
        "{v}"
    );
    // A real answer still works.
    let r = app
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("response=accept")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}
