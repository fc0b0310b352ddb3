//! The volunteer registry in Redis: volunteers, the phone index, team membership, erasure,
//! bulk upserts (seed and import). Where volunteers were deployed: [`super::deployments`].
//!
//! A volunteer is one hash (`P:vol:VID`); `P:phones` maps each phone to its volunteer, so a
//! phone belongs to one volunteer and a re-import of the same spreadsheet finds everyone again.
//! Membership is kept both ways: `teams` in the volunteer's hash and `P:team:TID:members`.

use super::{Result, Store, StoreError, field};
use crate::domain::region::RegionCode;
use crate::domain::volunteer::{Phone, Unavailable, Volunteer, VolunteerStatus};
use jiff::civil::Date;
use std::collections::HashMap;

/// A volunteer as stored: the record (none once erased), its status and unavailability.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Volunteer id.
    pub id: String,
    /// The record; `None` after erasure.
    pub volunteer: Option<Volunteer>,
    /// Status (also `erased`).
    pub status: VolunteerStatus,
    /// Times they said they cannot be called.
    pub unavailable: Vec<Unavailable>,
    /// Erased at (ms), if erased.
    pub erased_at: Option<i64>,
    /// When the number opted out of SMS (`STOP`), in ms.
    pub sms_opt_out_at: Option<i64>,
}

/// What selection reads of a volunteer (see [`Store::eligibility_facts`]).
#[derive(Debug, Clone)]
pub struct Facts {
    /// Registry status (`erased` too).
    pub status: VolunteerStatus,
    /// Qualification code and valid-until date.
    pub qualifications: Vec<(String, Date)>,
    /// Insurance valid until.
    pub insurance_valid_until: Option<Date>,
    /// Times they said they cannot be called.
    pub unavailable: Vec<Unavailable>,
    /// Whether they have a webhook.
    pub webhook: bool,
    /// Whether their number takes SMS (it did not opt out).
    pub sms: bool,
}

impl Facts {
    /// The part eligibility checks.
    pub fn standing(&self) -> crate::domain::eligibility::Standing<'_> {
        crate::domain::eligibility::Standing {
            status: self.status,
            qualifications: &self.qualifications,
            insurance_valid_until: self.insurance_valid_until,
        }
    }
}

/// How to reach a volunteer (see [`Store::delivery_contacts`]).
#[derive(Debug, Clone, Default)]
pub struct Contact {
    /// Webhook URL.
    pub webhook: Option<String>,
    /// E.164 phone number.
    pub phone: Option<String>,
    /// When the number opted out of SMS (`STOP`), if it did.
    pub sms_off: Option<String>,
    /// Message locale.
    pub locale: Option<String>,
    /// Name (templates may greet by it).
    pub name: Option<String>,
}

/// What an upsert did with one volunteer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upsert {
    /// A new volunteer with this id.
    Created(String),
    /// An existing volunteer (same phone) whose record changed.
    Updated(String),
    /// An existing volunteer whose record is already exactly this.
    Unchanged(String),
    /// Not written, with the reason (a team deleted meanwhile).
    Rejected(String),
}

/// The outcome of creating a volunteer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// Created.
    Ok,
    /// The phone belongs to this volunteer already.
    PhoneTaken(String),
    /// The id is taken.
    IdTaken,
    /// This team does not exist (deleted meanwhile).
    NoTeam(String),
}

pub(crate) fn encode(v: &Volunteer, now: i64) -> Vec<(&'static str, String)> {
    let quals: Vec<String> = v
        .qualifications
        .iter()
        .map(|(c, d)| format!("{c}:{d}"))
        .collect();
    vec![
        ("name", v.name.clone()),
        ("phone", v.phone.expose().to_string()),
        ("locale", v.locale.clone()),
        ("webhook", v.webhook.clone().unwrap_or_default()),
        ("status", v.status.as_str().to_string()),
        ("teams", v.teams.join(";")),
        (
            "home",
            v.home_region
                .as_ref()
                .map(|r| r.to_string())
                .unwrap_or_default(),
        ),
        (
            "ins",
            v.insurance_valid_until
                .map(|d| d.to_string())
                .unwrap_or_default(),
        ),
        ("quals", quals.join(";")),
        ("updated", now.to_string()),
    ]
}

