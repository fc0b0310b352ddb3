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
pub mod delivery;
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

pub use keys::Keys;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, RedisError};
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
    /// Whether the error means "Redis is unreachable right now" (so the API answers 503).
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
    client: Client,
    conn: ConnectionManager,
    /// The deployment's key builder.
    pub keys: Keys,
    scripts: Arc<Scripts>,
}

impl Store {
    /// Connects to `url` and settles the deployment's partition count: the first instance of a
    /// deployment stores `partitions`; later ones use the stored value whatever they are told.
    pub async fn connect(url: &str, prefix: &str, partitions: u16) -> Result<Store> {
        let client = Client::open(url)?;
        let cfg = ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let mut conn = ConnectionManager::new_with_config(client.clone(), cfg).await?;
        let meta = Keys::new(prefix, partitions).meta();
        let _: bool = redis::cmd("HSETNX")
            .arg(&meta)
            .arg("partitions")
            .arg(partitions.max(1))
            .query_async(&mut conn)
            .await?;
        let stored: Option<u16> = redis::cmd("HGET")
            .arg(&meta)
            .arg("partitions")
            .query_async(&mut conn)
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
            client,
            conn,
            keys: Keys::new(prefix, stored),
            scripts: Arc::new(Scripts::new()),
        })
    }

    /// The shared connection (multiplexed; cheap to clone).
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// A new connection without a response timeout, for blocking reads.
    pub async fn blocking_connection(&self) -> Result<MultiplexedConnection> {
        let cfg = AsyncConnectionConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(Duration::from_secs(2)));
        Ok(self
            .client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?)
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
        let mut c = self.conn();
        Ok(p.query_async(&mut c).await?)
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

/// Reads a string field out of a hash reply.
pub(crate) fn field(map: &std::collections::HashMap<String, String>, k: &str) -> String {
    map.get(k).cloned().unwrap_or_default()
}
