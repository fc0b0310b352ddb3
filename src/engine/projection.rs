//! The progress projection: keeps each incident's listing index and its status
//! (`mustering` ↔ `filled`) in step with the answers. Events are coalesced: one batch of many
//! answers to one incident recomputes it once.

use super::Ctx;
use super::worker::Handler;
use crate::domain::incident::IncidentId;
use crate::store::queue::Entry;
use crate::store::{Keys, StoreError};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Consumer group name.
pub const GROUP: &str = "projection";

/// The projection handler.
pub struct Projection {
    ctx: Arc<Ctx>,
}

impl Projection {
    /// A handler on `ctx`.
    pub fn new(ctx: Arc<Ctx>) -> Projection {
        Projection { ctx }
    }
}

impl Handler for Projection {
    fn group(&self) -> &'static str {
        GROUP
    }

    fn stream(&self, keys: &Keys, p: u16) -> String {
        keys.bus(p)
    }

    fn capacity(&self) -> usize {
        512
    }

    async fn handle(&self, p: u16, entries: Vec<Entry>) -> Result<(), StoreError> {
        let store = &self.ctx.store;
        let mut touched = BTreeSet::new();
        for e in &entries {
            let Some(id) = IncidentId::parse(e.get("incident")) else {
                continue;
            };
            if e.get("type") == "incident.raised"
                && let Some(inc) = store.incident_fields(&id).await?
            {
                let at = inc
                    .get("raised_at")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                store.index_incident(&id, at).await?;
            }
            touched.insert(id.0);
        }
        for id in touched {
            let id = IncidentId(id);
            let status = store.project_status(&id, self.ctx.clock.now_ms()).await?;
            tracing::trace!(incident = %id, status, "projected");
        }
        let ids: Vec<String> = entries.into_iter().map(|e| e.id).collect();
        store.ack_entries(&store.keys.bus(p), GROUP, &ids).await
    }
}
