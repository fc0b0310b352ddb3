//! Redis: the store and the event bus.
//!
//! # Design
//! Redis holds every piece of state; muster instances hold none that matters. Each incident's
//! keys, and the streams of the partition it falls in, share one hash tag (see [`keys`]), so
//! every state change is one Lua script that changes the state, keeps the counters exact,
//! appends the change to the incident's event stream and enqueues whatever must follow (a
//! delivery, a bus event) — atomically. Nothing is read-modify-written from Rust.
//!
//! Work flows through two partitioned streams per partition:
//! - `bus`: domain events (`incident.raised`, `callout.answered`, `incident.stood_down`),
//!   consumed by the `fanout` and `projection` groups;
//! - `deliveries`: messages to hand to a channel, consumed by the `notifier` group; failed
//!   attempts wait in the partition's `delayed` sorted set until the scheduler moves them back.
//!
//! Every script is idempotent, so a retry after a lost reply (a Redis restart, a dropped
//! connection) or a re-delivered stream entry changes nothing twice.
//!
//! # Connections
//! One shared [`ConnectionManager`] (reconnecting, multiplexed, with a response timeout) for
//! everything except blocking reads (`XREADGROUP BLOCK`, SSE `XREAD BLOCK`), which get their
//! own connection without a response timeout ([`Store::blocking_connection`]).

pub mod audit;
pub mod bus;
pub mod callout_rows;
pub mod callouts;
pub mod cap;
pub mod conn;
pub mod delivery;
pub mod deployments;
pub mod drills;
pub mod engage;
pub mod incidents;
mod incidents_close;
pub mod keys;
pub mod ladder;
pub mod queue;
pub mod registry;
pub mod registry_write;
mod scripts;
pub mod service;
pub mod sessions;
pub mod sms;
pub mod team_write;
pub mod teams;

pub use conn::{Conn, Target};
pub use keys::Keys;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::{AsyncConnectionConfig, Client, RedisError, Value};
use scripts::Scripts;
use std::sync::Arc;
use std::time::Duration;

/// Errors of the store layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis did not answer, or answered with an error.
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    /// Redis answered with data muster did not write.
    #[error("corrupt data in redis: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the error means "Redis is unreachable right now" (so the API answers 503): also
    /// a Cluster's redirect or "try again" that outlived the client's own retries (a slot
    /// moving, a failover under way) — the command was not run.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Redis(e) => {
                e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || matches!(
                        e.kind(),
                        redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading)
                            | redis::ErrorKind::Server(redis::ServerErrorKind::TryAgain)
                            | redis::ErrorKind::Server(redis::ServerErrorKind::ClusterDown)
                            | redis::ErrorKind::Server(redis::ServerErrorKind::MasterDown)
                            | redis::ErrorKind::Server(redis::ServerErrorKind::Moved)
                            | redis::ErrorKind::Server(redis::ServerErrorKind::Ask)
                            | redis::ErrorKind::ClusterConnectionNotFound
                    )
            }
            StoreError::Corrupt(_) => false,
        }
    }
}

/// Result of the store layer.
pub type Result<T> = std::result::Result<T, StoreError>;

/// A handle on the deployment's Redis. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    target: Target,
    client: Option<Client>,
    conn: Conn,
    /// On a Cluster, a connection whose client never re-sends a command on its own (see
    /// [`Store::pipe_once`]); on a single Redis the shared one.
    once: Conn,
    /// The deployment's key builder.
    pub keys: Keys,
    scripts: Arc<Scripts>,
}

