//! Engagement: a volunteer counts on at most one live incident at a time.
//!
//! A volunteer's deployments hash (`P:vol:VID:deploy`, see [`super::keys`]) names the live
//! incidents where they accepted: `incident → "n"` once the projection recorded it, or
//! `incident → "n@ms"` while an acceptance is under way (a claim, a lease of
//! [`CLAIM_LEASE_MS`]). Before an acceptance on a live incident is counted, `engage.lua` sets
//! the claim, and only when every other incident the hash names has been checked and found
//! not to engage the volunteer (stood down, or their callout there no longer accepted, and no
//! claim younger than the lease). The check reads other incidents' keys, which on a Cluster
//! live on other nodes, so it is done here and the script refuses to claim if the hash changed
//! since: two acceptances racing for one volunteer cannot both pass. A claim whose acceptance
//! did not count is released (`disengage.lua`); one left by a crash expires with its lease.
//!
//! An acceptance that can only go to standby (its requirement already full) claims nothing,
//! since standby does not count: it checks read-only that the volunteer is not deployed
//! elsewhere, and the headcount script puts it on standby only if no place has opened since
//! (else the acceptance takes the claiming path).

use super::{Result, Store, retrying};
use crate::clock::Millis;
use crate::domain::callout::CalloutState;
use crate::domain::incident::{IncidentId, Mode, Status};
use redis::Value;
use std::collections::HashMap;

/// How long a claim engages a volunteer before its acceptance is counted: far longer than an
/// acceptance takes, short enough that a crash between claim and count does not keep a
/// volunteer from answering another call-out for long.
pub const CLAIM_LEASE_MS: i64 = 30_000;

/// What an acceptance reads before claiming ([`Store::accept_facts`]).
#[derive(Debug, Clone)]
pub struct AcceptFacts {
    /// The callout's volunteer.
    pub volunteer: String,
    /// The callout's state.
    pub state: String,
    /// Whether its requirement had its headcount when read (an acceptance would go to
    /// standby, so it needs no claim).
    pub full: bool,
}

/// The result of claiming a volunteer for an acceptance.
#[derive(Debug, Clone)]
pub enum Engagement {
    /// Free to accept: the claim set now, as (volunteer, value), to release if the acceptance
    /// does not count; `None` when this incident held it already.
    Free(Option<(String, String)>),
    /// Deployed on another live incident.
    Elsewhere {
        /// The callout's state here (unchanged).
        state: String,
        /// The incident they are deployed on.
        incident: IncidentId,
    },
}

/// A deployments-hash value: the callout number, and the claim time while under way.
pub fn parse_deployment(value: &str) -> Option<(u32, Option<Millis>)> {
    match value.split_once('@') {
        Some((n, ms)) => Some((n.parse().ok()?, Some(ms.parse().ok()?))),
        None => Some((value.parse().ok()?, None)),
    }
}

/// Whether a deployment record still engages its volunteer, given its incident's status and
/// the callout's state there.
pub fn engages(value: &str, status: &str, state: &str, now: Millis) -> bool {
    let live = Status::active(status);
    let serving = CalloutState::serving(state);
    let leased =
        matches!(parse_deployment(value), Some((_, Some(at))) if now - at < CLAIM_LEASE_MS);
    live && (serving || leased)
}

