//! Who is called for a requirement: the seam that rosters, qualifications and the timed tier
//! ladder will extend.
//!
//! Today: every active volunteer of the teams of the requirement's kind in the nearest region
//! that has such teams, walking up from the incident's region (township → county → city).
//! Everyone else who was looked at gets a reason.

use super::Ctx;
use crate::domain::plan::Requirement;
use crate::domain::region::{RegionCode, Tier};
use crate::store::Result;
use std::collections::HashSet;

/// One volunteer to call.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Volunteer id.
    pub volunteer_id: String,
    /// The channel to try first: `webhook`, or `none` when the volunteer has no channel.
    pub channel: &'static str,
}

/// The outcome of selection for one requirement.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The tier of the region whose teams were used.
    pub tier: Tier,
    /// Who to call, in a stable order.
    pub candidates: Vec<Candidate>,
    /// Who was looked at and left out, with the reason.
    pub excluded: Vec<(String, String)>,
}

/// Selects candidates for `req` of an incident raised in `region`.
pub async fn select(ctx: &Ctx, region: &RegionCode, req: &Requirement) -> Result<Selection> {
    let tree = &ctx.seed.regions;
    for r in tree.chain(region) {
        let teams: Vec<_> = ctx
            .seed
            .teams
            .iter()
            .filter(|t| t.kind == req.team_kind && t.region == r.code)
            .collect();
        if teams.is_empty() {
            continue;
        }
        let mut seen = HashSet::new();
        let mut out = Selection {
            tier: r.tier,
            candidates: Vec::new(),
            excluded: Vec::new(),
        };
        for t in teams {
            for m in ctx.store.team_members(&t.id).await? {
                if !seen.insert(m.id.clone()) {
                    continue;
                }
                if m.status != "active" {
                    out.excluded.push((m.id, format!("status {}", m.status)));
                    continue;
                }
                let channel = if m.webhook.is_some() {
                    "webhook"
                } else {
                    "none"
                };
                out.candidates.push(Candidate {
                    volunteer_id: m.id,
                    channel,
                });
            }
        }
        return Ok(out);
    }
    Ok(Selection {
        tier: tree.get(region).map(|r| r.tier).unwrap_or(Tier::Township),
        candidates: vec![],
        excluded: vec![],
    })
}
