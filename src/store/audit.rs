//! The audit log in Redis. Each chain is a stream: `P:{pK}:audit` per partition (incident
//! actions, written by the incident's own scripts), `P:{drills}:audit` (drill scheduling) and
//! `P:audit` (registry, rosters, sessions, CAP records, refusals). An entry is appended in the
//! same script or transaction as the change it records; the sealer ([`Store::audit_seal`])
//! then chains each entry's HMAC (see [`crate::domain::audit`]) into `CHAIN:macs` and moves the
//! chain's `CHAIN:head`. The key never reaches Redis.

use super::Conn;
use super::{Result, Store, retrying};
use crate::clock::Millis;
use crate::domain::audit::{self, Head, Stored};
use redis::RedisError;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// One audit entry to write: who did what to what, from where, and for registry changes
/// before → after (personal fields masked).
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditEntry {
    /// When (ms).
    pub at: Millis,
    /// The token's (or sender's) name, its role and scope.
    pub actor: String,
    pub role: String,
    pub scope: String,
    /// What was done: `incident.raise`, `volunteer.erase`, `session.sign_in`, …
    pub action: String,
    /// What it was done to (an incident, volunteer or team id; a drill; a CAP alert).
    pub target: String,
    /// The region the target belongs to (what scopes the entry's readers).
    pub region: String,
    /// The request's id (`x-request-id`) and the client's address.
    pub request: String,
    pub addr: String,
    /// Anything more, in words.
    pub detail: String,
}

impl AuditEntry {
    /// The entry as the JSON object scripts append (`audit` in `prelude.lua`); empty (nothing
    /// appended) for an entry without an action.
    pub fn json(&self) -> String {
        if self.action.is_empty() {
            return String::new();
        }
        serde_json::to_string(&self.fields()).unwrap_or_default()
    }

    /// Its fields as stored (empty ones left out).
    pub fn fields(&self) -> BTreeMap<&'static str, String> {
        [
            ("at", self.at.to_string()),
            ("actor", self.actor.clone()),
            ("role", self.role.clone()),
            ("scope", self.scope.clone()),
            ("action", self.action.clone()),
            ("target", self.target.clone()),
            ("region", self.region.clone()),
            ("request", self.request.clone()),
            ("addr", self.addr.clone()),
            ("detail", self.detail.clone()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }
}

/// Appends `e` with `outcome` to stream `chain` in pipeline `p` (its caller makes the pipeline
/// atomic with the change).
pub fn push(p: &mut redis::Pipeline, chain: &str, e: &AuditEntry, outcome: &str) {
    let c = p.cmd("XADD").arg(chain).arg("*");
    for (k, v) in e.fields() {
        c.arg(k).arg(v);
    }
    c.arg("outcome").arg(outcome).ignore();
}

/// One chain read back: its entries in order, the MAC recorded for each sealed id, its head.
pub struct Chain {
    pub name: String,
    pub entries: Vec<Stored>,
    pub macs: BTreeMap<String, String>,
    pub head: Option<Head>,
}

impl Store {
    /// Appends one entry with `outcome` to `chain`, alone (for actions with no Redis change of
    /// their own: a refusal, a CAP alert only recorded). Not retried: an `XADD *`.
    pub async fn audit_append(&self, chain: &str, e: &AuditEntry, outcome: &str) -> Result<()> {
        let mut p = redis::pipe();
        push(&mut p, chain, e, outcome);
        self.pipe_once(&p).await
    }

    /// Seals up to `limit` unsealed entries of `chain` with `key`; answers how many. Safe with
    /// several sealers: the head moves only from the value this one read (`audit_seal.lua`).
    pub async fn audit_seal(&self, key: &[u8], chain: &str, limit: usize) -> Result<usize> {
        let head_key = format!("{chain}:head");
        let head: HashMap<String, String> = self.cmd(redis::cmd("HGETALL").arg(&head_key)).await?;
        let last = head.get("last_id").cloned().unwrap_or_default();
        let mut prev = head
            .get("last_mac")
            .cloned()
            .unwrap_or_else(|| audit::GENESIS.to_string());
        let count: u64 = head.get("count").and_then(|c| c.parse().ok()).unwrap_or(0);
        let start = if last.is_empty() {
            "-".to_string()
        } else {
            format!("({last}")
        };
        let entries = self.xrange(chain, &start, limit).await?;
        if entries.is_empty() {
            return Ok(0);
        }
        let mut pairs = Vec::with_capacity(entries.len() * 2);
        for e in &entries {
            prev = audit::mac(key, &prev, &e.id, &e.fields);
            pairs.push(e.id.clone());
            pairs.push(prev.clone());
        }
        let new_last = entries.last().map(|e| e.id.clone()).unwrap_or_default();
        let new_count = count + entries.len() as u64;
        let hmac = audit::head_mac(key, &new_last, new_count, &prev);
        let moved: i64 = retrying(|| {
            let mut c = self.conn();
            let mut inv = self.scripts().audit_seal.prepare_invoke();
            inv.key(format!("{chain}:macs"))
                .key(&head_key)
                .arg(&last)
                .arg(&new_last)
                .arg(new_count)
                .arg(&prev)
                .arg(&hmac);
            for x in &pairs {
                inv.arg(x);
            }
            async move { inv.invoke_async(&mut c).await }
        })
        .await?;
        Ok(if moved == 1 { entries.len() } else { 0 })
    }

