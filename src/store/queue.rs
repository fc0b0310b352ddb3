//! Consumer-group plumbing of the partitioned streams: creating groups, reading new entries
//! with a blocking read, reclaiming entries a dead consumer left pending, acknowledging.

use super::{Result, Store};
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use std::collections::HashMap;
use std::time::Duration;

/// One stream entry: its id and its fields as text.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Stream entry id.
    pub id: String,
    /// Fields.
    pub fields: HashMap<String, String>,
}

impl Entry {
    /// An entry of these fields (id `1-0`), for tests of the stream readers.
    #[cfg(test)]
    pub(crate) fn of(kv: &[(&str, &str)]) -> Entry {
        Entry {
            id: "1-0".into(),
            fields: kv
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// A field or "".
    pub fn get(&self, k: &str) -> &str {
        self.fields.get(k).map(String::as_str).unwrap_or("")
    }

    fn from_stream_id(s: StreamId) -> Entry {
        let fields = s
            .map
            .iter()
            .filter_map(|(k, v)| {
                redis::from_redis_value_ref::<String>(v)
                    .ok()
                    .map(|v| (k.clone(), v))
            })
            .collect();
        Entry { id: s.id, fields }
    }
}

/// Most callouts one delivery entry may name (a guard against a malformed entry).
pub const MAX_ENTRY_CALLOUTS: usize = 100_000;

/// Parses the callout numbers of a delivery entry: `"1-500"`, `"3,7,9-12"`, or `"5"`.
/// `None` if malformed, empty, or naming more than [`MAX_ENTRY_CALLOUTS`].
pub fn parse_ns(spec: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in spec.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?),
            None => {
                let a = part.trim().parse::<u32>().ok()?;
                (a, a)
            }
        };
        if b < a || out.len() + (b - a) as usize >= MAX_ENTRY_CALLOUTS {
            return None;
        }
        out.extend(a..=b);
    }
    (!out.is_empty()).then_some(out)
}

