//! Consumer-group plumbing of the partitioned streams: creating groups, reading new entries
//! with a blocking read, reclaiming entries a dead consumer left pending, acknowledging.

use super::{Result, Store};
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use std::collections::HashMap;

/// One stream entry: its id and its fields as text.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Stream entry id.
    pub id: String,
    /// Fields.
    pub fields: HashMap<String, String>,
}

impl Entry {
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
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(stream)
            .arg(">")
            .query_async(conn)
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

    /// Reads an incident's event stream after `after` (`$` for only new ones), blocking up to
    /// `block_ms` on a dedicated connection.
    pub async fn read_events(
        &self,
        conn: &mut MultiplexedConnection,
        stream: &str,
        after: &str,
        block_ms: u64,
    ) -> Result<Vec<Entry>> {
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(500)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(stream)
            .arg(after)
            .query_async(conn)
            .await?;
        Ok(entries(reply))
    }
}
