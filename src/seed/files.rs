//! Reading the TOML files of the seed directory, keeping spans for error lines.

use super::{DefaultRoster, Problem, Seed, TokenDef, line_of, volunteers};
use crate::domain::access::{Role, Team};
use crate::domain::incident::BUILTIN_TEAM_KINDS;
use crate::domain::region::{Region, RegionCode, RegionTree, Tier};
use crate::domain::template::{
    LocaleTemplates, MESSAGE_KINDS, OPTIONAL_MESSAGE_KINDS, PLACEHOLDERS, SMS_KINDS, Templates,
    placeholders,
};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Collects problems of one file.
pub(super) struct FileCtx<'a> {
    pub file: PathBuf,
    pub text: String,
    pub problems: &'a mut Vec<Problem>,
}

impl FileCtx<'_> {
    pub fn at(&mut self, offset: usize, message: impl Into<String>) {
        let line = line_of(&self.text, offset);
        self.problems.push(Problem {
            file: self.file.clone(),
            line: Some(line),
            message: message.into(),
        });
    }

    pub fn line(&mut self, line: Option<usize>, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.clone(),
            line,
            message: message.into(),
        });
    }
}

pub(super) fn read<'a>(path: &Path, problems: &'a mut Vec<Problem>) -> Option<FileCtx<'a>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(FileCtx {
            file: path.to_path_buf(),
            text,
            problems,
        }),
        Err(e) => {
            problems.push(Problem {
                file: path.to_path_buf(),
                line: None,
                message: format!("cannot read: {e}"),
            });
            None
        }
    }
}

pub(super) fn parse<T: for<'de> Deserialize<'de>>(ctx: &mut FileCtx<'_>) -> Option<T> {
    match toml::from_str::<T>(&ctx.text) {
        Ok(v) => Some(v),
        Err(e) => {
            let line = e.span().map(|s| line_of(&ctx.text, s.start));
            let msg = e.message().to_string();
            ctx.line(line, msg);
            None
        }
    }
}

