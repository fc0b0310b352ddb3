//! The entries of a partition's `deliveries` stream, as one typed enum.
//!
//! Scripts write three kinds of entry, told apart by `k`: an SMS note (`sms_note`, see
//! [`super::sms::SmsNote`]), a command-centre alert (`alert`), and otherwise messages of kind
//! `k` (`callout`, `stand_down`, `failover`, `recall:…`) to a batch of callouts. Each is read
//! once, here — parse, don't validate — and an entry that is not whole is
//! [`DeliveryEntry::Malformed`] (the notifier acknowledges and drops it, logged). Version 1:
//! entries carry no version field; batch entries written before batching name one callout as
//! `n` instead of `ns`.

use super::bus::{incident_id, number};
use super::queue::{Entry, parse_ns};
use super::sms::SmsNote;
use crate::domain::incident::IncidentId;
use serde::Deserialize;

/// One entry of a `deliveries` stream.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryEntry {
    /// Messages of one kind to a batch of callouts.
    Batch(Batch),
    /// A shortfall alert to a command centre.
    Alert(AlertEntry),
    /// The answer to a volunteer's SMS reply.
    Note(SmsNote),
    /// Not whole: what was wrong.
    Malformed(String),
}

/// Messages of one kind to a batch of callouts of one incident.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Batch {
    /// The incident.
    #[serde(rename = "i", deserialize_with = "incident_id")]
    pub incident: IncidentId,
    /// The message kind: `callout`, `stand_down`, `failover`, `recall:STATE`.
    #[serde(rename = "k")]
    pub kind: String,
    /// The callouts, by number (written as ranges, `1-40,43`).
    #[serde(rename = "ns", alias = "n", deserialize_with = "spans")]
    pub ns: Vec<u32>,
    /// 1 for the first attempt.
    #[serde(rename = "a", default = "first", deserialize_with = "attempt")]
    pub attempt: u32,
    /// The requirement they fill, when the entry carries it (fresh call-outs).
    #[serde(rename = "r", default)]
    pub requirement: String,
    /// Their volunteers, in the order of `ns`, when the entry carries them.
    #[serde(rename = "vs", default, deserialize_with = "list")]
    pub volunteers: Vec<String>,
}

impl Batch {
    /// The volunteers of `ns` and their requirement, when the entry carries both whole.
    pub fn known(&self) -> Option<(Vec<String>, String)> {
        (self.volunteers.len() == self.ns.len() && !self.requirement.is_empty())
            .then(|| (self.volunteers.clone(), self.requirement.clone()))
    }
}

/// A shortfall alert to the command centre of one region.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AlertEntry {
    /// The incident.
    #[serde(rename = "i", deserialize_with = "incident_id")]
    pub incident: IncidentId,
    /// The requirement that ran short.
    #[serde(rename = "r", deserialize_with = "non_empty")]
    pub requirement: String,
    /// The region whose command centre is alerted.
    #[serde(rename = "g", deserialize_with = "non_empty")]
    pub region: String,
    /// Headcount needed.
    #[serde(rename = "nd", deserialize_with = "number")]
    pub needed: u32,
    /// Headcount taken (accepted or arrived) when it went short.
    #[serde(rename = "tk", deserialize_with = "number")]
    pub taken: u32,
    /// 1 for the first attempt.
    #[serde(rename = "a", default = "first", deserialize_with = "attempt")]
    pub attempt: u32,
}

impl DeliveryEntry {
    /// Reads an entry.
    pub fn parse(e: &Entry) -> DeliveryEntry {
        let malformed = |why: String| DeliveryEntry::Malformed(why);
        let fields = match serde_json::to_value(&e.fields) {
            Ok(v) => v,
            Err(err) => return malformed(err.to_string()),
        };
        match e.get("k") {
            "sms_note" => SmsNote::parse(e)
                .map(DeliveryEntry::Note)
                .unwrap_or_else(|| malformed("not a whole SMS note".into())),
            "alert" => serde_json::from_value(fields)
                .map(DeliveryEntry::Alert)
                .unwrap_or_else(|err| malformed(format!("alert: {err}"))),
            _ => serde_json::from_value(fields)
                .map(DeliveryEntry::Batch)
                .unwrap_or_else(|err| malformed(format!("batch: {err}"))),
        }
    }
}

