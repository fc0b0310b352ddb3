//! The audit log through the real API: each audited action is exactly one entry with the right
//! actor and target, a refusal is an entry and no change; a burst of registry changes cut by a
//! crash leaves every change with its entry and every entry with its change; and `muster audit
//! verify` (the real binary) passes an untouched log and names an entry changed, removed or
//! inserted by hand in Redis, exit 1.

mod common;

use common::*;
use muster::clock::ManualClock;
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

/// Waits until the sealer has sealed every entry.
async fn sealed(app: &TestApp) {
    let store = app.store();
    eventually(Duration::from_secs(20), "the audit log is sealed", || {
        let store = store.clone();
        async move { store.audit_unsealed().await.unwrap() == 0 }
    })
    .await;
}

async fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let (s, b) = app
        .get(&format!("/v1/audit{query}"), Some("demo-admin"))
        .await;
    assert_eq!(s, 200, "{b}");
    b["entries"].as_array().unwrap().clone()
}

fn of<'a>(es: &'a [Value], action: &str) -> Vec<&'a Value> {
    es.iter().filter(|e| e["action"] == action).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_action_is_one_entry_with_its_actor_and_target() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let app = TestApp::start(config(&redis.url(), &prefix(), &seed), ManualClock::new()).await;
    let cmd = "demo-township-commander";
    let id = raised(
        &app,
        cmd,
        json!({"kind": "flood", "level": 4, "region": "990101001", "title": "东门内涝"}),
    )
    .await;
    let (s, _) = app
        .json(
            "POST",
            &format!("/v1/incidents/{id}/level"),
            cmd,
            json!({"level": 3}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _, _) = app
        .post(&format!("/v1/incidents/{id}/stand-down"), Some(cmd), "")
        .await;
    assert_eq!(s, 200);
    // Standing down twice changes nothing and is no second entry.
    let (s, _, _) = app
        .post(&format!("/v1/incidents/{id}/stand-down"), Some(cmd), "")
        .await;
    assert_eq!(s, 200);
    // Registry: create, suspend, erase (the coordinator); a team and its roster.
    let coord = "demo-county-coordinator";
    let (s, v) = app
        .json(
            "POST",
            "/v1/volunteers",
            coord,
            json!({"name": "王小明", "phone": "+8613912345678", "teams": ["t990101001-rescue"],
                   "home_region": "990101001"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let vid = v["id"].as_str().unwrap().to_string();
    let (s, _) = app
        .json(
            "PATCH",
            &format!("/v1/volunteers/{vid}"),
            coord,
            json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(s, 200);
    let until = muster::clock::rfc3339(muster::clock::wall_ms() + 86_400_000);
    let (s, u) = app
        .json(
            "POST",
            &format!("/v1/volunteers/{vid}/unavailability"),
            coord,
            json!({"until": until, "reason": "住院治疗"}),
        )
        .await;
    assert_eq!(s, 200, "{u}");
    let (s, _) = app
        .json("DELETE", &format!("/v1/volunteers/{vid}"), coord, json!({}))
        .await;
    assert_eq!(s, 200);
    let (s, t) = app
        .json(
            "POST",
            "/v1/teams",
            coord,
            json!({"id": "t990101002-boats", "name": "柳林镇冲锋舟队", "kind": "rescue", "region": "990101002"}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    // Refused: a viewer may not raise; nothing is raised, and the refusal is an entry.
    let before = app
        .get("/v1/incidents?status=all", Some("demo-admin"))
        .await
        .1["incidents"]
        .as_array()
        .unwrap()
        .len();
    for _ in 0..3 {
        let (s, _) = app
            .raise(
                "demo-viewer",
                json!({"kind": "flood", "level": 4, "region": "990101001", "title": "x"}),
            )
            .await;
        assert_eq!(s, 403);
    }
    let after = app
        .get("/v1/incidents?status=all", Some("demo-admin"))
        .await
        .1["incidents"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "a refusal changes nothing");
    app.idle().await;
    sealed(&app).await;

    let es = audit(&app, "").await;
    let raise = of(&es, "incident.raise");
    assert_eq!(raise.len(), 1, "{es:?}");
    assert_eq!(raise[0]["target"], id.as_str());
    assert_eq!(raise[0]["role"], "commander");
    assert_eq!(raise[0]["region"], "990101001");
    assert_eq!(raise[0]["outcome"], "ok");
    assert!(raise[0]["sealed"].as_bool().unwrap());
    assert!(
        !raise[0]["request"].as_str().unwrap().is_empty(),
        "the request id"
    );
    assert_eq!(of(&es, "incident.upgrade").len(), 1);
    assert!(
        of(&es, "incident.upgrade")[0]["detail"]
            .as_str()
            .unwrap()
            .contains("4 → 3")
    );
    assert_eq!(
        of(&es, "incident.stand_down").len(),
        1,
        "once, though asked twice"
    );
    assert_eq!(of(&es, "volunteer.create").len(), 1);
    assert_eq!(of(&es, "volunteer.suspend").len(), 1);
    let erase = of(&es, "volunteer.erase");
    assert_eq!(erase.len(), 1);
    assert_eq!(erase[0]["target"], vid.as_str());
    assert_eq!(erase[0]["actor"], of(&es, "volunteer.create")[0]["actor"]);
    assert_eq!(of(&es, "team.create").len(), 1);
    assert_eq!(of(&es, "volunteer.unavailable").len(), 1);
    let refused = of(&es, "auth.refused");
    assert_eq!(refused.len(), 1, "three refusals in one minute: one entry");
    assert_eq!(refused[0]["target"], "POST /v1/incidents");
    assert_eq!(refused[0]["detail"], "403");
    // No entry holds a full phone number or a name.
    let all = serde_json::to_string(&es).unwrap();
    assert!(
        !all.contains("13912345678") && !all.contains("王小明"),
        "{all}"
    );
    assert!(
        !all.contains("住院"),
        "never the reason a volunteer is away: {all}"
    );
    assert!(
        all.contains("+86 139****5678"),
        "the phone masked in the create's detail"
    );

    // Filters and scope: a township commander reads its own region's entries only.
    let mine = audit(&app, "?action=incident.").await;
    assert_eq!(mine.len(), 3);
    let (_, b) = app.get("/v1/audit?actor=nobody", Some("demo-admin")).await;
    assert_eq!(b["entries"], json!([]));
    let (_, other) = app.get("/v1/audit", Some("demo-county-commander")).await;
    assert!(
        other["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| { e["region"].as_str().unwrap().starts_with("990101") })
    );
    let (_, far) = app.get("/v1/audit", Some("demo-township-commander")).await;
    assert!(
        far["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["region"] == "990101001"),
        "{far}"
    );
    assert!(
        far["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"] != "auth.refused"),
        "refusals are the admins'"
    );
    let csv = app
        .http
        .get(app.url("/v1/audit?format=csv"))
        .bearer_auth("demo-admin")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("at,actor,role"));
    assert_eq!(csv.lines().count(), es.len() + 1);
    // The command centre's page shows the same entries, filtered the same way.
    let b = browser();
    let (s, _) = sign_in(&app, &b, "demo-county-commander").await;
    assert_eq!(s, 303);
    let page = b
        .get(app.url("/audit?action=incident."))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("审计日志") && page.contains("incident.raise"),
        "{page}"
    );
    assert!(!page.contains("volunteer.create"), "filtered: {page}");
    app.stop().await;
}

/// `muster audit verify` on this test's Redis and prefix.
fn verify(redis: &TestRedis, prefix: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_muster"))
        .args(["audit", "verify"])
        .env("MUSTER__REDIS__URL", redis.url())
        .env("MUSTER__REDIS__PREFIX", prefix)
        .env("MUSTER__AUDIT__KEY", AUDIT_KEY)
        .env("MUSTER__ENGINE__PARTITIONS", "4")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Rewrites chain `chain` by hand: its entries (id, fields) as `edit` leaves them.
async fn rewrite(
    redis: &TestRedis,
    chain: &str,
    edit: impl FnOnce(&mut Vec<(String, Vec<(String, String)>)>),
) {
    let mut c = redis.conn().await;
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(chain)
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut es: Vec<(String, Vec<(String, String)>)> = reply
        .ids
        .into_iter()
        .map(|e| {
            let mut f: Vec<(String, String)> = e
                .map
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        redis::from_redis_value::<String>(v.clone()).unwrap(),
                    )
                })
                .collect();
            f.sort();
            (e.id, f)
        })
        .collect();
    edit(&mut es);
    let _: () = redis::cmd("DEL")
        .arg(chain)
        .query_async(&mut c)
        .await
        .unwrap();
    for (id, f) in es {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(chain).arg(&id);
        for (k, v) in f {
            cmd.arg(k).arg(v);
        }
        let _: String = cmd.query_async(&mut c).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_an_entry_changed_removed_or_inserted_by_hand() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let pfx = prefix();
    let app = TestApp::start(config(&redis.url(), &pfx, &seed), ManualClock::new()).await;
    // Five registry changes: five entries on the `P:audit` chain.
    for i in 0..5 {
        let (s, v) = app
            .json(
                "POST",
                "/v1/volunteers",
                "demo-county-coordinator",
                json!({"name": format!("队员{i}"), "phone": format!("+86139555000{i:02}"),
                       "teams": ["t990101001-rescue"], "home_region": "990101001"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    sealed(&app).await;
    app.stop().await;
    let (code, out) = verify(&redis, &pfx);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("audit log intact"), "{out}");
    let chain = format!("{pfx}:{{g}}:audit");

    // Changed: the third entry's actor.
    let mut third = String::new();
    rewrite(&redis, &chain, |es| {
        third = es[2].0.clone();
        for f in es[2].1.iter_mut() {
            if f.0 == "actor" {
                f.1 = "someone else".into();
            }
        }
    })
    .await;
    let (code, out) = verify(&redis, &pfx);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("entry {third} was changed")), "{out}");

    // Put it back: intact again. Then remove the second.
    let mut saved = Vec::new();
    rewrite(&redis, &chain, |es| {
        for f in es[2].1.iter_mut() {
            if f.0 == "actor" {
                f.1 = "东湖区志愿者协调员".into();
            }
        }
        saved = es.clone();
    })
    .await;
    let (code, out) = verify(&redis, &pfx);
    assert_eq!(code, 0, "restored: {out}");
    let second = saved[1].0.clone();
    rewrite(&redis, &chain, |es| {
        es.remove(1);
    })
    .await;
    let (code, out) = verify(&redis, &pfx);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "entry {second} (after {}) was removed",
            saved[0].0
        )),
        "{out}"
    );

    // Inserted: the original five and one more between the first and the second.
    let (ms, _) = saved[0].0.split_once('-').unwrap();
    let forged = format!("{ms}-99");
    rewrite(&redis, &chain, |es| {
        *es = saved.clone();
        let mut f = saved[0].1.clone();
        for x in f.iter_mut() {
            if x.0 == "action" {
                x.1 = "volunteer.erase".into();
            }
        }
        es.insert(1, (forged.clone(), f));
    })
    .await;
    let (code, out) = verify(&redis, &pfx);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("entry {forged} was inserted")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_burst_leaves_every_change_with_its_entry() {
    let redis = TestRedis::start().await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let pfx = prefix();
    let c = config(&redis.url(), &pfx, &seed);
    let app = TestApp::start(c.clone(), ManualClock::new()).await;
    // A burst of creates, many in flight when the process is killed.
    let base = app.url("/v1/volunteers");
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (http, base) = (http.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let _ = http
                .post(&base)
                .bearer_auth("demo-county-coordinator")
                .json(
                    &json!({"name": format!("突击队员{i}"), "phone": format!("+861370000{i:04}"),
                              "teams": ["t990101001-rescue"], "home_region": "990101001"}),
                )
                .send()
                .await;
        }));
    }
    // Killed as soon as some creates have landed (their entries are the only ones on the
    // `P:audit` chain), with the rest of the burst in flight.
    let probe = redis.conn().await;
    let chain = format!("{pfx}:{{g}}:audit");
    eventually(Duration::from_secs(20), "some creates land", || {
        let (mut c, key) = (probe.clone(), chain.clone());
        async move {
            let n: i64 = redis::cmd("XLEN")
                .arg(key)
                .query_async(&mut c)
                .await
                .unwrap_or(0);
            n >= 20
        }
    })
    .await;
    app.kill();
    for t in tasks {
        let _ = t.await;
    }
    // Every volunteer created is one entry, and every entry one volunteer.
    let mut conn = redis.conn().await;
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(format!("{pfx}:{{g}}:audit"))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut entries: Vec<String> = reply
        .ids
        .iter()
        .filter(|e| e.get::<String>("action").as_deref() == Some("volunteer.create"))
        .filter_map(|e| e.get::<String>("target"))
        .collect();
    let phones: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{pfx}:{{g}}:phones"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut created: Vec<String> = phones
        .iter()
        .filter(|(p, _)| p.starts_with("+861370000"))
        .map(|(_, v)| v.clone())
        .collect();
    entries.sort();
    created.sort();
    assert!(!created.is_empty(), "some creates landed before the kill");
    assert_eq!(
        entries, created,
        "each change has its entry and each entry its change"
    );
    // A fresh instance seals what the dead one left, and the log verifies.
    let app = TestApp::start(c, ManualClock::new()).await;
    sealed(&app).await;
    app.stop().await;
    let (code, out) = verify(&redis, &pfx);
    assert_eq!(code, 0, "{out}");
}