impl Store {
    /// What an acceptance of callout `n` of incident `id` needs to know before it claims
    /// anyone, in one round trip: the callout's volunteer and state, and whether its
    /// requirement is full. `None` when nothing is to be claimed: the callout is unknown, or
    /// the incident is a drill (a drill never engages anyone).
    pub async fn accept_facts(&self, id: &IncidentId, n: u32) -> Result<Option<AcceptFacts>> {
        let mut p = redis::pipe();
        p.cmd("HGET").arg(self.keys.callouts(id)).arg(n);
        p.cmd("HGET").arg(self.keys.incident(id)).arg("mode");
        p.cmd("HGETALL").arg(self.keys.counts(id));
        let (raw, mode, counts): (Option<String>, Option<String>, HashMap<String, String>) =
            self.pipe(&p).await?;
        let mut co = raw
            .as_deref()
            .map(crate::store::callout_rows::parse_callout)
            .unwrap_or_default();
        let (Some(volunteer), Some(state)) = (co.remove("v"), co.remove("st")) else {
            return Ok(None);
        };
        if mode.as_deref().and_then(Mode::parse) != Some(Mode::Live) {
            return Ok(None);
        }
        let req = co.remove("r").unwrap_or_default();
        let count = |f: &str| {
            counts
                .get(&format!("{req}:{f}"))
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        Ok(Some(AcceptFacts {
            full: count("accepted") + count("arrived") >= count("needed"),
            volunteer,
            state,
        }))
    }

    /// The live incident other than `id` that volunteer `vid` is deployed on, if any — read
    /// only, claiming nothing (for an acceptance that can only go to standby, which does not
    /// count).
    pub async fn engaged_elsewhere(
        &self,
        vid: &str,
        id: &IncidentId,
        now: Millis,
    ) -> Result<Option<IncidentId>> {
        let mut p = redis::pipe();
        p.cmd("HGETALL").arg(self.keys.deployments(vid));
        let (all,): (HashMap<String, String>,) = self.pipe(&p).await?;
        let idt = id.to_string();
        let others: Vec<(String, String)> = all.into_iter().filter(|(i, _)| *i != idt).collect();
        self.first_engaging(&others, now).await
    }

    /// The first of these deployment records (incident, value) that still engages its
    /// volunteer.
    async fn first_engaging(
        &self,
        records: &[(String, String)],
        now: Millis,
    ) -> Result<Option<IncidentId>> {
        if records.is_empty() {
            return Ok(None);
        }
        let pairs: Vec<(String, u32)> = records
            .iter()
            .map(|(i, v)| (i.clone(), parse_deployment(v).map_or(0, |d| d.0)))
            .collect();
        let facts = self.deployment_facts(&pairs).await?;
        Ok(records
            .iter()
            .zip(&facts)
            .find(|((_, v), f)| engages(v, &f.status, &f.state, now))
            .and_then(|((inc, _), _)| IncidentId::parse(inc)))
    }

    /// Claims volunteer `vid` of callout `n` (in `state` there) of live incident `id` for an
    /// acceptance (see the module).
    pub async fn engage(
        &self,
        id: &IncidentId,
        n: u32,
        vid: &str,
        state: &str,
        now: Millis,
    ) -> Result<Engagement> {
        let key = self.keys.deployments(vid);
        let idt = id.to_string();
        let value = format!("{n}@{now}");
        let mut checked: Vec<(String, String)> = Vec::new();
        loop {
            let reply: Vec<Value> = retrying(|| {
                let mut c = self.conn();
                let mut inv = self.scripts().engage.prepare_invoke();
                inv.key(&key).arg(&idt).arg(n).arg(now);
                for (i, v) in &checked {
                    inv.arg(i).arg(v);
                }
                async move { inv.invoke_async(&mut c).await }
            })
            .await?;
            let t: Vec<String> = reply
                .iter()
                .map(|v| redis::from_redis_value::<String>(v.clone()).unwrap_or_default())
                .collect();
            match t.first().map(String::as_str) {
                Some("ok") => {
                    let fresh = t.get(1).map(String::as_str) == Some("1");
                    return Ok(Engagement::Free(
                        fresh.then(|| (vid.to_string(), value.clone())),
                    ));
                }
                Some("check") => {
                    let others: Vec<(String, String)> = t[1..]
                        .chunks(2)
                        .filter(|c| c.len() == 2)
                        .map(|c| (c[0].clone(), c[1].clone()))
                        .collect();
                    if let Some(incident) = self.first_engaging(&others, now).await? {
                        return Ok(Engagement::Elsewhere {
                            state: state.to_string(),
                            incident,
                        });
                    }
                    checked.extend(others);
                }
                _ => return Ok(Engagement::Free(None)),
            }
        }
    }

    /// Releases claim `value` of volunteer `vid` on incident `id` if it is still that claim.
    pub async fn disengage(&self, vid: &str, id: &IncidentId, value: &str) -> Result<()> {
        let key = self.keys.deployments(vid);
        let idt = id.to_string();
        let _: i64 = retrying(|| {
            let mut c = self.conn();
            let mut inv = self.scripts().disengage.prepare_invoke();
            inv.key(&key).arg(&idt).arg(value);
            async move { inv.invoke_async(&mut c).await }
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_engages_while_live_and_serving_or_freshly_claimed() {
        assert!(engages("3", "mustering", "accepted", 0));
        assert!(engages("3", "filled", "arrived", 0));
        assert!(!engages("3", "stood_down", "stood_down", 0));
        assert!(!engages("3", "mustering", "withdrawn", 0));
        assert!(engages(
            "3@1000",
            "mustering",
            "notified",
            1000 + CLAIM_LEASE_MS - 1
        ));
        assert!(!engages(
            "3@1000",
            "mustering",
            "notified",
            1000 + CLAIM_LEASE_MS
        ));
        assert_eq!(parse_deployment("7@123"), Some((7, Some(123))));
        assert_eq!(parse_deployment("7"), Some((7, None)));
        assert_eq!(parse_deployment("x"), None);
    }
}