/// Writes callout numbers in the form [`parse_ns`] reads, runs of consecutive numbers as
/// ranges.
pub fn format_ns(ns: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < ns.len() {
        let mut j = i;
        while j + 1 < ns.len() && ns[j + 1] == ns[j].wrapping_add(1) {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if j == i {
            out.push_str(&ns[i].to_string());
        } else {
            out.push_str(&format!("{}-{}", ns[i], ns[j]));
        }
        i = j + 1;
    }
    out
}

/// A stream entry id `ms-seq` as numbers, to compare.
fn parse_entry_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// How much longer than its `BLOCK` a blocking read may take before its connection is given
/// up: a server that stops answering without closing the connection (a frozen host, on a
/// Cluster failed over to its replica) would otherwise hold the reader forever; the caller
/// drops the connection on the error and asks for the slot's master again.
const BLOCK_GRACE_MS: u64 = 5000;

/// The entries of an `XREAD` / `XREADGROUP` reply (none on a timeout).
fn entries(reply: Option<StreamReadReply>) -> Vec<Entry> {
    reply
        .map(|r| {
            r.keys
                .into_iter()
                .flat_map(|k| k.ids.into_iter().map(Entry::from_stream_id))
                .collect()
        })
        .unwrap_or_default()
}

impl Store {
    /// Creates consumer group `group` on `stream` (and the stream), tolerating `BUSYGROUP`.
    pub async fn ensure_group(&self, stream: &str, group: &str) -> Result<()> {
        let mut c = self.conn();
        let r: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(stream)
            .arg(group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut c)
            .await;
        match r {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads up to `count` new entries for `consumer`, blocking up to `block_ms`, on a
    /// dedicated connection (no response timeout).
    pub async fn read_group(
        &self,
        conn: &mut MultiplexedConnection,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block_ms: u64,
    ) -> Result<Vec<Entry>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(stream)
            .arg(">");
        let reply: Option<StreamReadReply> = super::conn::within(
            Duration::from_millis(block_ms + BLOCK_GRACE_MS),
            "a blocking read",
            cmd.query_async(conn),
        )
        .await?;
        Ok(entries(reply))
    }

    /// Claims up to `count` entries idle longer than `min_idle_ms` (left by a dead or stuck
    /// consumer) for `consumer`.
    pub async fn reclaim(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle_ms: u64,
        count: usize,
    ) -> Result<Vec<Entry>> {
        let mut c = self.conn();
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(stream)
            .arg(group)
            .arg(consumer)
            .arg(min_idle_ms)
            .arg("0-0")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut c)
            .await?;
        Ok(reply
            .claimed
            .into_iter()
            .map(Entry::from_stream_id)
            .collect())
    }

    /// Tells the group `consumer` is still working on entry `id`: resets its idle time, so
    /// other instances do not reclaim work that is alive (long delivery batches).
    pub async fn touch_entry(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        id: &str,
    ) -> Result<()> {
        let _: redis::Value = self
            .cmd(
                redis::cmd("XCLAIM")
                    .arg(stream)
                    .arg(group)
                    .arg(consumer)
                    .arg(0)
                    .arg(id)
                    .arg("JUSTID"),
            )
            .await?;
        Ok(())
    }

    /// Acknowledges entries.
    pub async fn ack_entries(&self, stream: &str, group: &str, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut c = self.conn();
        let _: i64 = redis::cmd("XACK")
            .arg(stream)
            .arg(group)
            .arg(ids)
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// Acknowledges delivery entry `entry` of partition `p` and, with `retry`, enqueues its
    /// fields again as a new entry due at the given time (through the delayed set), atomically.
    pub async fn finish_entry(
        &self,
        p: u16,
        group: &str,
        entry: &str,
        retry: Option<(i64, &[(String, String)])>,
    ) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.push_finish(&mut pipe, p, group, entry, retry);
        self.pipe(&pipe).await
    }

    /// Adds [`Store::finish_entry`]'s work to `pipe`: one script (`finish_entry.lua`) that
    /// acknowledges the entry and, only if that acknowledgement takes, schedules the retry as
    /// a delayed-set member (a JSON list of the entry's field names and values, which
    /// `promote_due.lua` turns back into an entry) — so a pipeline run again after a lost
    /// answer schedules nothing twice.
    pub(crate) fn push_finish(
        &self,
        pipe: &mut redis::Pipeline,
        p: u16,
        group: &str,
        entry: &str,
        retry: Option<(i64, &[(String, String)])>,
    ) {
        let (due, member) = match retry {
            Some((at, fields)) => {
                let flat: Vec<&str> = fields
                    .iter()
                    .flat_map(|(k, v)| [k.as_str(), v.as_str()])
                    .collect();
                (
                    at.to_string(),
                    serde_json::to_string(&flat).unwrap_or_default(),
                )
            }
            None => (String::new(), String::new()),
        };
        let script = &self.scripts().finish_entry;
        // Loaded first in the same pipeline: an EVALSHA after a Redis restart finds it.
        pipe.load_script(script).ignore();
        let mut inv = script.prepare_invoke();
        inv.key(self.keys.deliveries(p))
            .key(self.keys.delayed(p))
            .arg(group)
            .arg(entry)
            .arg(due)
            .arg(member);
        pipe.invoke_script(&inv).ignore();
    }

    /// Trims `stream` below the oldest entry any of its consumer groups still needs — its
    /// oldest pending entry (read, not yet acknowledged) or, with none pending, its last read
    /// one — so a backlog is never cut, however long. Safe against concurrent work: pending
    /// entries only get acknowledged and new reads only take newer entries, so the floor only
    /// rises. A stream without groups is left alone. Returns how many entries went.
    pub async fn trim_finished(&self, stream: &str) -> Result<u64> {
        let groups: redis::Value = match self
            .cmd(redis::cmd("XINFO").arg("GROUPS").arg(stream))
            .await
        {
            Ok(v) => v,
            Err(super::StoreError::Redis(e)) if e.code() == Some("ERR") => return Ok(0), // no stream yet
            Err(e) => return Err(e),
        };
        let redis::Value::Array(groups) = groups else {
            return Ok(0);
        };
        let mut floor: Option<(u64, u64)> = None;
        for g in groups {
            let info: HashMap<String, redis::Value> = redis::from_redis_value(g)
                .map_err(|e| super::StoreError::Corrupt(format!("XINFO GROUPS {stream}: {e}")))?;
            let text = |k: &str| -> String {
                info.get(k)
                    .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
                    .unwrap_or_default()
            };
            let pending: u64 = text("pending").parse().unwrap_or(0);
            let needed = if pending > 0 {
                let summary: (u64, Option<String>, Option<String>, redis::Value) = self
                    .cmd(redis::cmd("XPENDING").arg(stream).arg(text("name")))
                    .await?;
                summary.1.unwrap_or_default()
            } else {
                text("last-delivered-id")
            };
            let Some(id) = parse_entry_id(&needed) else {
                return Ok(0); // cannot tell: keep everything
            };
            floor = Some(floor.map_or(id, |f| f.min(id)));
        }
        let Some((ms, seq)) = floor else {
            return Ok(0);
        };
        self.cmd(
            redis::cmd("XTRIM")
                .arg(stream)
                .arg("MINID")
                .arg("~")
                .arg(format!("{ms}-{seq}")),
        )
        .await
    }

    /// Reads an incident's event stream after `after` (`$` for only new ones), blocking up to
    /// `block_ms` on a dedicated connection.
    pub async fn read_events(
        &self,
        conn: &mut MultiplexedConnection,
        stream: &str,
        after: &str,
        block_ms: u64,
    ) -> Result<Vec<Entry>> {
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(500)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(stream)
            .arg(after);
        let reply: Option<StreamReadReply> = super::conn::within(
            Duration::from_millis(block_ms + BLOCK_GRACE_MS),
            "a blocking read",
            cmd.query_async(conn),
        )
        .await?;
        Ok(entries(reply))
    }

    /// The first `limit` entries of an incident's event stream, oldest first (read with
    /// retries: a range read is idempotent).
    pub async fn incident_events(
        &self,
        id: &crate::domain::incident::IncidentId,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        let key = self.keys.events(id);
        let reply: redis::streams::StreamRangeReply = self
            .cmd(
                redis::cmd("XRANGE")
                    .arg(&key)
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(limit),
            )
            .await?;
        Ok(reply.ids.into_iter().map(Entry::from_stream_id).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn delivery_entry_numbers_parse() {
        assert_eq!(parse_ns("5"), Some(vec![5]));
        assert_eq!(parse_ns("1-3,7,9-10"), Some(vec![1, 2, 3, 7, 9, 10]));
        for bad in ["", "x", "3-1", "1-", "-", "1,,2", "0-4000000000"] {
            assert_eq!(parse_ns(bad), None, "{bad}");
        }
        assert_eq!(format_ns(&[1, 2, 3, 7, 9, 10]), "1-3,7,9-10");
        assert_eq!(format_ns(&[]), "");
    }

    proptest! {
        #[test]
        fn format_then_parse_gives_the_numbers_back(mut ns in proptest::collection::vec(1u32..5000, 1..300)) {
            ns.sort_unstable();
            ns.dedup();
            prop_assert_eq!(parse_ns(&format_ns(&ns)), Some(ns));
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,40}") {
            let _ = parse_ns(&s);
        }
    }
}
