//! Callouts in Redis: creating them in batches, answering them against the headcount, the
//! delivery bookkeeping, and listing.

use super::{Result, Store, StoreError, retrying};
use crate::clock::Millis;
use crate::domain::callout::{CalloutState, Response};
use crate::domain::incident::IncidentId;
use crate::store::engage::Engagement;
use redis::Value;

/// One candidate handed to [`Store::create_callouts`].
#[derive(Debug, Clone)]
pub struct NewCallout {
    /// Volunteer id.
    pub volunteer_id: String,
    /// Channel it will go out on first (`webhook`, `none`).
    pub channel: String,
    /// The team they are called through.
    pub team: String,
}

/// What an answer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    /// No such callout.
    Unknown,
    /// The incident is stood down: the token is dead.
    Closed {
        /// The callout's state.
        state: String,
    },
    /// Repeated answer; nothing changed.
    Unchanged {
        /// The callout's state.
        state: String,
    },
    /// The answer makes no sense now.
    Refused {
        /// The callout's state.
        state: String,
        /// Why.
        reason: String,
    },
    /// An acceptance not counted: the volunteer is deployed on another live incident.
    Engaged {
        /// The callout's state (unchanged).
        state: String,
        /// The live incident they are deployed on.
        elsewhere: IncidentId,
    },
    /// The callout moved to `state`; `promoted` is the standby callout that got the slot.
    Changed {
        /// The new state.
        state: String,
        /// Callout number promoted from standby, if any.
        promoted: Option<u32>,
    },
}

/// The claim on one message of a delivery batch.
#[derive(Debug, Clone)]
pub struct Claim {
    /// Callout number.
    pub n: u32,
    /// `None`: send it; otherwise why not (`done`, `gone`, `later`, `closed`, or the
    /// answered callout's state).
    pub skip: Option<String>,
    /// Volunteer id.
    pub volunteer_id: String,
    /// Requirement id.
    pub requirement: String,
    /// An earlier attempt's outcome is unknown: this is a re-send.
    pub resend: bool,
}

/// How one delivery attempt ended.
#[derive(Debug, Clone)]
pub enum DeliveryOutcome {
    /// Delivered over `channel`.
    Delivered {
        /// The channel that delivered.
        channel: String,
    },
    /// Try again at `at` (ms) as attempt `attempt`.
    Retry {
        /// Due time.
        at: Millis,
        /// The next attempt's number.
        attempt: u32,
        /// The error of this attempt.
        error: String,
    },
    /// Give up.
    Failed {
        /// Why.
        error: String,
    },
}

/// Finishing a delivery entry (see [`Store::deliveries_done`]).
#[derive(Debug, Clone)]
pub struct Finish<'a> {
    /// The stream entry id.
    pub entry: &'a str,
    /// The consumer group that read it.
    pub group: &'a str,
    /// Callouts of the entry never attempted, to enqueue again.
    pub rest: &'a [u32],
    /// The entry's attempt number (kept by the re-enqueued rest).
    pub attempt: u32,
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Okay => "OK".into(),
        _ => String::new(),
    }
}

