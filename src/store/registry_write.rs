//! Registry writes, each one Lua script: creating, updating (suspending is an update) and
//! erasing a volunteer (`volunteer_put.lua`, `volunteer_erase.lua`), and creating, changing and
//! deleting a team (`team_create.lua`, `team_update.lua`, `team_delete.lua`). Each keeps the
//! record, the phone index, the member sets and the team indexes in step atomically, and the
//! writes that depend on what the caller read are compare-and-set (`retry` when it changed),
//! so two coordinators racing cannot overwrite each other and a crash cannot leave half a
//! change. Every key a script touches is passed in KEYS.

use super::audit::AuditEntry;
use super::registry::{Created, Upsert, encode, new_volunteer_id};
use super::{Result, Store, StoreError, retrying};
use crate::domain::access::Team;
use crate::domain::roster::RosterDoc;
use crate::domain::volunteer::Volunteer;
use redis::Value;
use std::collections::HashMap;

/// A team's roster as a registry write leaves it: the version read, and the document without
/// the volunteer ("" when no entry named them).
struct RosterEdit {
    team: String,
    version: u64,
    doc: String,
}

/// The outcome of updating a volunteer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Updated {
    /// Written.
    Ok,
    /// The new phone belongs to this other volunteer.
    PhoneTaken(String),
    /// This team (of the new ones) does not exist (deleted meanwhile).
    NoTeam(String),
    /// The volunteer's teams or phone changed since they were read: read again.
    Conflict,
    /// The volunteer is gone (erased meanwhile).
    Gone,
}

/// The outcome of deleting a team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeamDeleted {
    /// Deleted, with every member detached.
    Ok,
    /// No such team.
    Gone,
}

/// One script's answer, as text.
fn words(reply: &[Value]) -> Vec<String> {
    reply
        .iter()
        .map(|v| match v {
            Value::Int(i) => i.to_string(),
            v => redis::from_redis_value::<String>(v.clone()).unwrap_or_default(),
        })
        .collect()
}

/// What changed between `old` and `new`, field by field, personal fields masked (name, phone,
/// webhook), for an audit entry: `status: active → suspended; phone: ***1234 → ***5678`.
pub(crate) fn changes(old: Option<&Volunteer>, new: &Volunteer) -> String {
    use crate::domain::volunteer::{mask_name, mask_phone, mask_url};
    let shown = |k: &str, v: &str| -> String {
        if v.is_empty() {
            return "—".into();
        }
        match k {
            "name" => mask_name(v),
            "phone" => mask_phone(v),
            "webhook" => mask_url(v),
            _ => v.to_string(),
        }
    };
    let before: HashMap<&str, String> = old
        .map(|o| encode(o, 0))
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut out = Vec::new();
    for (k, v) in encode(new, 0) {
        if k == "updated" {
            continue;
        }
        let was = before.get(k).cloned().unwrap_or_default();
        if was != v {
            out.push(match old {
                Some(_) => format!("{k}: {} → {}", shown(k, &was), shown(k, &v)),
                None => format!("{k}: {}", shown(k, &v)),
            });
        }
    }
    if out.is_empty() {
        "no field changed".into()
    } else {
        out.join("; ")
    }
}

