//! CAP alerts in Redis: which alert (sender, identifier) was handled and how, so a repeat
//! answers the same and a reference finds its incident; the alerts recorded on an incident;
//! and proposals (an `Actual` alert with `cap.auto_raise = false`) waiting for a commander.

use super::{Result, Store, retrying};
use crate::clock::Millis;
use crate::domain::incident::IncidentId;
use std::collections::HashMap;

impl Store {
    /// What an alert of `sender` with `identifier` came to, if it was handled (JSON).
    pub async fn cap_seen(&self, sender: &str, identifier: &str) -> Result<Option<String>> {
        self.cmd(redis::cmd("GET").arg(self.keys.cap_alert(sender, identifier)))
            .await
    }

    /// Records what an alert came to, unless it was recorded before.
    /// Its audit entry goes with it (one transaction; not retried: an `XADD *`).
    pub async fn cap_record(
        &self,
        sender: &str,
        identifier: &str,
        outcome: &str,
        audit: &super::audit::AuditEntry,
    ) -> Result<()> {
        let mut p = redis::pipe();
        p.atomic()
            .cmd("SET")
            .arg(self.keys.cap_alert(sender, identifier))
            .arg(outcome)
            .arg("NX")
            .ignore();
        super::audit::push(&mut p, &self.keys.audit(), audit, "ok");
        self.pipe_once(&p).await
    }

    /// Points alert (sender, identifier), once a proposal, at the incident its confirmation
    /// raised, so a repeat and a reference find the incident.
    pub async fn cap_confirmed(
        &self,
        sender: &str,
        identifier: &str,
        incident: &str,
    ) -> Result<()> {
        let v = serde_json::json!({ "incident": incident }).to_string();
        self.cmd(
            redis::cmd("SET")
                .arg(self.keys.cap_alert(sender, identifier))
                .arg(v),
        )
        .await
        .map(|_: ()| ())
    }

    /// Adds alert `reference` to incident `id`'s CAP list with an event (see `cap_note.lua`).
    pub async fn cap_note(
        &self,
        id: &IncidentId,
        reference: &str,
        now: Millis,
        detail: &str,
    ) -> Result<bool> {
        let r: i64 = retrying(|| {
            let mut c = self.conn();
            let mut inv = self.incident_invocation(&self.scripts().cap_note, id);
            inv.arg(reference).arg(now).arg(detail);
            async move { inv.invoke_async(&mut c).await }
        })
        .await?;
        Ok(r == 1)
    }

    /// Stores a proposal (idempotent: a proposal that exists keeps its fields).
    pub async fn cap_propose(&self, id: &str, at: Millis, fields: &[(&str, String)]) -> Result<()> {
        let key = self.keys.cap_proposal(id);
        let mut p = redis::pipe();
        p.atomic();
        for (k, v) in fields {
            p.cmd("HSETNX").arg(&key).arg(*k).arg(v).ignore();
        }
        p.cmd("ZADD")
            .arg(self.keys.cap_proposals())
            .arg(at)
            .arg(id)
            .ignore();
        self.pipe(&p).await
    }

    /// A proposal's fields, or `None`.
    pub async fn cap_proposal(&self, id: &str) -> Result<Option<HashMap<String, String>>> {
        self.hash_or_none(&self.keys.cap_proposal(id)).await
    }

    /// Proposals, newest first, at most `limit`.
    pub async fn cap_proposals(&self, limit: usize) -> Result<Vec<HashMap<String, String>>> {
        self.hashes_newest_first(&self.keys.cap_proposals(), limit, |id| {
            self.keys.cap_proposal(id)
        })
        .await
    }

    /// Changes one field of a pending proposal (an Update's severity).
    pub async fn cap_proposal_set(&self, id: &str, field: &str, value: &str) -> Result<()> {
        self.cmd(
            redis::cmd("HSET")
                .arg(self.keys.cap_proposal(id))
                .arg(field)
                .arg(value),
        )
        .await
        .map(|_: i64| ())
    }

    /// Decides a pending proposal: `ok`, or the status it had (see `cap_decide.lua`).
    pub async fn cap_decide(
        &self,
        id: &str,
        status: &str,
        now: Millis,
        audit: &super::audit::AuditEntry,
    ) -> Result<String> {
        let key = self.keys.cap_proposal(id);
        let (chain, json) = (self.keys.audit(), audit.json());
        retrying(|| {
            let mut c = self.conn();
            let mut inv = self.scripts().cap_decide.prepare_invoke();
            inv.key(&key)
                .key(&chain)
                .arg(status)
                .arg(&audit.actor)
                .arg(now)
                .arg(&json);
            async move { inv.invoke_async(&mut c).await }
        })
        .await
    }
}
