//! The command centre over HTTP: sign-in, sessions, CSRF, scope and the incidents page.

mod common;

use common::*;
use muster::clock::ManualClock;
use serde_json::json;

async fn app() -> (TestRedis, Receiver, TestApp) {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), ManualClock::new()).await;
    (redis, rx, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_shows_the_scope_and_sign_out_ends_it() {
    let (_r, _rx, app) = app().await;
    // Not signed in: to the sign-in page.
    let b = browser();
    let r = b.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    // An incident in the township, one in another county.
    let (s, own) = app
        .raise(
            "demo-admin",
            json!({"kind": "flood", "level": 4, "region": "990101001", "title": "东门内涝"}),
        )
        .await;
    assert_eq!(s, 201, "{own}");
    let (s, other) = app
        .raise(
            "demo-admin",
            json!({"kind": "flood", "level": 2, "region": "990102001", "title": "西岸溃堤", "mode": "drill"}),
        )
        .await;
    assert_eq!(s, 201, "{other}");

    // The township commander sees its own incident only, level as text and colour class.
    let (s, home) = sign_in(&app, &b, "demo-township-commander").await;
    assert_eq!(s, 303);
    assert!(home.contains("东门内涝"), "{home}");
    assert!(
        !home.contains("西岸溃堤"),
        "another county's incident shown: {home}"
    );
    assert!(home.contains("class=\"badge level-4\""), "{home}");
    assert!(home.contains("Ⅳ级"), "{home}");
    assert!(home.contains("洪涝"), "kinds by name: {home}");
    assert!(home.contains("0/6"), "filled x/y per requirement: {home}");
    assert!(!home.contains("<script>"), "no inline script");

    // The city viewer sees both, the drill marked.
    let viewer = browser();
    let (_, home) = sign_in(&app, &viewer, "demo-viewer").await;
    assert!(
        home.contains("东门内涝") && home.contains("西岸溃堤"),
        "{home}"
    );
    assert!(home.contains("【演练】"), "{home}");

    // The wall screen: the scope's active incidents, no forms, refreshing itself.
    let wall = b
        .get(app.url("/wall"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        wall.contains("东门内涝") && !wall.contains("西岸溃堤"),
        "{wall}"
    );
    assert!(!wall.contains("<form"), "no controls on the wall: {wall}");
    assert!(
        wall.contains("src=\"/static/wall.js\"") && wall.contains("data-src=\"/wall/cards\""),
        "the wall follows by itself: {wall}"
    );
    let cards = b.get(app.url("/wall/cards")).send().await.unwrap();
    assert_eq!(cards.status(), 200);
    let cards = cards.text().await.unwrap();
    assert!(
        cards.contains("东门内涝") && !cards.contains("西岸溃堤") && !cards.contains("<html"),
        "the wall's cards alone: {cards}"
    );
    // Pages are never cached, cannot be framed, and allow no inline script.
    let r = b.get(app.url("/")).send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["x-frame-options"], "DENY");

    // Sign-out needs the session's CSRF secret; without it, 403 and still signed in.
    let page = r.text().await.unwrap();
    let r = b
        .post(app.url("/logout"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(b.get(app.url("/")).send().await.unwrap().status(), 200);
    let r = b
        .post(app.url("/logout"))
        .form(&[("csrf", csrf_of(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    assert_eq!(b.get(app.url("/")).send().await.unwrap().status(), 303);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_strict_and_sign_ins_are_limited() {
    let (_r, _rx, app) = app().await;
    let b = browser();
    let form = b.get(app.url("/login")).send().await.unwrap();
    let csrf = csrf_of(&form.text().await.unwrap());
    // A sign-in form from elsewhere (no cookie-bound secret) is refused.
    let stranger = browser();
    let r = stranger
        .post(app.url("/login"))
        .form(&[("token", "demo-admin"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A good sign-in sets an HttpOnly, SameSite=Strict cookie.
    let r = b
        .post(app.url("/login"))
        .form(&[("token", "demo-admin"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = set
        .iter()
        .find(|c| c.starts_with("muster_session="))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    assert!(
        session.contains("Max-Age=43200"),
        "12 hours by default: {session}"
    );
    // Wrong tokens: told so, then limited per address.
    let mallory = browser();
    for i in 0..10 {
        let f = mallory.get(app.url("/login")).send().await.unwrap();
        let csrf = csrf_of(&f.text().await.unwrap());
        let r = mallory
            .post(app.url("/login"))
            .form(&[("token", format!("guess-{i}")), ("csrf", csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "attempt {i}");
        assert!(r.text().await.unwrap().contains("令牌无效"));
    }
    let f = mallory.get(app.url("/login")).send().await.unwrap();
    let csrf = csrf_of(&f.text().await.unwrap());
    let r = mallory
        .post(app.url("/login"))
        .form(&[("token", "demo-admin"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "even a right token waits out the window");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_shows_progress_and_responders_within_the_scope() {
    let (_r, rx, app) = app().await;
    let (s, own) = app
        .raise(
            "demo-admin",
            json!({"kind": "flood", "level": 4, "region": "990101001", "title": "东门内涝"}),
        )
        .await;
    assert_eq!(s, 201, "{own}");
    let id = own["id"].as_str().unwrap().to_string();
    let (_, other) = app
        .raise(
            "demo-admin",
            json!({"kind": "flood", "level": 4, "region": "990102001", "title": "西岸内涝"}),
        )
        .await;
    let other = other["id"].as_str().unwrap().to_string();
    // Two volunteers accept.
    eventually(
        std::time::Duration::from_secs(20),
        "call-outs delivered",
        || async {
            rx.delivered("callout")
                .iter()
                .filter(|r| r.body["incident"]["id"] == id.as_str())
                .count()
                >= 2
        },
    )
    .await;
    let accepted: Vec<_> = rx
        .delivered("callout")
        .into_iter()
        .filter(|r| r.body["incident"]["id"] == id.as_str())
        .take(2)
        .collect();
    for r in &accepted {
        let (s, b) = app.ack(&r.token(), "accept").await;
        assert_eq!(s, 200, "{b}");
    }
    app.idle().await;
    let b = browser();
    sign_in(&app, &b, "demo-township-commander").await;
    let page = b
        .get(app.url(&format!("/incidents/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let api = app.incident(&id).await;
    let rescue = req(&api, "rescue");
    let accepted_rescue = rescue["accepted"].as_u64().unwrap();
    assert!(
        html.contains(&format!("{accepted_rescue}/6")),
        "the board's count is the API's ({accepted_rescue}/6): {html}"
    );
    assert!(html.contains("<progress"), "{html}");
    assert!(html.contains("已接受"), "{html}");
    assert!(html.contains("乡镇"), "{html}");
    assert!(html.contains("按层级") && html.contains("送达情况") && html.contains("时间线"));
    // The same board in English, by the switch in the header.
    let r = b
        .get(app.url("/lang?to=en"))
        .header("referer", app.url(&format!("/incidents/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("/incidents/{id}"));
    let en = b
        .get(app.url(&format!("/incidents/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        en.contains("lang=\"en\"") && en.contains("Delivery health"),
        "{en}"
    );
    assert!(en.contains("滨江街道"), "region names stay Chinese: {en}");
    b.get(app.url("/lang?to=zh-CN")).send().await.unwrap();
    // Another county's incident is not found from here, as in the API.
    let r = b
        .get(app.url(&format!("/incidents/{other}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "a page's refusal is a page"
    );
    assert!(r.text().await.unwrap().contains("未找到"));
    // A viewer sees masked names.
    let v = browser();
    sign_in(&app, &v, "demo-viewer").await;
    let html = v
        .get(app.url(&format!("/incidents/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains('*'), "masked names for a viewer: {html}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_streams_its_incident_to_the_session() {
    let (_r, _rx, app) = app().await;
    let (_, inc) = app
        .raise(
            "demo-admin",
            json!({"kind": "flood", "level": 4, "region": "990101001", "title": "东门内涝"}),
        )
        .await;
    let id = inc["id"].as_str().unwrap().to_string();
    // Without a session: to the sign-in page, not the stream.
    let r = browser()
        .get(app.url(&format!("/incidents/{id}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let b = browser();
    sign_in(&app, &b, "demo-township-commander").await;
    let html = b
        .get(app.url(&format!("/incidents/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!("data-events=\"/incidents/{id}/events\"")),
        "{html}"
    );
    assert!(html.contains("src=\"/static/board.js\""), "{html}");
    assert!(html.contains("data-req=\"rescue\""), "{html}");
    let js = b.get(app.url("/static/board.js")).send().await.unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    // The stream opens with the incident's snapshot.
    let mut r = b
        .get(app.url(&format!("/incidents/{id}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), r.chunk())
            .await
            .expect("the snapshot arrives")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.starts_with("event: snapshot"), "{text}");
    assert!(text.contains(&id), "{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commanders_upgrade_and_stand_down_from_the_board_and_viewers_cannot() {
    let (_r, _rx, app) = app().await;
    let (_, inc) = app
        .raise(
            "demo-admin",
            json!({"kind": "flood", "level": 4, "region": "990101001", "title": "东门内涝"}),
        )
        .await;
    let id = inc["id"].as_str().unwrap().to_string();
    let board = |b: reqwest::Client| {
        let url = app.url(&format!("/incidents/{id}"));
        async move { b.get(url).send().await.unwrap().text().await.unwrap() }
    };
    // A viewer gets no command forms, and its forged POST is 403 and changes nothing.
    let v = browser();
    sign_in(&app, &v, "demo-viewer").await;
    let html = board(v.clone()).await;
    assert!(!html.contains("/stand-down"), "{html}");
    let csrf = csrf_of(&html);
    let r = v
        .post(app.url(&format!("/incidents/{id}/stand-down")))
        .form(&[("csrf", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(app.incident(&id).await["status"], "mustering");
    // The township commander upgrades IV → III, then stands down once confirmed.
    let c = browser();
    sign_in(&app, &c, "demo-township-commander").await;
    let html = board(c.clone()).await;
    assert!(
        html.contains("/stand-down") && html.contains("value=\"3\""),
        "{html}"
    );
    let csrf = csrf_of(&html);
    let r = c
        .post(app.url(&format!("/incidents/{id}/level")))
        .form(&[("csrf", csrf.as_str()), ("level", "3")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(app.incident(&id).await["level"], 3);
    // Without the confirmation box, nothing happens.
    let r = c
        .post(app.url(&format!("/incidents/{id}/stand-down")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(app.incident(&id).await["status"], "mustering");
    // A form of another session (CSRF) is 403.
    let r = c
        .post(app.url(&format!("/incidents/{id}/stand-down")))
        .form(&[("csrf", "x".repeat(64).as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(app.url(&format!("/incidents/{id}/stand-down")))
        .form(&[("csrf", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(app.incident(&id).await["status"], "stood_down");
    let html = board(c).await;
    assert!(
        !html.contains("/stand-down"),
        "no command forms once it is over"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trainer_raises_drills_only_and_a_viewer_nothing() {
    let (_r, _rx, app) = app().await;
    let b = browser();
    let (s, _) = sign_in(&app, &b, "demo-county-trainer").await;
    assert_eq!(s, 303);
    let form = b
        .get(app.url(
            "/incidents/new?kind=flood&level=4&region=990101001&title=%E6%BC%94%E7%BB%83&mode=live",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let html = form.text().await.unwrap();
    assert!(
        !html.contains("value=\"live\""),
        "no live choice for a trainer: {html}"
    );
    assert!(html.contains("name=\"mode\" value=\"drill\""), "{html}");
    // Even a form that says live raises a drill.
    let key = html
        .split("name=\"idempotency_key\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let r = b
        .post(app.url("/incidents/new"))
        .form(&[
            ("csrf", csrf_of(&html).as_str()),
            ("idempotency_key", key.as_str()),
            ("kind", "flood"),
            ("level", "4"),
            ("region", "990101001"),
            ("title", "演练：东门内涝"),
            ("mode", "live"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let id = r.headers()["location"]
        .to_str()
        .unwrap()
        .trim_start_matches("/incidents/")
        .to_string();
    assert_eq!(app.incident(&id).await["mode"], "drill");
    // The API's raise stays for commanders.
    let (s, _) = app
        .raise(
            "demo-county-trainer",
            json!({"kind": "flood", "level": 4, "region": "990101001", "title": "x", "mode": "drill"}),
        )
        .await;
    assert_eq!(s, 403);
    // A viewer gets no form at all.
    let v = browser();
    sign_in(&app, &v, "demo-viewer").await;
    let r = v.get(app.url("/incidents/new")).send().await.unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinators_upload_the_registry_and_read_teams_and_candidates() {
    let (_r, _rx, app) = app().await;
    let id = raised(
        &app,
        "demo-admin",
        json!({"kind": "flood", "level": 4, "region": "990101001", "title": "东门内涝"}),
    )
    .await;
    app.idle().await;
    let b = browser();
    let (s, home) = sign_in(&app, &b, "demo-county-coordinator").await;
    assert_eq!(s, 303);
    // The upload form, and a file through it: the import report on the page.
    let teams = b
        .get(app.url("/teams"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(teams.contains("enctype=\"multipart/form-data\""), "{teams}");
    assert!(teams.contains("滨江街道救援队"), "{teams}");
    let csv = "id,name,phone,locale,webhook,teams,home_region,status,insurance_valid_until,qualifications\n\
               up1,上传一,+8613600000001,zh-CN,,t990101001-rescue,990101001,active,2026-12-01,water_rescue:2020-01-01\n\
               up2,上传二,+8613600000002,zh-CN,,no-such-team,990101001,active,2027-12-31,\n";
    let upload = |csrf: String| {
        reqwest::multipart::Form::new().text("csrf", csrf).part(
            "file",
            reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("registry.csv"),
        )
    };
    let r = b
        .post(app.url("/teams/import"))
        .multipart(upload(csrf_of(&home)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report = r.text().await.unwrap();
    assert!(report.contains("导入结果"), "{report}");
    assert!(
        report.contains("<strong>1</strong>"),
        "one created: {report}"
    );
    assert!(
        report.contains("no-such-team"),
        "the rejected row says why: {report}"
    );
    // Without the form's secret: 403, nothing imported.
    let r = b
        .post(app.url("/teams/import"))
        .multipart(upload("forged".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The team's page: the new member first, with the expired qualification and the insurance
    // expiring within 30 days flagged.
    let team = b
        .get(app.url("/teams/t990101001-rescue"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let members = &team[team.find("<tbody>").expect("the members table")..];
    let row = members.find("上传一").expect("the new member listed");
    assert_eq!(members[..row].matches("<tr>").count(), 1, "listed first");
    assert!(
        team.contains("flag expired") && team.contains("flag soon"),
        "{team}"
    );
    assert!(
        team.contains("+8613600000001"),
        "a coordinator reads phones whole"
    );
    // The incident's candidates: called and left out, with reasons.
    let cands = b
        .get(app.url(&format!("/incidents/{id}/candidates")))
        .send()
        .await
        .unwrap();
    assert_eq!(cands.status(), 200);
    let cands = cands.text().await.unwrap();
    assert!(
        cands.contains("已呼叫") && cands.contains("被排除"),
        "{cands}"
    );
    // A commander may read the teams but not upload.
    let c = browser();
    let (_, home) = sign_in(&app, &c, "demo-county-commander").await;
    let page = c
        .get(app.url("/teams"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("multipart/form-data"),
        "no upload form for a commander"
    );
    let r = c
        .post(app.url("/teams/import"))
        .multipart(upload(csrf_of(&home)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_https_the_session_cookie_is_secure() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let mut config = config(&redis.url(), &prefix(), &seed);
    config.http.public_url = Some("https://muster.example.org".into());
    let app = TestApp::start(config, ManualClock::new()).await;
    let b = browser();
    let form = b.get(app.url("/login")).send().await.unwrap();
    let login_cookie = form.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(login_cookie.contains("; Secure"), "{login_cookie}");
    let csrf = csrf_of(&form.text().await.unwrap());
    let r = b
        .post(app.url("/login"))
        .form(&[("token", "demo-viewer"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("muster_session="))
        .unwrap();
    assert!(
        session.contains("; Secure") && session.contains("HttpOnly"),
        "{session}"
    );
}
