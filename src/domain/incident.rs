//! Incidents: what command staff raise, and the small value types that describe one.

use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;
use uuid::Uuid;

/// An incident's id. A UUID; with an idempotency key it is derived from the key (UUID v5), so
/// the same key always names the same incident and a repeated raise is atomic in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentId(pub Uuid);

impl IncidentId {
    /// A fresh random id.
    pub fn random() -> IncidentId {
        IncidentId(Uuid::new_v4())
    }

    /// The id that `idempotency_key`, sent by the caller named `caller`, always maps to.
    pub fn from_idempotency_key(caller: &str, key: &str) -> IncidentId {
        let name = format!("{caller}\u{0}{key}");
        IncidentId(Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()))
    }

    /// Parses client text; `None` if it is not a UUID.
    pub fn parse(s: &str) -> Option<IncidentId> {
        Uuid::parse_str(s).ok().map(IncidentId)
    }

    /// The stream partition this incident lives in (all its keys share that hash tag).
    pub fn partition(&self, partitions: u16) -> u16 {
        let b = self.0.as_bytes();
        let h = u32::from_be_bytes([b[12], b[13], b[14], b[15]]);
        (h % u32::from(partitions.max(1))) as u16
    }
}

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Response level 1–4: 1 = 特别重大 (most severe) … 4 = 一般. Read from any number and
/// refused outside 1–4, wherever it is read (an API body, a plan file).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(try_from = "i64", into = "u8")]
#[schema(value_type = u8, minimum = 1, maximum = 4)]
pub struct Level(u8);

impl TryFrom<i64> for Level {
    type Error = String;
    fn try_from(n: i64) -> Result<Level, String> {
        Level::new(n)
    }
}

impl From<Level> for u8 {
    fn from(l: Level) -> u8 {
        l.0
    }
}

impl Level {
    /// Accepts 1, 2, 3 or 4.
    pub fn new(n: i64) -> Result<Level, String> {
        if (1..=4).contains(&n) {
            Ok(Level(n as u8))
        } else {
            Err(format!(
                "level must be 1 (特别重大, most severe) to 4 (一般); got {n}"
            ))
        }
    }

    /// The number.
    pub fn get(self) -> u8 {
        self.0
    }
}

/// Live incidents call out for real; drills run the same loop in training mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A real emergency.
    #[default]
    Live,
    /// A training drill (演练): messages are marked, nothing counts toward live statistics.
    Drill,
}

impl Mode {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Drill => "drill",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "live" => Some(Mode::Live),
            "drill" => Some(Mode::Drill),
            _ => None,
        }
    }
}

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Calling out; at least one requirement lacks headcount.
    Mustering,
    /// Every requirement has its headcount.
    Filled,
    /// The escalation ladder ran out with headcount unmet.
    Short,
    /// Commanders stood it down; tokens are dead.
    StoodDown,
    /// Archived.
    Closed,
}

impl Status {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Mustering => "mustering",
            Status::Filled => "filled",
            Status::Short => "short",
            Status::StoodDown => "stood_down",
            Status::Closed => "closed",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "mustering" => Status::Mustering,
            "filled" => Status::Filled,
            "short" => Status::Short,
            "stood_down" => Status::StoodDown,
            "closed" => Status::Closed,
            _ => return None,
        })
    }

    /// Whether the incident still accepts answers and calls people out.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Mustering | Status::Filled | Status::Short)
    }

    /// Whether the wire name `s` is an active status (see [`Status::is_active`]).
    pub fn active(s: &str) -> bool {
        Status::parse(s).is_some_and(Status::is_active)
    }
}

/// Built-in team kinds; a deployment may configure more.
pub const BUILTIN_TEAM_KINDS: [&str; 5] = [
    "first_aid",
    "fire",
    "rescue",
    "public_security",
    "psych_support",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_bounds() {
        assert!(Level::new(0).is_err());
        assert_eq!(Level::new(1).unwrap().get(), 1);
        assert_eq!(Level::new(4).unwrap().get(), 4);
        assert!(Level::new(5).is_err());
    }

    #[test]
    fn idempotency_key_is_stable_and_caller_scoped() {
        let a = IncidentId::from_idempotency_key("c1", "k");
        assert_eq!(a, IncidentId::from_idempotency_key("c1", "k"));
        assert_ne!(a, IncidentId::from_idempotency_key("c2", "k"));
        assert!(a.partition(8) < 8);
    }
}
