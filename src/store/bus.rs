//! The domain events on a partition's `bus` stream, as one typed enum.
//!
//! The scripts write each event as a flat list of fields (`type`, `incident`, …; Lua has no
//! other shape); consumers read it once, here, into a [`BusEvent`] — parse, don't validate —
//! instead of looking fields up by name with a default of "". Version 1: an entry carries no
//! version field, and a `type` this version does not know (written by a newer one during a
//! rolling upgrade) is [`BusEvent::Unknown`], acknowledged and left alone.

use super::queue::Entry;
use crate::domain::incident::IncidentId;
use serde::Deserialize;
use std::collections::HashMap;

/// A domain event of one incident.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type")]
pub enum BusEvent {
    /// `raise.lua`: call out the first step of every requirement.
    #[serde(rename = "incident.raised")]
    Raised {
        /// The incident.
        #[serde(deserialize_with = "incident_id")]
        incident: IncidentId,
    },
    /// `stand_down.lua`: tell everyone called.
    #[serde(rename = "incident.stood_down")]
    StoodDown {
        /// The incident.
        #[serde(deserialize_with = "incident_id")]
        incident: IncidentId,
    },
    /// `upgrade.lua`: call out what the new level added.
    #[serde(rename = "incident.upgraded")]
    Upgraded {
        /// The incident.
        #[serde(deserialize_with = "incident_id")]
        incident: IncidentId,
        /// The requirements that grew or are new, comma-separated.
        #[serde(default)]
        requirements: String,
    },
    /// `timers_due.lua`: a step's wait ran out.
    #[serde(rename = "requirement.step_due")]
    StepDue {
        /// The incident.
        #[serde(deserialize_with = "incident_id")]
        incident: IncidentId,
        /// The requirement.
        requirement: String,
        /// The step whose wait ran out.
        #[serde(deserialize_with = "number")]
        step: usize,
        /// When it was due (ms).
        #[serde(deserialize_with = "number")]
        due: i64,
    },
    /// `ack.lua`: an answer changed a callout (and maybe promoted one from standby).
    #[serde(rename = "callout.answered")]
    Answered {
        /// The incident.
        #[serde(deserialize_with = "incident_id")]
        incident: IncidentId,
        /// The callout answered.
        #[serde(deserialize_with = "number")]
        n: u32,
        /// The callout promoted from standby, if any ("" when none).
        #[serde(default, deserialize_with = "maybe_number")]
        promoted: Option<u32>,
    },
    /// `requirement_short.lua`: the ladder ran out.
    #[serde(rename = "requirement.short")]
    Short {
        /// The incident.
        #[serde(deserialize_with = "incident_id")]
        incident: IncidentId,
        /// The requirement.
        requirement: String,
    },
    /// A type this version does not know, or an entry it cannot read.
    #[serde(skip)]
    Unknown {
        /// What the entry said it was.
        kind: String,
    },
}

impl BusEvent {
    /// Reads a bus entry.
    pub fn parse(e: &Entry) -> BusEvent {
        read(&e.fields).unwrap_or_else(|_| BusEvent::Unknown {
            kind: e.get("type").to_string(),
        })
    }

    /// The incident it concerns (none for an unknown event).
    pub fn incident(&self) -> Option<IncidentId> {
        match self {
            BusEvent::Raised { incident }
            | BusEvent::StoodDown { incident }
            | BusEvent::Upgraded { incident, .. }
            | BusEvent::StepDue { incident, .. }
            | BusEvent::Answered { incident, .. }
            | BusEvent::Short { incident, .. } => Some(*incident),
            BusEvent::Unknown { .. } => None,
        }
    }
}

fn read(fields: &HashMap<String, String>) -> Result<BusEvent, serde_json::Error> {
    serde_json::from_value(serde_json::to_value(fields)?)
}

/// An incident id written as text by a script.
pub(crate) fn incident_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<IncidentId, D::Error> {
    let s = String::deserialize(d)?;
    IncidentId::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("bad incident id `{s}`")))
}

/// A number written as text by a script.
pub(crate) fn number<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
{
    let s = String::deserialize(d)?;
    s.parse()
        .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a number")))
}

fn maybe_number<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
{
    let s = String::deserialize(d)?;
    Ok(s.parse().ok())
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
        assert_eq!(
            BusEvent::parse(&entry(&[("type", "incident.raised"), ("incident", &i)])),
            BusEvent::Raised { incident: id }
        );
        assert_eq!(
            BusEvent::parse(&entry(&[
                ("type", "requirement.step_due"),
                ("incident", &i),
                ("requirement", "rescue"),
                ("step", "2"),
                ("due", "1700000000000"),
            ])),
            BusEvent::StepDue {
                incident: id,
                requirement: "rescue".into(),
                step: 2,
                due: 1_700_000_000_000
            }
        );
        assert_eq!(
            BusEvent::parse(&entry(&[
                ("type", "callout.answered"),
                ("incident", &i),
                ("n", "7"),
                ("promoted", ""),
            ])),
            BusEvent::Answered {
                incident: id,
                n: 7,
                promoted: None
            }
        );
        assert_eq!(
            BusEvent::parse(&entry(&[
                ("type", "incident.upgraded"),
                ("incident", &i),
                ("requirements", "a,b")
            ])),
            BusEvent::Upgraded {
                incident: id,
                requirements: "a,b".into()
            }
        );
    }

    #[test]
    fn what_cannot_be_read_is_unknown_not_a_default() {
        let i = IncidentId::random().to_string();
        for kv in [
            &[("type", "incident.renamed"), ("incident", i.as_str())][..],
            &[("type", "incident.raised"), ("incident", "not-an-id")],
            &[
                ("type", "requirement.step_due"),
                ("incident", &i),
                ("requirement", "r"),
                ("step", "x"),
                ("due", "1"),
            ],
            &[("incident", &i)],
        ] {
            let e = BusEvent::parse(&entry(kv));
            assert!(matches!(e, BusEvent::Unknown { .. }), "{kv:?}: {e:?}");
            assert_eq!(e.incident(), None);
        }
    }
}
