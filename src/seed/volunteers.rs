//! The seed registry: `volunteers.csv`.
//!
//! Columns: `id,name,phone,locale,webhook,teams,home_region,status,insurance_valid_until,
//! qualifications`. `teams` is `;`-separated team ids; `qualifications` is `;`-separated
//! `code:YYYY-MM-DD`. Bad rows are reported by line; good rows are kept.

use super::Problem;
use crate::domain::region::RegionTree;
use crate::domain::volunteer::{Phone, Volunteer, VolunteerStatus};
use jiff::civil::Date;
use std::collections::HashSet;
use std::path::Path;

/// One registered volunteer from the seed.
pub type SeedVolunteer = Volunteer;

/// Checks a webhook URL: absolute http(s).
pub fn check_webhook(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(format!("webhook `{url}` is not an absolute http(s) URL")),
    }
}

pub(super) fn load(
    path: &Path,
    regions: &RegionTree,
    teams: &HashSet<&str>,
    problems: &mut Vec<Problem>,
) -> Vec<SeedVolunteer> {
    let mut out = Vec::new();
    let mut report = |line: Option<usize>, message: String| {
        problems.push(Problem {
            file: path.to_path_buf(),
            line,
            message,
        })
    };
    let mut rdr = match csv::ReaderBuilder::new().flexible(false).from_path(path) {
        Ok(r) => r,
        Err(e) => {
            report(None, format!("cannot read: {e}"));
            return out;
        }
    };
    let mut ids = HashSet::new();
    let mut phones = HashSet::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize);
                report(line, format!("unreadable row: {e}"));
                continue;
            }
        };
        let line = rec.position().map(|p| p.line() as usize);
        let col = |i: usize| rec.get(i).unwrap_or("").trim();
        match parse_row(&col, regions, teams) {
            Ok(v) => {
                if !ids.insert(v.id.clone()) {
                    report(line, format!("volunteer id `{}` appears twice", v.id));
                } else if !phones.insert(v.phone.clone()) {
                    report(line, format!("phone {} appears twice", v.phone.masked()));
                } else {
                    out.push(v);
                }
            }
            Err(e) => report(line, e),
        }
    }
    out
}

fn parse_row<'r>(
    col: &dyn Fn(usize) -> &'r str,
    regions: &RegionTree,
    teams: &HashSet<&str>,
) -> Result<SeedVolunteer, String> {
    let id = col(0);
    if id.is_empty() {
        return Err("id is empty".into());
    }
    crate::domain::volunteer::check_volunteer_id(id)?;
    let name = col(1);
    if name.is_empty() {
        return Err("name is empty".into());
    }
    let phone = Phone::parse(col(2))?;
    let locale = if col(3).is_empty() { "zh-CN" } else { col(3) };
    let webhook = match col(4) {
        "" => None,
        u => {
            check_webhook(u)?;
            Some(u.to_string())
        }
    };
    let team_ids: Vec<String> = col(5)
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    for t in &team_ids {
        if !teams.contains(t.as_str()) {
            return Err(format!("unknown team `{t}`"));
        }
    }
    let home_region = match col(6) {
        "" => None,
        c => Some(
            regions
                .lookup(c)
                .ok_or_else(|| format!("unknown home_region `{c}`"))?
                .code
                .clone(),
        ),
    };
    let status = match col(7) {
        "" => VolunteerStatus::Active,
        s => VolunteerStatus::parse(s)
            .ok_or_else(|| format!("status `{s}` is not active, suspended or retired"))?,
    };
    let date = |s: &str, what: &str| -> Result<Date, String> {
        s.parse::<Date>()
            .map_err(|_| format!("{what} `{s}` is not a date (YYYY-MM-DD)"))
    };
    let insurance_valid_until = match col(8) {
        "" => None,
        s => Some(date(s, "insurance_valid_until")?),
    };
    let mut qualifications = Vec::new();
    for q in col(9).split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (code, until) = q
            .split_once(':')
            .ok_or_else(|| format!("qualification `{q}` is not code:YYYY-MM-DD"))?;
        qualifications.push((
            code.trim().to_string(),
            date(until.trim(), "qualification")?,
        ));
    }
    Ok(SeedVolunteer {
        id: id.to_string(),
        name: name.to_string(),
        phone,
        locale: locale.to_string(),
        webhook,
        teams: team_ids,
        home_region,
        status,
        insurance_valid_until,
        qualifications,
    })
}
