//! Where volunteers were deployed: each volunteer's deployments hash (`P:vol:VID:deploy`,
//! incident → callout n; see [`super::engage`] for the claims it also holds while an
//! acceptance is under way), written by the projection, read by selection (engaged
//! elsewhere, resting) and by the engagement check, and pruned by selection.

use super::{Result, Store, StoreError};
use std::collections::HashMap;

/// What selection needs to know about one deployment of a volunteer.
#[derive(Debug, Clone)]
pub struct DeploymentFacts {
    /// The incident's status.
    pub status: String,
    /// When it was stood down (ms; 0 if not).
    pub stood_down_at: i64,
    /// The callout's state.
    pub state: String,
    /// Its state before the stand-down.
    pub was: String,
    /// When the volunteer reported on site (ms; 0 if never).
    pub arrived_at: i64,
    /// When they withdrew (ms; 0 if they did not).
    pub withdrawn_at: i64,
}

/// A millisecond stamp of a parsed callout (0 when absent or not a number).
fn stamp(co: &HashMap<String, String>, field: &str) -> i64 {
    co.get(field).and_then(|t| t.parse().ok()).unwrap_or(0)
}

impl Store {
    /// Each volunteer's recorded deployments: incident id → the raw value (callout n, and
    /// the claim time while an acceptance is under way; see [`super::engage`]).
    pub async fn deployments(&self, vids: &[String]) -> Result<Vec<HashMap<String, String>>> {
        let mut p = redis::pipe();
        for v in vids {
            p.cmd("HGETALL").arg(self.keys.deployments(v));
        }
        self.pipe(&p).await
    }

    /// Records that each (volunteer, callout n) accepted on live incident `incident`, in one
    /// pipeline.
    pub async fn record_deployments(&self, incident: &str, all: &[(String, u32)]) -> Result<()> {
        let mut p = redis::pipe();
        for (vid, n) in all {
            p.cmd("HSET")
                .arg(self.keys.deployments(vid))
                .arg(incident)
                .arg(*n)
                .ignore();
        }
        self.pipe::<()>(&p).await
    }

    /// Forgets deployments that no longer matter.
    pub async fn forget_deployments(&self, vid: &str, incidents: &[String]) -> Result<()> {
        if incidents.is_empty() {
            return Ok(());
        }
        self.cmd::<()>(
            redis::cmd("HDEL")
                .arg(self.keys.deployments(vid))
                .arg(incidents),
        )
        .await
    }

    /// For each (incident, callout n): the incident's `status` and `stood_down_at`, and the
    /// callout's `st`, `was` (its state before a stand-down) and its arrival and withdrawal
    /// stamps.
    pub async fn deployment_facts(&self, pairs: &[(String, u32)]) -> Result<Vec<DeploymentFacts>> {
        let mut p = redis::pipe();
        for (inc, n) in pairs {
            let id = crate::domain::incident::IncidentId::parse(inc).ok_or_else(|| {
                StoreError::Corrupt(format!("deployment of bad incident id {inc}"))
            })?;
            p.cmd("HMGET")
                .arg(self.keys.incident(&id))
                .arg("status")
                .arg("stood_down_at");
            p.cmd("HMGET").arg(self.keys.callouts(&id)).arg(*n).arg(*n);
        }
        let rows: Vec<(Option<String>, Option<String>)> = self.pipe(&p).await?;
        Ok(rows
            .chunks(2)
            .map(|c| {
                let mut co = c[1]
                    .0
                    .as_deref()
                    .map(crate::store::callout_rows::parse_callout)
                    .unwrap_or_default();
                DeploymentFacts {
                    status: c[0].0.clone().unwrap_or_default(),
                    stood_down_at: c[0].1.as_deref().and_then(|t| t.parse().ok()).unwrap_or(0),
                    state: co.remove("st").unwrap_or_default(),
                    was: co.remove("was").unwrap_or_default(),
                    arrived_at: stamp(&co, "ra"),
                    withdrawn_at: stamp(&co, "wa"),
                }
            })
            .collect())
    }
}
