//! Reading an incident's callouts back: one, a range, or only the fields a listing shows.

use super::{Result, Store, retrying};
use crate::clock::{Millis, rfc3339};
use crate::domain::incident::IncidentId;
use std::collections::HashMap;

/// A callout as stored, for listing.
#[derive(Debug, Clone)]
pub struct CalloutRecord {
    /// Number within the incident.
    pub n: u32,
    /// Raw fields.
    pub fields: HashMap<String, String>,
}

impl CalloutRecord {
    /// A field or "".
    pub fn get(&self, k: &str) -> &str {
        self.fields.get(k).map(String::as_str).unwrap_or("")
    }

    /// A timestamp field as RFC 3339.
    pub fn time(&self, k: &str) -> Option<String> {
        self.fields
            .get(k)
            .and_then(|v| v.parse::<Millis>().ok())
            .map(rfc3339)
    }
}

/// A callout as a listing reads it: some of its fields, by name.
#[derive(Debug, Clone)]
pub struct CalloutRow {
    /// Number within the incident.
    pub n: u32,
    fields: &'static [&'static str],
    vals: Vec<Option<String>>,
}

impl CalloutRow {
    fn at(&self, k: &str) -> Option<usize> {
        self.fields.iter().position(|f| *f == k)
    }

    /// A field or "" (also for a field not read).
    pub fn get(&self, k: &str) -> &str {
        self.at(k)
            .and_then(|i| self.vals[i].as_deref())
            .unwrap_or("")
    }

    /// A field, moved out.
    pub fn take(&mut self, k: &str) -> Option<String> {
        self.at(k).and_then(|i| self.vals[i].take())
    }

    /// A timestamp field as RFC 3339.
    pub fn time(&self, k: &str) -> Option<String> {
        self.get(k).parse::<Millis>().ok().map(rfc3339)
    }
}

impl Store {
    /// The number of callouts an incident has.
    pub async fn callout_count(&self, id: &IncidentId) -> Result<u32> {
        let base = self.keys.incident(id);
        let n: Option<u32> = retrying(|| {
            let mut c = self.conn();
            let base = base.clone();
            async move {
                redis::cmd("HGET")
                    .arg(base)
                    .arg("seq")
                    .query_async(&mut c)
                    .await
            }
        })
        .await?;
        Ok(n.unwrap_or(0))
    }

    /// Callouts `first..=last` of an incident.
    pub async fn callouts(
        &self,
        id: &IncidentId,
        first: u32,
        last: u32,
    ) -> Result<Vec<CalloutRecord>> {
        let ns: Vec<u32> = (first..=last).collect();
        self.callouts_at(id, &ns).await
    }

    /// Callouts `ns` of an incident (any numbers, in any order; a number with none is left
    /// out).
    pub async fn callouts_at(&self, id: &IncidentId, ns: &[u32]) -> Result<Vec<CalloutRecord>> {
        let raw = self.callouts_raw(id, ns).await?;
        Ok(ns
            .iter()
            .zip(raw)
            .filter_map(|(n, r)| {
                Some(CalloutRecord {
                    n: *n,
                    fields: parse_callout(&r?),
                })
            })
            .collect())
    }

    /// Callouts `first..=last` of an incident with only the `fields` a listing shows: one
    /// `HMGET` each, pipelined (a callout with none of them is left out). A board of 10,000
    /// callouts reads half the values `HGETALL` would answer, and parses them for less.
    pub async fn callout_rows(
        &self,
        id: &IncidentId,
        first: u32,
        last: u32,
        fields: &'static [&'static str],
    ) -> Result<Vec<CalloutRow>> {
        let ns: Vec<u32> = (first..=last).collect();
        let raw = self.callouts_raw(id, &ns).await?;
        Ok(ns
            .into_iter()
            .zip(raw)
            .filter_map(|(n, r)| {
                let mut all = parse_callout(&r?);
                let vals: Vec<Option<String>> = fields.iter().map(|f| all.remove(*f)).collect();
                vals.iter()
                    .any(Option::is_some)
                    .then_some(CalloutRow { n, fields, vals })
            })
            .collect())
    }

    /// The stored JSON of callouts `ns` (`None` for a number that has none), in one `HMGET`
    /// per 2,000.
    async fn callouts_raw(&self, id: &IncidentId, ns: &[u32]) -> Result<Vec<Option<String>>> {
        let key = self.keys.callouts(id);
        let mut out = Vec::with_capacity(ns.len());
        for chunk in ns.chunks(2000) {
            let part: Vec<Option<String>> =
                self.cmd(redis::cmd("HMGET").arg(&key).arg(chunk)).await?;
            out.extend(part);
        }
        Ok(out)
    }

    /// One callout, or `None`.
    pub async fn callout(&self, id: &IncidentId, n: u32) -> Result<Option<CalloutRecord>> {
        Ok(self.callouts_at(id, &[n]).await?.into_iter().next())
    }

    /// The state of each volunteer's callout in an incident: volunteer id → state.
    pub async fn called_states(&self, id: &IncidentId) -> Result<HashMap<String, String>> {
        let called: HashMap<String, u32> = self
            .cmd(redis::cmd("HGETALL").arg(self.keys.called(id)))
            .await?;
        let pairs: Vec<(String, u32)> = called.into_iter().collect();
        if pairs.is_empty() {
            return Ok(HashMap::new());
        }
        let ns: Vec<u32> = pairs.iter().map(|(_, n)| *n).collect();
        let raw: Vec<Option<String>> = self
            .cmd(redis::cmd("HMGET").arg(self.keys.callouts(id)).arg(&ns))
            .await?;
        Ok(pairs
            .into_iter()
            .zip(raw)
            .filter_map(|((v, _), r)| Some((v, parse_callout(&r?).remove("st")?)))
            .collect())
    }
}

/// A callout's stored JSON object as its fields (every value as text; a malformed one reads as
/// no fields).
pub(crate) fn parse_callout(raw: &str) -> HashMap<String, String> {
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(raw) else {
        return HashMap::new();
    };
    m.into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, s)),
            serde_json::Value::Null => None,
            other => Some((k, other.to_string())),
        })
        .collect()
}
