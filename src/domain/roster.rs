//! On-call rosters (应急值守): rotation layers, overrides, and who is on call at an instant.
//!
//! A team's roster has rotation *layers*. A layer hands off every `shift` (`12h`, `1d`, `1w`…)
//! starting at `start` (a wall-clock time in the layer's `time_zone`); each shift puts the next
//! `on_call` members, in order, on call, wrapping around the member list. Shifts measured in
//! days or weeks hand off at the same wall-clock time every day, so a daily 08:00 hand-off stays
//! at 08:00 across a DST change (that day is 23 or 25 hours long); shifts measured in hours are
//! elapsed time. Either way, every instant falls in exactly one shift of a layer: hand-offs are
//! neither lost nor doubled.
//!
//! *Overrides* win over layers for their time range: one with `replaces` swaps that member out
//! for `volunteer` while the member would be on call; one without adds `volunteer` as cover.
//! The members on call are the union of every layer's, after overrides.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp, civil};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The default time zone of a layer.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Shanghai";

mod shift;
pub use shift::ShiftLength;

/// A rotation layer as written by coordinators and stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// Stable id within the roster.
    #[schema(min_length = 1)]
    pub id: String,
    /// Display name ("白班", "night").
    #[serde(default)]
    pub name: String,
    /// Volunteer ids in rotation order (members of the team).
    #[schema(min_items = 1)]
    pub members: Vec<String>,
    /// How many members are on call at once (1 ≤ on_call ≤ members).
    #[schema(minimum = 1)]
    pub on_call: usize,
    /// Shift length: `8h`, `12h`, `1d`, `1w` (1h–672h, 1d–28d, 1w–4w).
    #[schema(value_type = String, pattern = "^[0-9]+[hdw]$", example = "12h")]
    pub shift: ShiftLength,
    /// The first hand-off, wall clock in `time_zone`; the rotation extends both ways from it.
    #[schema(value_type = String, example = "2026-11-01T08:00:00")]
    pub start: civil::DateTime,
    /// IANA time zone.
    #[schema(example = "Asia/Shanghai")]
    pub time_zone: String,
}

/// An override: `volunteer` is on call from `start` to `end`, instead of `replaces` if given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// Stable id.
    pub id: String,
    /// Start (inclusive).
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    /// End (exclusive).
    #[schema(value_type = String, format = DateTime)]
    pub end: Timestamp,
    /// Who is on call.
    pub volunteer: String,
    /// Whom they swap out, if anyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// Why (free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A roster as stored: layers and overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RosterDoc {
    /// Rotation layers.
    #[serde(default)]
    pub layers: Vec<LayerSpec>,
    /// Overrides.
    #[serde(default)]
    pub overrides: Vec<Override>,
}

impl RosterDoc {
    /// This roster without volunteer `vid` (who left the team or was erased): out of every
    /// layer (a layer left empty goes, `on_call` is capped at who remains) and every override
    /// naming them. `None` when no entry names them.
    pub fn without(&self, vid: &str) -> Option<RosterDoc> {
        let mut doc = self.clone();
        for l in &mut doc.layers {
            l.members.retain(|m| m != vid);
            l.on_call = l.on_call.min(l.members.len());
        }
        doc.layers.retain(|l| !l.members.is_empty());
        doc.overrides
            .retain(|o| o.volunteer != vid && o.replaces.as_deref() != Some(vid));
        (doc != *self).then_some(doc)
    }
}

/// A layer ready to answer questions (its time zone resolved).
#[derive(Debug, Clone)]
pub struct Layer {
    /// What was written.
    pub spec: LayerSpec,
    tz: TimeZone,
    start: Timestamp,
}

/// One problem with a roster: the field path and what is wrong.
pub type RosterProblem = (String, String);

impl Layer {
    /// Resolves a layer; problems are reported with field paths under `at`.
    pub fn new(spec: LayerSpec, at: &str) -> Result<Layer, Vec<RosterProblem>> {
        let mut problems = Vec::new();
        if spec.id.trim().is_empty() {
            problems.push((format!("{at}.id"), "must not be empty".into()));
        }
        if spec.members.is_empty() {
            problems.push((
                format!("{at}.members"),
                "must name at least one volunteer".into(),
            ));
        }
        let distinct: BTreeSet<_> = spec.members.iter().collect();
        if distinct.len() != spec.members.len() {
            problems.push((format!("{at}.members"), "names a volunteer twice".into()));
        }
        if spec.on_call == 0 || spec.on_call > spec.members.len().max(1) {
            problems.push((
                format!("{at}.on_call"),
                format!(
                    "must be between 1 and the number of members ({})",
                    spec.members.len()
                ),
            ));
        }
        let tz = match TimeZone::get(&spec.time_zone) {
            Ok(tz) => Some(tz),
            Err(_) => {
                problems.push((
                    format!("{at}.time_zone"),
                    format!("`{}` is not an IANA time zone", spec.time_zone),
                ));
                None
            }
        };
        let (Some(tz), true) = (tz, problems.is_empty()) else {
            return Err(problems);
        };
        let start = tz
            .to_ambiguous_timestamp(spec.start)
            .compatible()
            .map_err(|e| vec![(format!("{at}.start"), e.to_string())])?;
        Ok(Layer { spec, tz, start })
    }

