//! SMS state in Redis: reply codes per phone number, the shared send rate of each gateway,
//! gateway message ids (for delivery receipts), inbound de-duplication, answers to replies
//! and opt-outs. The keys are in [`super::keys`].

use super::{Result, Store, retrying};
use crate::domain::callout::CalloutState;
use crate::domain::incident::{IncidentId, Status};
use sha2::{Digest, Sha256};

/// How long a reply code stays bound to its callout for its number (`api.md`: 7 days).
pub const CODE_REUSE_MS: i64 = 7 * 24 * 3600 * 1000;

/// A reply code a phone number holds.
#[derive(Debug, Clone)]
pub struct HeldCode {
    /// The code.
    pub code: String,
    /// Its callout, "incident.n".
    pub cref: String,
    /// Issued within the reuse window.
    pub fresh: bool,
    /// Its callout is still open ([`CalloutState::is_open`]).
    pub open: bool,
    /// Its incident is over (stood down or closed).
    pub over: bool,
    /// Its callout's state, when it still exists.
    pub state: Option<String>,
}

/// An SMS note on a partition's delivery stream (`k = sms_note`; version 1): the answer to
/// one reply, to volunteer `volunteer` through `gateway`, text kind `text` of their locale's
/// `[sms]`. Written by [`Store::enqueue_sms_note`] and read back by the notifier through this
/// one type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct SmsNote {
    /// The volunteer answered.
    #[serde(rename = "v")]
    pub volunteer: String,
    /// The gateway the reply came in on.
    #[serde(rename = "g")]
    pub gateway: String,
    /// The `[sms]` text kind (`reply_accepted`, …).
    #[serde(rename = "t")]
    pub text: String,
    /// The reply code it names ("" when none).
    #[serde(rename = "c", default)]
    pub code: String,
    /// The open codes (for `reply_which`).
    #[serde(rename = "cs", default)]
    pub codes: String,
    /// The message id, the same on every attempt.
    #[serde(rename = "m")]
    pub msg_id: String,
    /// This attempt (1-based).
    #[serde(rename = "a", deserialize_with = "super::bus::number")]
    pub attempt: u32,
}

impl SmsNote {
    /// Reads an entry; `None` when it is not a whole note.
    pub fn parse(e: &super::queue::Entry) -> Option<SmsNote> {
        let v = serde_json::to_value(&e.fields).ok()?;
        serde_json::from_value(v).ok()
    }