impl Store {
    /// Connects to `url` (one server, or a Cluster seed list: see [`conn`]) and settles the
    /// deployment's partition count: the first instance of a deployment stores `partitions`;
    /// later ones use the stored value whatever they are told.
    pub async fn connect(url: &str, prefix: &str, partitions: u16) -> Result<Store> {
        let target = Target::parse(url).map_err(|e| {
            StoreError::Redis(RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "bad redis.url",
                e,
            )))
        })?;
        let (client, conn, once) = match &target {
            Target::Single(u) => {
                let client = Client::open(u.as_str())?;
                let cfg = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(Duration::from_secs(2)))
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_millis(500));
                let conn =
                    Conn::Single(ConnectionManager::new_with_config(client.clone(), cfg).await?);
                (Some(client), conn.clone(), conn)
            }
            Target::Cluster { seeds, .. } => {
                let build = |retries: u32| {
                    ClusterClientBuilder::new(seeds.clone())
                        .response_timeout(Duration::from_secs(2))
                        .connection_timeout(Duration::from_secs(2))
                        .retries(retries)
                        .min_retry_wait(20)
                        .max_retry_wait(500)
                        .build()
                };
                let conn = Conn::Cluster(conn::ClusterLink::connect(build(6)?).await?);
                let once = Conn::Cluster(conn::ClusterLink::connect(build(0)?).await?);
                (None, conn, once)
            }
        };
        let mut c = conn.clone();
        let meta = Keys::new(prefix, partitions).meta();
        // Before hash tags on the cold-path keys and one hash per incident's callouts, the
        // metadata hash was `P:meta`. Such data is not read by this version: refuse to start
        // rather than run beside it as if the deployment were empty.
        let old_layout: bool = redis::cmd("EXISTS")
            .arg(format!("{prefix}:meta"))
            .query_async(&mut c)
            .await?;
        if old_layout {
            return Err(StoreError::Corrupt(format!(
                "this Redis holds data of an earlier muster layout under prefix {prefix:?} \
                 (key {prefix}:meta); this version keeps it under {meta}: start on a fresh \
                 redis.prefix or an empty Redis (the README's upgrade note says how)"
            )));
        }
        let _: bool = redis::cmd("HSETNX")
            .arg(&meta)
            .arg("partitions")
            .arg(partitions.max(1))
            .query_async(&mut c)
            .await?;
        let stored: Option<u16> = redis::cmd("HGET")
            .arg(&meta)
            .arg("partitions")
            .query_async(&mut c)
            .await?;
        let stored = stored.unwrap_or(partitions).max(1);
        if stored != partitions {
            tracing::warn!(
                configured = partitions,
                stored,
                "engine.partitions differs from this deployment's; using the stored value"
            );
        }
        Ok(Store {
            target,
            client,
            conn,
            once,
            keys: Keys::new(prefix, stored),
            scripts: Arc::new(Scripts::new()),
        })
    }

    /// The shared connection (multiplexed; cheap to clone).
    pub fn conn(&self) -> Conn {
        self.conn.clone()
    }

    /// The connection of calls that must never be re-sent by the client (see
    /// [`Store::pipe_once`]).
    pub(crate) fn once_conn(&self) -> Conn {
        self.once.clone()
    }

    /// Whether the deployment runs on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster { .. })
    }

    /// A new connection without a response timeout, for blocking reads of stream `key`: on a
    /// single Redis to that server, on a Cluster straight to the master that serves the key's
    /// slot now, so a blocked read never holds up a connection other commands use. After a
    /// reshard or a failover the read fails (`MOVED`, a dropped connection) and the reader
    /// asks again.
    pub async fn blocking_connection(&self, key: &str) -> Result<MultiplexedConnection> {
        let cfg = AsyncConnectionConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(Duration::from_secs(2)));
        let client = match &self.client {
            Some(c) => c.clone(),
            None => {
                let (host, port) = self.master_of(key).await?;
                Client::open(self.target.node_url(&host, port))?
            }
        };
        Ok(client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?)
    }

    /// The addresses of the Cluster's masters (`CLUSTER SLOTS`).
    pub(crate) async fn masters(&self) -> Result<Vec<(String, u16)>> {
        let ranges: Vec<Value> = self.cmd(redis::cmd("CLUSTER").arg("SLOTS")).await?;
        let mut out: Vec<(String, u16)> = Vec::new();
        for r in ranges {
            let Value::Array(parts) = r else { continue };
            if let Some(Value::Array(m)) = parts.get(2)
                && let (Some(h), Some(p)) = (m.first(), m.get(1))
                && let (Ok(host), Ok(port)) = (
                    redis::from_redis_value_ref::<String>(h),
                    redis::from_redis_value_ref::<u16>(p),
                )
                && !out.contains(&(host.clone(), port))
            {
                out.push((host, port));
            }
        }
        Ok(out)
    }

    /// The address of the Cluster master serving `key`'s slot (`CLUSTER SLOTS`).
    async fn master_of(&self, key: &str) -> Result<(String, u16)> {
        let slot = i64::from(conn::slot_of(key.as_bytes()));
        let ranges: Vec<Value> = self.cmd(redis::cmd("CLUSTER").arg("SLOTS")).await?;
        for r in ranges {
            let Value::Array(parts) = r else { continue };
            let (Some(lo), Some(hi), Some(master)) = (parts.first(), parts.get(1), parts.get(2))
            else {
                continue;
            };
            let lo: i64 = redis::from_redis_value_ref(lo).unwrap_or(-1);
            let hi: i64 = redis::from_redis_value_ref(hi).unwrap_or(-1);
            if slot < lo || slot > hi {
                continue;
            }
            if let Value::Array(m) = master
                && let (Some(h), Some(p)) = (m.first(), m.get(1))
            {
                let host: String = redis::from_redis_value_ref(h)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let port: u16 = redis::from_redis_value_ref(p)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                return Ok((host, port));
            }
        }
        Err(StoreError::Redis(RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ClusterDown),
            "no master serves the slot",
        ))))
    }

    /// `PING`, for readiness.
    pub async fn ping(&self) -> Result<()> {
        let mut c = self.conn();
        let _: String = tokio::time::timeout(
            Duration::from_secs(1),
            redis::cmd("PING").query_async(&mut c),
        )
        .await
        .map_err(|_| {
            StoreError::Redis(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "ping timed out",
            )))
        })??;
        Ok(())
    }

    /// The ack-token secret: the configured one, or one generated by the first instance of the
    /// deployment and shared through Redis.
    pub async fn token_secret(&self, configured: Option<&str>) -> Result<Vec<u8>> {
        if let Some(s) = configured {
            return Ok(s.as_bytes().to_vec());
        }
        let fresh: [u8; 32] = rand::random();
        let hex: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
        let mut c = self.conn();
        let meta = self.keys.meta();
        let _: bool = redis::cmd("HSETNX")
            .arg(&meta)
            .arg("token_secret")
            .arg(&hex)
            .query_async(&mut c)
            .await?;
        let s: String = redis::cmd("HGET")
            .arg(&meta)
            .arg("token_secret")
            .query_async(&mut c)
            .await?;
        Ok(s.into_bytes())
    }

    pub(crate) fn scripts(&self) -> &Scripts {
        &self.scripts
    }

    /// An invocation of incident script `script` for incident `id`, with the incident key set
    /// (see `lua/incident.lua`) declared.
    pub(crate) fn incident_invocation<'a>(
        &self,
        script: &'a redis::Script,
        id: &crate::domain::incident::IncidentId,
    ) -> redis::ScriptInvocation<'a> {
        let mut inv = script.prepare_invoke();
        for k in self.keys.incident_set(id) {
            inv.key(k);
        }
        inv
    }

    /// Runs an idempotent pipeline, retrying when the connection failed.
    pub(crate) async fn pipe<T: redis::FromRedisValue>(&self, p: &redis::Pipeline) -> Result<T> {
        if p.is_empty() {
            // Redis refuses an empty pipeline; its answer is an empty list.
            return redis::from_redis_value(redis::Value::Array(vec![]))
                .map_err(|e| StoreError::Corrupt(e.to_string()));
        }
        retrying(|| {
            let mut c = self.conn();
            let p = p.clone();
            async move { p.query_async(&mut c).await }
        })
        .await
    }

    /// Runs a pipeline once, never retried: for anything that is not idempotent (an `XADD *`,
    /// an `INCR`), where a retry after a lost answer would do it twice. The caller's stream
    /// entry stays pending on failure, so the work is reclaimed rather than repeated blindly.
    pub(crate) async fn pipe_once<T: redis::FromRedisValue>(
        &self,
        p: &redis::Pipeline,
    ) -> Result<T> {
        // On a Cluster this goes through a client that never re-sends by itself (its own
        // retries would repeat a command whose answer was lost); only the answers that say the
        // command was not run at all — a redirect during a reshard or failover, a cluster not
        // ready — are tried again, once the client has learnt the new topology.
        let mut delay = Duration::from_millis(20);
        let mut attempt = 0;
        loop {
            let mut c = self.once.clone();
            match p.query_async(&mut c).await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < 6 && self.is_cluster() && not_run(&e) => {
                    attempt += 1;
                    // A redirect inside a transaction's answer is not followed by the client:
                    // one plain read of the transaction's first key is, and teaches the client
                    // where the slot went.
                    if let Some(key) = p.cmd_iter().find_map(conn::first_key) {
                        let _: redis::RedisResult<Value> = redis::cmd("TYPE")
                            .arg(key)
                            .query_async(&mut self.once.clone())
                            .await;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(500));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A hash, or `None` when it does not exist.
    pub(crate) async fn hash_or_none(
        &self,
        key: &str,
    ) -> Result<Option<std::collections::HashMap<String, String>>> {
        let m: std::collections::HashMap<String, String> =
            self.cmd(redis::cmd("HGETALL").arg(key)).await?;
        Ok((!m.is_empty()).then_some(m))
    }

    /// The hashes named (through `key`) by the members of sorted set `index`, highest score
    /// first, at most `limit`, read in one pipeline; a member whose hash is gone is left out.
    pub(crate) async fn hashes_newest_first(
        &self,
        index: &str,
        limit: usize,
        key: impl Fn(&str) -> String,
    ) -> Result<Vec<std::collections::HashMap<String, String>>> {
        let ids: Vec<String> = self
            .cmd(
                redis::cmd("ZRANGE")
                    .arg(index)
                    .arg(0)
                    .arg(limit.saturating_sub(1) as i64)
                    .arg("REV"),
            )
            .await?;
        let mut p = redis::pipe();
        for id in &ids {
            p.cmd("HGETALL").arg(key(id));
        }
        let maps: Vec<std::collections::HashMap<String, String>> = self.pipe(&p).await?;
        Ok(maps.into_iter().filter(|m| !m.is_empty()).collect())
    }

    /// Runs an idempotent command, retrying when the connection failed.
    pub(crate) async fn cmd<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T> {
        retrying(|| {
            let mut c = self.conn();
            let cmd = cmd.clone();
            async move { cmd.query_async(&mut c).await }
        })
        .await
    }
}

/// Runs an idempotent Redis call, retrying when the connection failed (the first command after
/// a Redis restart fails on a `ConnectionManager`). Only for idempotent calls: every script
/// muster runs is (each guards its writes on the state it finds, or on a mark it sets in the
/// same step), and so are plain reads, `SET`s, `HSET`s, `ZADD`s of deterministic members and
/// `XACK`s. An `XADD *` or an `INCR` outside a script goes through [`Store::pipe_once`].
pub(crate) async fn retrying<T, F, Fut>(mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, RedisError>>,
{
    let mut delay = Duration::from_millis(20);
    let mut attempt = 0;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let err = StoreError::Redis(e);
                attempt += 1;
                if attempt >= 3 || !err.is_unavailable() {
                    return Err(err);
                }
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
        }
    }
}

/// Whether a Cluster's answer means the command was not run: a redirect (`MOVED`, `ASK`), a
/// multi-key command caught mid-migration (`TRYAGAIN`), or a cluster that is not serving.
fn not_run(e: &RedisError) -> bool {
    matches!(
        e.kind(),
        redis::ErrorKind::Server(
            redis::ServerErrorKind::Moved
                | redis::ServerErrorKind::Ask
                | redis::ServerErrorKind::TryAgain
                | redis::ServerErrorKind::ClusterDown
                | redis::ServerErrorKind::MasterDown
        )
    )
}

/// Reads a string field out of a hash reply.
pub(crate) fn field(map: &std::collections::HashMap<String, String>, k: &str) -> String {
    map.get(k).cloned().unwrap_or_default()
}
