//! The progress projection: keeps each incident's listing index and its status
//! (`mustering` ↔ `filled`) in step with the answers, and records on each volunteer where
//! they were deployed (accepted on a live incident). Events are coalesced: one batch of many
//! answers to one incident recomputes it once.

use super::Ctx;
use super::worker::Handler;
use crate::domain::callout::CalloutState;
use crate::domain::incident::{IncidentId, Mode};
use crate::store::bus::BusEvent;
use crate::store::queue::Entry;
use crate::store::{Keys, StoreError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use uuid::Uuid;

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

impl Projection {
    /// Remembers, on each volunteer, that they accepted callout `n` of a live incident (for
    /// each `ns` answered in this batch), so selection can leave them out of other live
    /// call-outs and let them rest afterwards. Drills are never recorded: a drill never blocks
    /// a live call-out nor counts as rest. One read of the incident's answered callouts (and
    /// of its mode when one of them counts), and one pipeline of writes, however many answers
    /// the batch holds.
    async fn record_deployments(&self, id: &IncidentId, ns: &[u32]) -> Result<(), StoreError> {
        let store = &self.ctx.store;
        let serving: Vec<_> = store
            .callouts_at(id, ns)
            .await?
            .into_iter()
            .filter(|co| CalloutState::serving(co.get("st")))
            .collect();
        // Most answers under load do not count (declines, standby): then the mode is not read.
        if serving.is_empty() {
            return Ok(());
        }
        let live = store
            .incident_field(id, "mode")
            .await?
            .as_deref()
            .and_then(Mode::parse)
            == Some(Mode::Live);
        if !live {
            return Ok(());
        }
        let all: Vec<(String, u32)> = serving
            .into_iter()
            .map(|co| (co.get("v").to_string(), co.n))
            .collect();
        store.record_deployments(&id.to_string(), &all).await
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
        // The callouts answered in this batch, per incident (and who was promoted by it).
        let mut answered: BTreeMap<Uuid, BTreeSet<u32>> = BTreeMap::new();
        for e in &entries {
            let event = BusEvent::parse(e);
            let Some(id) = event.incident() else {
                continue;
            };
            match event {
                BusEvent::Raised { .. } => {
                    if let Some(inc) = store.incident_fields(&id).await? {
                        let at = inc
                            .get("raised_at")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        store.index_incident(&id, at).await?;
                    }
                }
                BusEvent::Answered { n, promoted, .. } => {
                    answered
                        .entry(id.0)
                        .or_default()
                        .extend(std::iter::once(n).chain(promoted));
                }
                _ => {}
            }
            touched.insert(id.0);
        }
        for (id, ns) in answered {
            let ns: Vec<u32> = ns.into_iter().collect();
            self.record_deployments(&IncidentId(id), &ns).await?;
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
