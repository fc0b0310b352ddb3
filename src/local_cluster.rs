//! A real local Redis Cluster of child processes: three masters and three replicas
//! (`redis-server --cluster-enabled yes`, joined by `redis-cli --cluster create … --cluster-yes`)
//! on free loopback ports, with a short node timeout so a failover takes a second or two. The
//! Cluster tests and benchmarks run on it; each node can be killed and restarted. A helper
//! for those: it panics when the cluster cannot be set up.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One node of the test cluster.
pub struct ClusterNode {
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
}

impl ClusterNode {
    fn spawn(port: u16, dir: PathBuf) -> ClusterNode {
        std::fs::create_dir_all(&dir).unwrap();
        let mut n = ClusterNode {
            port,
            child: None,
            dir,
        };
        n.start();
        n
    }

    fn start(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
            .args(["--cluster-config-file", "nodes.conf"])
            .args(["--appendonly", "yes", "--appendfsync", "everysec"])
            .args(["--save", ""])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (is it installed?)");
        self.child = Some(child);
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(format!("redis://{}", self.addr()))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// SIGKILL: the node stops where it is.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP (`frozen`) or SIGCONT: a node that stops answering without closing its
    /// connections, as a stalled host or a long pause does.
    pub fn freeze(&self, frozen: bool) {
        if let Some(c) = &self.child {
            let signal = if frozen { "-STOP" } else { "-CONT" };
            let _ = Command::new("kill")
                .args([signal, &c.id().to_string()])
                .status();
        }
    }

    /// Starts a killed node again on its port, with its files.
    pub fn restart(&mut self) {
        self.kill();
        self.start();
    }

    /// `CLUSTER MYID`.
    pub async fn id(&self) -> String {
        let mut c = self.conn().await;
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query_async(&mut c)
            .await
            .unwrap()
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Three masters, three replicas.
pub struct LocalCluster {
    pub nodes: Vec<ClusterNode>,
}

/// A port whose cluster bus port (+10000) is free as well.
fn free_cluster_port() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if port < 50_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

impl LocalCluster {
    pub async fn start() -> LocalCluster {
        let dir =
            std::env::temp_dir().join(format!("muster-cluster-{}", uuid::Uuid::new_v4().simple()));
        let mut ports = Vec::new();
        while ports.len() < 6 {
            let p = free_cluster_port();
            if !ports.contains(&p) && !ports.contains(&(p + 10_000)) {
                ports.push(p);
            }
        }
        let nodes: Vec<ClusterNode> = ports
            .iter()
            .map(|&p| ClusterNode::spawn(p, dir.join(p.to_string())))
            .collect();
        for n in &nodes {
            wait_ping(n.port).await;
        }
        let addrs: Vec<String> = nodes.iter().map(|n| n.addr()).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let c = LocalCluster { nodes };
        c.wait_ok().await;
        c.wait_replicas_synced().await;
        c
    }

    /// Waits until every master has its replica online (a change can be confirmed by `WAIT`).
    pub async fn wait_replicas_synced(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut online = 0;
            for n in self.nodes.iter().filter(|n| n.child.is_some()) {
                let mut c = n.conn().await;
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query_async(&mut c)
                    .await
                    .unwrap_or_default();
                if info.contains("role:master") && info.contains("state=online") {
                    online += 1;
                }
                // And every node knows every master's replica.
                let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query_async(&mut c)
                    .await
                    .unwrap_or_default();
                if ranges
                    .iter()
                    .any(|r| matches!(r, redis::Value::Array(p) if p.len() < 4))
                {
                    online = 0;
                    break;
                }
            }
            if online == 3 {
                return;
            }
            assert!(Instant::now() < deadline, "replicas never came online");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The seed-list URL muster is given.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.nodes.iter().take(3).map(|n| n.addr()).collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// Waits until every running node says `cluster_state:ok` and agrees on all 16384 slots.
    pub async fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut all = true;
            for n in self.nodes.iter().filter(|n| n.child.is_some()) {
                let info: String = match tokio::time::timeout(Duration::from_secs(1), async {
                    let mut c = n.conn().await;
                    redis::cmd("CLUSTER")
                        .arg("INFO")
                        .query_async::<String>(&mut c)
                        .await
                })
                .await
                {
                    Ok(Ok(s)) => s,
                    _ => {
                        all = false;
                        break;
                    }
                };
                if !info.contains("cluster_state:ok") || !info.contains("cluster_slots_ok:16384") {
                    all = false;
                    break;
                }
            }
            if all {
                return;
            }
            assert!(Instant::now() < deadline, "cluster never became ok");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The node that is master of `slot` now.
    pub async fn master_of_slot(&self, slot: u16) -> usize {
        let mut c = self.any_conn().await;
        let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut c)
            .await
            .unwrap();
        for r in ranges {
            let redis::Value::Array(parts) = r else {
                continue;
            };
            let lo: u16 = redis::from_redis_value_ref(&parts[0]).unwrap();
            let hi: u16 = redis::from_redis_value_ref(&parts[1]).unwrap();
            if (lo..=hi).contains(&slot) {
                let redis::Value::Array(m) = &parts[2] else {
                    panic!("bad CLUSTER SLOTS")
                };
                let port: u16 = redis::from_redis_value_ref(&m[1]).unwrap();
                return self.nodes.iter().position(|n| n.port == port).unwrap();
            }
        }
        panic!("slot {slot} has no master");
    }

    /// A master that does not serve `slot`.
    pub async fn other_master(&self, slot: u16) -> usize {
        let owner = self.master_of_slot(slot).await;
        for s in [0u16, 6000, 12000, 16383] {
            let m = self.master_of_slot(s).await;
            if m != owner {
                return m;
            }
        }
        panic!("only one master");
    }

    /// The replica of node `master`.
    pub async fn replica_of(&self, master: usize) -> usize {
        let id = self.nodes[master].id().await;
        for (i, n) in self.nodes.iter().enumerate() {
            if i == master || n.child.is_none() {
                continue;
            }
            let mut c = n.conn().await;
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut c)
                .await
                .unwrap();
            if info.contains("role:slave")
                && info.contains(&format!("master_port:{}", self.nodes[master].port))
            {
                return i;
            }
            let _ = &id;
        }
        panic!("node {master} has no replica");
    }

    async fn any_conn(&self) -> redis::aio::MultiplexedConnection {
        for n in self.nodes.iter().filter(|n| n.child.is_some()) {
            if let Ok(Ok(c)) = tokio::time::timeout(
                Duration::from_secs(1),
                redis::Client::open(format!("redis://{}", n.addr()))
                    .unwrap()
                    .get_multiplexed_async_connection(),
            )
            .await
            {
                return c;
            }
        }
        panic!("no node answers");
    }

    /// Moves `slot` from its master to node `to`, key by key (`CLUSTER SETSLOT IMPORTING /
    /// MIGRATING`, `MIGRATE` in batches of `batch` with a pause between them, `SETSLOT NODE`), the
    /// way `redis-cli --cluster reshard` does, so commands land during the move.
    pub async fn migrate_slot(&self, slot: u16, to: usize, batch: usize, pause: Duration) {
        let from = self.master_of_slot(slot).await;
        let (from_id, to_id) = (self.nodes[from].id().await, self.nodes[to].id().await);
        let mut src = self.nodes[from].conn().await;
        let mut dst = self.nodes[to].conn().await;
        let _: () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg("IMPORTING")
            .arg(&from_id)
            .query_async(&mut dst)
            .await
            .unwrap();
        let _: () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg("MIGRATING")
            .arg(&to_id)
            .query_async(&mut src)
            .await
            .unwrap();
        loop {
            let keys: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(batch)
                .query_async(&mut src)
                .await
                .unwrap();
            if keys.is_empty() {
                break;
            }
            let _: () = redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(self.nodes[to].port)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("KEYS")
                .arg(&keys)
                .query_async(&mut src)
                .await
                .unwrap();
            tokio::time::sleep(pause).await;
        }
        for n in [to, from] {
            let mut c = self.nodes[n].conn().await;
            let _: () = redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg("NODE")
                .arg(&to_id)
                .query_async(&mut c)
                .await
                .unwrap();
        }
    }
}

async fn wait_ping(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(c) = redis::Client::open(format!("redis://127.0.0.1:{port}"))
            && let Ok(Ok(mut c)) = tokio::time::timeout(
                Duration::from_millis(500),
                c.get_multiplexed_async_connection(),
            )
            .await
            && redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .is_ok()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "redis-server on {port} never answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