    /// The instant shift `k` begins (shift 0 begins at `start`).
    pub fn boundary(&self, k: i64) -> Timestamp {
        match self.spec.shift {
            ShiftLength::Hours(h) => self
                .start
                .checked_add(SignedDuration::from_hours(k.saturating_mul(h)))
                .unwrap_or(self.start),
            ShiftLength::Days(d) => self
                .spec
                .start
                .checked_add(Span::new().days(k.saturating_mul(d)))
                .ok()
                .and_then(|dt| self.tz.to_ambiguous_timestamp(dt).compatible().ok())
                .unwrap_or(self.start),
        }
    }

    /// The shift containing `t`: `boundary(k) <= t < boundary(k + 1)`.
    pub fn shift_index(&self, t: Timestamp) -> i64 {
        let nominal = self.spec.shift.nominal_seconds();
        let mut k = (t.as_second() - self.start.as_second()).div_euclid(nominal);
        // The nominal guess is off by at most one around a DST change.
        for _ in 0..4 {
            if self.boundary(k) > t {
                k -= 1;
            } else if self.boundary(k + 1) <= t {
                k += 1;
            } else {
                break;
            }
        }
        k
    }

    /// The members on call during shift `k`.
    pub fn members_of_shift(&self, k: i64) -> impl Iterator<Item = &str> {
        let l = self.spec.members.len() as i64;
        let c = self.spec.on_call.min(self.spec.members.len()) as i64;
        (0..c).map(move |i| {
            let idx = (k.saturating_mul(c) + i).rem_euclid(l.max(1)) as usize;
            self.spec.members[idx].as_str()
        })
    }

    /// The time zone.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }
}

/// Why someone is on call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Source {
    /// Their turn in a rotation layer.
    Layer {
        /// Layer id.
        layer: String,
        /// When this shift began.
        #[schema(value_type = String, format = DateTime)]
        shift_start: Timestamp,
        /// When it ends.
        #[schema(value_type = String, format = DateTime)]
        shift_end: Timestamp,
    },
    /// An override.
    Override {
        /// Override id.
        #[serde(rename = "override")]
        id: String,
        /// Whom they cover for.
        #[serde(skip_serializing_if = "Option::is_none")]
        replaces: Option<String>,
        /// Override start.
        #[schema(value_type = String, format = DateTime)]
        start: Timestamp,
        /// Override end.
        #[schema(value_type = String, format = DateTime)]
        end: Timestamp,
    },
    /// The team has no roster: every member counts as on call.
    NoRoster,
}

/// One member on call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OnCall {
    /// Volunteer id.
    pub volunteer: String,
    /// Why.
    #[serde(flatten)]
    pub source: Source,
}

/// A span of time someone is on call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shift {
    /// Volunteer id.
    pub volunteer: String,
    /// Start (inclusive).
    pub start: Timestamp,
    /// End (exclusive).
    pub end: Timestamp,
    /// The layer or override.
    pub via: String,
}

/// A roster ready to answer "who is on call".
#[derive(Debug, Clone, Default)]
pub struct Roster {
    /// Resolved layers.
    pub layers: Vec<Layer>,
    /// Overrides, by start.
    pub overrides: Vec<Override>,
}

