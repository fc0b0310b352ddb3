//! Teams and their rosters in Redis.
//!
//! Teams are hashes indexed by region (`P:region:CODE:teams`), so selection finds the teams of
//! a region in one round trip whatever the size of the city. A roster is one JSON document
//! with a version that every change bumps; [`RosterCache`] keeps parsed rosters in memory and
//! re-reads only those whose version moved, so "who is on call" for a thousand teams costs one
//! pipelined read of versions.

use super::{Result, Store, StoreError, field};
use crate::domain::access::Team;
use crate::domain::region::RegionCode;
use crate::domain::roster::{Roster, RosterDoc};
use crate::domain::volunteer::VolunteerStatus;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

fn decode(id: &str, m: &HashMap<String, String>) -> Option<Team> {
    Some(Team {
        id: id.to_string(),
        name: field(m, "name"),
        kind: m.get("kind")?.clone(),
        region: RegionCode::parse(m.get("region")?).ok()?,
        status: VolunteerStatus::parse(m.get("status")?)?,
    })
}

/// The outcome of a conditional roster write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterWrite {
    /// Written; the new version.
    Written(u64),
    /// Someone changed it first; the current version.
    Stale(u64),
}

impl Store {
    /// Writes a default roster (built by `roster_for` from the members) for each of `teams`
    /// that has none.
    pub async fn seed_rosters(
        &self,
        teams: &[Team],
        roster_for: impl Fn(&Team, &[String]) -> Option<RosterDoc>,
    ) -> Result<()> {
        let ids: Vec<String> = teams.iter().map(|t| t.id.clone()).collect();
        let versions = self.roster_versions(&ids).await?;
        let bare: Vec<&Team> = teams
            .iter()
            .zip(versions)
            .filter(|(_, v)| *v == 0)
            .map(|(t, _)| t)
            .collect();
        let bare_ids: Vec<String> = bare.iter().map(|t| t.id.clone()).collect();
        for (t, members) in bare.into_iter().zip(self.members_of(&bare_ids).await?) {
            if let Some(doc) = roster_for(t, &members) {
                self.put_roster(&t.id, 0, &doc, None).await?;
            }
        }
        Ok(())
    }

    /// Teams by id, in order (`None` for unknown ones).
    pub async fn teams_by_id(&self, ids: &[String]) -> Result<Vec<Option<Team>>> {
        let mut p = redis::pipe();
        for id in ids {
            p.cmd("HGETALL").arg(self.keys.team(id));
        }
        let maps: Vec<HashMap<String, String>> = self.pipe(&p).await?;
        Ok(ids.iter().zip(maps).map(|(id, m)| decode(id, &m)).collect())
    }

    /// One team.
    pub async fn team(&self, id: &str) -> Result<Option<Team>> {
        Ok(self.teams_by_id(&[id.to_string()]).await?.pop().flatten())
    }