impl Store {
    /// Creates callouts for `batch` (skipping volunteers already called for this incident) and
    /// enqueues their deliveries, atomically. Returns how many were created; `None` if the
    /// incident is unknown or no longer active.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_callouts(
        &self,
        id: &IncidentId,
        now: Millis,
        requirement: &str,
        tier: &str,
        step: u32,
        batch: &[NewCallout],
    ) -> Result<Option<u32>> {
        let idt = id.to_string();
        let (created, _first): (i64, i64) = retrying(|| {
            let mut c = self.conn();
            let mut inv = self.incident_invocation(&self.scripts().create_callouts, id);
            inv.arg(&idt).arg(now).arg(requirement).arg(tier).arg(step);
            for nc in batch {
                inv.arg(&nc.volunteer_id).arg(&nc.channel).arg(&nc.team);
            }
            async move { inv.invoke_async(&mut c).await }
        })
        .await?;
        Ok(if created < 0 {
            None
        } else {
            Some(created as u32)
        })
    }

    /// Applies an answer to callout `n`. An acceptance on a live incident first claims the
    /// volunteer ([`Store::engage`]): one deployed on another live incident is told so and
    /// not counted; a claim whose acceptance did not count (standby, refused) is released.
    /// An acceptance read to find its requirement full claims nothing: it is checked against
    /// the volunteer's other deployments and goes to standby — three round trips, not four.
    pub async fn ack(
        &self,
        id: &IncidentId,
        n: u32,
        response: Response,
        now: Millis,
        via: &str,
    ) -> Result<AckOutcome> {
        let plain = |out: Option<AckOutcome>| out.unwrap_or(AckOutcome::Unknown);
        if response != Response::Accept {
            return self
                .ack_script(id, n, response, now, via, false)
                .await
                .map(plain);
        }
        let Some(facts) = self.accept_facts(id, n).await? else {
            // Unknown, or a drill: nothing to claim.
            return self
                .ack_script(id, n, response, now, via, false)
                .await
                .map(plain);
        };
        if facts.full {
            if let Some(incident) = self.engaged_elsewhere(&facts.volunteer, id, now).await? {
                return Ok(AckOutcome::Engaged {
                    state: facts.state,
                    elsewhere: incident,
                });
            }
            if let Some(out) = self.accept_to_standby(id, n, now, via).await? {
                return Ok(out);
            }
            // A place opened since the read: claim the volunteer and count them.
        }
        let claim = match self
            .engage(id, n, &facts.volunteer, &facts.state, now)
            .await?
        {
            Engagement::Free(claim) => claim,
            Engagement::Elsewhere { state, incident } => {
                return Ok(AckOutcome::Engaged {
                    state,
                    elsewhere: incident,
                });
            }
        };
        let out = plain(self.ack_script(id, n, response, now, via, false).await?);
        let counted = matches!(&out,
            AckOutcome::Changed { state, .. } | AckOutcome::Unchanged { state }
                if CalloutState::serving(state));
        if let (Some((vid, value)), false) = (claim, counted) {
            self.disengage(&vid, id, &value).await?;
        }
        Ok(out)
    }

    /// An acceptance of callout `n` that claims nobody: applied only if it cannot count —
    /// the requirement is full (it goes to standby) or the answer changes nothing. `None`,
    /// with nothing changed, when a place is free: such an acceptance must claim the
    /// volunteer first ([`Store::ack`] does).
    pub async fn accept_to_standby(
        &self,
        id: &IncidentId,
        n: u32,
        now: Millis,
        via: &str,
    ) -> Result<Option<AckOutcome>> {
        self.ack_script(id, n, Response::Accept, now, via, true)
            .await
    }

    /// Runs `ack.lua`. `standby_only`: an acceptance that may only go to standby; `None` when
    /// a place was free, so nothing changed.
    async fn ack_script(
        &self,
        id: &IncidentId,
        n: u32,
        response: Response,
        now: Millis,
        via: &str,
        standby_only: bool,
    ) -> Result<Option<AckOutcome>> {
        let idt = id.to_string();
        let reply: Vec<Value> = retrying(|| {
            let mut c = self.conn();
            let mut inv = self.incident_invocation(&self.scripts().ack, id);
            inv.arg(n)
                .arg(response.as_str())
                .arg(now)
                .arg(&idt)
                .arg(via);
            if standby_only {
                inv.arg("standby");
            }
            async move { inv.invoke_async(&mut c).await }
        })
        .await?;
        let t: Vec<String> = reply.iter().map(text).collect();
        let at = |i: usize| t.get(i).cloned().unwrap_or_default();
        Ok(Some(match at(0).as_str() {
            "closed" => AckOutcome::Closed { state: at(1) },
            "same" => AckOutcome::Unchanged { state: at(1) },
            "refused" => AckOutcome::Refused {
                state: at(1),
                reason: at(2),
            },
            "changed" => AckOutcome::Changed {
                state: at(1),
                promoted: at(2).parse().ok(),
            },
            "free" => return Ok(None),
            _ => AckOutcome::Unknown,
        }))
    }

    /// Claims message `kind` (attempt `attempt`) to one chunk `ns` of a delivery entry, marked
    /// `mark`. `known` gives each callout's volunteer and the requirement when the entry
    /// carries them (a fan-out batch): its first claim then reads nothing back. See
    /// `deliveries_begin.lua` and [`Claim`].
    pub async fn deliveries_begin(
        &self,
        id: &IncidentId,
        kind: &str,
        attempt: u32,
        mark: &str,
        ns: &[u32],
        known: Option<(&[String], &str)>,
    ) -> Result<Vec<Claim>> {
        let fast = known.is_some_and(|(vs, _)| vs.len() == ns.len());
        let reply: String = retrying(|| {
            let mut c = self.conn();
            let mut inv = self.incident_invocation(&self.scripts().deliveries_begin, id);
            inv.arg(kind)
                .arg(attempt)
                .arg(mark)
                .arg(if fast { "1" } else { "0" })
                .arg(ns);
            async move { inv.invoke_async(&mut c).await }
        })
        .await?;
        if let ("*send" | "*closed", Some((vs, r))) = (reply.as_str(), known) {
            let skip = (reply == "*closed").then(|| "closed".to_string());
            return Ok(ns
                .iter()
                .zip(vs)
                .map(|(n, v)| Claim {
                    n: *n,
                    skip: skip.clone(),
                    volunteer_id: v.clone(),
                    requirement: r.to_string(),
                    resend: false,
                })
                .collect());
        }
        let claims: Vec<Claim> = ns
            .iter()
            .zip(reply.split('\n'))
            .map(|(n, line)| {
                let mut f = line.split('|');
                let verdict = f.next().unwrap_or_default();
                Claim {
                    n: *n,
                    skip: (verdict != "send").then(|| verdict.to_string()),
                    volunteer_id: f.next().unwrap_or_default().to_string(),
                    requirement: f.next().unwrap_or_default().to_string(),
                    resend: f.next() == Some("1"),
                }
            })
            .collect();
        if claims.len() != ns.len() {
            return Err(StoreError::Corrupt(format!(
                "deliveries_begin answered {} claims for {} callouts",
                claims.len(),
                ns.len()
            )));
        }
        Ok(claims)
    }

    /// Records the outcomes of delivery attempts of message `kind`. With `finish`, also
    /// finishes the delivery entry they came from, atomically: the callouts in `finish.rest`
    /// (never attempted, e.g. at shutdown) are enqueued again as a new entry and the old one is
    /// acknowledged. Returns how many outcomes were recorded.
    pub async fn deliveries_done(
        &self,
        id: &IncidentId,
        kind: &str,
        now: Millis,
        outcomes: &[(u32, DeliveryOutcome)],
        finish: Option<&Finish<'_>>,
    ) -> Result<u32> {
        let idt = id.to_string();
        let (entry, group, rest, attempt) = match finish {
            Some(f) => (f.entry, f.group, super::queue::format_ns(f.rest), f.attempt),
            None => ("", "", String::new(), 0),
        };
        retrying(|| {
            let mut c = self.conn();
            let mut inv = self.incident_invocation(&self.scripts().deliveries_done, id);
            inv.arg(kind)
                .arg(now)
                .arg(&idt)
                .arg(entry)
                .arg(group)
                .arg(&rest)
                .arg(attempt);
            for (n, o) in outcomes {
                inv.arg(*n);
                match o {
                    DeliveryOutcome::Delivered { channel } => {
                        inv.arg("ok").arg(channel).arg(0).arg(0)
                    }
                    DeliveryOutcome::Retry { at, attempt, error } => {
                        inv.arg("retry").arg(error).arg(*at).arg(*attempt)
                    }
                    DeliveryOutcome::Failed { error } => inv.arg("failed").arg(error).arg(0).arg(0),
                };
            }
            async move { inv.invoke_async(&mut c).await }
        })
        .await
    }

    /// Moves due retries of partition `p` back to its delivery stream; returns how many.
    pub async fn promote_due(&self, p: u16, now: Millis, limit: usize) -> Result<u32> {
        let delayed = self.keys.delayed(p);
        let q = self.keys.deliveries(p);
        retrying(|| {
            let mut c = self.conn();
            let mut inv = self.scripts().promote_due.prepare_invoke();
            inv.key(&delayed).key(&q).arg(now).arg(limit);
            async move { inv.invoke_async(&mut c).await }
        })
        .await
    }
}