fn decode(id: &str, m: &HashMap<String, String>) -> Option<Stored> {
    let status = VolunteerStatus::parse(m.get("status")?)?;
    let unavailable = m
        .get("unavail")
        .and_then(|u| serde_json::from_str(u).ok())
        .unwrap_or_default();
    let erased_at = m.get("erased_at").and_then(|t| t.parse().ok());
    let list = |k: &str| -> Vec<String> {
        field(m, k)
            .split(';')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    let date = |s: &str| s.parse::<Date>().ok();
    let volunteer = Phone::parse(&field(m, "phone"))
        .ok()
        .map(|phone| Volunteer {
            id: id.to_string(),
            name: field(m, "name"),
            phone,
            locale: field(m, "locale"),
            webhook: m.get("webhook").filter(|w| !w.is_empty()).cloned(),
            teams: list("teams"),
            home_region: RegionCode::parse(&field(m, "home")).ok(),
            status,
            insurance_valid_until: date(&field(m, "ins")),
            qualifications: list("quals")
                .iter()
                .filter_map(|q| {
                    let (c, d) = q.split_once(':')?;
                    Some((c.to_string(), date(d)?))
                })
                .collect(),
        });
    Some(Stored {
        id: id.to_string(),
        volunteer: if status == VolunteerStatus::Erased {
            None
        } else {
            volunteer
        },
        status,
        unavailable,
        erased_at,
        sms_opt_out_at: m.get("sms_off").and_then(|t| t.parse().ok()),
    })
}

/// A fresh volunteer id: `v-` and ten random letters and digits.
pub fn new_volunteer_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let bytes: [u8; 10] = rand::random();
    let tail: String = bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    format!("v-{tail}")
}