    /// Every team, sorted by id.
    pub async fn all_teams(&self) -> Result<Vec<Team>> {
        let mut ids: Vec<String> = self
            .cmd(redis::cmd("SMEMBERS").arg(self.keys.teams()))
            .await?;
        ids.sort();
        Ok(self
            .teams_by_id(&ids)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    /// The teams attached to each of `regions`, sorted by id.
    pub async fn teams_in_regions(&self, regions: &[&RegionCode]) -> Result<Vec<Vec<Team>>> {
        let mut p = redis::pipe();
        for r in regions {
            p.cmd("SMEMBERS").arg(self.keys.region_teams(r.as_str()));
        }
        let sets: Vec<Vec<String>> = self.pipe(&p).await?;
        // One read of every team, then regrouped by region.
        let all: Vec<String> = sets.iter().flatten().cloned().collect();
        let mut teams = self.teams_by_id(&all).await?.into_iter();
        Ok(sets
            .into_iter()
            .map(|ids| {
                let mut group: Vec<Team> =
                    ids.iter().filter_map(|_| teams.next().flatten()).collect();
                group.sort_by(|a, b| a.id.cmp(&b.id));
                group
            })
            .collect())
    }

    /// A roster's version (0 when it has none) and document.
    pub async fn roster_doc(&self, tid: &str) -> Result<(u64, Option<RosterDoc>)> {
        let (ver, doc): (Option<u64>, Option<String>) = self
            .cmd(
                redis::cmd("HMGET")
                    .arg(self.keys.roster(tid))
                    .arg("ver")
                    .arg("doc"),
            )
            .await?;
        let doc = match doc {
            Some(d) => Some(
                serde_json::from_str(&d)
                    .map_err(|e| StoreError::Corrupt(format!("roster of {tid}: {e}")))?,
            ),
            None => None,
        };
        Ok((ver.unwrap_or(0), doc))
    }

    /// Writes a roster if its version is still `expected` (0: it has none yet).
    pub async fn put_roster(
        &self,
        tid: &str,
        expected: u64,
        doc: &RosterDoc,
        audit: Option<&crate::store::audit::AuditEntry>,
    ) -> Result<RosterWrite> {
        let audit_json = audit.map(|a| a.json()).unwrap_or_default();
        let chain = self.keys.audit();
        let json = serde_json::to_string(doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let key = self.keys.roster(tid);
        let r: (i64, u64) = super::retrying(|| {
            let mut c = self.conn();
            let mut inv = self.scripts().roster_put.prepare_invoke();
            inv.key(&key)
                .key(&chain)
                .arg(expected)
                .arg(&json)
                .arg(&audit_json);
            async move { inv.invoke_async(&mut c).await }
        })
        .await?;
        Ok(if r.0 == 1 {
            RosterWrite::Written(r.1)
        } else {
            RosterWrite::Stale(r.1)
        })
    }

    /// Member ids of many teams, each sorted.
    pub async fn members_of(&self, tids: &[String]) -> Result<Vec<Vec<String>>> {
        let mut p = redis::pipe();
        for t in tids {
            p.cmd("SMEMBERS").arg(self.keys.team_members(t));
        }
        let mut out: Vec<Vec<String>> = self.pipe(&p).await?;
        // Sorted: selection reads them in a stable order and looks members up by binary search.
        out.iter_mut().for_each(|m| m.sort_unstable());
        Ok(out)
    }

    /// Roster versions of many teams (0: none).
    pub async fn roster_versions(&self, tids: &[String]) -> Result<Vec<u64>> {
        let mut p = redis::pipe();
        for t in tids {
            p.cmd("HGET").arg(self.keys.roster(t)).arg("ver");
        }
        let v: Vec<Option<u64>> = self.pipe(&p).await?;
        Ok(v.into_iter().map(|v| v.unwrap_or(0)).collect())
    }
}

/// Parsed rosters, refreshed by version.
#[derive(Default)]
pub struct RosterCache {
    inner: Mutex<HashMap<String, (u64, Arc<Roster>)>>,
}

impl RosterCache {
    /// The current rosters of `tids`, in order (`None`: the team has no roster). A stored
    /// roster that no longer parses is reported as corrupt rather than silently ignored.
    pub async fn get(&self, store: &Store, tids: &[String]) -> Result<Vec<Option<Arc<Roster>>>> {
        let vers = store.roster_versions(tids).await?;
        let stale: Vec<usize> = {
            let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            (0..tids.len())
                .filter(|&i| vers[i] > 0 && map.get(&tids[i]).map(|(v, _)| *v) != Some(vers[i]))
                .collect()
        };
        if !stale.is_empty() {
            let mut p = redis::pipe();
            for &i in &stale {
                p.cmd("HMGET")
                    .arg(store.keys.roster(&tids[i]))
                    .arg("ver")
                    .arg("doc");
            }
            let docs: Vec<(Option<u64>, Option<String>)> = store.pipe(&p).await?;
            let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            for (&i, (ver, doc)) in stale.iter().zip(docs) {
                let (Some(ver), Some(doc)) = (ver, doc) else {
                    continue;
                };
                let doc: RosterDoc = serde_json::from_str(&doc)
                    .map_err(|e| StoreError::Corrupt(format!("roster of {}: {e}", tids[i])))?;
                let roster = Roster::new(doc)
                    .map_err(|p| StoreError::Corrupt(format!("roster of {}: {p:?}", tids[i])))?;
                map.insert(tids[i].clone(), (ver, Arc::new(roster)));
            }
        }
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Ok(tids
            .iter()
            .zip(vers)
            .map(|(t, v)| {
                if v == 0 {
                    None
                } else {
                    map.get(t).map(|(_, r)| r.clone())
                }
            })
            .collect())
    }
}
