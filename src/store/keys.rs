//! The one place Redis keys are built. Every key starts with `redis.prefix`.
//!
//! | key | type | written by | TTL | hash tag |
//! | --- | --- | --- | --- | --- |
//! | `P:{pK}:inc:ID` | hash: the incident (kind, level, region, title, mode, status, plan_id, reqs JSON, seq, …) | raise, stand-down, projection | none yet | `{pK}` |
//! | `P:{pK}:inc:ID:counts` | hash: `REQ:needed`, `REQ:<state>` counters, `REQ:step`, `REQ:tier` | every transition script | none | `{pK}` |
//! | `P:{pK}:inc:ID:called` | hash: volunteer id → callout number; one callout per volunteer per incident | fan-out | none | `{pK}` |
//! | `P:{pK}:inc:ID:co:N` | hash: callout N (`v`, `r`, `tier`, `step`, `ch`, `st`, timestamps, delivery marks) | fan-out, ack, notifier | none | `{pK}` |
//! | `P:{pK}:inc:ID:rco:REQ` | list: callout numbers of requirement REQ, in creation order (silence, standby notices) | fan-out | none | `{pK}` |
//! | `P:{pK}:inc:ID:standby:REQ` | list: callout numbers on standby, in acceptance order | ack | none | `{pK}` |
//! | `P:{pK}:inc:ID:claims` | hash: `ENTRY:FIRST_N` → attempt, one per delivery chunk being sent; a second claim of a chunk means its first sender stopped mid-send (re-sends counted) | notifier | none (kept, so a late second runner of an entry never takes a chunk for fresh) | `{pK}` |
//! | `P:{pK}:inc:ID:events` | stream: every change of the incident (SSE, audit) | every script | none | `{pK}` |
//! | `P:{pK}:bus` | stream: domain events of partition K (groups `fanout`, `projection`) | raise, ack, stand-down | trimmed below what every group finished | `{pK}` |
//! | `P:{pK}:deliveries` | stream: one entry per batch of messages of one kind (`i` incident, `ns` callout numbers as ranges, `k` kind, `a` attempt; a fan-out batch also `r` requirement and `vs` volunteer ids) (group `notifier`) | fan-out, ack, stand-down, scheduler | trimmed below what the group finished | `{pK}` |
//! | `P:{pK}:timers` | zset: `incident\|requirement\|step` → end of that step's wait (ms), fired once into `bus` | fan-out | none | `{pK}` |
//! | `P:{pK}:delayed` | zset: delivery retries, score = due time (ms) | notifier | none | `{pK}` |
//! | `P:incidents` | zset: incident id → raised_at (ms), for listing | raise, projection | none | none (cold path) |
//! | `P:meta` | hash: `partitions`, `token_secret`, `seed` | startup | none | none (cold path) |
//! | `P:{pK}:note:ID` | string: SMS note ID (the answer to one inbound reply) was enqueued, so a retried enqueue sends nothing twice | SMS inbound | 7 days | `{pK}` |
//! | `P:sms:ph:H` | hash per phone number (`H`: a SHA-256 prefix of the number): `c:CODE` → "incident.n\|issued ms", `r:incident.n` → code, `next` | notifier (codes) | two reuse windows after its last code | none |
//! | `P:sms:rate:GW` | string: the gateway's GCRA arrival time | notifier | a few seconds | none |
//! | `P:sms:id:GW:ID` | string: the gateway's message id → "incident.n" | notifier | 7 days | none |
//! | `P:sms:in:GW:ID` | string: an inbound message already handled | SMS inbound | 7 days | none |
//! | `P:{pK}:inc:ID:sel` | hash: requirement → JSON of its selection (who was called, who was excluded and why) | fan-out | none | `{pK}` |
//! | `P:vol:VID` | hash: a volunteer (name, phone, locale, webhook, status, teams, quals, ins, unavail, …); after erasure only `status`, `erased_at` | seed, registry, import | none | none |
//! | `P:vol:VID:deploy` | hash: live incident id → callout n where the volunteer accepted (for engagement and rest) | projection | none | none |
//! | `P:unavailable` | zset: volunteer id → end (ms) of their latest unavailability, so listings look up only those | registry | none | none (cold path) |
//! | `P:phones` | hash: E.164 phone → volunteer id (one volunteer per phone; import is idempotent on it) | registry | none | none (cold path) |
//! | `P:team:TID` | hash: a team (name, kind, region, status) | seed, registry | none | none |
//! | `P:team:TID:members` | set: volunteer ids of a team | seed, registry | none | none |
//! | `P:team:TID:roster` | hash: `doc` (roster JSON: layers, overrides), `ver` (bumped on every change) | registry | none | none |
//! | `P:teams` | set: every team id | seed, registry | none | none (cold path) |
//! | `P:region:CODE:teams` | set: ids of the teams attached to region CODE | seed, registry | none | none |
//! | `P:sess:H` | hash: a command-centre session (`token`: SHA-256 of the token signed in with, `csrf`); `H` is the SHA-256 of the session cookie | sign-in | `http.session_hours` | none |
//! | `P:login:ADDR` | string: failed sign-ins from client address ADDR in the current window | sign-in | the window (15 minutes) | none |
//! | `P:{pK}:svc` | hash: `INCIDENT.N` → a service record (JSON: volunteer, incident, kind, region, title, mode, requirement, team, accepted, arrived, start, end, basis), written once at stand-down or a withdrawal after arrival | stand-down sweep, ack | none (kept past retention) | `{pK}` |
//! | `P:{pK}:svc:time`, `P:{pK}:svc:vol:VID` | zset: those records by end time, overall and per volunteer | same | none | `{pK}` |
//! | `P:{pK}:svc:corr` | hash: `INCIDENT.N` → a coordinator's correction (hours, reason, by, at) | records API | none | `{pK}` |
//! | `P:cert:CODE` | hash: a service certificate (volunteer, period, hours, issuer, issued); the code is an HMAC of them | certificates | none | none |
//! | `P:{drills}:d:ID` | hash: a drill (kind, level, region, title, at, channels, objectives, status, incident, created_by, …) | drills API, scheduler | none | `{drills}` |
//! | `P:{drills}:all` | zset: drill id → when it runs (ms), for listing | drills API | none | `{drills}` |
//! | `P:{drills}:due` | zset: scheduled drill id → when it runs (ms); claimed once into `firing` | drills API, scheduler | none | `{drills}` |
//! | `P:{drills}:firing` | zset: drill id → wall time (ms) of its claim, until its raise is recorded; a claim older than the lease is taken again | scheduler | none | `{drills}` |
//! | `P:cap:SENDER\|IDENTIFIER` | string: what a CAP alert came to (JSON: outcome, incident or proposal), so a repeat answers the same and references resolve | CAP ingest | none | none |
//! | `P:cap:prop:ID` | hash: a CAP proposal waiting for a commander (kind, level, region, title, mode, reference, status) | CAP ingest, confirm | none | none |
//! | `P:cap:proposals` | zset: proposal id → received (ms) | CAP ingest | none | none (cold path) |
//! | `P:{pK}:audit` | stream: audit entries of partition K's incidents (raise, upgrade, stand-down), written by the same scripts | incident scripts | none | `{pK}` |
//! | `P:{drills}:audit` | stream: audit entries of drill scheduling and cancelling | drill scripts | none | `{drills}` |
//! | `P:audit` | stream: every other audit entry (registry, rosters, sessions, CAP, refusals) | registry scripts, API | none | none (issue 15) |
//! | `CHAIN:macs`, `CHAIN:head` | hash: each sealed entry's HMAC; the chain's last sealed id, count, MAC and the head's own MAC | sealer | none | the chain's |
//! | `P:audit:refused:ADDR:MINUTE` | string: refusals from ADDR in that minute (the first is an entry) | API | 2 days | none |
//! | `P:audit:sealer` | string: which instance is sealing (a lease) | sealer | seconds | none |
//!
//! All keys of one incident, and the streams and delayed set of its partition, share the hash
//! tag `{pK}`, so one Lua script can change a callout, count it, record the event and enqueue
//! the follow-up work atomically, on a single Redis or a Cluster alike. Partition K of an
//! incident is a pure function of its id ([`crate::domain::incident::IncidentId::partition`]).

