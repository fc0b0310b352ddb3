//! Who may do what: roles, and the teams volunteers serve in.

use super::region::RegionCode;
use super::volunteer::VolunteerStatus;
use serde::Serialize;

/// A bearer token's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads.
    Viewer,
    /// Reads; raises, upgrades and stands down incidents.
    Commander,
    /// Reads; manages the registry and rosters.
    Coordinator,
    /// Reads; raises drills (never a live incident) and reads their reports.
    Trainer,
    /// Everything.
    Admin,
}

impl Role {
    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "viewer" => Role::Viewer,
            "commander" => Role::Commander,
            "coordinator" => Role::Coordinator,
            "trainer" => Role::Trainer,
            "admin" => Role::Admin,
            _ => return None,
        })
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Commander => "commander",
            Role::Coordinator => "coordinator",
            Role::Trainer => "trainer",
            Role::Admin => "admin",
        }
    }

    /// May raise, upgrade and stand down incidents.
    pub fn may_command(self) -> bool {
        matches!(self, Role::Commander | Role::Admin)
    }

    /// May raise drills: commanders, trainers and admins.
    pub fn may_drill(self) -> bool {
        self.may_command() || self == Role::Trainer
    }

    /// May see full phone numbers and names (registry staff).
    pub fn may_see_personal_data(self) -> bool {
        matches!(self, Role::Coordinator | Role::Admin)
    }
}

/// A professional volunteer team of one kind, attached to one region.
#[derive(Debug, Clone, Serialize)]
pub struct Team {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `first_aid`, `fire`, `rescue`, `public_security`, `psych_support` or a custom kind.
    pub kind: String,
    /// The region it belongs to (any tier).
    pub region: RegionCode,
    /// `active` teams are called; `suspended` and `retired` ones are not.
    pub status: VolunteerStatus,
}