fn first() -> u32 {
    1
}

fn spans<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
    let s = String::deserialize(d)?;
    parse_ns(&s).ok_or_else(|| serde::de::Error::custom(format!("bad callout numbers `{s}`")))
}

fn attempt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    number::<D, u32>(d).map(|a| a.max(1))
}

fn list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let s = String::deserialize(d)?;
    Ok(s.split(',')
        .filter(|v| !v.is_empty())
        .map(String::from)
        .collect())
}

fn non_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() {
        Err(serde::de::Error::custom("empty"))
    } else {
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kv: &[(&str, &str)]) -> Entry {
        Entry::of(kv)
    }

    #[test]
    fn every_kind_the_scripts_write_is_read_whole() {
        let id = IncidentId::random();
        let i = id.to_string();
        let fresh = entry(&[
            ("i", &i),
            ("ns", "1-3,7"),
            ("k", "callout"),
            ("a", "1"),
            ("r", "rescue"),
            ("vs", "v1,v2,v3,v7"),
        ]);
        let DeliveryEntry::Batch(b) = DeliveryEntry::parse(&fresh) else {
            panic!("{fresh:?}")
        };
        assert_eq!(b.ns, vec![1, 2, 3, 7]);
        assert_eq!(
            b.known(),
            Some((
                vec!["v1".into(), "v2".into(), "v3".into(), "v7".into()],
                "rescue".into()
            ))
        );
        // Written before batching: `n`, no attempt.
        let old = DeliveryEntry::parse(&entry(&[("i", &i), ("n", "4"), ("k", "stand_down")]));
        assert_eq!(
            old,
            DeliveryEntry::Batch(Batch {
                incident: id,
                kind: "stand_down".into(),
                ns: vec![4],
                attempt: 1,
                requirement: String::new(),
                volunteers: vec![],
            })
        );
        let alert = entry(&[
            ("i", &i),
            ("k", "alert"),
            ("r", "rescue"),
            ("g", "990101"),
            ("nd", "10"),
            ("tk", "3"),
            ("a", "2"),
        ]);
        assert_eq!(
            DeliveryEntry::parse(&alert),
            DeliveryEntry::Alert(AlertEntry {
                incident: id,
                requirement: "rescue".into(),
                region: "990101".into(),
                needed: 10,
                taken: 3,
                attempt: 2,
            })
        );
    }

    #[test]
    fn an_entry_that_is_not_whole_is_malformed_not_defaulted() {
        let i = IncidentId::random().to_string();
        for kv in [
            vec![("i", "nope"), ("ns", "1"), ("k", "callout")],
            vec![("i", i.as_str()), ("k", "callout")],
            vec![("i", i.as_str()), ("ns", "3-1"), ("k", "callout")],
            vec![("i", i.as_str()), ("ns", "1"), ("k", "callout"), ("a", "x")],
            vec![
                ("i", i.as_str()),
                ("k", "alert"),
                ("r", ""),
                ("g", "9"),
                ("nd", "1"),
                ("tk", "0"),
            ],
            vec![
                ("i", i.as_str()),
                ("k", "alert"),
                ("r", "a"),
                ("g", "9"),
                ("nd", "x"),
                ("tk", "0"),
            ],
            vec![("k", "sms_note")],
        ] {
            assert!(
                matches!(
                    DeliveryEntry::parse(&entry(&kv)),
                    DeliveryEntry::Malformed(_)
                ),
                "{kv:?}"
            );
        }
    }
}
