//! The embedded Redis: with `redis.url` unset, muster starts its own `redis-server` child with
//! AOF on, its files under `data_dir`, listening only on a unix socket there (port 0), so it
//! never disturbs a Redis already running on the machine. It is restarted if it dies and shut
//! down cleanly (AOF flushed) when muster stops. The test harness uses the same type to run
//! one private Redis per test, and to kill and restart it for fault tests.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

/// A `redis-server` child.
pub struct EmbeddedRedis {
    bin: String,
    dir: PathBuf,
    appendfsync: String,
    child: Arc<Mutex<Option<Child>>>,
    supervisor: Option<tokio::task::JoinHandle<()>>,
}

impl EmbeddedRedis {
    /// Starts `bin` with its files under `dir` and waits until it answers.
    pub async fn start(bin: &str, dir: &Path, appendfsync: &str) -> anyhow::Result<EmbeddedRedis> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data_dir {}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .with_context(|| format!("cannot resolve data_dir {}", dir.display()))?;
        let me = EmbeddedRedis {
            bin: bin.to_string(),
            dir,
            appendfsync: appendfsync.to_string(),
            child: Arc::new(Mutex::new(None)),
            supervisor: None,
        };
        me.shutdown_leftover().await;
        me.spawn_child().await?;
        Ok(me)
    }

    /// The socket path.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    /// The URL to connect to.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    /// A server left running by a muster that was killed holds our socket: shut it down (its
    /// AOF keeps the data) so ours can start.
    async fn shutdown_leftover(&self) {
        if !self.socket().exists() {
            return;
        }
        if let Ok(client) = redis::Client::open(self.url())
            && let Ok(Ok(mut c)) = tokio::time::timeout(
                Duration::from_millis(500),
                client.get_multiplexed_async_connection(),
            )
            .await
        {
            tracing::warn!("a redis-server from an earlier run holds the socket; shutting it down");
            let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query_async(&mut c).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let _ = std::fs::remove_file(self.socket());
    }

    async fn spawn_child(&self) -> anyhow::Result<()> {
        let sock = self.socket();
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--port")
            .arg("0")
            .arg("--unixsocket")
            .arg(&sock)
            .arg("--unixsocketperm")
            .arg("700")
            .arg("--dir")
            .arg(&self.dir)
            .arg("--appendonly")
            .arg("yes")
            .arg("--appendfsync")
            .arg(&self.appendfsync)
            .arg("--save")
            .arg("")
            // Rewrite (compact) the AOF once it has grown by its own size and past 256 MiB,
            // not Redis's 64 MiB: a rewrite forks and serialises the whole dataset, a core's
            // worth of work that a large fan-out on a small machine should not pay mid-way.
            .arg("--auto-aof-rewrite-percentage")
            .arg("100")
            .arg("--auto-aof-rewrite-min-size")
            .arg("256mb")
            .arg("--daemonize")
            .arg("no")
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| {
            format!(
                "cannot start `{}`: install Redis (`apt-get install redis-server`) or set redis.url",
                self.bin
            )
        })?;
        let client = redis::Client::open(self.url())?;
        for _ in 0..200 {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                bail!(
                    "redis-server exited at start ({status}): {}",
                    tail.join(" | ")
                );
            }
            if let Ok(mut c) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            {
                *self.child.lock().await = Some(child);
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill().await;
        bail!(
            "redis-server did not answer on {} within 10 s",
            sock.display()
        )
    }

    /// Restarts the child whenever it exits on its own, until [`EmbeddedRedis::stop`].
    pub fn supervise(&mut self) {
        let child = self.child.clone();
        let me = EmbeddedRedis {
            bin: self.bin.clone(),
            dir: self.dir.clone(),
            appendfsync: self.appendfsync.clone(),
            child: child.clone(),
            supervisor: None,
        };
        self.supervisor = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let exited = match child.lock().await.as_mut() {
                    Some(c) => matches!(c.try_wait(), Ok(Some(_))),
                    None => true,
                };
                if exited {
                    tracing::error!("embedded redis-server exited; restarting it");
                    if let Err(e) = me.spawn_child().await {
                        tracing::error!(error = %e, "could not restart redis-server");
                    }
                }
            }
        }));
    }

    /// SIGKILLs the child (for fault tests): nothing is flushed beyond what `appendfsync`
    /// already wrote.
    pub async fn kill(&self) {
        if let Some(mut c) = self.child.lock().await.take() {
            let _ = c.kill().await;
        }
    }

    /// Starts the child again after [`EmbeddedRedis::kill`] or [`EmbeddedRedis::stop`].
    pub async fn restart(&self) -> anyhow::Result<()> {
        self.kill().await;
        self.spawn_child().await
    }

    /// Shuts the child down cleanly (`SHUTDOWN`: the AOF is flushed), killing it after 5 s.
    pub async fn stop(&mut self) {
        if let Some(s) = self.supervisor.take() {
            s.abort();
        }
        let Some(mut child) = self.child.lock().await.take() else {
            return;
        };
        if let Ok(client) = redis::Client::open(self.url())
            && let Ok(mut c) = client.get_multiplexed_async_connection().await
        {
            let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query_async(&mut c).await;
        }
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
}