impl Store {
    /// Volunteers by id, in order (`None` for unknown ids).
    pub async fn volunteers(&self, ids: &[String]) -> Result<Vec<Option<Stored>>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(2000) {
            let mut p = redis::pipe();
            for id in chunk {
                p.cmd("HGETALL").arg(self.keys.volunteer(id));
            }
            let maps: Vec<HashMap<String, String>> = self.pipe(&p).await?;
            out.extend(chunk.iter().zip(maps).map(|(id, m)| decode(id, &m)));
        }
        Ok(out)
    }

    /// Name, status and unavailability JSON of each volunteer, in order: what "who is on call"
    /// shows, read with one `HMGET` each rather than the whole record.
    pub async fn on_call_facts(
        &self,
        ids: &[String],
    ) -> Result<Vec<(Option<String>, Option<String>, Option<String>)>> {
        self.fields_of_each(ids, &["name", "status", "unavail"])
            .await
    }

    /// `fields` of each volunteer, in order, read with one `HMGET` each; chunks of 2,000 go out
    /// at once on the multiplexed connection, so their round trips overlap.
    async fn fields_of_each<T: redis::FromRedisValue>(
        &self,
        ids: &[String],
        fields: &[&str],
    ) -> Result<Vec<T>> {
        let pipes: Vec<redis::Pipeline> = ids
            .chunks(2000)
            .map(|chunk| {
                let mut p = redis::pipe();
                for id in chunk {
                    p.cmd("HMGET").arg(self.keys.volunteer(id)).arg(fields);
                }
                p
            })
            .collect();
        let parts =
            futures::future::try_join_all(pipes.iter().map(|p| self.pipe::<Vec<T>>(p))).await?;
        Ok(parts.into_iter().flatten().collect())
    }

    /// One volunteer.
    pub async fn volunteer(&self, vid: &str) -> Result<Option<Stored>> {
        Ok(self.volunteers(&[vid.to_string()]).await?.pop().flatten())
    }

    /// The raw fields of a volunteer (empty if unknown), for rendering messages.
    pub async fn volunteer_fields(&self, vid: &str) -> Result<HashMap<String, String>> {
        self.cmd(redis::cmd("HGETALL").arg(self.keys.volunteer(vid)))
            .await
    }

    /// The volunteer registered with this phone.
    pub async fn volunteer_by_phone(&self, phone: &Phone) -> Result<Option<String>> {
        self.cmd(
            redis::cmd("HGET")
                .arg(self.keys.phones())
                .arg(phone.expose()),
        )
        .await
    }

    /// Replaces a volunteer's unavailability list (pruned of what ended before `now`).
    pub async fn set_unavailable(
        &self,
        vid: &str,
        list: &[Unavailable],
        now: i64,
        audit: Option<&super::audit::AuditEntry>,
    ) -> Result<()> {
        let keep: Vec<&Unavailable> = list
            .iter()
            .filter(|u| u.until.as_millisecond() > now)
            .collect();
        let json = serde_json::to_string(&keep).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut p = redis::pipe();
        p.cmd("HSET")
            .arg(self.keys.volunteer(vid))
            .arg("unavail")
            .arg(json)
            .ignore();
        match keep.iter().map(|u| u.until.as_millisecond()).max() {
            Some(until) => p
                .cmd("ZADD")
                .arg(self.keys.unavailable())
                .arg(until)
                .arg(vid),
            None => p.cmd("ZREM").arg(self.keys.unavailable()).arg(vid),
        }
        .ignore();
        match audit {
            // With its audit entry, in one transaction, once (an `XADD *`).
            Some(a) => {
                p.atomic();
                super::audit::push(&mut p, &self.keys.audit(), a, "ok");
                self.pipe_once(&p).await
            }
            None => self.pipe(&p).await,
        }
    }

    /// Volunteers whose unavailability (some of it) lasts beyond `at_ms`, from the index;
    /// their records say exactly when.
    pub async fn maybe_unavailable(&self, at_ms: i64) -> Result<Vec<String>> {
        self.cmd(
            redis::cmd("ZRANGEBYSCORE")
                .arg(self.keys.unavailable())
                .arg(format!("({at_ms}"))
                .arg("+inf"),
        )
        .await
    }

    /// Ids of a team's members, sorted.
    pub async fn team_member_ids(&self, tid: &str) -> Result<Vec<String>> {
        let mut ids: Vec<String> = self
            .cmd(redis::cmd("SMEMBERS").arg(self.keys.team_members(tid)))
            .await?;
        ids.sort();
        Ok(ids)
    }

    /// Name and phone of each volunteer, in order (`None` for unknown or erased ones).
    pub async fn volunteer_contacts(
        &self,
        vids: &[String],
    ) -> Result<Vec<(Option<String>, Option<String>)>> {
        self.fields_of_each(vids, &["name", "phone"]).await
    }

    /// What eligibility needs of each volunteer, in order, read with one `HMGET` each rather
    /// than the whole record; `None` for an unknown volunteer.
    pub async fn eligibility_facts(&self, ids: &[String]) -> Result<Vec<Option<Facts>>> {
        type Row = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = self
            .fields_of_each(
                ids,
                &["status", "quals", "ins", "unavail", "webhook", "sms_off"],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(status, quals, ins, unavail, webhook, sms_off)| {
                Some(Facts {
                    status: VolunteerStatus::parse(&status?)?,
                    qualifications: quals
                        .unwrap_or_default()
                        .split(';')
                        .filter_map(|q| {
                            let (c, d) = q.split_once(':')?;
                            Some((c.to_string(), d.parse::<Date>().ok()?))
                        })
                        .collect(),
                    insurance_valid_until: ins.and_then(|d| d.parse().ok()),
                    unavailable: unavail
                        .filter(|u| !u.is_empty())
                        .and_then(|u| serde_json::from_str(&u).ok())
                        .unwrap_or_default(),
                    webhook: webhook.is_some_and(|w| !w.is_empty()),
                    sms: sms_off.is_none(),
                })
            })
            .collect())
    }

    /// What the notifier needs of each volunteer, in order: webhook, locale, name and, with
    /// `sms`, phone and opt-out. One pipeline of `HMGET`s; an erased or unknown volunteer has
    /// none of them.
    pub async fn delivery_contacts(&self, vids: &[String], sms: bool) -> Result<Vec<Contact>> {
        let fields: &[&str] = if sms {
            &["webhook", "locale", "name", "phone", "sms_off"]
        } else {
            &["webhook", "locale", "name"] // no SMS gateway: numbers are not needed, nor read
        };
        let rows: Vec<Vec<Option<String>>> = self.fields_of_each(vids, fields).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let mut f = row.into_iter().chain(std::iter::repeat(None));
                Contact {
                    webhook: f.next().flatten(),
                    locale: f.next().flatten(),
                    name: f.next().flatten(),
                    phone: f.next().flatten(),
                    sms_off: f.next().flatten(),
                }
            })
            .collect())
    }

    /// Stores the selection of a requirement at an escalation step (idempotent: a re-run of
    /// the same step overwrites it).
    pub async fn save_selection<T: serde::Serialize>(
        &self,
        id: &crate::domain::incident::IncidentId,
        requirement: &str,
        step: u32,
        sel: &T,
    ) -> Result<()> {
        let json = serde_json::to_string(sel).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.cmd::<()>(
            redis::cmd("HSET")
                .arg(self.keys.selections(id))
                .arg(format!("{requirement}:{step}"))
                .arg(json),
        )
        .await
    }

    /// Every stored selection of an incident: `REQ:STEP` → selection.
    pub async fn selections<T: serde::de::DeserializeOwned>(
        &self,
        id: &crate::domain::incident::IncidentId,
    ) -> Result<Vec<(String, T)>> {
        let m: HashMap<String, String> = self
            .cmd(redis::cmd("HGETALL").arg(self.keys.selections(id)))
            .await?;
        let mut out = Vec::new();
        for (k, v) in m {
            let sel = serde_json::from_str(&v)
                .map_err(|e| StoreError::Corrupt(format!("selection {k} of {id}: {e}")))?;
            out.push((k, sel));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}