impl Roster {
    /// Resolves and checks a stored roster.
    pub fn new(doc: RosterDoc) -> Result<Roster, Vec<RosterProblem>> {
        let mut problems = Vec::new();
        let mut layers = Vec::new();
        let mut ids = BTreeSet::new();
        for (i, spec) in doc.layers.into_iter().enumerate() {
            if !ids.insert(spec.id.clone()) {
                problems.push((
                    format!("layers[{i}].id"),
                    format!("`{}` is used twice", spec.id),
                ));
            }
            match Layer::new(spec, &format!("layers[{i}]")) {
                Ok(l) => layers.push(l),
                Err(p) => problems.extend(p),
            }
        }
        for (i, o) in doc.overrides.iter().enumerate() {
            if o.end <= o.start {
                problems.push((format!("overrides[{i}].end"), "must be after start".into()));
            }
            if o.replaces.as_deref() == Some(o.volunteer.as_str()) {
                problems.push((
                    format!("overrides[{i}].replaces"),
                    "cannot replace a volunteer with themselves".into(),
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut overrides = doc.overrides;
        overrides.sort_by_key(|o| (o.start, o.end));
        Ok(Roster { layers, overrides })
    }

    /// The stored form.
    pub fn doc(&self) -> RosterDoc {
        RosterDoc {
            layers: self.layers.iter().map(|l| l.spec.clone()).collect(),
            overrides: self.overrides.clone(),
        }
    }

    /// Every volunteer the roster names.
    pub fn members(&self) -> BTreeSet<&str> {
        let mut out: BTreeSet<&str> = self
            .layers
            .iter()
            .flat_map(|l| l.spec.members.iter().map(String::as_str))
            .collect();
        out.extend(self.overrides.iter().map(|o| o.volunteer.as_str()));
        out
    }

    /// Who is on call at `t`, each once, layers in order, then cover from overrides.
    pub fn on_call_at(&self, t: Timestamp) -> Vec<OnCall> {
        let mut out: Vec<OnCall> = Vec::new();
        for l in &self.layers {
            let k = l.shift_index(t);
            for m in l.members_of_shift(k) {
                if out.iter().all(|o| o.volunteer != m) {
                    out.push(OnCall {
                        volunteer: m.to_string(),
                        source: Source::Layer {
                            layer: l.spec.id.clone(),
                            shift_start: l.boundary(k),
                            shift_end: l.boundary(k + 1),
                        },
                    });
                }
            }
        }
        for o in self.overrides.iter().filter(|o| o.start <= t && t < o.end) {
            let source = Source::Override {
                id: o.id.clone(),
                replaces: o.replaces.clone(),
                start: o.start,
                end: o.end,
            };
            match &o.replaces {
                Some(r) => {
                    if let Some(pos) = out.iter().position(|x| &x.volunteer == r) {
                        out.remove(pos);
                        out.retain(|x| x.volunteer != o.volunteer);
                        out.insert(
                            pos,
                            OnCall {
                                volunteer: o.volunteer.clone(),
                                source,
                            },
                        );
                    }
                }
                None => {
                    out.retain(|x| x.volunteer != o.volunteer);
                    out.push(OnCall {
                        volunteer: o.volunteer.clone(),
                        source,
                    });
                }
            }
        }
        out
    }

    /// Every on-call span between `from` and `to`, per volunteer, merged where one runs into
    /// the next through the same layer or override. At most `limit` boundaries are looked at.
    pub fn shifts(&self, from: Timestamp, to: Timestamp, limit: usize) -> Vec<Shift> {
        let mut cuts: BTreeSet<Timestamp> = BTreeSet::new();
        cuts.insert(from);
        cuts.insert(to);
        for l in &self.layers {
            let mut k = l.shift_index(from) + 1;
            while cuts.len() < limit {
                let b = l.boundary(k);
                if b >= to {
                    break;
                }
                cuts.insert(b);
                k += 1;
            }
        }
        for o in &self.overrides {
            for b in [o.start, o.end] {
                if from < b && b < to {
                    cuts.insert(b);
                }
            }
        }
        let cuts: Vec<Timestamp> = cuts.into_iter().collect();
        let mut open: Vec<Shift> = Vec::new();
        let mut done: Vec<Shift> = Vec::new();
        for w in cuts.windows(2) {
            let (a, b) = (w[0], w[1]);
            let now: Vec<(String, String)> = self
                .on_call_at(a)
                .into_iter()
                .map(|o| (o.volunteer, via(&o.source)))
                .collect();
            let (cont, ended): (Vec<Shift>, Vec<Shift>) = open.drain(..).partition(|s| {
                s.end == a && now.iter().any(|(v, w)| *v == s.volunteer && *w == s.via)
            });
            done.extend(ended);
            open = cont;
            for (v, w) in now {
                match open.iter_mut().find(|s| s.volunteer == v && s.via == w) {
                    Some(s) => s.end = b,
                    None => open.push(Shift {
                        volunteer: v,
                        start: a,
                        end: b,
                        via: w,
                    }),
                }
            }
        }
        done.extend(open);
        done.sort_by(|x, y| (x.start, &x.volunteer).cmp(&(y.start, &y.volunteer)));
        done
    }
}

/// The short form of a source: `layer:ID`, `override:ID` or `no_roster`.
pub fn via(s: &Source) -> String {
    match s {
        Source::Layer { layer, .. } => format!("layer:{layer}"),
        Source::Override { id, .. } => format!("override:{id}"),
        Source::NoRoster => "no_roster".into(),
    }
}

#[cfg(test)]
mod tests;
