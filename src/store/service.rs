//! Service records (服务记录) in Redis: written once by the stand-down sweep and by a withdrawal
//! after arrival (`service` in `prelude.lua`), in the incident's partition; read back per
//! volunteer or per period across partitions; corrected by a coordinator with a reason, the
//! correction and its audit entry in one transaction.

use super::audit::{AuditEntry, push};
use super::{Result, Store};
use crate::clock::Millis;
use crate::domain::incident::IncidentId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A coordinator's correction of a record's hours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Correction {
    /// The hours that count.
    pub hours: f64,
    /// Why.
    pub reason: String,
    /// Who corrected, and when (ms).
    pub by: String,
    pub at: Millis,
}

/// One service record as stored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Stored {
    pub id: String,
    pub volunteer: String,
    pub incident: String,
    pub requirement: String,
    pub team: String,
    pub kind: String,
    pub region: String,
    pub title: String,
    pub mode: String,
    pub accepted_at: String,
    pub arrived_at: String,
    pub start: String,
    pub ended_at: String,
    /// `stood_down` or `withdrawn`.
    pub ended: String,
    /// `arrival` or `acceptance`.
    pub basis: String,
    #[serde(skip)]
    pub correction: Option<Correction>,
}

impl Stored {
    /// Milliseconds of a stored time field.
    pub fn ms(v: &str) -> Option<Millis> {
        v.parse().ok()
    }

    /// The hours served as recorded (two decimals), before any correction.
    pub fn recorded_hours(&self) -> f64 {
        let (s, e) = (
            Self::ms(&self.start).unwrap_or(0),
            Self::ms(&self.ended_at).unwrap_or(0),
        );
        (((e - s).max(0) as f64) / 36_000.0).round() / 100.0
    }

    /// The hours that count: the correction's, else as recorded.
    pub fn hours(&self) -> f64 {
        self.correction
            .as_ref()
            .map_or_else(|| self.recorded_hours(), |c| c.hours)
    }
}

impl Store {
    /// Records of partition `p` named by `ids`, with their corrections.
    async fn service_read(&self, p: u16, ids: &[String]) -> Result<Vec<Stored>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let mut q = redis::pipe();
        q.cmd("HMGET").arg(self.keys.service_records(p)).arg(ids);
        q.cmd("HMGET")
            .arg(self.keys.service_corrections(p))
            .arg(ids);
        let (recs, corrs): (Vec<Option<String>>, Vec<Option<String>>) = self.pipe(&q).await?;
        Ok(recs
            .into_iter()
            .zip(corrs)
            .filter_map(|(r, c)| {
                let mut s: Stored = serde_json::from_str(&r?).ok()?;
                s.correction = c.and_then(|c| serde_json::from_str(&c).ok());
                Some(s)
            })
            .collect())
    }

    /// Every record of volunteer `vid`, oldest first.
    pub async fn service_records_of(&self, vid: &str) -> Result<Vec<Stored>> {
        let mut out = Vec::new();
        for p in 0..self.keys.partitions() {
            let members: Vec<String> = self
                .cmd(
                    redis::cmd("ZRANGE")
                        .arg(self.keys.service_by_volunteer(p))
                        .arg(format!("[{vid}|"))
                        .arg(format!("[{vid}|~"))
                        .arg("BYLEX"),
                )
                .await?;
            // VOLUNTEER|END|INCIDENT.N
            let ids: Vec<String> = members
                .iter()
                .filter_map(|m| m.splitn(3, '|').nth(2).map(str::to_string))
                .collect();
            out.extend(self.service_read(p, &ids).await?);
        }
        out.sort_by(|a, b| a.ended_at.cmp(&b.ended_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Every record that ended in `from..=to` (ms), oldest first.
    pub async fn service_records_between(&self, from: Millis, to: Millis) -> Result<Vec<Stored>> {
        let mut out = Vec::new();
        for p in 0..self.keys.partitions() {
            let ids: Vec<String> = self
                .cmd(
                    redis::cmd("ZRANGE")
                        .arg(self.keys.service_time(p))
                        .arg(from)
                        .arg(to)
                        .arg("BYSCORE"),
                )
                .await?;
            out.extend(self.service_read(p, &ids).await?);
        }
        out.sort_by(|a, b| {
            Stored::ms(&a.ended_at)
                .cmp(&Stored::ms(&b.ended_at))
                .then(a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// One record by id (`INCIDENT.N`).
    pub async fn service_record(&self, id: &str) -> Result<Option<Stored>> {
        let Some(p) = partition_of_record(self, id) else {
            return Ok(None);
        };
        Ok(self.service_read(p, &[id.to_string()]).await?.pop())
    }

    /// Records a correction of record `id` with its audit entry, in one transaction (on the
    /// partition's audit chain). Not retried: an `XADD *`.
    pub async fn service_correct(
        &self,
        id: &str,
        c: &Correction,
        audit: &AuditEntry,
    ) -> Result<()> {
        let Some(p) = partition_of_record(self, id) else {
            return Ok(());
        };
        let mut q = redis::pipe();
        q.atomic()
            .cmd("HSET")
            .arg(self.keys.service_corrections(p))
            .arg(id)
            .arg(serde_json::to_string(c).unwrap_or_default())
            .ignore();
        push(&mut q, &self.keys.audit_partition(p), audit, "ok");
        self.pipe_once(&q).await
    }

    /// Volunteer names by id (for listings; an erased volunteer has none).
    pub async fn volunteer_names(&self, ids: &[String]) -> Result<HashMap<String, String>> {
        let mut q = redis::pipe();
        for id in ids {
            q.cmd("HGET").arg(self.keys.volunteer(id)).arg("name");
        }
        let names: Vec<Option<String>> = if ids.is_empty() {
            vec![]
        } else {
            self.pipe(&q).await?
        };
        Ok(ids
            .iter()
            .cloned()
            .zip(names)
            .filter_map(|(i, n)| n.map(|n| (i, n)))
            .collect())
    }
}

/// The partition of record `INCIDENT.N`.
fn partition_of_record(store: &Store, id: &str) -> Option<u16> {
    let (inc, n) = id.rsplit_once('.')?;
    n.parse::<u32>().ok()?;
    IncidentId::parse(inc).map(|i| store.keys.partition_of(&i))
}

impl Store {
    /// Stores certificate `code` stating `fields`, with its audit entry, in one transaction.
    /// Not retried: an `XADD *`.
    pub async fn certificate_put(
        &self,
        code: &str,
        fields: &[(&'static str, String)],
        audit: &AuditEntry,
    ) -> Result<()> {
        let mut q = redis::pipe();
        q.atomic();
        let c = q.cmd("HSET").arg(self.keys.certificate(code));
        for (k, v) in fields {
            c.arg(*k).arg(v);
        }
        c.ignore();
        push(&mut q, &self.keys.audit(), audit, "ok");
        self.pipe_once(&q).await
    }

    /// A certificate's stored fields, or `None`.
    pub async fn certificate(&self, code: &str) -> Result<Option<HashMap<String, String>>> {
        self.hash_or_none(&self.keys.certificate(code)).await
    }
}
