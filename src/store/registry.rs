//! The volunteer registry in Redis: loading the seed registry, team membership, and reading
//! volunteers for selection, delivery and listing.

use super::{Result, Store, retrying};
use crate::seed::SeedVolunteer;
use std::collections::HashMap;

/// A team member as selection sees them.
#[derive(Debug, Clone)]
pub struct Member {
    /// Volunteer id.
    pub id: String,
    /// Registry status (`active`, …).
    pub status: String,
    /// Webhook URL, if any.
    pub webhook: Option<String>,
}

impl Store {
    /// Writes seed volunteers that are not in Redis yet, with their team memberships. Existing
    /// volunteers are left alone: the registry, not the seed, is the truth once loaded.
    /// Returns how many were written.
    pub async fn seed_registry(&self, vols: &[SeedVolunteer]) -> Result<usize> {
        let mut written = 0;
        for chunk in vols.chunks(500) {
            let keys: Vec<String> = chunk.iter().map(|v| self.keys.volunteer(&v.id)).collect();
            let exists: Vec<bool> = retrying(|| {
                let mut c = self.conn();
                let mut p = redis::pipe();
                for k in &keys {
                    p.cmd("EXISTS").arg(k);
                }
                async move { p.query_async(&mut c).await }
            })
            .await?;
            let mut p = redis::pipe();
            let before = written;
            for (v, existed) in chunk.iter().zip(exists) {
                if existed {
                    continue;
                }
                written += 1;
                let quals: Vec<String> = v
                    .qualifications
                    .iter()
                    .map(|(c, d)| format!("{c}:{d}"))
                    .collect();
                p.cmd("HSET")
                    .arg(self.keys.volunteer(&v.id))
                    .arg("name")
                    .arg(&v.name)
                    .arg("phone")
                    .arg(v.phone.expose())
                    .arg("locale")
                    .arg(&v.locale)
                    .arg("webhook")
                    .arg(v.webhook.as_deref().unwrap_or(""))
                    .arg("status")
                    .arg(v.status.as_str())
                    .arg("teams")
                    .arg(v.teams.join(";"))
                    .arg("home")
                    .arg(v.home_region.as_ref().map(|r| r.as_str()).unwrap_or(""))
                    .arg("ins")
                    .arg(
                        v.insurance_valid_until
                            .map(|d| d.to_string())
                            .unwrap_or_default(),
                    )
                    .arg("quals")
                    .arg(quals.join(";"))
                    .ignore();
                for t in &v.teams {
                    p.cmd("SADD")
                        .arg(self.keys.team_members(t))
                        .arg(&v.id)
                        .ignore();
                }
            }
            if written == before {
                continue; // all of this chunk is registered already
            }
            retrying(|| {
                let mut c = self.conn();
                let p = p.clone();
                async move { p.query_async::<()>(&mut c).await }
            })
            .await?;
        }
        Ok(written)
    }

    /// Members of a team with what selection needs to know.
    pub async fn team_members(&self, team_id: &str) -> Result<Vec<Member>> {
        let key = self.keys.team_members(team_id);
        let mut ids: Vec<String> = retrying(|| {
            let mut c = self.conn();
            let key = key.clone();
            async move { redis::cmd("SMEMBERS").arg(key).query_async(&mut c).await }
        })
        .await?;
        ids.sort();
        let keys: Vec<String> = ids.iter().map(|v| self.keys.volunteer(v)).collect();
        let rows: Vec<(Option<String>, Option<String>)> = retrying(|| {
            let mut c = self.conn();
            let mut p = redis::pipe();
            for k in &keys {
                p.cmd("HMGET").arg(k).arg("status").arg("webhook");
            }
            async move { p.query_async(&mut c).await }
        })
        .await?;
        Ok(ids
            .into_iter()
            .zip(rows)
            .filter_map(|(id, (status, webhook))| {
                Some(Member {
                    id,
                    status: status?,
                    webhook: webhook.filter(|w| !w.is_empty()),
                })
            })
            .collect())
    }

    /// All fields of a volunteer (empty if unknown).
    pub async fn volunteer(&self, vid: &str) -> Result<HashMap<String, String>> {
        let key = self.keys.volunteer(vid);
        retrying(|| {
            let mut c = self.conn();
            let key = key.clone();
            async move { redis::cmd("HGETALL").arg(key).query_async(&mut c).await }
        })
        .await
    }

    /// Name and phone of each volunteer, in order (`None` for unknown or erased ones).
    pub async fn volunteer_contacts(
        &self,
        vids: &[String],
    ) -> Result<Vec<(Option<String>, Option<String>)>> {
        let keys: Vec<String> = vids.iter().map(|v| self.keys.volunteer(v)).collect();
        retrying(|| {
            let mut c = self.conn();
            let mut p = redis::pipe();
            for k in &keys {
                p.cmd("HMGET").arg(k).arg("name").arg("phone");
            }
            async move { p.query_async(&mut c).await }
        })
        .await
    }
}
