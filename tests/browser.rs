//! The command centre in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by `make test`), driven over WebDriver with fantoccini. Each
//! test starts its own `chromedriver` on a free port with a fresh profile, its own
//! redis-server and muster, and saves screenshots in its temp dir (printed on the way).
//! Nothing here sleeps to wait for muster: the page is polled until it shows what the API
//! says, within a deadline.

mod common;

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use muster::clock::ManualClock;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// One browser at a time in this binary: two cores do not run five Chromiums well.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A headless Chromium under its own chromedriver.
struct Browser {
    client: Client,
    driver: Child,
    dir: PathBuf,
    shots: std::sync::atomic::AtomicUsize,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Chromium at `width`×`height`, JavaScript on or off, screenshots into `dir`.
    async fn open(dir: &Path, width: u32, height: u32, javascript: bool) -> Browser {
        let driver_bin = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect(
                "chromedriver is missing: `make test` installs Debian's chromium, \
                 chromium-driver and fonts-noto-cjk",
            );
        let port = free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = dir.join("profile");
        std::fs::create_dir_all(&profile).unwrap();
        let mut args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-background-networking".into(),
            "--no-first-run".into(),
            "--disable-dev-shm-usage".into(),
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={width},{height}"),
        ];
        args.push("--lang=zh-CN".into());
        let mut prefs = json!({});
        if !javascript {
            prefs = json!({"profile.managed_default_content_settings.javascript": 2});
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": "/usr/bin/chromium", "args": args, "prefs": prefs}),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match ClientBuilder::rustls()
                .unwrap()
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no WebDriver session: {e}"),
            }
        };
        Browser {
            client,
            driver,
            dir: dir.to_path_buf(),
            shots: Default::default(),
        }
    }

    async fn go(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    async fn fill(&self, css: &str, text: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .send_keys(text)
            .await
            .unwrap();
    }

    async fn select(&self, css: &str, value: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .select_by_value(value)
            .await
            .unwrap();
    }

    async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    /// Waits until `css`'s text satisfies `ok` (the page changes by itself: SSE, fetches).
    async fn until(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let t = match self.client.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if ok(&t) {
                return t;
            }
            if Instant::now() > deadline {
                self.shot("timeout").await;
                panic!("{what}: `{css}` shows `{t}`");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A full-page screenshot, saved and named in the test's output.
    async fn shot(&self, name: &str) {
        let n = self.shots.fetch_add(1, Ordering::SeqCst) + 1;
        let png = self.client.screenshot().await.unwrap();
        let p = self.dir.join(format!("{n:02}-{name}.png"));
        std::fs::write(&p, png).unwrap();
        eprintln!("screenshot: {}", p.display());
    }

    async fn sign_in(&self, base: &str, token: &str) {
        self.go(&format!("{base}/login")).await;
        self.fill("#token", token).await;
        self.click("form button[type=submit]").await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.path().await == "/login" {
            assert!(Instant::now() < deadline, "sign-in did not leave /login");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // The profile is tens of megabytes; the screenshots stay.
        let _ = std::fs::remove_dir_all(self.dir.join("profile"));
    }
}

async fn app() -> (TestRedis, Receiver, TestApp) {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), ManualClock::new()).await;
    (redis, rx, app)
}

/// The call-outs the receiver got for incident `id`.
fn callouts_of(rx: &Receiver, id: &str) -> Vec<Received> {
    rx.delivered("callout")
        .into_iter()
        .filter(|r| r.body["incident"]["id"] == id)
        .collect()
}

async fn wait_callouts(rx: &Receiver, id: &str, n: usize) -> Vec<Received> {
    eventually(Duration::from_secs(20), "call-outs delivered", || async {
        callouts_of(rx, id).len() >= n
    })
    .await;
    callouts_of(rx, id)
}

/// The board's `accepted/needed` of a requirement, as the API has it.
async fn api_counts(app: &TestApp, id: &str, rid: &str) -> String {
    let v = app.incident(id).await;
    let r = req(&v, rid);
    format!("{}/{}", r["accepted"], r["needed"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commander_raises_a_drill_in_the_form_and_watches_it_fill_live() {
    let _one = ONE_BROWSER.lock().await;
    let (_r, rx, app) = app().await;
    let dir = temp_dir("browser-raise");
    let b = Browser::open(&dir, 1366, 900, true).await;
    let base = app.url("");
    b.sign_in(&base, "demo-township-commander").await;
    // Raise through the form: choose, preview the plan, confirm.
    b.click("header nav a[href='/incidents/new']").await;
    b.select("#kind", "flood").await;
    b.select("#level", "4").await;
    b.select("#region", "990101001").await;
    b.fill("#title", "东门桥下内涝（演练）").await;
    b.click("input[name=mode][value=drill]").await;
    b.click("form.raise button[type=submit]").await;
    let plan = b
        .until("section.preview h2", "the plan previewed", |t| {
            t.contains("flood")
        })
        .await;
    assert!(plan.contains("防汛"), "{plan}");
    let preview = b.text("section.preview").await;
    assert!(
        preview.contains("救援") && preview.contains('6'),
        "{preview}"
    );
    b.shot("preview").await;
    // A double click raises once: the second click's form carries the same key.
    b.js("const f = document.querySelector('form.confirm'); f.requestSubmit(); f.requestSubmit();")
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.path().await.starts_with("/incidents/") || b.path().await == "/incidents/new" {
        assert!(Instant::now() < deadline, "the board did not open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = b.path().await.trim_start_matches("/incidents/").to_string();
    let (s, list) = app.get("/v1/incidents", Some("demo-admin")).await;
    assert_eq!(s, 200);
    let raised = list["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["title"] == "东门桥下内涝（演练）")
        .count();
    assert_eq!(raised, 1, "one incident for the double click: {list}");
    assert_eq!(app.incident(&id).await["mode"], "drill");
    b.until("#live", "the board goes live", |t| t.contains("实时"))
        .await;
    assert!(b.text(".drill-banner").await.contains("演练"));
    // Answers arrive; the board counts them without reloading.
    b.js("window.__same_page = 'yes';").await;
    let calls = wait_callouts(&rx, &id, 3).await;
    let rescue: Vec<&Received> = calls
        .iter()
        .filter(|c| c.body["requirement_id"] == "rescue")
        .collect();
    let picks: Vec<&Received> = if rescue.len() >= 2 {
        rescue
    } else {
        calls.iter().collect()
    };
    for c in picks.iter().take(2) {
        let (s, body) = app.ack(&c.token(), "accept").await;
        assert_eq!(s, 200, "{body}");
    }
    app.idle().await;
    let v = app.incident(&id).await;
    for r in v["requirements"].as_array().unwrap() {
        let rid = r["id"].as_str().unwrap();
        let want = format!("{}/{}", r["accepted"], r["needed"]);
        b.until(
            &format!("tr[data-req='{rid}'] [data-f=accepted]"),
            "the board counts the answers live",
            |t| t == want,
        )
        .await;
    }
    let accepted: u64 = v["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["accepted"].as_u64().unwrap())
        .sum();
    assert_eq!(accepted, 2, "{v}");
    assert_eq!(
        b.js("return window.__same_page || 'reloaded';").await,
        "yes",
        "counted without a reload"
    );
    // The details follow too: the timeline shows the acceptances.
    b.until("ol.timeline", "the timeline shows the answers", |t| {
        t.contains("接受")
    })
    .await;
    b.shot("board-live").await;
    // Upgrade: the form offers the next level first.
    b.click("form[action$='/level'] button").await;
    eventually(Duration::from_secs(10), "upgraded to level III", || async {
        app.incident(&id).await["level"] == 3
    })
    .await;
    b.until("p.level .badge", "the board shows level III", |t| {
        t.contains("Ⅲ")
    })
    .await;
    // Stand down: refused without the confirmation, done with it.
    b.click("form[action$='/stand-down'] input[name=confirm]")
        .await;
    b.click("form[action$='/stand-down'] button").await;
    eventually(Duration::from_secs(10), "stood down", || async {
        app.incident(&id).await["status"] == "stood_down"
    })
    .await;
    b.until("[data-f=status]", "the board says stood down", |t| {
        t.contains("已解除")
    })
    .await;
    assert!(
        !b.has("form[action$='/stand-down']").await,
        "no command after the stand-down"
    );
    b.shot("stood-down").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_gets_no_buttons_and_a_township_sees_only_its_own() {
    let _one = ONE_BROWSER.lock().await;
    let (_r, _rx, app) = app().await;
    let own = raised(
        &app,
        "demo-admin",
        json!({"kind": "flood", "level": 4, "region": "990101001", "title": "东门内涝"}),
    )
    .await;
    let other = raised(
        &app,
        "demo-admin",
        json!({"kind": "flood", "level": 4, "region": "990101002", "title": "同县另一乡镇内涝"}),
    )
    .await;
    let dir = temp_dir("browser-roles");
    let base = app.url("");

    // A viewer: the board without command forms, names masked; a forged POST is refused.
    let b = Browser::open(&dir, 1280, 900, true).await;
    b.sign_in(&base, "demo-viewer").await;
    b.go(&format!("{base}/incidents/{own}")).await;
    b.until("h1", "the board opens", |t| t.contains("东门内涝"))
        .await;
    assert!(!b.has("form[action$='/level']").await);
    assert!(!b.has("form[action$='/stand-down']").await);
    assert!(
        !b.has("header nav a[href='/incidents/new']").await,
        "no raise link"
    );
    b.shot("viewer-board").await;
    // Its forged form: the stand-down a commander's board would send, with the viewer's own
    // session and CSRF secret.
    let status = b
        .client
        .execute_async(
            &format!(
                "const done = arguments[arguments.length - 1];
                 const csrf = document.querySelector('header input[name=csrf]').value;
                 fetch('/incidents/{own}/stand-down', {{method: 'POST',
                   headers: {{'Content-Type': 'application/x-www-form-urlencoded'}},
                   body: 'confirm=yes&csrf=' + encodeURIComponent(csrf)}})
                   .then(r => done(r.status), e => done(String(e)));"
            ),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, 403, "a viewer's forged stand-down");
    assert_eq!(app.incident(&own).await["status"], "mustering");
    b.go(&format!("{base}/incidents/new")).await;
    assert!(
        b.text("h1").await.contains("无权"),
        "the raise form is refused too"
    );
    b.close().await;

    // A township commander: its own incident, not the neighbour's.
    let b = Browser::open(&dir.join("township"), 1280, 900, true).await;
    b.sign_in(&base, "demo-township-commander").await;
    let home = b.text("main").await;
    assert!(
        home.contains("东门内涝") && !home.contains("同县另一乡镇内涝"),
        "{home}"
    );
    b.go(&format!("{base}/incidents/{other}")).await;
    assert!(
        b.text("h1").await.contains("未找到"),
        "the neighbour's board is not found"
    );
    b.shot("township-other").await;
    b.close().await;
}

/// A TCP proxy the test can cut: every connection dropped, new ones refused, until restored.
struct Cuttable {
    addr: std::net::SocketAddr,
    open: Arc<AtomicBool>,
    epoch: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Cuttable {
    async fn start(to: std::net::SocketAddr) -> Cuttable {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let (tx, _) = tokio::sync::watch::channel(0u64);
        let epoch = Arc::new(tx);
        let (o, e) = (open.clone(), epoch.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = l.accept().await else {
                    return;
                };
                if !o.load(Ordering::SeqCst) {
                    continue; // dropped: refused while cut
                }
                let mut cut = e.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(to).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Cuttable { addr, open, epoch }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.epoch.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_connection_is_cut_and_restored_the_board_equals_the_api() {
    let _one = ONE_BROWSER.lock().await;
    let (_r, rx, app) = app().await;
    let proxy = Cuttable::start(app.addr).await;
    let base = format!("http://{}", proxy.addr);
    let id = raised(
        &app,
        "demo-admin",
        json!({"kind": "flood", "level": 4, "region": "990101001", "title": "断线测试"}),
    )
    .await;
    let calls = wait_callouts(&rx, &id, 6).await;
    let dir = temp_dir("browser-cut");
    let b = Browser::open(&dir, 1280, 900, true).await;
    b.sign_in(&base, "demo-township-commander").await;
    b.go(&format!("{base}/incidents/{id}")).await;
    b.until("#live", "live", |t| t.contains("实时")).await;
    b.js("window.__same_page = 'yes';").await;
    // One answer while connected.
    let (s, _) = app.ack(&calls[0].token(), "accept").await;
    assert_eq!(s, 200);
    app.idle().await;
    let rid = calls[0].body["requirement_id"]
        .as_str()
        .unwrap()
        .to_string();
    let want = api_counts(&app, &id, &rid).await;
    b.until(
        &format!("tr[data-req='{rid}'] [data-f=accepted]"),
        "first answer",
        |t| t == want,
    )
    .await;
    // Cut: the page says so. Answers arrive meanwhile.
    proxy.cut();
    b.until("#live", "the page shows it is not live", |t| {
        t.contains("重连")
    })
    .await;
    b.shot("cut").await;
    for c in &calls[1..4] {
        let (s, body) = app.ack(&c.token(), "accept").await;
        assert_eq!(s, 200, "{body}");
    }
    let (s, _) = app.ack(&calls[4].token(), "decline").await;
    assert_eq!(s, 200);
    app.idle().await;
    // Restored: the stream resumes and every number equals the API's, none lost or doubled.
    proxy.restore();
    b.until("#live", "live again", |t| t.contains("实时")).await;
    let v = app.incident(&id).await;
    for r in v["requirements"].as_array().unwrap() {
        let rid = r["id"].as_str().unwrap();
        for (field, value) in [
            ("accepted", format!("{}/{}", r["accepted"], r["needed"])),
            ("declined", r["declined"].to_string()),
            ("standby", r["standby"].to_string()),
            (
                "waiting",
                (r["pending"].as_u64().unwrap() + r["notified"].as_u64().unwrap()).to_string(),
            ),
        ] {
            b.until(
                &format!("tr[data-req='{rid}'] [data-f={field}]"),
                &format!("{rid} {field} equals the API's"),
                |t| t == value,
            )
            .await;
        }
    }
    assert_eq!(
        b.js("return window.__same_page || 'reloaded';").await,
        "yes"
    );
    b.shot("restored").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volunteer_accepts_on_a_phone_without_javascript() {
    let _one = ONE_BROWSER.lock().await;
    let (_r, rx, app) = app().await;
    let id = raised(
        &app,
        "demo-admin",
        json!({"kind": "flood", "level": 4, "region": "990101001", "title": "东门内涝",
                   "location": "东门桥南侧"}),
    )
    .await;
    // A volunteer whose messages are in zh-CN (the page speaks each volunteer's locale).
    let calls = wait_callouts(&rx, &id, 6).await;
    let call = calls
        .into_iter()
        .find(|c| {
            c.body["message"]
                .as_str()
                .is_some_and(|m| m.contains("能来"))
        })
        .expect("a zh-CN volunteer among the first six called");
    let dir = temp_dir("browser-volunteer");
    let b = Browser::open(&dir, 390, 844, false).await;
    // JavaScript is really off in this browser.
    b.go("data:text/html,<title>off</title><script>document.title='on'</script>")
        .await;
    assert_eq!(b.client.title().await.unwrap(), "off", "scripts do not run");
    b.go(&app.url(&format!("/a/{}", call.token()))).await;
    let page = b.text("body").await;
    assert!(page.contains("东门内涝"), "the incident: {page}");
    assert!(page.contains("东门桥南侧"), "where to go: {page}");
    b.shot("volunteer-page").await;
    b.click("form:has(input[value=accept]) button").await;
    eventually(Duration::from_secs(10), "accepted", || async {
        let v = app.incident(&id).await;
        v["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["accepted"] == 1)
    })
    .await;
    let after = b.text("body").await;
    assert!(
        after.contains("已确认出动"),
        "the state after answering, in zh-CN: {after}"
    );
    b.shot("volunteer-accepted").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wall_follows_the_scope_and_comes_back_after_an_outage() {
    let _one = ONE_BROWSER.lock().await;
    let (_r, _rx, app) = app().await;
    let proxy = Cuttable::start(app.addr).await;
    let base = format!("http://{}", proxy.addr);
    let dir = temp_dir("browser-wall");
    let b = Browser::open(&dir, 1920, 1080, true).await;
    b.sign_in(&base, "demo-county-commander").await;
    b.go(&format!("{base}/wall")).await;
    assert!(!b.has("form").await, "no controls on the wall");
    assert!(b.text("main").await.contains("暂无进行中的事件"));
    // muster goes away: the wall says so and keeps trying.
    proxy.cut();
    b.until("#live", "the wall shows the outage", |t| t.contains("中断"))
        .await;
    b.shot("away").await;
    // Meanwhile an incident is raised; when muster is back the wall shows it by itself.
    raised(
        &app,
        "demo-admin",
        json!({"kind": "flood", "level": 2, "region": "990101001", "title": "大屏恢复测试"}),
    )
    .await;
    proxy.restore();
    b.until("main", "the wall shows the new incident", |t| {
        t.contains("大屏恢复测试")
    })
    .await;
    b.until("#live", "live again", |t| t.contains("实时")).await;
    assert!(
        b.text("main").await.contains("橙色"),
        "level Ⅱ's colour in words"
    );
    b.shot("back").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trainer_schedules_cancels_and_stands_down_drills_and_a_commander_confirms_a_cap_alert() {
    let _one = ONE_BROWSER.lock().await;
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let mut c = config(&redis.url(), &prefix(), &seed);
    c.cap.auto_raise = false;
    let app = TestApp::start(c, ManualClock::new()).await;
    let dir = temp_dir("browser-drills");
    let b = Browser::open(&dir, 1366, 900, true).await;
    let base = app.url("");
    b.sign_in(&base, "demo-county-trainer").await;
    b.click("header nav a[href='/drills']").await;
    // Without a simulator configured, only the real channels are offered.
    assert!(
        b.js("return document.querySelector('input[value=simulated]').disabled;")
            .await
            == true
    );
    // One drill tomorrow, one now.
    let tomorrow = {
        let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        let t = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24);
        tz.to_datetime(t).strftime("%Y-%m-%dT%H:%M").to_string()
    };
    for (title, at) in [("明早防汛演练", tomorrow.as_str()), ("即时演练", "")] {
        b.select("#kind", "flood").await;
        b.select("#level", "4").await;
        b.select("#region", "990101002").await;
        b.fill("#title", title).await;
        b.js(&format!("document.querySelector('#at').value = '{at}';"))
            .await;
        b.fill("#objectives", "15 分钟内集结 6 名救援队员").await;
        b.click("#schedule").await;
        b.until("table.drills", "the drill is listed", |t| t.contains(title))
            .await;
    }
    let (_, l) = app.get("/v1/drills", Some("demo-viewer")).await;
    let drills = l["drills"].as_array().unwrap();
    assert_eq!(drills.len(), 2, "{l}");
    let by_title = |t: &str| drills.iter().find(|d| d["title"] == t).unwrap().clone();
    let later = by_title("明早防汛演练");
    let now = by_title("即时演练");
    assert_eq!(later["status"], "scheduled");
    assert_eq!(now["status"], "running");
    assert_eq!(now["channels"], "real");
    assert_eq!(now["objectives"], "15 分钟内集结 6 名救援队员");
    b.shot("drills").await;
    // Cancel tomorrow's.
    b.click(&format!(
        "form[action='/drills/{}/cancel'] button",
        later["id"].as_str().unwrap()
    ))
    .await;
    b.until("tr.drill-cancelled", "the drill is cancelled", |t| {
        t.contains("已取消")
    })
    .await;
    // Open the running drill's board: the trainer may stand it down, not upgrade it.
    let iid = now["incident_id"].as_str().unwrap().to_string();
    b.go(&format!("{base}/incidents/{iid}")).await;
    assert!(
        !b.has("form[action$='/level']").await,
        "upgrades are the commanders'"
    );
    b.click("form[action$='/stand-down'] input[name=confirm]")
        .await;
    b.click("form[action$='/stand-down'] button").await;
    eventually(Duration::from_secs(10), "stood down", || async {
        app.incident(&iid).await["status"] == "stood_down"
    })
    .await;
    b.go(&format!("{base}/incidents/{iid}/report")).await;
    let report = b.text("article.report-page").await;
    assert!(report.contains("15 分钟内集结"), "the objectives: {report}");
    assert!(
        report.contains("第一次演练") || report.contains("暂无可比较"),
        "{report}"
    );
    b.shot("drill-report").await;

    // A CAP alert waits as a proposal; a commander confirms it on the incidents page.
    let alert = r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>CN-FLOOD-1</identifier><sender>qxj@demo.example</sender>
  <sent>2026-11-29T08:00:00+08:00</sent><status>Actual</status><msgType>Alert</msgType>
  <scope>Public</scope>
  <info><language>zh-CN</language><category>Met</category><event>暴雨</event>
    <urgency>Immediate</urgency><severity>黄色</severity><certainty>Likely</certainty>
    <headline>柳林镇暴雨黄色预警</headline>
    <area><areaDesc>柳林镇</areaDesc></area></info>
</alert>"#;
    let r = app
        .http
        .post(app.url("/v1/cap"))
        .bearer_auth("demo-county-commander")
        .header("content-type", "application/cap+xml")
        .body(alert)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    b.click("form[action='/logout'] button").await;
    b.sign_in(&base, "demo-county-commander").await;
    b.go(&format!("{base}/")).await;
    let p = b.text("section.proposals").await;
    assert!(
        p.contains("柳林镇暴雨黄色预警") && p.contains("柳林镇"),
        "{p}"
    );
    b.shot("cap-proposal").await;
    b.click("section.proposals form[action$='/confirm'] button")
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.path().await.starts_with("/incidents/") {
        assert!(Instant::now() < deadline, "the board did not open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = b.path().await.trim_start_matches("/incidents/").to_string();
    let v = app.incident(&id).await;
    assert_eq!(
        (&v["kind"], &v["level"], &v["region"]),
        (&json!("flood"), &json!(3), &json!("990101002"))
    );
    assert_eq!(
        v["cap"][0],
        "qxj@demo.example,CN-FLOOD-1,2026-11-29T08:00:00+08:00"
    );
    b.go(&format!("{base}/")).await;
    assert!(!b.has("section.proposals").await, "nothing waits any more");
    // The audit log shows what happened here, the confirmation among it.
    b.click("header nav a[href='/audit']").await;
    let log = b.text("table.audit").await;
    assert!(
        log.contains("cap.confirm") && log.contains("drill.schedule"),
        "{log}"
    );
    b.shot("audit").await;
    // On a phone the new pages keep to the screen's width: wide tables scroll in their box.
    b.client.set_window_size(390, 844).await.unwrap();
    for (path, name) in [
        ("/audit".to_string(), "audit-phone"),
        ("/drills".to_string(), "drills-phone"),
        (format!("/incidents/{iid}/report"), "drill-report-phone"),
    ] {
        b.go(&format!("{base}{path}")).await;
        let overflow = b
            .js("return document.documentElement.scrollWidth - document.documentElement.clientWidth;")
            .await;
        assert!(
            overflow.as_i64().unwrap_or(1) <= 0,
            "{path} overflows by {overflow} px"
        );
        b.shot(name).await;
    }
    app.idle().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_prints_a_certificate_that_anyone_can_verify() {
    let _one = ONE_BROWSER.lock().await;
    let (_r, rx, app) = app().await;
    let id = raised(
        &app,
        "demo-township-commander",
        json!({"kind": "flood", "level": 4, "region": "990101001", "title": "东门内涝"}),
    )
    .await;
    let calls = wait_callouts(&rx, &id, 3).await;
    let rescuer = calls
        .iter()
        .find(|c| c.body["requirement_id"] == "rescue")
        .unwrap();
    let (s, _) = app.ack(&rescuer.token(), "accept").await;
    assert_eq!(s, 200);
    let (s, _) = app.ack(&rescuer.token(), "arrived").await;
    assert_eq!(s, 200);
    let (s, _, _) = app
        .post(
            &format!("/v1/incidents/{id}/stand-down"),
            Some("demo-township-commander"),
            "",
        )
        .await;
    assert_eq!(s, 200);
    app.idle().await;
    let dir = temp_dir("browser-certificate");
    let b = Browser::open(&dir, 1200, 1000, true).await;
    let base = app.url("");
    b.sign_in(&base, "demo-county-coordinator").await;
    b.go(&format!("{base}/teams/t990101001-rescue")).await;
    b.click(&format!(
        "a.cert-link[href='/volunteers/{}/certificate']",
        rescuer.volunteer
    ))
    .await;
    let cert = b
        .until("article.certificate", "the certificate prints", |t| {
            t.contains("志愿服务记录证明")
        })
        .await;
    assert!(cert.contains("东湖区应急指挥中心"), "{cert}");
    b.shot("certificate").await;
    let code = b.text("#code").await;
    b.go(&format!("{base}/verify/{code}")).await;
    let verdict = b.text("#verdict").await;
    assert!(verdict.contains("真实有效"), "{verdict}");
    b.shot("verify").await;
    b.client.set_window_size(390, 844).await.unwrap();
    for (path, name) in [
        (format!("/verify/{code}"), "verify-phone"),
        (
            format!("/volunteers/{}/certificate", rescuer.volunteer),
            "certificate-phone",
        ),
    ] {
        b.go(&format!("{base}{path}")).await;
        let overflow = b
            .js("return document.documentElement.scrollWidth - document.documentElement.clientWidth;")
            .await;
        assert!(
            overflow.as_i64().unwrap_or(1) <= 0,
            "{path} overflows by {overflow} px"
        );
        b.shot(name).await;
    }
    b.close().await;
}