impl Store {
    /// Prepares `volunteer_put.lua` writing `v` over `old` (none: a create).
    fn volunteer_put(
        &self,
        v: &Volunteer,
        old: Option<&Volunteer>,
        edits: &[RosterEdit],
        now: i64,
        audit: Option<&AuditEntry>,
    ) -> redis::ScriptInvocation<'_> {
        let mut inv = self.scripts().volunteer_put.prepare_invoke();
        inv.key(self.keys.volunteer(&v.id)).key(self.keys.phones());
        for t in &v.teams {
            inv.key(self.keys.team(t));
        }
        for t in &v.teams {
            inv.key(self.keys.team_members(t));
        }
        let left: Vec<&String> = old
            .map(|o| o.teams.iter().filter(|t| !v.teams.contains(t)).collect())
            .unwrap_or_default();
        for t in &left {
            inv.key(self.keys.team_members(t));
        }
        // One roster edit per team left, in the order of `left`.
        debug_assert_eq!(edits.len(), left.len());
        for e in edits {
            inv.key(self.keys.roster(&e.team));
        }
        inv.arg(if old.is_some() { "update" } else { "create" })
            .arg(&v.id)
            .arg(now)
            .arg(old.map(|o| o.teams.join(";")).unwrap_or_default())
            .arg(
                old.map(|o| o.phone.expose().to_string())
                    .unwrap_or_default(),
            )
            .arg(v.teams.len())
            .arg(left.len());
        for e in edits {
            inv.arg(e.version).arg(&e.doc);
        }
        for (f, val) in encode(v, now) {
            inv.arg(f).arg(val);
        }
        if let Some(a) = audit {
            let mut a = a.clone();
            a.target = v.id.clone();
            if a.region.is_empty() {
                a.region = v
                    .home_region
                    .as_ref()
                    .map(|r| r.to_string())
                    .unwrap_or_default();
            }
            a.detail = changes(old, v);
            inv.key(self.keys.audit()).arg("__audit").arg(a.json());
        }
        inv
    }

    /// How the rosters of `teams` read without volunteer `vid`, with the versions read: what a
    /// registry script writes with the membership change, compare-and-set.
    async fn roster_edits(&self, vid: &str, teams: &[String]) -> Result<Vec<RosterEdit>> {
        if teams.is_empty() {
            return Ok(vec![]);
        }
        let mut p = redis::pipe();
        for t in teams {
            p.cmd("HMGET")
                .arg(self.keys.roster(t))
                .arg("ver")
                .arg("doc");
        }
        let read: Vec<(Option<u64>, Option<String>)> = self.pipe(&p).await?;
        teams
            .iter()
            .zip(read)
            .map(|(t, (ver, doc))| {
                let doc = match doc {
                    Some(d) => serde_json::from_str::<RosterDoc>(&d)
                        .map_err(|e| StoreError::Corrupt(format!("roster of {t}: {e}")))?
                        .without(vid)
                        .map(|d| serde_json::to_string(&d))
                        .transpose()
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    None => None,
                };
                Ok(RosterEdit {
                    team: t.clone(),
                    version: ver.unwrap_or(0),
                    doc: doc.unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The teams `old` is in and `new` is not.
    fn left(new: &Volunteer, old: Option<&Volunteer>) -> Vec<String> {
        old.map(|o| {
            o.teams
                .iter()
                .filter(|t| !new.teams.contains(t))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
    }

    async fn run_put(
        &self,
        v: &Volunteer,
        old: Option<&Volunteer>,
        now: i64,
        audit: Option<&AuditEntry>,
    ) -> Result<Vec<String>> {
        let edits = self.roster_edits(&v.id, &Self::left(v, old)).await?;
        let reply: Vec<Value> = retrying(|| {
            let mut c = self.conn();
            let inv = self.volunteer_put(v, old, &edits, now, audit);
            async move { inv.invoke_async(&mut c).await }
        })
        .await?;
        Ok(words(&reply))
    }

    /// Creates a volunteer whose phone and id are not registered yet, in teams that exist.
    pub async fn create_volunteer(
        &self,
        v: &Volunteer,
        now: i64,
        audit: Option<&AuditEntry>,
    ) -> Result<Created> {
        let w = self.run_put(v, None, now, audit).await?;
        Ok(match w.first().map(String::as_str) {
            Some("ok") => Created::Ok,
            Some("phone_taken") => Created::PhoneTaken(w.get(1).cloned().unwrap_or_default()),
            Some("no_team") => Created::NoTeam(team_at(v, &w)),
            Some("id_taken") => Created::IdTaken,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "volunteer_put answered {other:?}"
                )));
            }
        })
    }

    /// Replaces `old` (as read) with `new` (same id), if the stored teams and phone are still
    /// `old`'s.
    pub async fn update_volunteer(
        &self,
        old: &Volunteer,
        new: &Volunteer,
        now: i64,
        audit: Option<&AuditEntry>,
    ) -> Result<Updated> {
        let w = self.run_put(new, Some(old), now, audit).await?;
        Ok(match w.first().map(String::as_str) {
            Some("ok") => Updated::Ok,
            Some("phone_taken") => Updated::PhoneTaken(w.get(1).cloned().unwrap_or_default()),
            Some("no_team") => Updated::NoTeam(team_at(new, &w)),
            Some("retry") => Updated::Conflict,
            Some("gone") => Updated::Gone,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "volunteer_put answered {other:?}"
                )));
            }
        })
    }

    /// Inserts or updates volunteers by phone: a phone already registered updates that
    /// volunteer (keeping its id); a new phone creates one with the row's id or a fresh one.
    /// Each row is one script (whole or absent after a crash); the rows go in one pipeline.
    /// A row whose volunteer changed since it was read is read and written again (three
    /// rounds at most). Re-running the same rows changes nothing.
    pub async fn upsert_volunteers(
        &self,
        rows: &[Volunteer],
        now: i64,
        audit: Option<&AuditEntry>,
    ) -> Result<Vec<Upsert>> {
        let mut out: Vec<Option<Upsert>> = vec![None; rows.len()];
        let mut todo: Vec<usize> = (0..rows.len()).collect();
        for round in 0..3 {
            if todo.is_empty() {
                break;
            }
            let mut q = redis::pipe();
            q.cmd("HMGET").arg(self.keys.phones());
            for &i in &todo {
                q.arg(rows[i].phone.expose());
            }
            let (owners,): (Vec<Option<String>>,) = self.pipe(&q).await?;
            let known: Vec<String> = owners.iter().flatten().cloned().collect();
            let existing: HashMap<String, Volunteer> = self
                .volunteers(&known)
                .await?
                .into_iter()
                .flatten()
                .filter_map(|s| s.volunteer.map(|v| (s.id, v)))
                .collect();
            let mut p = redis::pipe();
            p.load_script(&self.scripts().volunteer_put).ignore();
            let mut sent: Vec<(usize, Volunteer, bool)> = Vec::new();
            for (&i, owner) in todo.iter().zip(owners) {
                let old = owner.as_ref().and_then(|o| existing.get(o));
                let mut new = rows[i].clone();
                match old {
                    Some(old) => {
                        new.id = old.id.clone();
                        if &new == old {
                            out[i] = Some(Upsert::Unchanged(new.id));
                            continue;
                        }
                    }
                    None if new.id.is_empty() => new.id = new_volunteer_id(),
                    None => {}
                }
                let edits = self.roster_edits(&new.id, &Self::left(&new, old)).await?;
                p.invoke_script(&self.volunteer_put(&new, old, &edits, now, audit));
                sent.push((i, new, old.is_some()));
            }
            let replies: Vec<Vec<Value>> = if sent.is_empty() {
                vec![]
            } else {
                // Not retried as a whole: a row that did not apply answers `retry` next round.
                self.pipe_once(&p).await?
            };
            let mut again = Vec::new();
            for ((i, new, update), reply) in sent.into_iter().zip(replies) {
                let w = words(&reply);
                out[i] = match (w.first().map(String::as_str), update) {
                    (Some("ok"), true) => Some(Upsert::Updated(new.id)),
                    (Some("ok"), false) => Some(Upsert::Created(new.id)),
                    (Some("no_team"), _) => Some(Upsert::Rejected(format!(
                        "team `{}` no longer exists",
                        team_at(&new, &w)
                    ))),
                    (Some("id_taken"), _) if round < 2 => {
                        again.push(i);
                        None
                    }
                    _ if round < 2 => {
                        again.push(i); // changed meanwhile, or a racing create took the phone
                        None
                    }
                    (other, _) => Some(Upsert::Rejected(format!(
                        "the volunteer changed while being imported ({})",
                        other.unwrap_or("no answer")
                    ))),
                };
            }
            todo = again;
        }
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Upsert::Rejected("could not be written".into())))
            .collect())
    }

    /// Erases a volunteer's personal data, memberships and roster entries in one script (see
    /// `volunteer_erase.lua`). Returns the teams they were in, or `None` if unknown.
    pub async fn erase_volunteer(
        &self,
        vid: &str,
        now: i64,
        audit: &AuditEntry,
    ) -> Result<Option<Vec<String>>> {
        for _ in 0..5 {
            let Some(s) = self.volunteers(&[vid.to_string()]).await?.pop().flatten() else {
                return Ok(None);
            };
            let Some(v) = s.volunteer else {
                return Ok(Some(vec![]));
            };
            let phone_codes = self.phone_key(v.phone.expose());
            let edits = self.roster_edits(vid, &v.teams).await?;
            let answer: String = retrying(|| {
                let mut c = self.conn();
                let mut inv = self.scripts().volunteer_erase.prepare_invoke();
                inv.key(self.keys.volunteer(vid))
                    .key(self.keys.phones())
                    .key(&phone_codes)
                    .key(self.keys.unavailable());
                for t in &v.teams {
                    inv.key(self.keys.team_members(t));
                }
                for e in &edits {
                    inv.key(self.keys.roster(&e.team));
                }
                inv.key(self.keys.audit());
                inv.arg(vid)
                    .arg(now)
                    .arg(v.teams.join(";"))
                    .arg(v.phone.expose())
                    .arg(v.teams.len());
                for e in &edits {
                    inv.arg(e.version).arg(&e.doc);
                }
                let mut a = audit.clone();
                a.target = vid.to_string();
                if a.region.is_empty() {
                    a.region = v
                        .home_region
                        .as_ref()
                        .map(|r| r.to_string())
                        .unwrap_or_default();
                }
                a.detail = format!(
                    "erased {}: personal data removed",
                    crate::domain::volunteer::mask_name(&v.name)
                );
                inv.arg(a.json());
                async move { inv.invoke_async(&mut c).await }
            })
            .await?;
            match answer.as_str() {
                "ok" => return Ok(Some(v.teams)),
                "gone" => return Ok(None),
                _ => continue, // changed meanwhile: read again
            }
        }
        Err(StoreError::Corrupt(format!(
            "volunteer {vid} kept changing while being erased"
        )))
    }

    /// Seeds the registry: the seed's teams and volunteers that are not in Redis yet (teams
    /// first: a volunteer joins only teams that exist), then a default roster, built by
    /// `roster_for` from its members, for every seed team without one. Existing teams and
    /// volunteers (erased ones too) are left alone: once loaded, the registry, not the seed,
    /// is the truth. Returns how many volunteers were written.
    pub async fn seed(
        &self,
        teams: &[Team],
        vols: &[Volunteer],
        now: i64,
        roster_for: impl Fn(&Team, &[String]) -> Option<crate::domain::roster::RosterDoc>,
    ) -> Result<usize> {
        for t in teams {
            self.create_team(t, None).await?;
        }
        let mut written = 0;
        for chunk in vols.chunks(500) {
            let mut q = redis::pipe();
            for v in chunk {
                q.cmd("EXISTS").arg(self.keys.volunteer(&v.id));
            }
            let exists: Vec<bool> = self.pipe(&q).await?;
            let mut p = redis::pipe();
            p.load_script(&self.scripts().volunteer_put).ignore();
            let mut n = 0;
            for (v, existed) in chunk.iter().zip(exists) {
                if !existed {
                    p.invoke_script(&self.volunteer_put(v, None, &[], now, None));
                    n += 1;
                }
            }
            if n > 0 {
                let replies: Vec<Vec<Value>> = self.pipe(&p).await?;
                for (v, r) in chunk.iter().zip(replies) {
                    let w = words(&r);
                    if w.first().map(String::as_str) != Some("ok") {
                        tracing::warn!(volunteer = %v.id, answer = ?w, "seed volunteer not written");
                    } else {
                        written += 1;
                    }
                }
            }
        }
        self.seed_rosters(teams, roster_for).await?;
        Ok(written)
    }
}

/// The team a `no_team` answer names (its 1-based index among `v`'s teams).
fn team_at(v: &Volunteer, w: &[String]) -> String {
    w.get(1)
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| v.teams.get(i.wrapping_sub(1)))
        .cloned()
        .unwrap_or_default()
}