    /// Entries of stream `chain` from `start` (`-`, an id, or `(id` exclusive), at most `limit`.
    async fn xrange(&self, chain: &str, start: &str, limit: usize) -> Result<Vec<Stored>> {
        let reply: redis::streams::StreamRangeReply = self
            .cmd(
                redis::cmd("XRANGE")
                    .arg(chain)
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(limit),
            )
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|e| Stored {
                fields: e
                    .map
                    .iter()
                    .filter_map(|(k, v)| {
                        redis::from_redis_value::<String>(v.clone())
                            .ok()
                            .map(|v| (k.clone(), v))
                    })
                    .collect(),
                id: e.id,
            })
            .collect())
    }

    /// A whole chain, for verification and listing.
    pub async fn audit_chain(&self, chain: &str) -> Result<Chain> {
        let mut entries = Vec::new();
        let mut start = "-".to_string();
        loop {
            let page = self.xrange(chain, &start, 2000).await?;
            let n = page.len();
            if let Some(last) = page.last() {
                start = format!("({}", last.id);
            }
            entries.extend(page);
            if n < 2000 {
                break;
            }
        }
        let macs: BTreeMap<String, String> = self
            .cmd(redis::cmd("HGETALL").arg(format!("{chain}:macs")))
            .await?;
        let head = self.audit_chain_head(chain).await?;
        Ok(Chain {
            name: chain.to_string(),
            entries,
            macs,
            head,
        })
    }

    /// A chain's head, if anything was sealed.
    pub async fn audit_chain_head(&self, chain: &str) -> Result<Option<Head>> {
        let h: HashMap<String, String> = self
            .cmd(redis::cmd("HGETALL").arg(format!("{chain}:head")))
            .await?;
        Ok((!h.is_empty()).then(|| Head {
            last_id: h.get("last_id").cloned().unwrap_or_default(),
            count: h.get("count").and_then(|c| c.parse().ok()).unwrap_or(0),
            last_mac: h.get("last_mac").cloned().unwrap_or_default(),
            mac: h.get("mac").cloned().unwrap_or_default(),
        }))
    }

    /// The newest `limit` entries of `chain`, newest first.
    pub async fn audit_recent(&self, chain: &str, limit: usize) -> Result<Vec<Stored>> {
        let reply: redis::streams::StreamRangeReply = self
            .cmd(
                redis::cmd("XREVRANGE")
                    .arg(chain)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(limit),
            )
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|e| Stored {
                fields: e
                    .map
                    .iter()
                    .filter_map(|(k, v)| {
                        redis::from_redis_value::<String>(v.clone())
                            .ok()
                            .map(|v| (k.clone(), v))
                    })
                    .collect(),
                id: e.id,
            })
            .collect())
    }

    /// Counts a refusal from `addr`; the first of each minute is entry `e` (see
    /// `audit_refused.lua`). Answers the count this minute. Not retried: it counts.
    pub async fn audit_refusal(&self, addr: &str, e: &AuditEntry) -> Result<u64> {
        let key = self.keys.audit_refused(addr, e.at.div_euclid(60_000));
        let mut c = self.conn();
        let mut inv = self.scripts().audit_refused.prepare_invoke();
        inv.key(&key)
            .key(self.keys.audit())
            .arg(e.json())
            .arg(2 * 24 * 3600);
        Ok(inv.invoke_async(&mut c).await?)
    }

    /// The Redis node's replication: its role and how many replicas are connected to it.
    pub async fn replication(&self) -> Result<(String, u32)> {
        let info: String = self.cmd(redis::cmd("INFO").arg("replication")).await?;
        let field = |k: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
        };
        Ok((
            field("role:").unwrap_or_default(),
            field("connected_slaves:")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        ))
    }

    /// A Cluster's health as one node sees it (`CLUSTER INFO`) and each master with its
    /// replica count (`CLUSTER SLOTS`).
    pub async fn cluster_state(&self) -> Result<ClusterState> {
        let info: String = self.cmd(redis::cmd("CLUSTER").arg("INFO")).await?;
        let field = |k: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let num = |k: &str| field(k).parse::<u32>().unwrap_or(0);
        let ranges: Vec<redis::Value> = self.cmd(redis::cmd("CLUSTER").arg("SLOTS")).await?;
        let mut masters: Vec<(String, u32)> = Vec::new();
        for r in ranges {
            let redis::Value::Array(parts) = r else {
                continue;
            };
            let addr = |v: &redis::Value| -> Option<String> {
                let redis::Value::Array(m) = v else {
                    return None;
                };
                let host: String = redis::from_redis_value_ref(m.first()?).ok()?;
                let port: u16 = redis::from_redis_value_ref(m.get(1)?).ok()?;
                Some(format!("{host}:{port}"))
            };
            let Some(master) = parts.get(2).and_then(addr) else {
                continue;
            };
            let replicas = parts.len().saturating_sub(3) as u32;
            match masters.iter_mut().find(|(m, _)| *m == master) {
                Some((_, n)) => *n = (*n).min(replicas),
                None => masters.push((master, replicas)),
            }
        }
        masters.sort();
        Ok(ClusterState {
            state: field("cluster_state:"),
            slots_ok: num("cluster_slots_ok:"),
            slots_fail: num("cluster_slots_fail:") + num("cluster_slots_pfail:"),
            known_nodes: num("cluster_known_nodes:"),
            masters,
        })
    }

    /// Waits until `n` replicas have every write made so far on the shared connection (every
    /// change muster makes goes through it), at most `timeout_ms`; answers how many did.
    pub async fn wait_replicas(&self, n: u32, timeout_ms: u64) -> Result<u32> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(n).arg(timeout_ms);
        let (a, b) = (self.conn(), self.once_conn());
        if !self.is_cluster() {
            return Ok(wait.query_async(&mut a.clone()).await?);
        }
        // WAIT covers the writes made on the connection it is sent on. On a Cluster it goes to
        // every master the slot map names now, one by one by address (so a dead one fails this
        // call and is repaired, where the client's own fan-out would keep a broken link), on
        // both connections: the shared one and the one non-idempotent writes use. The least
        // count answers.
        let calls = self.masters().await?.into_iter().flat_map(|(host, port)| {
            let wait = wait.clone();
            [a.clone(), b.clone()].into_iter().map(move |c| {
                let (host, port) = (host.clone(), port);
                let wait = wait.clone();
                async move {
                    let Conn::Cluster(link) = c else {
                        unreachable!("a cluster store holds cluster connections")
                    };
                    let mut c = link.current();
                    let route =
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
                    let v = c.route_command(wait, route).await?;
                    redis::from_redis_value::<u32>(v).map_err(RedisError::from)
                }
            })
        });
        let counts = futures::future::try_join_all(calls).await?;
        Ok(counts.into_iter().min().unwrap_or(0))
    }

    /// Takes or renews lease `key` for `holder` for `ms`; whether `holder` has it.
    pub async fn lease(&self, key: &str, holder: &str, ms: u64) -> Result<bool> {
        let r: i64 = retrying(|| {
            let mut c = self.conn();
            let mut inv = self.scripts().lease.prepare_invoke();
            inv.key(key).arg(holder).arg(ms);
            async move { inv.invoke_async(&mut c).await }
        })
        .await?;
        Ok(r == 1)
    }

    /// Entries of every chain not yet sealed (tests wait for none).
    pub async fn audit_unsealed(&self) -> Result<u64> {
        let mut n = 0;
        for chain in self.keys.audit_chains() {
            let head: Option<String> = self
                .cmd(
                    redis::cmd("HGET")
                        .arg(format!("{chain}:head"))
                        .arg("last_id"),
                )
                .await?;
            let start = head.map_or_else(|| "-".to_string(), |l| format!("({l}"));
            n += self.xrange(&chain, &start, 100_000).await?.len() as u64;
        }
        Ok(n)
    }
}

/// What `/readyz` shows of a Cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterState {
    /// `ok` or `fail`.
    pub state: String,
    /// Slots served (16384 when whole).
    pub slots_ok: u32,
    /// Slots failing or suspected failing.
    pub slots_fail: u32,
    /// Nodes the answering node knows.
    pub known_nodes: u32,
    /// Each master (`host:port`) with the replicas serving its slots.
    pub masters: Vec<(String, u32)>,
}
