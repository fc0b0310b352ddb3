//! Closing incidents in Redis: the stand-down, the sweep that closes its callouts (and writes
//! the service records), and retirement past `retention.incident_days`.

use super::{Result, Store, retrying};
use crate::clock::Millis;
use crate::domain::incident::IncidentId;

impl Store {
    /// Stands an incident down. `Ok(None)`: unknown; `Ok(Some(false))`: already stood down.
    pub async fn stand_down(
        &self,
        id: &IncidentId,
        now: Millis,
        audit: &crate::store::audit::AuditEntry,
    ) -> Result<Option<bool>> {
        let idt = id.to_string();
        let json = audit.json();
        let by = &audit.actor;
        let r: String = retrying(|| {
            let mut c = self.conn();
            let mut inv = self.incident_invocation(&self.scripts().stand_down, id);
            inv.arg(&idt).arg(now).arg(by).arg(&json);
            async move { inv.invoke_async(&mut c).await }
        })
        .await?;
        Ok(match r.as_str() {
            "unknown" => None,
            "already" => Some(false),
            _ => Some(true),
        })
    }

    /// Closes callouts `first..=last` of a stood-down incident; returns notices enqueued.
    pub async fn stand_down_sweep(
        &self,
        id: &IncidentId,
        now: Millis,
        first: u32,
        last: u32,
    ) -> Result<u32> {
        let idt = id.to_string();
        retrying(|| {
            let mut c = self.conn();
            let mut inv = self.incident_invocation(&self.scripts().stand_down_sweep, id);
            inv.arg(&idt).arg(now).arg(first).arg(last);
            async move { inv.invoke_async(&mut c).await }
        })
        .await
    }

    /// Retires stood-down incident `id` (see `retire.lua`): its per-callout keys go, its final
    /// `report` (JSON) stays. Answers the callouts removed, or `None` if it was not stood down.
    pub async fn retire(
        &self,
        id: &IncidentId,
        now: Millis,
        report: &str,
        requirements: &[String],
        audit: &crate::store::audit::AuditEntry,
    ) -> Result<Option<u64>> {
        let json = audit.json();
        let r: i64 = retrying(|| {
            let mut c = self.conn();
            let mut inv = self.incident_invocation(&self.scripts().retire, id);
            inv.arg(now).arg(report).arg(&json);
            for q in requirements {
                inv.arg(q);
            }
            async move { inv.invoke_async(&mut c).await }
        })
        .await?;
        Ok((r >= 0).then_some(r as u64))
    }
}
