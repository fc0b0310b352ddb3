//! Real `muster serve` processes sharing one Redis (or Cluster), for crash tests.

use super::*;
use std::process::{Child, Command};

const T: Duration = Duration::from_secs(60);

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Real `muster serve` processes sharing one Redis, stopped (SIGTERM) when dropped.
pub struct Nodes {
    pub procs: Vec<Option<Child>>,
    pub ports: Vec<u16>,
    pub http: reqwest::Client,
}

impl Nodes {
    /// Starts `n` processes named `node0`… and waits until each is ready.
    pub async fn start(
        n: usize,
        redis_url: &str,
        prefix: &str,
        seed: &std::path::Path,
        extra: &[(&str, String)],
    ) -> Nodes {
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        // Each node's log, kept for a failing run to be read.
        let logs = temp_dir("nodes");
        eprintln!("node logs in {}", logs.display());
        let procs = ports
            .iter()
            .enumerate()
            .map(|(i, port)| {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_muster"));
                cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
                    .arg("serve")
                    .env("MUSTER__REDIS__URL", redis_url)
                    .env("MUSTER__REDIS__PREFIX", prefix)
                    .env("MUSTER__SEED__DIR", seed)
                    .env("MUSTER__HTTP__ADDR", format!("127.0.0.1:{port}"))
                    .env("MUSTER__ENGINE__CONSUMER", format!("node{i}"))
                    .env("MUSTER__ENGINE__RECLAIM_IDLE_MS", "2000")
                    .env("MUSTER__ENGINE__RECLAIM_INTERVAL_MS", "300")
                    .env("MUSTER__LOG__LEVEL", "warn")
                    .stdout(std::fs::File::create(logs.join(format!("node{i}.log"))).unwrap())
                    .stderr(std::fs::File::create(logs.join(format!("node{i}.err"))).unwrap());
                for (k, v) in extra {
                    cmd.env(k, v);
                }
                Some(cmd.spawn().unwrap())
            })
            .collect();
        let nodes = Nodes {
            procs,
            ports,
            http: reqwest::Client::new(),
        };
        for p in &nodes.ports {
            let start = Instant::now();
            loop {
                if let Ok(r) = nodes
                    .http
                    .get(format!("http://127.0.0.1:{p}/readyz"))
                    .send()
                    .await
                    && r.status() == 200
                {
                    break;
                }
                assert!(start.elapsed() < T, "instance on {p} never became ready");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        nodes
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) {
        let mut p = self.procs[i].take().expect("node alive");
        p.kill().unwrap();
        p.wait().unwrap();
    }

    pub async fn raise(&self, i: usize, body: serde_json::Value) -> String {
        let r = self
            .http
            .post(format!("http://127.0.0.1:{}/v1/incidents", self.ports[i]))
            .bearer_auth("demo-township-commander")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let inc: serde_json::Value = r.json().await.unwrap();
        inc["id"].as_str().unwrap().to_string()
    }

    pub async fn incident(&self, i: usize, id: &str) -> serde_json::Value {
        self.http
            .get(format!(
                "http://127.0.0.1:{}/v1/incidents/{id}",
                self.ports[i]
            ))
            .bearer_auth("demo-viewer")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Re-sends counted in the `/metrics` of the nodes still alive.
    pub async fn resends(&self) -> u64 {
        let mut sum = 0;
        for (i, port) in self.ports.iter().enumerate() {
            if self.procs[i].is_none() {
                continue;
            }
            let base = format!("http://127.0.0.1:{port}");
            sum += metric(&self.http, &base, "muster_delivery_resends_total", &[]).await as u64;
        }
        sum
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for p in self.procs.iter_mut().flatten() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(p.id().to_string())
                .status();
            let _ = p.wait();
        }
    }
}

/// The callouts of incident `id` the receiver got.
pub fn delivered_of(rx: &Receiver, id: &str) -> Vec<Received> {
    rx.delivered("callout")
        .into_iter()
        .filter(|r| r.body["incident"]["id"] == id)
        .collect()
}

/// Sum of a requirement field over an incident's requirements.
pub fn sum_of(inc: &serde_json::Value, field: &str) -> u64 {
    inc["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[field].as_u64().unwrap())
        .sum()
}

/// Duplicate deliveries (same callout more than once).
pub fn duplicates(got: &[Received]) -> usize {
    let mut per: HashMap<String, usize> = HashMap::new();
    for r in got {
        *per.entry(r.callout_id()).or_default() += 1;
    }
    per.values().map(|n| n - 1).sum()
}