pub(super) type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionsFile {
    region: Vec<S<RawRegion>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegion {
    code: S<String>,
    name: String,
    tier: S<String>,
    parent: Option<S<String>>,
    alert_webhook: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamsFile {
    #[serde(default)]
    custom_kinds: Vec<String>,
    default_roster: Option<S<RawDefaultRoster>>,
    team: Vec<S<RawTeam>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaultRoster {
    shift: String,
    start: String,
    time_zone: Option<String>,
    on_call_share: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeam {
    id: S<String>,
    name: String,
    kind: S<String>,
    region: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    token: Vec<S<RawToken>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    token: Option<String>,
    token_sha256: Option<String>,
    role: S<String>,
    scope: S<String>,
}

pub(super) fn load_all(dir: &Path, problems: &mut Vec<Problem>) -> Seed {
    let regions = load_regions(&dir.join("regions.toml"), problems);
    let (team_kinds, teams, default_roster) =
        load_teams(&dir.join("teams.toml"), &regions, problems);
    let tokens = load_tokens(&dir.join("tokens.toml"), &regions, problems);
    let plans = super::plans::load_plans(&dir.join("plans"), &regions, &team_kinds, problems);
    let templates = load_templates(&dir.join("templates"), problems);
    let team_ids: HashSet<&str> = teams.iter().map(|t| t.id.as_str()).collect();
    let volunteers = volunteers::load(&dir.join("volunteers.csv"), &regions, &team_ids, problems);
    Seed {
        regions,
        team_kinds,
        teams,
        plans,
        templates,
        tokens,
        volunteers,
        default_roster,
    }
}

fn load_regions(path: &Path, problems: &mut Vec<Problem>) -> RegionTree {
    let Some(mut ctx) = read(path, problems) else {
        return RegionTree::default();
    };
    let Some(file) = parse::<RegionsFile>(&mut ctx) else {
        return RegionTree::default();
    };
    let mut out: Vec<(usize, Region)> = Vec::new();
    let mut seen = HashSet::new();
    for raw in &file.region {
        let at = raw.span().start;
        let r = raw.get_ref();
        let code = match RegionCode::parse(r.code.get_ref()) {
            Ok(c) => c,
            Err(e) => {
                ctx.at(r.code.span().start, e);
                continue;
            }
        };
        let Some(tier) = Tier::parse(r.tier.get_ref()) else {
            ctx.at(r.tier.span().start, "tier must be city, county or township");
            continue;
        };
        if code.as_str().len() != tier.code_len() {
            ctx.at(
                r.code.span().start,
                format!("a {} code has {} digits", tier.as_str(), tier.code_len()),
            );
        }
        if !seen.insert(code.clone()) {
            ctx.at(at, format!("region {code} is defined twice"));
        }
        let parent = match &r.parent {
            Some(p) => match RegionCode::parse(p.get_ref()) {
                Ok(c) => Some(c),
                Err(e) => {
                    ctx.at(p.span().start, e);
                    None
                }
            },
            None => None,
        };
        out.push((
            at,
            Region {
                code,
                name: r.name.clone(),
                tier,
                parent,
                alert_webhook: match &r.alert_webhook {
                    Some(u) => match super::volunteers::check_webhook(u.get_ref()) {
                        Ok(()) => Some(u.get_ref().clone()),
                        Err(e) => {
                            ctx.at(u.span().start, format!("alert_webhook: {e}"));
                            None
                        }
                    },
                    None => None,
                },
            },
        ));
    }
    let tiers: HashMap<RegionCode, Tier> =
        out.iter().map(|(_, r)| (r.code.clone(), r.tier)).collect();
    for (at, r) in &out {
        let expected = match r.tier {
            Tier::City => None,
            Tier::County => Some(Tier::City),
            Tier::Township => Some(Tier::County),
        };
        match (&r.parent, expected) {
            (None, None) => {}
            (Some(_), None) => ctx.at(*at, format!("city {} cannot have a parent", r.code)),
            (None, Some(t)) => ctx.at(*at, format!("{} needs a parent {}", r.code, t.as_str())),
            (Some(p), Some(t)) => match tiers.get(p) {
                None => ctx.at(*at, format!("parent {p} of {} is not defined", r.code)),
                Some(pt) if *pt != t => ctx.at(
                    *at,
                    format!(
                        "parent {p} of {} is a {}, not a {}",
                        r.code,
                        pt.as_str(),
                        t.as_str()
                    ),
                ),
                _ => {}
            },
        }
    }
    RegionTree::new(out.into_iter().map(|(_, r)| r).collect())
}

fn load_teams(
    path: &Path,
    regions: &RegionTree,
    problems: &mut Vec<Problem>,
) -> (Vec<String>, Vec<Team>, Option<DefaultRoster>) {
    let mut kinds: Vec<String> = BUILTIN_TEAM_KINDS.iter().map(|s| s.to_string()).collect();
    let Some(mut ctx) = read(path, problems) else {
        return (kinds, vec![], None);
    };
    let Some(file) = parse::<TeamsFile>(&mut ctx) else {
        return (kinds, vec![], None);
    };
    let default_roster = file.default_roster.as_ref().and_then(|raw| {
        let at = raw.span().start;
        let r = raw.get_ref();
        let d = DefaultRoster::new(
            &r.shift,
            &r.start,
            r.time_zone
                .as_deref()
                .unwrap_or(crate::domain::roster::DEFAULT_TIME_ZONE),
            r.on_call_share,
        );
        d.map_err(|e| ctx.at(at, format!("default_roster: {e}")))
            .ok()
    });
    kinds.extend(file.custom_kinds.iter().cloned());
    let mut teams = Vec::new();
    let mut seen = HashSet::new();
    for raw in &file.team {
        let t = raw.get_ref();
        let id = t.id.get_ref().trim().to_string();
        if id.is_empty() || !seen.insert(id.clone()) {
            ctx.at(
                t.id.span().start,
                format!("team id `{id}` is empty or used twice"),
            );
            continue;
        }
        if !kinds.contains(t.kind.get_ref()) {
            ctx.at(
                t.kind.span().start,
                format!(
                    "unknown team kind `{}` (known: {}; add it to custom_kinds)",
                    t.kind.get_ref(),
                    kinds.join(", ")
                ),
            );
            continue;
        }
        let Some(region) = regions.lookup(t.region.get_ref()) else {
            ctx.at(
                t.region.span().start,
                format!("unknown region `{}`", t.region.get_ref()),
            );
            continue;
        };
        teams.push(Team {
            id,
            name: t.name.clone(),
            kind: t.kind.get_ref().clone(),
            region: region.code.clone(),
            status: crate::domain::volunteer::VolunteerStatus::Active,
        });
    }
    (kinds, teams, default_roster)
}

fn load_tokens(path: &Path, regions: &RegionTree, problems: &mut Vec<Problem>) -> Vec<TokenDef> {
    let Some(mut ctx) = read(path, problems) else {
        return vec![];
    };
    let Some(file) = parse::<TokensFile>(&mut ctx) else {
        return vec![];
    };
    let mut out = Vec::new();
    for raw in &file.token {
        let t = raw.get_ref();
        let Some(role) = Role::parse(t.role.get_ref()) else {
            ctx.at(
                t.role.span().start,
                "role must be viewer, commander, coordinator, trainer or admin",
            );
            continue;
        };
        let Some(scope) = regions.lookup(t.scope.get_ref()) else {
            ctx.at(
                t.scope.span().start,
                format!("unknown region `{}`", t.scope.get_ref()),
            );
            continue;
        };
        if t.token.is_none() == t.token_sha256.is_none() {
            ctx.at(
                raw.span().start,
                "give exactly one of `token` and `token_sha256`",
            );
            continue;
        }
        if let Some(h) = &t.token_sha256
            && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            ctx.at(raw.span().start, "token_sha256 must be 64 hex digits");
            continue;
        }
        out.push(TokenDef {
            name: t.name.clone(),
            token: t.token.clone(),
            token_sha256: t.token_sha256.as_ref().map(|h| h.to_ascii_lowercase()),
            role,
            scope: scope.code.clone(),
        });
    }
    out
}

pub(super) fn toml_files(dir: &Path, problems: &mut Vec<Problem>) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut v: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            v.sort();
            v
        }
        Err(e) => {
            problems.push(Problem {
                file: dir.to_path_buf(),
                line: None,
                message: format!("cannot read directory: {e}"),
            });
            vec![]
        }
    }
}

