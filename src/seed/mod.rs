//! The seed directory: regions, teams, plans, templates, tokens and a seed registry.
//!
//! ```text
//! <seed.dir>/regions.toml        [[region]] code, name, tier, parent
//! <seed.dir>/teams.toml          custom_kinds = [...]; [default_roster]; [[team]] id, name, kind, region
//! <seed.dir>/tokens.toml         [[token]] name, token | token_sha256, role, scope
//! <seed.dir>/plans/*.toml        one plan per file: kinds, levels, [[requirement]]
//! <seed.dir>/templates/*.toml    one locale per file (zh-CN.toml, en.toml)
//! <seed.dir>/volunteers.csv      the seed registry
//! ```
//!
//! Loading collects every problem with its file and line instead of stopping at the first, so
//! `muster check` can list them all and `muster serve` refuses to start on a broken seed.

mod files;
mod plans;
mod volunteers;

pub use volunteers::{SeedVolunteer, check_webhook};

use crate::domain::access::{Role, Team};
use crate::domain::plan::Plan;
use crate::domain::region::{RegionCode, RegionTree};
use crate::domain::roster::{LayerSpec, RosterDoc, ShiftLength};
use crate::domain::template::Templates;
use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong with the seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file.display(), l, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// A configured bearer token.
#[derive(Debug, Clone)]
pub struct TokenDef {
    /// Who holds it (shown in the audit trail as `raised_by`).
    pub name: String,
    /// The token in plain text (demo only).
    pub token: Option<String>,
    /// Hex SHA-256 of the token (production).
    pub token_sha256: Option<String>,
    /// Its role.
    pub role: Role,
    /// The region it acts on (and everything below).
    pub scope: RegionCode,
}

/// Everything loaded from the seed directory.
#[derive(Debug, Clone, Default)]
pub struct Seed {
    /// The region tree.
    pub regions: RegionTree,
    /// Team kinds known (built-in plus custom).
    pub team_kinds: Vec<String>,
    /// All teams.
    pub teams: Vec<Team>,
    /// All plans.
    pub plans: Vec<Plan>,
    /// Message templates.
    pub templates: Templates,
    /// Bearer tokens.
    pub tokens: Vec<TokenDef>,
    /// The seed registry.
    pub volunteers: Vec<SeedVolunteer>,
    /// The rotation given to seed teams that have no roster yet.
    pub default_roster: Option<DefaultRoster>,
}

/// `[default_roster]` of `teams.toml`: one daily (or other) rotation through a team's members
/// in id order, a share of them on call at a time. Written once per team; coordinators change
/// rosters through the API afterwards.
#[derive(Debug, Clone)]
pub struct DefaultRoster {
    /// Shift length.
    pub shift: ShiftLength,
    /// First hand-off (wall clock).
    pub start: jiff::civil::DateTime,
    /// IANA time zone.
    pub time_zone: String,
    /// Share of the members on call at once (0 < share ≤ 1), at least one.
    pub on_call_share: f64,
}

impl DefaultRoster {
    /// Checks the parts.
    pub fn new(
        shift: &str,
        start: &str,
        time_zone: &str,
        share: f64,
    ) -> Result<DefaultRoster, String> {
        let shift = ShiftLength::parse(shift)?;
        let start = start.parse().map_err(|_| {
            format!("start `{start}` is not a local date-time like 2026-01-01T08:00")
        })?;
        jiff::tz::TimeZone::get(time_zone)
            .map_err(|_| format!("`{time_zone}` is not an IANA time zone"))?;
        if !(share > 0.0 && share <= 1.0) {
            return Err(format!(
                "on_call_share {share} must be above 0 and at most 1"
            ));
        }
        Ok(DefaultRoster {
            shift,
            start,
            time_zone: time_zone.to_string(),
            on_call_share: share,
        })
    }

    /// The roster for a team with these members (none for a team without members).
    pub fn for_members(&self, members: &[String]) -> Option<RosterDoc> {
        if members.is_empty() {
            return None;
        }
        let on_call =
            ((members.len() as f64 * self.on_call_share).ceil() as usize).clamp(1, members.len());
        Some(RosterDoc {
            layers: vec![LayerSpec {
                id: "duty".into(),
                name: "值班 duty".into(),
                members: members.to_vec(),
                on_call,
                shift: self.shift,
                start: self.start,
                time_zone: self.time_zone.clone(),
            }],
            overrides: vec![],
        })
    }
}

impl Seed {
    /// Loads `dir`; `Err` lists every problem found.
    pub fn load(dir: &Path) -> Result<Seed, Vec<Problem>> {
        let mut problems = Vec::new();
        if !dir.is_dir() {
            problems.push(Problem {
                file: dir.to_path_buf(),
                line: None,
                message: "seed directory does not exist".into(),
            });
            return Err(problems);
        }
        let seed = files::load_all(dir, &mut problems);
        if problems.is_empty() {
            Ok(seed)
        } else {
            Err(problems)
        }
    }

    /// The team with this id.
    pub fn team(&self, id: &str) -> Option<&Team> {
        self.teams.iter().find(|t| t.id == id)
    }
}

/// 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
