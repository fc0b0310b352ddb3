//! The registry under races and crashes: each write is one script, so concurrent coordinators
//! cannot both win, a team deleted while its members are edited leaves no dangling
//! membership, and an import killed with SIGKILL leaves every row whole or absent.

mod common;

use common::*;
use muster::clock::ManualClock;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

const ADMIN: &str = "demo-admin";

async fn app() -> (TestRedis, Receiver, TestApp) {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), ManualClock::new()).await;
    (redis, rx, app)
}

/// Sends `n` copies of one request at once; the statuses, counted.
async fn race(
    app: &TestApp,
    n: usize,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> HashMap<u16, usize> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let (http, url) = (app.http.clone(), app.url(path));
        let mut body = body.clone();
        if let Some(name) = body.get("name").and_then(|v| v.as_str()) {
            body["name"] = json!(format!("{name}{i}"));
        }
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        tasks.push(tokio::spawn(async move {
            http.request(m, url)
                .bearer_auth(ADMIN)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut out = HashMap::new();
    for t in tasks {
        *out.entry(t.await.unwrap()).or_insert(0) += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_creates_with_one_phone_give_exactly_one_201() {
    let (redis, _rx, app) = app().await;
    let body = json!({"name": "抢", "phone": "+8613911115555", "teams": ["t990101001-rescue"]});
    let got = race(&app, 50, "POST", "/v1/volunteers", body).await;
    assert_eq!(got.get(&201), Some(&1), "{got:?}");
    assert_eq!(got.get(&409), Some(&49), "{got:?}");
    // The one who won is the one the phone index and the team's member set name.
    let store = app.store();
    let mut c = redis.conn().await;
    let owner: String = redis::cmd("HGET")
        .arg(store.keys.phones())
        .arg("+8613911115555")
        .query_async(&mut c)
        .await
        .unwrap();
    let member: bool = redis::cmd("SISMEMBER")
        .arg(store.keys.team_members("t990101001-rescue"))
        .arg(&owner)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(member);
    assert_registry_consistent(&redis, &store).await;
    // Ten concurrent creates of one team id: one 201, the first is never overwritten.
    let team = json!({"id": "t-race", "name": "队", "kind": "rescue", "region": "990101001"});
    let got = race(&app, 10, "POST", "/v1/teams", team).await;
    assert_eq!(got.get(&201), Some(&1), "{got:?}");
    assert_eq!(got.get(&409), Some(&9), "{got:?}");
    let (s, t) = app.get("/v1/teams/t-race", Some(ADMIN)).await;
    assert_eq!(s, 200, "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_team_deleted_while_its_members_are_edited_leaves_no_dangling_membership() {
    let (redis, _rx, app) = app().await;
    for round in 0..5 {
        let tid = format!("t-doomed-{round}");
        let (s, b) = app
            .json(
                "POST",
                "/v1/teams",
                ADMIN,
                json!({"id": tid, "name": "将删", "kind": "rescue", "region": "990101001"}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        let mut vids = Vec::new();
        for i in 0..8 {
            let (s, b) = app
                .json(
                    "POST",
                    "/v1/volunteers",
                    ADMIN,
                    json!({"name": "成员", "phone": format!("+86139222{round}{i:04}"), "teams": [&tid]}),
                )
                .await;
            assert_eq!(s, 201, "{b}");
            vids.push(b["id"].as_str().unwrap().to_string());
        }
        // Edits that put members into the team and take them out race the delete.
        let mut tasks = Vec::new();
        for (i, v) in vids.iter().enumerate() {
            let (http, url) = (app.http.clone(), app.url(&format!("/v1/volunteers/{v}")));
            let teams = if i % 2 == 0 {
                json!([&tid, "t990101001-rescue"])
            } else {
                json!(["t990101001-first_aid"])
            };
            tasks.push(tokio::spawn(async move {
                http.patch(url)
                    .bearer_auth(ADMIN)
                    .json(&json!({"teams": teams}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
        let del = {
            let (http, url) = (app.http.clone(), app.url(&format!("/v1/teams/{tid}")));
            tokio::spawn(async move {
                http.delete(url)
                    .bearer_auth(ADMIN)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        };
        for t in tasks {
            let s = t.await.unwrap();
            assert!([200, 409, 422].contains(&s), "{s}");
        }
        assert_eq!(del.await.unwrap(), 204);
        // Nobody names the team, and it has no member set, roster or index entry.
        for v in &vids {
            let (_, b) = app.get(&format!("/v1/volunteers/{v}"), Some(ADMIN)).await;
            let teams: Vec<&str> = b["teams"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            assert!(!teams.contains(&tid.as_str()), "{v} still names {tid}: {b}");
        }
        let mut c = redis.conn().await;
        let p = app.store().keys.clone();
        let exists: i64 = redis::cmd("EXISTS")
            .arg(p.team(&tid))
            .arg(p.team_members(&tid))
            .arg(p.roster(&tid))
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(exists, 0);
        let indexed: bool = redis::cmd("SISMEMBER")
            .arg(p.teams())
            .arg(&tid)
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(!indexed);
        assert_registry_consistent(&redis, &app.store()).await;
    }
}

/// A connection without a response timeout: the checks read a whole registry at once.
async fn patient(redis: &TestRedis) -> redis::aio::MultiplexedConnection {
    let cfg = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
        .unwrap()
}

/// Every volunteer hash is whole (all its fields) and indexed (phone, team member sets), and
/// every index entry points at a whole volunteer: nothing half-written. Returns how many
/// volunteers are whole.
async fn assert_registry_consistent(redis: &TestRedis, store: &muster::store::Store) -> usize {
    let mut c = patient(redis).await;
    let k = &store.keys;
    let vol_keys: Vec<String> = redis::cmd("KEYS")
        .arg(k.volunteer("*"))
        .query_async(&mut c)
        .await
        .unwrap();
    let vol_keys: Vec<String> = vol_keys
        .into_iter()
        .filter(|k| !k.ends_with(":deploy"))
        .collect();
    let phones: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(k.phones())
        .query_async(&mut c)
        .await
        .unwrap();
    let teams: Vec<String> = redis::cmd("SMEMBERS")
        .arg(k.teams())
        .query_async(&mut c)
        .await
        .unwrap();
    let mut members: HashMap<String, HashSet<String>> = HashMap::new();
    for t in &teams {
        let m: HashSet<String> = redis::cmd("SMEMBERS")
            .arg(k.team_members(t))
            .query_async(&mut c)
            .await
            .unwrap();
        members.insert(t.clone(), m);
    }
    let mut whole = HashSet::new();
    for chunk in vol_keys.chunks(2000) {
        let mut p = redis::pipe();
        for key in chunk {
            p.cmd("HGETALL").arg(key);
        }
        let hashes: Vec<HashMap<String, String>> = p.query_async(&mut c).await.unwrap();
        for (key, h) in chunk.iter().zip(hashes) {
            let id = key.rsplit(':').next().unwrap().to_string();
            if h.get("status").map(String::as_str) == Some("erased") {
                continue;
            }
            for f in [
                "name", "phone", "locale", "status", "teams", "updated", "created",
            ] {
                assert!(h.contains_key(f), "{key} lacks {f}: {h:?}");
            }
            assert_eq!(phones.get(&h["phone"]), Some(&id), "{key}: phone index");
            for t in h["teams"].split(';').filter(|t| !t.is_empty()) {
                assert!(
                    members.get(t).is_some_and(|m| m.contains(&id)),
                    "{key} is not in {t}'s member set"
                );
            }
            whole.insert(id);
        }
    }
    for (phone, id) in &phones {
        assert!(
            whole.contains(id),
            "the phone index names {id} for {phone}, which is not whole"
        );
    }
    for (t, ms) in &members {
        for m in ms {
            assert!(
                whole.contains(m),
                "{t}'s member set names {m}, which is not whole"
            );
        }
    }
    whole.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_mid_import_leaves_every_row_whole_or_absent() {
    let redis = TestRedis::start().await;
    let data = temp_dir("import-kill");
    let csv = data.join("big.csv");
    let mut text = String::from("姓名,手机号,所属队伍,保险有效期\n");
    for i in 0..30_000 {
        text.push_str(&format!(
            "队员{i},1370{i:07},t990101001-rescue;t990101001-first_aid,2027-12-31\n"
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let prefix = prefix();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_muster"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["import", "volunteers"])
        .arg(&csv)
        .env("MUSTER__REDIS__URL", redis.url())
        .env("MUSTER__REDIS__PREFIX", &prefix)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it has written some rows but not all.
    let store = muster::store::Store::connect(&redis.url(), &prefix, 8)
        .await
        .unwrap();
    let mut c = redis.conn().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n: usize = redis::cmd("HLEN")
            .arg(store.keys.phones())
            .query_async(&mut c)
            .await
            .unwrap();
        if n > 2_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the import never got going"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import finished before it could be killed"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    unsafe { libc_kill(child.id() as i32, 9) };
    child.wait().unwrap();
    let whole = assert_registry_consistent(&redis, &store).await;
    assert!(
        whole > 2_000 && whole < 30_000,
        "killed mid-way: {whole} whole volunteers"
    );
    // Running it again completes it: every row there exactly once.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_muster"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["import", "volunteers"])
        .arg(&csv)
        .env("MUSTER__REDIS__URL", redis.url())
        .env("MUSTER__REDIS__PREFIX", &prefix)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let phones: usize = redis::cmd("HLEN")
        .arg(store.keys.phones())
        .query_async(&mut patient(&redis).await)
        .await
        .unwrap();
    let seeded = assert_registry_consistent(&redis, &store).await;
    assert_eq!(phones, seeded);
    assert!(seeded >= 30_000, "{seeded}");
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// A roster entry goes in the same script as the membership it rests on: the store's erase
/// alone (no API step after it) leaves no roster naming the volunteer, leaving a team by a
/// PATCH takes them out of that team's roster, and a roster written by someone else between
/// the read and the script is not overwritten (the write is read again and retried).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_entries_go_with_the_membership_in_one_script() {
    let (_redis, _rx, app) = app().await;
    let team = "t990101001-rescue";
    let mut ids = Vec::new();
    for (i, phone) in ["+8613911116001", "+8613911116002", "+8613911116003"]
        .iter()
        .enumerate()
    {
        let (s, b) = app
            .json(
                "POST",
                "/v1/volunteers",
                ADMIN,
                json!({"name": format!("轮{i}"), "phone": phone, "teams": [team, "t990101001-first_aid"]}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        ids.push(b["id"].as_str().unwrap().to_string());
    }
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);
    let roster = json!({
        "layers": [
            {"id": "day", "members": [a, b], "on_call": 2, "shift": "1d", "start": "2026-11-01T08:00", "time_zone": "Asia/Shanghai"},
            {"id": "solo", "members": [a], "on_call": 1, "shift": "1w", "start": "2026-11-01T08:00", "time_zone": "Asia/Shanghai"}
        ],
        "overrides": [{"id": "o1", "volunteer": c, "replaces": a, "start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"}]
    });
    let (s, r) = app
        .json("PUT", &format!("/v1/teams/{team}/roster"), ADMIN, roster)
        .await;
    assert_eq!(s, 200, "{r}");
    let store = app.store();
    let (v1, _) = store.roster_doc(team).await.unwrap();
    // Erase at the store: one script.
    store
        .erase_volunteer(a, 1, &muster::store::audit::AuditEntry::default())
        .await
        .unwrap();
    let (v2, doc) = store.roster_doc(team).await.unwrap();
    let doc = doc.unwrap();
    assert_eq!(v2, v1 + 1, "the roster's version moves with the erasure");
    assert_eq!(doc.layers.len(), 1, "{doc:?}");
    assert_eq!(doc.layers[0].members, vec![b.clone()]);
    assert_eq!(doc.layers[0].on_call, 1);
    assert!(doc.overrides.is_empty(), "{doc:?}");
    // Leaving a team by PATCH takes them out of that roster, and only that one.
    let (s, v) = app
        .json(
            "PATCH",
            &format!("/v1/volunteers/{b}"),
            ADMIN,
            json!({"teams": ["t990101001-first_aid"]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, doc) = store.roster_doc(team).await.unwrap();
    assert!(doc.unwrap().layers.is_empty());
    // A coordinator who read the roster before an erasure cannot write it back over the
    // erasure: the script moved the version, so that write is refused (409).
    let (s, r) = app
        .json(
            "PUT",
            &format!("/v1/teams/{team}/roster"),
            ADMIN,
            json!({"layers": [{"id": "n", "members": [c], "on_call": 1, "shift": "12h", "start": "2026-11-01T20:00", "time_zone": "Asia/Shanghai"}]}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let (read, _) = store.roster_doc(team).await.unwrap();
    let (s, v) = app
        .send(
            "DELETE",
            &format!("/v1/volunteers/{c}"),
            Some(ADMIN),
            vec![],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (after, doc) = store.roster_doc(team).await.unwrap();
    assert_eq!(after, read + 1);
    assert!(doc.unwrap().layers.is_empty());
    let (s, r) = app
        .json(
            "PUT",
            &format!("/v1/teams/{team}/roster"),
            ADMIN,
            json!({"version": read, "layers": []}),
        )
        .await;
    assert_eq!(s, 409, "{r}");
}
