//! Reading the contingency plans (`plans/*.toml`): each checked whole — kinds, levels, region,
//! requirements and the escalation ladder — every problem reported with its file and line.

use super::Problem;
use super::files::{FileCtx, S, parse, read, toml_files};
use crate::domain::incident::Level;
use crate::domain::ladder::{Pool, Step, default_ladder, parse_wait};
use crate::domain::plan::{Plan, Requirement};
use crate::domain::region::{RegionTree, Tier};
use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    id: Option<String>,
    name: String,
    kinds: S<Vec<String>>,
    levels: S<Vec<i64>>,
    region: Option<S<String>>,
    requirement: Vec<S<RawRequirement>>,
    #[serde(default)]
    step: Vec<S<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    scope: String,
    pool: String,
    wait: String,
    #[serde(default)]
    renotify: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    id: S<String>,
    team_kind: S<String>,
    qualification: Option<String>,
    needed: S<i64>,
}

pub(super) fn load_plans(
    dir: &Path,
    regions: &RegionTree,
    kinds: &[String],
    problems: &mut Vec<Problem>,
) -> Vec<Plan> {
    let mut plans: Vec<(PathBuf, Plan)> = Vec::new();
    for path in toml_files(dir, problems) {
        let Some(mut ctx) = read(&path, problems) else {
            continue;
        };
        let Some(raw) = parse::<RawPlan>(&mut ctx) else {
            continue;
        };
        if let Some(plan) = check_plan(&mut ctx, &path, raw, regions, kinds) {
            plans.push((path, plan));
        }
    }
    // Two plans equally specific for the same kind, level and region would make the choice
    // arbitrary: report the pair.
    for (i, (pa, a)) in plans.iter().enumerate() {
        for (pb, b) in &plans[i + 1..] {
            let overlap_kind = a.kinds.iter().any(|k| b.kinds.contains(k));
            let overlap_level = a.levels.iter().any(|l| b.levels.contains(l));
            if overlap_kind
                && overlap_level
                && a.region == b.region
                && a.specificity(regions) == b.specificity(regions)
            {
                problems.push(Problem {
                    file: pb.clone(),
                    line: None,
                    message: format!(
                        "plan `{}` overlaps plan `{}` ({}) and is exactly as specific: \
                         narrow the kinds, levels or region of one of them",
                        b.id,
                        a.id,
                        pa.display()
                    ),
                });
            }
        }
        if a.id.is_empty() {
            continue;
        }
    }
    let mut ids = HashSet::new();
    for (p, plan) in &plans {
        if !ids.insert(plan.id.clone()) {
            problems.push(Problem {
                file: p.clone(),
                line: None,
                message: format!("plan id `{}` is used by another file", plan.id),
            });
        }
    }
    plans.into_iter().map(|(_, p)| p).collect()
}

fn check_plan(
    ctx: &mut FileCtx<'_>,
    path: &Path,
    raw: RawPlan,
    regions: &RegionTree,
    kinds: &[String],
) -> Option<Plan> {
    let before = ctx.problems.len();
    let id = raw.id.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    if raw.kinds.get_ref().is_empty() {
        ctx.at(
            raw.kinds.span().start,
            "kinds must name at least one incident kind",
        );
    }
    let mut levels = Vec::new();
    for l in raw.levels.get_ref() {
        match Level::new(*l) {
            Ok(l) => levels.push(l),
            Err(e) => ctx.at(raw.levels.span().start, e),
        }
    }
    if levels.is_empty() {
        ctx.at(
            raw.levels.span().start,
            "levels must name at least one level 1–4",
        );
    }
    let region = match &raw.region {
        Some(r) => match regions.lookup(r.get_ref()) {
            Some(reg) => Some(reg.code.clone()),
            None => {
                ctx.at(r.span().start, format!("unknown region `{}`", r.get_ref()));
                None
            }
        },
        None => None,
    };
    if raw.requirement.is_empty() {
        ctx.line(None, "a plan needs at least one [[requirement]]");
    }
    let mut reqs = Vec::new();
    let mut seen = HashSet::new();
    for r in &raw.requirement {
        let q = r.get_ref();
        let rid = q.id.get_ref().clone();
        let id_ok = !rid.is_empty()
            && rid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !id_ok {
            ctx.at(
                q.id.span().start,
                "requirement id must be letters, digits, _ or -",
            );
        } else if !seen.insert(rid.clone()) {
            ctx.at(
                q.id.span().start,
                format!("requirement id `{rid}` is used twice"),
            );
        }
        if !kinds.contains(q.team_kind.get_ref()) {
            ctx.at(
                q.team_kind.span().start,
                format!("unknown team kind `{}`", q.team_kind.get_ref()),
            );
        }
        let needed = *q.needed.get_ref();
        if !(1..=100_000).contains(&needed) {
            ctx.at(q.needed.span().start, "needed must be between 1 and 100000");
        }
        reqs.push(Requirement {
            id: rid,
            team_kind: q.team_kind.get_ref().clone(),
            qualification: q.qualification.clone(),
            needed: needed.clamp(1, 100_000) as u32,
        });
    }
    let mut ladder = Vec::new();
    for st in &raw.step {
        let at = st.span().start;
        let s = st.get_ref();
        let scope = Tier::parse(&s.scope);
        let pool = match s.pool.as_str() {
            "on_call" => Some(Pool::OnCall),
            "all" => Some(Pool::All),
            _ => None,
        };
        match (scope, pool, parse_wait(&s.wait)) {
            (Some(scope), Some(pool), Ok(wait_ms)) => ladder.push(Step {
                scope,
                pool,
                wait_ms,
                renotify: s.renotify,
            }),
            (None, _, _) => ctx.at(
                at,
                format!("step scope `{}` is not township, county or city", s.scope),
            ),
            (_, None, _) => ctx.at(at, format!("step pool `{}` is not on_call or all", s.pool)),
            (_, _, Err(e)) => ctx.at(at, format!("step wait: {e}")),
        }
    }
    if ladder.windows(2).any(|w| w[1].scope < w[0].scope) {
        ctx.line(
            None,
            "a ladder's steps must never narrow (township, then county, then city)",
        );
    }
    if ladder.is_empty() {
        ladder = default_ladder();
    }
    if ctx.problems.len() > before {
        return None;
    }
    Some(Plan {
        id,
        name: raw.name,
        kinds: raw.kinds.into_inner(),
        levels,
        region,
        requirements: reqs,
        ladder,
    })
}
