//! The administrative tree: city (市) → county (县/区) → township (乡/镇/街道).
//!
//! Codes follow GB/T 2260: six digits for a city or county, nine for a township. The tree is
//! loaded once from the seed directory and is read-only afterwards, so it lives in memory and
//! every instance holds the same copy.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// One of the three tiers of the command mechanism.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// 乡/镇/街道 — nearest the incident.
    Township,
    /// 县/区.
    County,
    /// 市 — the top of the tree.
    City,
}

impl Tier {
    /// The wire name (`township`, `county`, `city`).
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Township => "township",
            Tier::County => "county",
            Tier::City => "city",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Tier> {
        match s {
            "township" => Some(Tier::Township),
            "county" => Some(Tier::County),
            "city" => Some(Tier::City),
            _ => None,
        }
    }

    /// The number of digits a code of this tier has.
    pub fn code_len(self) -> usize {
        match self {
            Tier::Township => 9,
            Tier::County | Tier::City => 6,
        }
    }
}

/// A GB/T 2260 region code: 6 or 9 ASCII digits. Parse, don't validate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RegionCode(String);

impl RegionCode {
    /// Accepts exactly 6 or 9 ASCII digits.
    pub fn parse(s: &str) -> Result<RegionCode, String> {
        let ok = (s.len() == 6 || s.len() == 9) && s.bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(RegionCode(s.to_string()))
        } else {
            Err(format!(
                "`{s}` is not a region code (6 digits for a city or county, 9 for a township)"
            ))
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One node of the tree.
#[derive(Debug, Clone, Serialize)]
pub struct Region {
    /// Its code.
    pub code: RegionCode,
    /// Its display name (示范市, …).
    pub name: String,
    /// Its tier.
    pub tier: Tier,
    /// The region above it; `None` only for a city.
    pub parent: Option<RegionCode>,
    /// Where its command centre is alerted (a signed webhook) when an incident in or below
    /// it runs short.
    pub alert_webhook: Option<String>,
}

/// The whole tree, indexed by code.
#[derive(Debug, Clone, Default)]
pub struct RegionTree {
    by_code: HashMap<RegionCode, Region>,
}

impl RegionTree {
    /// Builds the tree; the caller (the seed loader) has already checked parents and tiers.
    pub fn new(regions: Vec<Region>) -> RegionTree {
        RegionTree {
            by_code: regions.into_iter().map(|r| (r.code.clone(), r)).collect(),
        }
    }

    /// Every region, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Region> {
        self.by_code.values()
    }

    /// The region with this code.
    pub fn get(&self, code: &RegionCode) -> Option<&Region> {
        self.by_code.get(code)
    }

    /// Looks a code up from client text.
    pub fn lookup(&self, code: &str) -> Option<&Region> {
        RegionCode::parse(code)
            .ok()
            .and_then(|c| self.by_code.get(&c))
    }

    /// The region and its ancestors, nearest first: township → county → city.
    pub fn chain(&self, code: &RegionCode) -> Vec<&Region> {
        let mut out = Vec::new();
        let mut cur = self.by_code.get(code);
        while let Some(r) = cur {
            out.push(r);
            cur = r.parent.as_ref().and_then(|p| self.by_code.get(p));
            if out.len() > 8 {
                break; // a cycle would be a seed bug; `muster check` reports it
            }
        }
        out
    }

    /// `code` and every region below it, in code order.
    pub fn subtree(&self, code: &RegionCode) -> Vec<&Region> {
        let mut out: Vec<&Region> = self
            .by_code
            .values()
            .filter(|r| self.contains(code, &r.code))
            .collect();
        out.sort_by(|a, b| a.code.cmp(&b.code));
        out
    }

    /// The name of the region with this code, or the code itself when there is none (a
    /// record kept after the seed changed).
    pub fn name_of(&self, code: &str) -> String {
        self.lookup(code)
            .map_or_else(|| code.to_string(), |r| r.name.clone())
    }

    /// The region with this name (first in code order when names repeat).
    pub fn find_by_name(&self, name: &str) -> Option<&Region> {
        self.by_code
            .values()
            .filter(|r| r.name == name)
            .min_by(|a, b| a.code.cmp(&b.code))
    }

    /// Whether `inner` is `outer` or lies below it.
    pub fn contains(&self, outer: &RegionCode, inner: &RegionCode) -> bool {
        self.chain(inner).iter().any(|r| &r.code == outer)
    }

    /// Number of regions.
    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> RegionTree {
        let r = |c: &str, t, p: Option<&str>| Region {
            code: RegionCode::parse(c).unwrap(),
            name: c.into(),
            tier: t,
            parent: p.map(|p| RegionCode::parse(p).unwrap()),
            alert_webhook: None,
        };
        RegionTree::new(vec![
            r("990100", Tier::City, None),
            r("990101", Tier::County, Some("990100")),
            r("990101001", Tier::Township, Some("990101")),
            r("990102", Tier::County, Some("990100")),
        ])
    }

    #[test]
    fn codes_are_six_or_nine_digits() {
        assert!(RegionCode::parse("990100").is_ok());
        assert!(RegionCode::parse("990101001").is_ok());
        assert!(RegionCode::parse("99010").is_err());
        assert!(RegionCode::parse("99010a").is_err());
        assert!(RegionCode::parse("9901010011").is_err());
    }

    #[test]
    fn chain_walks_up_and_contains_follows_it() {
        let t = tree();
        let code = RegionCode::parse("990101001").unwrap();
        let chain: Vec<_> = t.chain(&code).iter().map(|r| r.code.to_string()).collect();
        assert_eq!(chain, ["990101001", "990101", "990100"]);
        assert!(t.contains(&RegionCode::parse("990101").unwrap(), &code));
        assert!(!t.contains(&RegionCode::parse("990102").unwrap(), &code));
    }
}
