//! Scheduled drills in Redis. A drill waits in the `due` set until its time on the injected
//! clock; [`Store::drills_claim`] moves it to the `firing` set in one script, so exactly one
//! instance raises it, and [`Store::drill_started`] records the incident it raised. The
//! incident's id is derived from the drill's, so a claim retaken after its instance died
//! raises nothing twice.

use super::{Result, Store, retrying};
use crate::clock::Millis;
use std::collections::HashMap;

/// A drill to schedule, already validated.
#[derive(Debug, Clone)]
pub struct NewDrill {
    /// Its id.
    pub id: String,
    /// What makes two requests with one idempotency key the same.
    pub fingerprint: String,
    /// When it runs (ms).
    pub at: Millis,
    /// Its fields: kind, level, region, title, channels, objectives, created_by, created_at.
    pub fields: Vec<(&'static str, String)>,
    /// Due now: claimed for firing by the request that schedules it.
    pub claim_now: bool,
    /// Its audit entry.
    pub audit: crate::store::audit::AuditEntry,
}

/// What scheduling found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheduled {
    /// A new drill.
    Created,
    /// The same request again.
    Existing,
    /// The idempotency key was used for a different drill.
    KeyReused,
}

impl Store {
    /// Schedules a drill (see `drill_put.lua`).
    pub async fn drill_put(&self, d: &NewDrill) -> Result<Scheduled> {
        let k = &self.keys;
        let (key, all, due, firing) = (
            k.drill(&d.id),
            k.drills(),
            k.drills_due(),
            k.drills_firing(),
        );
        let wall = crate::clock::wall_ms();
        let (chain, json) = (k.audit_drills(), d.audit.json());
        let fields = serde_json::Value::Object(
            d.fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone().into()))
                .collect(),
        )
        .to_string();
        let (created, fp): (i64, String) = retrying(|| {
            let mut c = self.conn();
            let mut inv = self.scripts().drill_put.prepare_invoke();
            inv.key(&key)
                .key(&all)
                .key(&due)
                .key(&firing)
                .key(&chain)
                .arg(&d.id)
                .arg(&d.fingerprint)
                .arg(d.at)
                .arg(&fields)
                .arg(if d.claim_now { "1" } else { "0" })
                .arg(wall)
                .arg(&json);
            async move { inv.invoke_async(&mut c).await }
        })
        .await?;
        Ok(if created == 1 {
            Scheduled::Created
        } else if fp == d.fingerprint {
            Scheduled::Existing
        } else {
            Scheduled::KeyReused
        })
    }

    /// A drill's fields, or `None`.
    pub async fn drill(&self, id: &str) -> Result<Option<HashMap<String, String>>> {
        self.hash_or_none(&self.keys.drill(id)).await
    }

    /// Drills by when they run, latest first, at most `limit`.
    pub async fn drills(&self, limit: usize) -> Result<Vec<HashMap<String, String>>> {
        self.hashes_newest_first(&self.keys.drills(), limit, |id| self.keys.drill(id))
            .await
    }

    /// Claims the drills due at `now` (injected clock), and those whose claim is older than
    /// `lease_ms` of wall time (see `drills_due.lua`).
    pub async fn drills_claim(
        &self,
        now: Millis,
        wall: Millis,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<String>> {
        let k = &self.keys;
        let (due, firing) = (k.drills_due(), k.drills_firing());
        let ids: Vec<String> = retrying(|| {
            let mut c = self.conn();
            let mut inv = self.scripts().drills_due.prepare_invoke();
            inv.key(&due)
                .key(&firing)
                .arg(now)
                .arg(wall)
                .arg(lease_ms)
                .arg(limit);
            async move { inv.invoke_async(&mut c).await }
        })
        .await?;
        // Shown as starting until the raise is recorded (a claim retaken after the lease is
        // still starting); a plain write of each claimed drill, so the claim script touches
        // only the keys it declares.
        let mut p = redis::pipe();
        for id in &ids {
            p.cmd("HSET")
                .arg(k.drill(id))
                .arg("status")
                .arg("starting")
                .ignore();
        }
        let _: () = self.pipe(&p).await?;
        Ok(ids)
    }

    /// Records that drill `id` raised `incident` (idempotent).
    pub async fn drill_started(&self, id: &str, incident: &str, now: Millis) -> Result<()> {
        let mut p = redis::pipe();
        p.atomic()
            .cmd("HSET")
            .arg(self.keys.drill(id))
            .arg("status")
            .arg("running")
            .arg("incident")
            .arg(incident)
            .arg("started_at")
            .arg(now)
            .ignore()
            .cmd("ZREM")
            .arg(self.keys.drills_firing())
            .arg(id)
            .ignore();
        self.pipe(&p).await
    }

    /// Records that drill `id` could not be raised, and why (idempotent).
    pub async fn drill_failed(&self, id: &str, error: &str, now: Millis) -> Result<()> {
        let mut p = redis::pipe();
        p.atomic()
            .cmd("HSET")
            .arg(self.keys.drill(id))
            .arg("status")
            .arg("failed")
            .arg("error")
            .arg(error)
            .arg("started_at")
            .arg(now)
            .ignore()
            .cmd("ZREM")
            .arg(self.keys.drills_firing())
            .arg(id)
            .ignore();
        self.pipe(&p).await
    }

    /// Cancels a scheduled drill: `ok`, or the status that kept it from being cancelled
    /// (empty: no such drill).
    pub async fn drill_cancel(
        &self,
        id: &str,
        now: Millis,
        audit: &crate::store::audit::AuditEntry,
    ) -> Result<String> {
        let (due, key) = (self.keys.drills_due(), self.keys.drill(id));
        let (chain, json) = (self.keys.audit_drills(), audit.json());
        retrying(|| {
            let mut c = self.conn();
            let mut inv = self.scripts().drill_cancel.prepare_invoke();
            inv.key(&due)
                .key(&key)
                .key(&chain)
                .arg(id)
                .arg(now)
                .arg(&audit.actor)
                .arg(&json);
            async move { inv.invoke_async(&mut c).await }
        })
        .await
    }

    /// Drills due at `now` or claimed and not yet recorded (for tests' idle check).
    pub async fn drills_pending(&self, now: Millis) -> Result<u64> {
        let mut p = redis::pipe();
        p.cmd("ZCOUNT")
            .arg(self.keys.drills_due())
            .arg("-inf")
            .arg(now)
            .cmd("ZCARD")
            .arg(self.keys.drills_firing());
        let (due, firing): (u64, u64) = self.pipe(&p).await?;
        Ok(due + firing)
    }
}