use crate::domain::incident::IncidentId;

/// Builds keys for one deployment.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
    partitions: u16,
}

impl Keys {
    /// Keys under `prefix`, with `partitions` stream partitions.
    pub fn new(prefix: &str, partitions: u16) -> Keys {
        Keys {
            prefix: prefix.to_string(),
            partitions: partitions.max(1),
        }
    }

    /// The number of partitions.
    pub fn partitions(&self) -> u16 {
        self.partitions
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The partition of an incident.
    pub fn partition_of(&self, id: &IncidentId) -> u16 {
        id.partition(self.partitions)
    }

    /// Base key of an incident (its hash); the incident's other keys extend it.
    pub fn incident(&self, id: &IncidentId) -> String {
        format!("{}:{{p{}}}:inc:{}", self.prefix, self.partition_of(id), id)
    }

    /// The callouts of an incident: hash, callout number → the callout as a JSON object.
    pub fn callouts(&self, id: &IncidentId) -> String {
        format!("{}:co", self.incident(id))
    }

    /// The callouts of each requirement, in creation order: sorted set (all scores 0) of
    /// `REQ|NNNNNNNNNN` (the number zero-padded), read by lexical range.
    pub fn requirement_callouts(&self, id: &IncidentId) -> String {
        format!("{}:rco", self.incident(id))
    }

    /// The callouts on standby, per requirement in acceptance order: sorted set (scores 0)
    /// of `REQ|SSSSSSSSSS|N` (S the incident's standby sequence).
    pub fn standby(&self, id: &IncidentId) -> String {
        format!("{}:standby", self.incident(id))
    }

    /// Every key an incident script may touch, in the order `lua/incident.lua` names them:
    /// the incident's own keys and its partition's streams and sets, all under one hash tag.
    pub fn incident_set(&self, id: &IncidentId) -> Vec<String> {
        // Built from two bases formatted once (every answer and delivery script call sends
        // these 17 keys; formatting each from scratch was 5 % of an answer's CPU). The test
        // `incident_set_is_the_named_keys` pins them to the functions that name them.
        let p = self.partition_of(id);
        let part = format!("{}:{{p{p}}}", self.prefix);
        let inc = format!("{part}:inc:{id}");
        let mut keys = Vec::with_capacity(17);
        keys.push(inc.clone());
        for suffix in [
            ":co", ":counts", ":called", ":events", ":claims", ":sel", ":rco", ":standby",
        ] {
            keys.push(format!("{inc}{suffix}"));
        }
        for suffix in [
            ":bus",
            ":deliveries",
            ":delayed",
            ":timers",
            ":svc",
            ":svc:time",
            ":svc:vol",
            ":audit",
        ] {
            keys.push(format!("{part}{suffix}"));
        }
        keys
    }

    /// Progress counters of an incident.
    pub fn counts(&self, id: &IncidentId) -> String {
        format!("{}:counts", self.incident(id))
    }

    /// The event stream of an incident.
    pub fn events(&self, id: &IncidentId) -> String {
        format!("{}:events", self.incident(id))
    }

    /// The domain event stream of partition `p`.
    pub fn bus(&self, p: u16) -> String {
        format!("{}:{{p{}}}:bus", self.prefix, p)
    }

    /// The delivery queue of partition `p`.
    pub fn deliveries(&self, p: u16) -> String {
        format!("{}:{{p{}}}:deliveries", self.prefix, p)
    }

    /// The escalation timers of partition `p`.
    pub fn timers(&self, p: u16) -> String {
        format!("{}:{{p{}}}:timers", self.prefix, p)
    }

    /// The delayed retries of partition `p`.
    pub fn delayed(&self, p: u16) -> String {
        format!("{}:{{p{}}}:delayed", self.prefix, p)
    }

    /// The start of every cold-path key: the prefix and the hash tag `{g}`, so the registry,
    /// its indexes, sessions, CAP, certificates and their audit chain sit in one Cluster slot
    /// and a registry write stays one atomic script.
    fn g(&self) -> String {
        format!("{}:{{g}}", self.prefix)
    }

    /// The index of incidents.
    pub fn incident_index(&self) -> String {
        format!("{}:incidents", self.g())
    }

    /// Deployment metadata.
    pub fn meta(&self) -> String {
        format!("{}:meta", self.g())
    }

    /// A volunteer.
    pub fn volunteer(&self, vid: &str) -> String {
        format!("{}:vol:{}", self.g(), vid)
    }

    /// A team's members.
    pub fn team_members(&self, tid: &str) -> String {
        format!("{}:team:{}:members", self.g(), tid)
    }

    /// Where a volunteer was deployed (accepted on live incidents).
    pub fn deployments(&self, vid: &str) -> String {
        format!("{}:vol:{}:deploy", self.prefix, vid)
    }

    /// The unavailability index.
    pub fn unavailable(&self) -> String {
        format!("{}:unavailable", self.g())
    }

    /// The phone index.
    pub fn phones(&self) -> String {
        format!("{}:phones", self.g())
    }

    /// A team.
    pub fn team(&self, tid: &str) -> String {
        format!("{}:team:{}", self.g(), tid)
    }

    /// A team's roster.
    pub fn roster(&self, tid: &str) -> String {
        format!("{}:team:{}:roster", self.g(), tid)
    }

    /// Every team id.
    pub fn teams(&self) -> String {
        format!("{}:teams", self.g())
    }

    /// The teams of a region.
    pub fn region_teams(&self, code: &str) -> String {
        format!("{}:region:{}:teams", self.g(), code)
    }

    /// The selection records of an incident.
    pub fn selections(&self, id: &IncidentId) -> String {
        format!("{}:sel", self.incident(id))
    }

    /// Volunteer id → callout number of an incident.
    pub fn called(&self, id: &IncidentId) -> String {
        format!("{}:called", self.incident(id))
    }

    /// Delivery chunk claims of an incident.
    pub fn claims(&self, id: &IncidentId) -> String {
        format!("{}:claims", self.incident(id))
    }

    /// The reply codes of one phone number, named by `hash` (a SHA-256 prefix of the number,
    /// so no key names a number).
    pub fn sms_phone(&self, hash: &str) -> String {
        format!("{}:sms:ph:{hash}", self.g())
    }

    /// A gateway's shared send rate (GCRA arrival time).
    pub fn sms_rate(&self, gw: &str) -> String {
        format!("{}:sms:rate:{gw}", self.prefix)
    }

    /// A gateway's message id → the callout it carried.
    pub fn sms_gateway_id(&self, gw: &str, gw_id: &str) -> String {
        format!("{}:sms:id:{gw}:{gw_id}", self.prefix)
    }

    /// An inbound message of a gateway already handled.
    pub fn sms_inbound(&self, gw: &str, id: &str) -> String {
        format!("{}:sms:in:{gw}:{id}", self.prefix)
    }

    /// A command-centre session, by the SHA-256 of its cookie.
    pub fn session(&self, id_hash: &str) -> String {
        format!("{}:sess:{id_hash}", self.g())
    }

    /// Failed sign-ins from one client address.
    pub fn login_failures(&self, addr: &str) -> String {
        format!("{}:login:{addr}", self.g())
    }

    /// A drill.
    pub fn drill(&self, id: &str) -> String {
        format!("{}:{{drills}}:d:{id}", self.prefix)
    }

    /// Every drill, by when it runs.
    pub fn drills(&self) -> String {
        format!("{}:{{drills}}:all", self.prefix)
    }

    /// Scheduled drills waiting for their time.
    pub fn drills_due(&self) -> String {
        format!("{}:{{drills}}:due", self.prefix)
    }

    /// Drills claimed for firing whose raise is not yet recorded.
    pub fn drills_firing(&self) -> String {
        format!("{}:{{drills}}:firing", self.prefix)
    }

    /// The incident a CAP alert of `sender` with `identifier` raised.
    pub fn cap_alert(&self, sender: &str, identifier: &str) -> String {
        format!("{}:cap:{sender}|{identifier}", self.g())
    }

    /// The audit chain of partition `p`.
    pub fn audit_partition(&self, p: u16) -> String {
        format!("{}:{{p{p}}}:audit", self.prefix)
    }

    /// The audit chain of an incident's actions.
    pub fn audit_of(&self, id: &IncidentId) -> String {
        self.audit_partition(self.partition_of(id))
    }

    /// The audit chain of drills.
    pub fn audit_drills(&self) -> String {
        format!("{}:{{drills}}:audit", self.prefix)
    }

    /// The audit chain of everything else (registry, sessions, CAP, refusals).
    pub fn audit(&self) -> String {
        format!("{}:audit", self.g())
    }

    /// Every audit chain.
    pub fn audit_chains(&self) -> Vec<String> {
        let mut v: Vec<String> = (0..self.partitions)
            .map(|p| self.audit_partition(p))
            .collect();
        v.push(self.audit_drills());
        v.push(self.audit());
        v
    }

    /// Refusals from one address in one minute.
    pub fn audit_refused(&self, addr: &str, minute: i64) -> String {
        format!("{}:audit:refused:{addr}:{minute}", self.g())
    }

    /// The sealer's lease.
    pub fn audit_sealer(&self) -> String {
        format!("{}:audit:sealer", self.g())
    }

    /// The service records of partition `p`'s incidents (hash: `INCIDENT.N` → JSON).
    pub fn service_records(&self, p: u16) -> String {
        format!("{}:{{p{p}}}:svc", self.prefix)
    }

    /// Those records by end time.
    pub fn service_time(&self, p: u16) -> String {
        format!("{}:{{p{p}}}:svc:time", self.prefix)
    }

    /// Those records by volunteer and end time: sorted set (scores 0) of
    /// `VOLUNTEER|END|INCIDENT.N` (END in ms, zero-padded to 15 digits), read by lexical range.
    pub fn service_by_volunteer(&self, p: u16) -> String {
        format!("{}:{{p{p}}}:svc:vol", self.prefix)
    }

    /// Corrections of those records (hash: `INCIDENT.N` → JSON: hours, reason, by, at).
    pub fn service_corrections(&self, p: u16) -> String {
        format!("{}:{{p{p}}}:svc:corr", self.prefix)
    }

    /// A service certificate, by its code.
    pub fn certificate(&self, code: &str) -> String {
        format!("{}:cert:{code}", self.g())
    }

    /// A CAP proposal.
    pub fn cap_proposal(&self, id: &str) -> String {
        format!("{}:cap:prop:{id}", self.g())
    }

    /// Every CAP proposal, by when it came.
    pub fn cap_proposals(&self) -> String {
        format!("{}:cap:proposals", self.g())
    }

    /// The mark that SMS note `note` (the answer to one reply) was enqueued on partition `p`:
    /// same tag as the partition's delivery stream, so one script checks it and enqueues.
    pub fn sms_note(&self, p: u16, note: &str) -> String {
        format!("{}:{{p{p}}}:note:{note}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incident_keys_share_the_partition_tag_with_its_streams() {
        let k = Keys::new("t", 8);
        let id = IncidentId::random();
        let p = k.partition_of(&id);
        let tag = format!("{{p{p}}}");
        let mut all = k.incident_set(&id);
        all.push(k.sms_note(p, "n1"));
        assert_eq!(all.len(), 18);
        for key in all {
            assert!(key.starts_with("t:"), "{key}");
            assert!(key.contains(&tag), "{key}");
        }
    }

    #[test]
    fn incident_set_is_the_named_keys() {
        let k = Keys::new("t", 8);
        let id = IncidentId::random();
        let p = k.partition_of(&id);
        assert_eq!(
            k.incident_set(&id),
            vec![
                k.incident(&id),
                k.callouts(&id),
                k.counts(&id),
                k.called(&id),
                k.events(&id),
                k.claims(&id),
                k.selections(&id),
                k.requirement_callouts(&id),
                k.standby(&id),
                k.bus(p),
                k.deliveries(p),
                k.delayed(p),
                k.timers(p),
                k.service_records(p),
                k.service_time(p),
                k.service_by_volunteer(p),
                k.audit_partition(p),
            ]
        );
    }

    #[test]
    fn cold_path_keys_share_one_tag() {
        let k = Keys::new("t", 8);
        for key in [
            k.meta(),
            k.volunteer("v1"),
            k.phones(),
            k.teams(),
            k.team("t1"),
            k.team_members("t1"),
            k.roster("t1"),
            k.region_teams("990101"),
            k.unavailable(),
            k.sms_phone("ab"),
            k.session("h"),
            k.audit(),
            k.audit_refused("1.2.3.4", 5),
            k.cap_proposal("p"),
            k.certificate("c"),
        ] {
            assert!(key.starts_with("t:{g}:"), "{key}");
        }
        // The hot single-key ones spread over the cluster.
        assert!(!k.deployments("v1").contains('{'));
        assert!(!k.sms_rate("gw").contains('{'));
    }
}
