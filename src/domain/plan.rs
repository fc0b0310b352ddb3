//! Contingency plans (应急志愿服务预案): which incidents a plan covers and what it requires.

use super::incident::Level;
use super::region::{RegionCode, RegionTree};
use serde::{Deserialize, Serialize};

/// "N volunteers of team kind K (and qualification Q)".
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Requirement {
    /// Stable within the plan (`rescue`, `first_aid_medics`, …).
    pub id: String,
    /// The kind of team that supplies it.
    pub team_kind: String,
    /// A qualification every volunteer must hold (training before deployment), if any.
    pub qualification: Option<String>,
    /// The headcount.
    pub needed: u32,
}

/// One plan file.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The plan's id (its file stem unless the file says otherwise).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Incident kinds it covers.
    pub kinds: Vec<String>,
    /// Levels it covers.
    pub levels: Vec<Level>,
    /// Restricts the plan to incidents inside this region, if set.
    pub region: Option<RegionCode>,
    /// What it calls out for.
    pub requirements: Vec<Requirement>,
    /// How the call widens when a requirement is not filled in time.
    pub ladder: Vec<super::ladder::Step>,
}

impl Plan {
    /// Whether the plan covers an incident of this kind and level raised in `region`.
    pub fn covers(&self, tree: &RegionTree, kind: &str, level: Level, region: &RegionCode) -> bool {
        self.kinds.iter().any(|k| k == kind)
            && self.levels.contains(&level)
            && self
                .region
                .as_ref()
                .is_none_or(|outer| tree.contains(outer, region))
    }

    /// Orders plans by specificity: a deeper region beats a wider one, then fewer kinds, then
    /// fewer levels. Smaller is more specific.
    pub fn specificity(&self, tree: &RegionTree) -> (usize, usize, usize) {
        let depth = self.region.as_ref().map_or(0, |r| tree.chain(r).len());
        (usize::MAX - depth, self.kinds.len(), self.levels.len())
    }
}

/// Picks the most specific plan covering the incident; `None` when none covers it.
/// `muster check` rejects seeds where two equally specific plans overlap, so the pick is unique.
pub fn choose<'a>(
    plans: &'a [Plan],
    tree: &RegionTree,
    kind: &str,
    level: Level,
    region: &RegionCode,
) -> Option<&'a Plan> {
    plans
        .iter()
        .filter(|p| p.covers(tree, kind, level, region))
        .min_by_key(|p| (p.specificity(tree), p.id.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::region::{Region, Tier};

    fn plan(id: &str, kinds: &[&str], levels: &[i64], region: Option<&str>) -> Plan {
        Plan {
            id: id.into(),
            name: id.into(),
            kinds: kinds.iter().map(|k| k.to_string()).collect(),
            levels: levels.iter().map(|l| Level::new(*l).unwrap()).collect(),
            region: region.map(|r| RegionCode::parse(r).unwrap()),
            requirements: vec![],
            ladder: crate::domain::ladder::default_ladder(),
        }
    }

    #[test]
    fn most_specific_plan_wins() {
        let tree = RegionTree::new(vec![
            Region {
                code: RegionCode::parse("990100").unwrap(),
                name: "c".into(),
                tier: Tier::City,
                parent: None,
                alert_webhook: None,
            },
            Region {
                code: RegionCode::parse("990101").unwrap(),
                name: "k".into(),
                tier: Tier::County,
                parent: Some(RegionCode::parse("990100").unwrap()),
                alert_webhook: None,
            },
        ]);
        let plans = vec![
            plan("generic", &["flood", "fire"], &[1, 2, 3, 4], None),
            plan("flood", &["flood"], &[1, 2, 3, 4], None),
            plan("flood-minor", &["flood"], &[3, 4], None),
            plan("flood-county", &["flood"], &[1, 2, 3, 4], Some("990101")),
        ];
        let here = RegionCode::parse("990101").unwrap();
        let city = RegionCode::parse("990100").unwrap();
        let l = |n| Level::new(n).unwrap();
        assert_eq!(
            choose(&plans, &tree, "flood", l(4), &here).unwrap().id,
            "flood-county"
        );
        assert_eq!(
            choose(&plans, &tree, "flood", l(4), &city).unwrap().id,
            "flood-minor"
        );
        assert_eq!(
            choose(&plans, &tree, "flood", l(1), &city).unwrap().id,
            "flood"
        );
        assert_eq!(
            choose(&plans, &tree, "fire", l(1), &city).unwrap().id,
            "generic"
        );
        assert!(choose(&plans, &tree, "hazmat", l(1), &city).is_none());
    }
}
