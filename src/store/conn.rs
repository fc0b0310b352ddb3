//! One connection type for a single Redis and a Redis Cluster.
//!
//! `redis.url` is either one server (`redis://`, `rediss://`, `redis+unix://`) or a Cluster
//! seed list, `redis+cluster://[user:password@]host1:port1,host2:port2,…` (`rediss+cluster://`
//! for TLS): any reachable seed is enough, the client learns the rest of the topology and
//! follows it through reshards (`MOVED`, `ASK`) and failovers.
//!
//! [`Conn`] is what the store runs commands on. On a Cluster it routes each command by its
//! first key, and splits a non-transactional pipeline whose commands fall in several slots into
//! one pipeline per slot (run concurrently, answers put back in order), so a read of many
//! incidents from several partitions is still one call for the caller. A transaction (`MULTI`)
//! must stay in one slot, and every one muster sends does.

use futures::future::try_join_all;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Arg, Cmd, Pipeline, RedisError, RedisFuture, Value};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

/// Where `redis.url` points.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// One server (or a replicated master), by its URL.
    Single(String),
    /// A Cluster, by the URLs of its seed nodes; `node` turns an announced `host:port` into a
    /// URL with the seed's scheme and credentials.
    Cluster {
        seeds: Vec<String>,
        scheme: String,
        auth: String,
    },
}

impl Target {
    /// Parses `redis.url`.
    pub fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest) = match url.split_once("://") {
            Some((s, r)) => (s, r),
            None => return Ok(Target::Single(url.to_string())),
        };
        let node_scheme = match scheme {
            "redis+cluster" => "redis",
            "rediss+cluster" => "rediss",
            _ => return Ok(Target::Single(url.to_string())),
        };
        let (auth, hosts) = match rest.rsplit_once('@') {
            Some((a, h)) => (format!("{a}@"), h),
            None => (String::new(), rest),
        };
        let hosts = hosts.trim_end_matches('/');
        let seeds: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| format!("{node_scheme}://{auth}{h}"))
            .collect();
        if seeds.is_empty() {
            return Err(format!(
                "redis.url {scheme}:// names no node; write {scheme}://host1:port1,host2:port2"
            ));
        }
        for h in hosts.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            let port = h.rsplit_once(':').map(|(_, p)| p);
            if port.and_then(|p| p.parse::<u16>().ok()).is_none() {
                return Err(format!(
                    "redis.url: cluster node {h:?} needs host:port (e.g. 10.0.0.5:7000)"
                ));
            }
        }
        Ok(Target::Cluster {
            seeds,
            scheme: node_scheme.to_string(),
            auth,
        })
    }

    /// The URL of a Cluster node announced as `host:port`.
    pub fn node_url(&self, host: &str, port: u16) -> String {
        match self {
            Target::Single(u) => u.clone(),
            Target::Cluster { scheme, auth, .. } => {
                let host = if host.contains(':') && !host.starts_with('[') {
                    format!("[{host}]")
                } else {
                    host.to_string()
                };
                format!("{scheme}://{auth}{host}:{port}")
            }
        }
    }
}

/// A connection to a single Redis or to a Cluster. Cheap to clone (both are multiplexed).
#[derive(Clone)]
pub enum Conn {
    /// A reconnecting connection to one server.
    Single(ConnectionManager),
    /// A connection to every master of a Cluster, routing by key slot.
    Cluster(Arc<ClusterLink>),
}

/// The Cluster client's connection, replaced by a fresh one (which reads the slot map anew)
/// when it has answered nothing but timeouts for [`ClusterLink::STUCK_MS`] — in all, or for
/// one slot while the others answer. Seen: after a reshard under load, the client's slot
/// refresh never finished and every command waited behind it; and a master that stops
/// answering without closing its connections (a frozen host) is failed over by the Cluster,
/// but the client, which refreshes its slot map only on errors, not on timeouts, kept sending
/// that master's slots to it.
pub struct ClusterLink {
    client: ClusterClient,
    conn: RwLock<ClusterConnection>,
    /// Wall time (ms) of the last answer that was not a timeout.
    last_ok: AtomicI64,
    /// Per slot that has timed out since it last answered: when it first did (ms).
    stuck: std::sync::Mutex<std::collections::HashMap<u16, i64>>,
    /// Whether `stuck` names any slot (so an answer need not lock it when none does).
    any_stuck: AtomicBool,
    replacing: AtomicBool,
}

impl ClusterLink {
    const STUCK_MS: i64 = 4000;

    /// Connects through `client`.
    pub async fn connect(client: ClusterClient) -> Result<Arc<ClusterLink>, RedisError> {
        let conn = client.get_async_connection().await?;
        Ok(Arc::new(ClusterLink {
            client,
            conn: RwLock::new(conn),
            last_ok: AtomicI64::new(crate::clock::wall_ms()),
            stuck: Default::default(),
            any_stuck: AtomicBool::new(false),
            replacing: AtomicBool::new(false),
        }))
    }

    /// The current connection.
    pub fn current(&self) -> ClusterConnection {
        self.conn.read().expect("cluster link lock").clone()
    }