    /// The entry's fields, `k` first.
    pub fn fields(&self) -> Vec<(String, String)> {
        [
            ("k", "sms_note".to_string()),
            ("v", self.volunteer.clone()),
            ("g", self.gateway.clone()),
            ("t", self.text.clone()),
            ("c", self.code.clone()),
            ("cs", self.codes.clone()),
            ("m", self.msg_id.clone()),
            ("a", self.attempt.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// How long gateway ids and inbound ids are remembered.
const ID_TTL_SECS: u64 = 7 * 24 * 3600;

/// A callout named across incidents: "incident.n".
pub fn callout_ref(id: &IncidentId, n: u32) -> String {
    format!("{id}.{n}")
}

/// The callout a reference names.
pub fn parse_ref(r: &str) -> Option<(IncidentId, u32)> {
    let (i, n) = r.rsplit_once('.')?;
    Some((IncidentId::parse(i)?, n.parse().ok()?))
}

impl Store {
    pub(crate) fn phone_key(&self, phone: &str) -> String {
        let digest = Sha256::digest(phone.as_bytes());
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        self.keys.sms_phone(&hex)
    }

    /// The reply code of callout `cref` for `phone` (see `sms_code.lua`): codes past the
    /// reuse window stay bound while their callouts are open, and are pruned once those are
    /// over.
    pub async fn sms_code(&self, phone: &str, cref: &str, now: i64) -> Result<String> {
        let key = self.phone_key(phone);
        let issue = |marks: Option<Vec<String>>| {
            let key = &key;
            retrying(move || {
                let mut c = self.conn();
                let mut inv = self.scripts().sms_code.prepare_invoke();
                inv.key(key)
                    .arg(cref)
                    .arg(now)
                    .arg(CODE_REUSE_MS)
                    .arg(if marks.is_some() { "1" } else { "0" });
                for m in marks.iter().flatten() {
                    inv.arg(m);
                }
                async move { inv.invoke_async::<String>(&mut c).await }
            })
        };
        let code = issue(None).await?;
        if code != "?" {
            return Ok(code);
        }
        // The number holds codes past the window: name those still open, and the others.
        let marks = self
            .sms_codes(phone, now)
            .await?
            .into_iter()
            .filter(|c| !c.fresh)
            .map(|c| {
                if c.open {
                    format!("+{}", c.cref)
                } else {
                    format!("-{}", c.code)
                }
            })
            .collect();
        issue(Some(marks)).await
    }

    /// Every code `phone` holds, newest first, with whether it is within the reuse window and
    /// whether its callout is still open (its incident on, the callout waiting for or holding
    /// an answer).
    pub async fn sms_codes(&self, phone: &str, now: i64) -> Result<Vec<HeldCode>> {
        let all: std::collections::HashMap<String, String> = self
            .cmd(redis::cmd("HGETALL").arg(self.phone_key(phone)))
            .await?;
        let mut held: Vec<(i64, String, String, IncidentId, u32)> = all
            .iter()
            .filter_map(|(k, v)| {
                let code = k.strip_prefix("c:")?;
                let (cref, at) = v.rsplit_once('|')?;
                let (id, n) = parse_ref(cref)?;
                Some((at.parse().ok()?, code.to_string(), cref.to_string(), id, n))
            })
            .collect();
        held.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
        let refs: Vec<(IncidentId, u32)> = held.iter().map(|h| (h.3, h.4)).collect();
        let statuses = self.callout_statuses(&refs).await?;
        Ok(held
            .into_iter()
            .zip(statuses)
            .map(|((at, code, cref, _, _), st)| HeldCode {
                fresh: now - at < CODE_REUSE_MS,
                open: st.as_ref().is_some_and(|(state, status)| {
                    Status::active(status)
                        && CalloutState::parse(state).is_some_and(CalloutState::is_open)
                }),
                over: st.as_ref().is_some_and(|(_, status)| {
                    Status::parse(status).is_some_and(|s| !s.is_active())
                }),
                state: st.map(|(state, _)| state),
                code,
                cref,
            })
            .collect())
    }

    /// Takes one message's turn at gateway `gw` (`per_sec` messages a second across all
    /// instances, `burst` at once); `0`, or the milliseconds to wait before asking again.
    pub async fn sms_rate(&self, gw: &str, per_sec: f64, burst: u32, now: i64) -> Result<u64> {
        let key = self.keys.sms_rate(gw);
        let interval = 1000.0 / per_sec.max(0.001);
        retrying(|| {
            let mut c = self.conn();
            let mut inv = self.scripts().sms_rate.prepare_invoke();
            inv.key(&key).arg(now).arg(interval).arg(burst.max(1));
            async move { inv.invoke_async(&mut c).await }
        })
        .await
    }

    /// Remembers which callout gateway `gw`'s message `gw_id` was, for its receipts: the
    /// callout, the message kind, and the attempt an `undelivered` receipt hands it on to
    /// (`onward`, the next channel's first; 0 when there is none).
    pub async fn sms_sent(
        &self,
        gw: &str,
        gw_id: &str,
        cref: &str,
        kind: &str,
        onward: u32,
    ) -> Result<()> {
        let key = self.keys.sms_gateway_id(gw, gw_id);
        self.cmd(
            redis::cmd("SET")
                .arg(key)
                .arg(format!("{cref}|{kind}|{onward}"))
                .arg("EX")
                .arg(ID_TTL_SECS),
        )
        .await
    }

    /// Applies a delivery receipt; `Some(changed)` when the message is known.
    pub async fn sms_receipt(
        &self,
        gw: &str,
        gw_id: &str,
        status: &str,
        now: i64,
    ) -> Result<Option<bool>> {
        let key = self.keys.sms_gateway_id(gw, gw_id);
        let sent: Option<String> = self.cmd(redis::cmd("GET").arg(key)).await?;
        let sent = sent.unwrap_or_default();
        // "incident.n|kind|onward" (or a bare "incident.n" remembered by an older version).
        let mut parts = sent.splitn(3, '|');
        let cref = parts.next().unwrap_or("");
        let (kind, onward) = (parts.next().unwrap_or(""), parts.next().unwrap_or("0"));
        let Some((id, n)) = parse_ref(cref) else {
            return Ok(None);
        };
        let idt = id.to_string();
        let changed: i64 = retrying(|| {
            let mut c = self.conn();
            let mut inv = self.incident_invocation(&self.scripts().sms_receipt, &id);
            inv.arg(n)
                .arg(status)
                .arg(now)
                .arg(gw)
                .arg(kind)
                .arg(onward)
                .arg(&idt);
            async move { inv.invoke_async(&mut c).await }
        })
        .await?;
        Ok(Some(changed == 1))
    }

    /// Marks inbound message `id` of gateway `gw` handled; `false` if it was already (a
    /// duplicate callback).
    pub async fn sms_first_seen(&self, gw: &str, id: &str) -> Result<bool> {
        let key = self.keys.sms_inbound(gw, id);
        let set: Option<String> = self
            .cmd(
                redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(ID_TTL_SECS),
            )
            .await?;
        Ok(set.is_some())
    }

    /// Records that volunteer `vid`'s number opted out of SMS (`STOP`).
    pub async fn sms_opt_out(&self, vid: &str, now: i64) -> Result<()> {
        self.cmd(
            redis::cmd("HSET")
                .arg(self.keys.volunteer(vid))
                .arg("sms_off")
                .arg(now),
        )
        .await
    }

    /// The volunteer a phone number belongs to.
    pub async fn volunteer_of_phone(&self, phone: &str) -> Result<Option<String>> {
        self.cmd(redis::cmd("HGET").arg(self.keys.phones()).arg(phone))
            .await
    }

    /// Each callout's state and its incident's status (`None` if either is gone), in one
    /// pipeline.
    pub async fn callout_statuses(
        &self,
        refs: &[(IncidentId, u32)],
    ) -> Result<Vec<Option<(String, String)>>> {
        let mut p = redis::pipe();
        for (id, n) in refs {
            let base = self.keys.incident(id);
            p.cmd("HGET").arg(self.keys.callouts(id)).arg(*n);
            p.cmd("HGET").arg(&base).arg("status");
        }
        let flat: Vec<Option<String>> = self.pipe(&p).await?;
        Ok(flat
            .chunks(2)
            .map(|pair| {
                let st =
                    crate::store::callout_rows::parse_callout(pair[0].as_deref()?).remove("st");
                st.zip(pair[1].clone())
            })
            .collect())
    }

    /// Enqueues an SMS note (the answer to a volunteer's reply) to volunteer `vid` through
    /// gateway `gw`: text `kind` of their locale's `[sms]`, with `code` and `codes`. It goes
    /// through the delivery queue like any message, so it is retried and survives a crash.
    /// `reply` is the inbound message it answers (its gateway id): one note per reply, so
    /// the enqueue can be retried without sending the answer twice. Returns whether it was
    /// enqueued now (false: it already was).
    #[allow(clippy::too_many_arguments)]
    pub async fn enqueue_sms_note(
        &self,
        vid: &str,
        gw: &str,
        reply: &str,
        kind: &str,
        code: &str,
        codes: &str,
    ) -> Result<bool> {
        let p = (vid.bytes().map(u32::from).sum::<u32>() % u32::from(self.keys.partitions().max(1)))
            as u16;
        let note = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("sms-note|{gw}|{reply}").as_bytes(),
        )
        .simple()
        .to_string();
        let entry = SmsNote {
            volunteer: vid.to_string(),
            gateway: gw.to_string(),
            text: kind.to_string(),
            code: code.to_string(),
            codes: codes.to_string(),
            msg_id: format!("msg_note_{note}"),
            attempt: 1,
        };
        let fields = entry.fields();
        let (stream, mark) = (self.keys.deliveries(p), self.keys.sms_note(p, &note));
        let added: i64 = retrying(|| {
            let mut c = self.conn();
            let mut inv = self.scripts().sms_note.prepare_invoke();
            inv.key(&stream).key(&mark).arg(ID_TTL_SECS);
            for (k, v) in &fields {
                inv.arg(k).arg(v);
            }
            async move { inv.invoke_async(&mut c).await }
        })
        .await?;
        Ok(added == 1)
    }

    /// Forgets that inbound message `id` was seen (its handling failed and may be retried).
    pub async fn sms_unsee(&self, gw: &str, id: &str) -> Result<()> {
        let key = self.keys.sms_inbound(gw, id);
        self.cmd(redis::cmd("DEL").arg(key)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sms_note_reads_back_what_it_writes() {
        let note = SmsNote {
            volunteer: "v0001".into(),
            gateway: "sim".into(),
            text: "reply_which".into(),
            code: "23".into(),
            codes: "23, 45".into(),
            msg_id: "msg_note_x".into(),
            attempt: 3,
        };
        let entry = super::super::queue::Entry {
            id: "1-0".into(),
            fields: note.fields().into_iter().collect(),
        };
        assert_eq!(entry.get("k"), "sms_note");
        assert_eq!(SmsNote::parse(&entry), Some(note));
        let mut broken = entry.clone();
        broken.fields.insert("a".into(), "two".into());
        assert_eq!(SmsNote::parse(&broken), None);
        broken.fields.remove("v");
        assert_eq!(SmsNote::parse(&broken), None);
    }
}
