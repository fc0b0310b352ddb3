//! Escalation ladders: how a call widens from the township to the county and the city.
//!
//! A ladder is an ordered list of steps. Each step names a `scope` relative to the incident's
//! region (`township`, `county`, `city`), a `pool` (`on_call` members, or `all` qualified
//! members) and how long to `wait` for the headcount before the next step starts. Every step
//! calls only volunteers not yet called, closest to the incident first. When the last step's
//! wait runs out with the headcount unmet, the requirement is `short`.

use super::region::{RegionCode, RegionTree, Tier};
use serde::{Deserialize, Serialize};

/// Who a step draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    /// Members on call now (the roster decides).
    OnCall,
    /// Every member, on call or not (eligibility still applies).
    All,
}

/// One step of a ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The administrative level whose teams are called, relative to the incident's region.
    pub scope: Tier,
    /// On-call members only, or all.
    pub pool: Pool,
    /// How long (ms) to wait for the headcount before the next step.
    pub wait_ms: i64,
    /// Whether to send the call-out again to those who have not answered.
    #[serde(default)]
    pub renotify: bool,
}

/// The default ladder: township on-call → county on-call → county all → city all, five
/// minutes each (the city step waits ten before the requirement is declared short).
pub fn default_ladder() -> Vec<Step> {
    let step = |scope, pool, min: i64| Step {
        scope,
        pool,
        wait_ms: min * 60_000,
        renotify: false,
    };
    vec![
        step(Tier::Township, Pool::OnCall, 5),
        step(Tier::County, Pool::OnCall, 5),
        step(Tier::County, Pool::All, 5),
        step(Tier::City, Pool::All, 10),
    ]
}

/// Parses `30s`, `5m`, `1h` into milliseconds (1 s to 24 h).
pub fn parse_wait(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let err = || format!("`{s}` is not a wait like 30s, 5m or 1h");
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num.parse().map_err(|_| err())?;
    let ms = match unit {
        "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        _ => return Err(err()),
    };
    if !(1000..=86_400_000).contains(&ms) {
        return Err(format!("`{s}` is out of range (1s to 24h)"));
    }
    Ok(ms)
}

/// The region a step's scope denotes for an incident raised in `region`: the region itself or
/// its ancestor of that tier; an incident raised above that tier uses its own region.
pub fn scope_region(tree: &RegionTree, region: &RegionCode, scope: Tier) -> RegionCode {
    tree.chain(region)
        .into_iter()
        .find(|r| r.tier >= scope)
        .map(|r| r.code.clone())
        .unwrap_or_else(|| region.clone())
}

/// How far a team's region is from the incident's: steps up and down the tree between them.
pub fn distance(tree: &RegionTree, incident: &RegionCode, team: &RegionCode) -> usize {
    let a: Vec<&RegionCode> = tree.chain(incident).into_iter().map(|r| &r.code).collect();
    let b: Vec<&RegionCode> = tree.chain(team).into_iter().map(|r| &r.code).collect();
    match a.iter().position(|x| b.contains(x)) {
        Some(i) => {
            let j = b.iter().position(|y| y == &a[i]).unwrap_or(0);
            i + j
        }
        None => a.len() + b.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::region::Region;

    fn tree() -> RegionTree {
        let r = |code: &str, tier, parent: Option<&str>| Region {
            code: RegionCode::parse(code).unwrap(),
            name: code.into(),
            tier,
            parent: parent.map(|p| RegionCode::parse(p).unwrap()),
            alert_webhook: None,
        };
        RegionTree::new(vec![
            r("990100", Tier::City, None),
            r("990101", Tier::County, Some("990100")),
            r("990102", Tier::County, Some("990100")),
            r("990101001", Tier::Township, Some("990101")),
            r("990101002", Tier::Township, Some("990101")),
            r("990102001", Tier::Township, Some("990102")),
        ])
    }

    #[test]
    fn scopes_and_distances_follow_the_tree() {
        let t = tree();
        let town = RegionCode::parse("990101001").unwrap();
        let code = |s: &str| RegionCode::parse(s).unwrap();
        assert_eq!(scope_region(&t, &town, Tier::Township), town);
        assert_eq!(scope_region(&t, &town, Tier::County), code("990101"));
        assert_eq!(scope_region(&t, &town, Tier::City), code("990100"));
        // Raised at county level, the township scope is the county itself.
        assert_eq!(
            scope_region(&t, &code("990101"), Tier::Township),
            code("990101")
        );
        assert_eq!(distance(&t, &town, &town), 0);
        assert_eq!(distance(&t, &town, &code("990101")), 1);
        assert_eq!(distance(&t, &town, &code("990101002")), 2);
        assert_eq!(distance(&t, &town, &code("990100")), 2);
        assert_eq!(distance(&t, &town, &code("990102001")), 4);
    }

    #[test]
    fn waits_parse() {
        assert_eq!(parse_wait("5m"), Ok(300_000));
        assert_eq!(parse_wait("30s"), Ok(30_000));
        assert!(parse_wait("0s").is_err());
        assert!(parse_wait("2d").is_err());
    }
}
