//! Teams in Redis, written: create, update, delete (each one script, with its audit entry).

use super::audit::AuditEntry;
use super::registry_write::TeamDeleted;
use super::{Result, Store, StoreError, retrying};
use crate::domain::access::Team;

impl Store {
    /// Creates a team; `false` when one with its id exists already.
    pub async fn create_team(&self, t: &Team, audit: Option<&AuditEntry>) -> Result<bool> {
        let json = audit.map(AuditEntry::json).unwrap_or_default();
        let answer: String = retrying(|| {
            let mut c = self.conn();
            let mut inv = self.scripts().team_create.prepare_invoke();
            inv.key(self.keys.team(&t.id))
                .key(self.keys.region_teams(t.region.as_str()))
                .key(self.keys.teams())
                .key(self.keys.audit())
                .arg(&t.id)
                .arg(&t.name)
                .arg(&t.kind)
                .arg(t.region.as_str())
                .arg(t.status.as_str())
                .arg(&json);
            async move { inv.invoke_async(&mut c).await }
        })
        .await?;
        Ok(answer == "ok")
    }

    /// Changes a team's name and status; `false` when it no longer exists.
    pub async fn update_team(&self, t: &Team, audit: &AuditEntry) -> Result<bool> {
        let json = audit.json();
        let answer: String = retrying(|| {
            let mut c = self.conn();
            let mut inv = self.scripts().team_update.prepare_invoke();
            inv.key(self.keys.team(&t.id))
                .key(self.keys.audit())
                .arg(&t.name)
                .arg(t.status.as_str())
                .arg(&json);
            async move { inv.invoke_async(&mut c).await }
        })
        .await?;
        Ok(answer == "ok")
    }

    /// Deletes a team with its roster and member set, detaching every member in the same
    /// step (see `team_delete.lua`); members joining or leaving meanwhile make it read again.
    pub async fn delete_team(&self, t: &Team, audit: &AuditEntry) -> Result<TeamDeleted> {
        let json = audit.json();
        for _ in 0..10 {
            let members = self.team_member_ids(&t.id).await?;
            let answer: String = retrying(|| {
                let mut c = self.conn();
                let mut inv = self.scripts().team_delete.prepare_invoke();
                inv.key(self.keys.team(&t.id))
                    .key(self.keys.roster(&t.id))
                    .key(self.keys.team_members(&t.id))
                    .key(self.keys.region_teams(t.region.as_str()))
                    .key(self.keys.teams())
                    .key(self.keys.audit());
                for m in &members {
                    inv.key(self.keys.volunteer(m));
                }
                inv.arg(&t.id).arg(&json);
                for m in &members {
                    inv.arg(m);
                }
                async move { inv.invoke_async(&mut c).await }
            })
            .await?;
            match answer.as_str() {
                "ok" => return Ok(TeamDeleted::Ok),
                "gone" => return Ok(TeamDeleted::Gone),
                _ => continue,
            }
        }
        Err(StoreError::Corrupt(format!(
            "team {} kept changing members while being deleted",
            t.id
        )))
    }
}
