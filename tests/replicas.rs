//! `redis.wait_replicas`: on a master with one replica, a change's 2xx is sent once the
//! replica has it; with the replica gone, the change is made but answered 503 (not
//! confirmed), and reads go on.

mod common;

use common::*;
use muster::clock::ManualClock;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A redis-server on a TCP port of its own (replication needs TCP), optionally a replica.
struct Node {
    child: Child,
    port: u16,
}

impl Node {
    fn start(dir: &std::path::Path, replica_of: Option<u16>) -> Node {
        let port = free_port();
        let d = dir.join(port.to_string());
        std::fs::create_dir_all(&d).unwrap();
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(&d)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if let Some(m) = replica_of {
            cmd.args(["--replicaof", "127.0.0.1", &m.to_string()]);
        }
        Node {
            child: cmd.spawn().expect("redis-server starts"),
            port,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_answered_once_its_replica_has_it() {
    let dir = temp_dir("replicas");
    let master = Node::start(&dir, None);
    let mut replica = Node::start(&dir, Some(master.port));
    // Wait until both answer and the replica is in sync.
    eventually(Duration::from_secs(20), "the replica is linked", || {
        let url = replica.url();
        async move {
            let Ok(client) = redis::Client::open(url) else {
                return false;
            };
            let Ok(mut c) = client.get_multiplexed_async_connection().await else {
                return false;
            };
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut c)
                .await
                .unwrap_or_default();
            info.contains("master_link_status:up")
        }
    })
    .await;
    let rx = Receiver::start().await;
    let seed = seed_dir(&rx.base(), 0);
    let pfx = prefix();
    let mut c = config(&master.url(), &pfx, &seed);
    c.redis.wait_replicas = 1;
    let app = TestApp::start(c, ManualClock::new()).await;
    let (s, ready) = app.get("/readyz", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        (&ready["role"], &ready["replicas"], &ready["replicas_ok"]),
        (&json!("master"), &json!(1), &json!(true)),
        "{ready}"
    );
    let body = json!({"kind": "flood", "level": 4, "region": "990101001", "title": "东门内涝"});
    let (s, inc) = app.raise("demo-township-commander", body.clone()).await;
    assert_eq!(s, 201, "{inc}");
    let id = inc["id"].as_str().unwrap().to_string();
    // The 201 came after the replica had the incident.
    let mut rc = replica.conn().await;
    let key = app
        .store()
        .keys
        .incident(&muster::domain::incident::IncidentId::parse(&id).unwrap());
    let there: i64 = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut rc)
        .await
        .unwrap();
    assert_eq!(there, 1, "the replica has the raise when it is answered");

    // The replica goes: a change is made but not confirmed (503, saying so); reads go on.
    replica.kill();
    eventually(
        Duration::from_secs(20),
        "the master sees the replica gone",
        || {
            let url = master.url();
            async move {
                let mut c = redis::Client::open(url)
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap();
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query_async(&mut c)
                    .await
                    .unwrap_or_default();
                info.contains("connected_slaves:0")
            }
        },
    )
    .await;
    let (_, ready) = app.get("/readyz", None).await;
    assert_eq!(
        ready["replicas_ok"], false,
        "readiness says changes cannot be confirmed: {ready}"
    );
    let (s, b) = app.stand_down(&id).await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(b["type"], "urn:muster:problem:not-replicated", "{b}");
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("the change was made"),
        "{b}"
    );
    let (s, v) = app
        .get(&format!("/v1/incidents/{id}"), Some("demo-viewer"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], "stood_down", "made on the master all the same");
    app.stop().await;
}