    /// Notes the outcome of a call; `slot` gives the slot of its first key (if it has keys),
    /// asked only when a slot's streak of timeouts is concerned. Replaces the connection when
    /// it, or that slot, has answered only timeouts for `STUCK_MS`.
    fn observe<T>(self: &Arc<Self>, slot: impl FnOnce() -> Option<u16>, r: &Result<T, RedisError>) {
        let now = crate::clock::wall_ms();
        match r {
            Err(e) if e.is_timeout() => {
                let since = slot().map(|s| {
                    let mut stuck = self.stuck.lock().expect("cluster link stuck slots");
                    self.any_stuck.store(true, Ordering::Relaxed);
                    *stuck.entry(s).or_insert(now)
                });
                let all = now - self.last_ok.load(Ordering::Relaxed) > Self::STUCK_MS;
                let one = since.is_some_and(|t| now - t > Self::STUCK_MS);
                if (all || one) && !self.replacing.swap(true, Ordering::AcqRel) {
                    self.replace();
                }
            }
            _ => {
                if self.any_stuck.load(Ordering::Relaxed)
                    && let Some(s) = slot()
                {
                    let mut stuck = self.stuck.lock().expect("cluster link stuck slots");
                    stuck.remove(&s);
                    self.any_stuck.store(!stuck.is_empty(), Ordering::Relaxed);
                }
                self.last_ok.store(now, Ordering::Relaxed);
            }
        }
    }

    /// Opens a fresh connection (bounded: a seed may be the node that stopped answering) and
    /// puts it in place of the current one.
    fn replace(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            match bounded(me.client.get_async_connection()).await {
                Ok(fresh) => {
                    tracing::warn!("the cluster connection answered only timeouts; replaced it");
                    *me.conn.write().expect("cluster link lock") = fresh;
                    me.stuck.lock().expect("cluster link stuck slots").clear();
                    me.any_stuck.store(false, Ordering::Relaxed);
                    me.last_ok.store(crate::clock::wall_ms(), Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(error = %e, "cluster reconnect failed"),
            }
            me.replacing.store(false, Ordering::Release);
        });
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(link) => {
                let link = link.clone();
                Box::pin(async move {
                    let r = bounded(link.current().req_packed_command(cmd)).await;
                    link.observe(|| first_key(cmd).map(slot_of), &r);
                    r
                })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(link) => {
                let link = link.clone();
                Box::pin(async move {
                    let mut c = link.current();
                    let r = if pipeline.is_transaction() {
                        bounded(c.req_packed_commands(pipeline, offset, count)).await
                    } else {
                        let groups = slot_groups(pipeline)
                            .unwrap_or_else(|| vec![(0..pipeline.len()).collect()]);
                        bounded(split_pipeline(c, pipeline, groups)).await
                    };
                    link.observe(|| pipeline.cmd_iter().find_map(first_key).map(slot_of), &r);
                    r
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(_) => 0,
        }
    }
}

/// The longest any call on a Cluster may take before it is given up as timed out. The
/// client's own response timeout (2 s) is not always kept: a request it retries internally
/// (behind a slot refresh, a reconnect) can wait without end — seen as delivery batches that sat
/// for half a minute, until another instance reclaimed them, when five fan-outs ran at once.
/// Bounding the whole call makes such a wait an ordinary timeout, which idempotent calls retry.
const CALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(6);

async fn bounded<T>(
    f: impl std::future::Future<Output = Result<T, RedisError>>,
) -> Result<T, RedisError> {
    within(CALL_LIMIT, "a cluster call", f).await
}

/// `f`, or a timeout error (`RedisError::is_timeout`) once `limit` has passed without its
/// answer; `what` names the call in the warning.
pub(crate) async fn within<T>(
    limit: std::time::Duration,
    what: &str,
    f: impl std::future::Future<Output = Result<T, RedisError>>,
) -> Result<T, RedisError> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!("{what} took longer than {limit:?}; given up");
            Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{what} was not answered within {limit:?}"),
            )))
        }
    }
}

/// The commands of a pipeline grouped by slot (indices, in order), when there is more than one
/// slot; `None` when one connection call can carry it.
fn slot_groups(p: &Pipeline) -> Option<Vec<Vec<usize>>> {
    let mut groups: Vec<(Option<u16>, Vec<usize>)> = Vec::new();
    for (i, cmd) in p.cmd_iter().enumerate() {
        let slot = first_key(cmd).map(slot_of);
        match groups.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, v)) => v.push(i),
            None => groups.push((slot, vec![i])),
        }
    }
    // Keyless commands may go with any slot.
    if let Some(pos) = groups.iter().position(|(s, _)| s.is_none())
        && groups.len() > 1
    {
        let (_, free) = groups.remove(pos);
        groups[0].1.extend(free);
        groups[0].1.sort_unstable();
    }
    (groups.len() > 1).then(|| groups.into_iter().map(|(_, v)| v).collect())
}