fn load_templates(dir: &Path, problems: &mut Vec<Problem>) -> Templates {
    let mut t = Templates::default();
    for path in toml_files(dir, problems) {
        let locale = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(mut ctx) = read(&path, problems) else {
            continue;
        };
        let Some(lt) = parse::<LocaleTemplates>(&mut ctx) else {
            continue;
        };
        for kind in lt.messages.keys() {
            if !MESSAGE_KINDS.contains(&kind.as_str())
                && !OPTIONAL_MESSAGE_KINDS.contains(&kind.as_str())
            {
                let line = ctx
                    .text
                    .find(&format!("\n{kind}"))
                    .map(|o| line_of(&ctx.text, o + 1));
                ctx.line(
                    line,
                    format!(
                        "unknown message `{kind}` (known: {}, {})",
                        MESSAGE_KINDS.join(", "),
                        OPTIONAL_MESSAGE_KINDS.join(", ")
                    ),
                );
            }
        }
        for kind in MESSAGE_KINDS.iter().chain(&OPTIONAL_MESSAGE_KINDS) {
            match lt.messages.get(*kind) {
                None if OPTIONAL_MESSAGE_KINDS.contains(kind) => {}
                None => ctx.line(None, format!("[messages] lacks `{kind}`")),
                Some(text) => {
                    for ph in placeholders(text) {
                        if !PLACEHOLDERS.contains(&ph.as_str()) {
                            let line = ctx
                                .text
                                .find(&format!("{{{ph}}}"))
                                .map(|o| line_of(&ctx.text, o));
                            ctx.line(
                                line,
                                format!(
                                    "unknown placeholder {{{ph}}} in `{kind}` (known: {})",
                                    PLACEHOLDERS.join(", ")
                                ),
                            );
                        }
                    }
                }
            }
        }
        for (kind, text) in &lt.sms {
            let line = ctx
                .text
                .find(&format!("\n{kind}"))
                .map(|o| line_of(&ctx.text, o + 1));
            if !SMS_KINDS.contains(&kind.as_str()) {
                ctx.line(
                    line,
                    format!(
                        "unknown SMS text `{kind}` (known: {})",
                        SMS_KINDS.join(", ")
                    ),
                );
            }
            for ph in placeholders(text) {
                if !PLACEHOLDERS.contains(&ph.as_str()) {
                    ctx.line(
                        line,
                        format!("unknown placeholder {{{ph}}} in [sms] `{kind}`"),
                    );
                }
            }
        }
        t.locales.insert(locale, lt);
    }
    if !t
        .locales
        .contains_key(crate::domain::template::DEFAULT_LOCALE)
    {
        problems.push(Problem {
            file: dir.to_path_buf(),
            line: None,
            message: "templates for the default locale zh-CN (zh-CN.toml) are missing".into(),
        });
    }
    t
}