async fn split_pipeline(
    conn: ClusterConnection,
    pipeline: &Pipeline,
    groups: Vec<Vec<usize>>,
) -> Result<Vec<Value>, RedisError> {
    let cmds: Vec<&Cmd> = pipeline.cmd_iter().collect();
    let calls = groups.iter().map(|idx| {
        let mut sub = redis::pipe();
        for &i in idx {
            sub.add_command(cmds[i].clone());
        }
        let mut c = conn.clone();
        async move {
            let n = sub.len();
            c.req_packed_commands(&sub, 0, n).await
        }
    });
    let answers = try_join_all(calls).await?;
    let mut out: Vec<Value> = vec![Value::Nil; cmds.len()];
    for (idx, vals) in groups.iter().zip(answers) {
        for (&i, v) in idx.iter().zip(vals) {
            out[i] = v;
        }
    }
    // A command of a pipeline answered with a redirect (the slot moved, or is moving) was not
    // run, and the client does not follow redirects inside a pipeline's answer: send each such
    // command again on its own, which follows them and updates the client's slot map.
    let mut c = conn.clone();
    for (i, v) in out.iter_mut().enumerate() {
        if let Value::ServerError(e) = v
            && matches!(
                e.kind(),
                Some(
                    redis::ServerErrorKind::Moved
                        | redis::ServerErrorKind::Ask
                        | redis::ServerErrorKind::TryAgain
                )
            )
        {
            *v = c.req_packed_command(cmds[i]).await?;
        }
    }
    Ok(out)
}

/// The key a command is routed by: the first argument, or for `EVAL`/`EVALSHA`/`FCALL` the
/// first declared key. `None` for keyless commands.
pub(crate) fn first_key(cmd: &Cmd) -> Option<&[u8]> {
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .filter_map(|a| match a {
            Arg::Simple(d) => Some(d),
            _ => None,
        })
        .collect();
    let name = args.first()?.to_ascii_uppercase();
    match name.as_slice() {
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" => {
            let n: usize = std::str::from_utf8(args.get(2)?).ok()?.parse().ok()?;
            (n > 0).then(|| args.get(3).copied()).flatten()
        }
        b"PING" | b"INFO" | b"WAIT" | b"SCRIPT" | b"CLUSTER" | b"MULTI" | b"EXEC" => None,
        _ => args.get(1).copied(),
    }
}

/// The Cluster slot of a key: CRC16 (XMODEM) of its hash tag (the part between the first `{`
/// and the next `}`, when not empty) or of the whole key, modulo 16384.
pub fn slot_of(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .map(|close| &rest[..close])
        })
        .filter(|t| !t.is_empty())
        .unwrap_or(key);
    crc16(tagged) % 16384
}

fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_the_redis_specification() {
        // Values from the Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(slot_of(b"foo"), 12182);
        assert_eq!(
            slot_of(b"{user1000}.following"),
            slot_of(b"{user1000}.followers")
        );
        assert_eq!(slot_of(b"foo{}{bar}"), slot_of(b"foo{}{bar}"));
        assert_ne!(slot_of(b"foo{}{bar}"), slot_of(b"bar"));
        assert_eq!(slot_of(b"foo{{bar}}zap"), slot_of(b"{bar"));
    }

    #[test]
    fn cluster_urls_parse_into_seed_nodes() {
        let t = Target::parse("redis+cluster://u:p@10.0.0.1:7000,10.0.0.2:7001/").unwrap();
        assert_eq!(
            t,
            Target::Cluster {
                seeds: vec![
                    "redis://u:p@10.0.0.1:7000".into(),
                    "redis://u:p@10.0.0.2:7001".into()
                ],
                scheme: "redis".into(),
                auth: "u:p@".into(),
            }
        );
        assert_eq!(t.node_url("10.0.0.9", 7005), "redis://u:p@10.0.0.9:7005");
        assert_eq!(
            Target::parse("redis://127.0.0.1:6379").unwrap(),
            Target::Single("redis://127.0.0.1:6379".into())
        );
        assert!(Target::parse("redis+cluster://").is_err());
        assert!(Target::parse("redis+cluster://10.0.0.1").is_err());
    }

    #[test]
    fn pipelines_split_by_slot_and_keyless_commands_ride_along() {
        let mut p = redis::pipe();
        p.cmd("HGET").arg("a:{p1}:x").arg("f");
        p.cmd("HGET").arg("a:{p2}:x").arg("f");
        p.cmd("HGET").arg("a:{p1}:y").arg("f");
        let g = slot_groups(&p).unwrap();
        assert_eq!(g, vec![vec![0, 2], vec![1]]);
        let mut one = redis::pipe();
        one.cmd("HGET").arg("a:{p1}:x").arg("f");
        one.cmd("PING");
        assert!(slot_groups(&one).is_none());
        let mut script = redis::pipe();
        script
            .cmd("EVALSHA")
            .arg("abc")
            .arg(2)
            .arg("{p1}k")
            .arg("{p1}j");
        script.cmd("EVALSHA").arg("abc").arg(1).arg("{p2}k");
        assert_eq!(slot_groups(&script).unwrap().len(), 2);
    }
}
