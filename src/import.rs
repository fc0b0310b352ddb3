//! Bulk registry import: the spreadsheet coordinators actually keep.
//!
//! - **Encoding**: UTF-8 (with or without BOM) or GBK/GB18030 (what Excel saves on a Chinese
//!   Windows), detected by whether the bytes are valid UTF-8.
//! - **Headers** in English or Chinese, in any order (`姓名`, `手机号`, `所属队伍`, `资质`,
//!   `保险有效期`, …); unknown columns are ignored and named in the report.
//! - **Values** as people type them: `13800138000` (a mainland mobile without `+86`), dates as
//!   `2027-06-30`, `2027/6/30`, `2027.6.30` or `2027年6月30日`, teams by id or by name,
//!   lists separated by `;`, `；`, `,`, `，` or `、`, statuses in English or Chinese.
//! - **Idempotent on phone**: a phone already registered updates that volunteer; a row equal to
//!   what is stored changes nothing. Good rows are kept; every bad row is reported with its line.

use crate::domain::access::Team;
use crate::domain::region::{RegionCode, RegionTree};
use crate::domain::template::Templates;
use crate::domain::volunteer::{Phone, Volunteer, VolunteerStatus};
use crate::seed::check_webhook;
use crate::store::registry::Upsert;
use crate::store::{Result, Store};
use jiff::civil::Date;
use serde::Serialize;
use std::collections::HashMap;

/// Rows written per batch (one pipelined round trip or three).
const BATCH: usize = 1000;

/// The column each header names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Id,
    Name,
    Phone,
    Locale,
    Webhook,
    Teams,
    Home,
    Status,
    Insurance,
    Qualifications,
}

fn column(header: &str) -> Option<Col> {
    let h: String = header
        .trim()
        .trim_start_matches('\u{feff}')
        .to_lowercase()
        .replace([' ', '_', '-'], "");
    Some(match h.as_str() {
        "id" | "编号" | "志愿者编号" => Col::Id,
        "name" | "姓名" | "名字" => Col::Name,
        "phone" | "mobile" | "手机" | "手机号" | "手机号码" | "电话" | "联系电话" => {
            Col::Phone
        }
        "locale" | "language" | "语言" => Col::Locale,
        "webhook" | "webhookurl" | "回调地址" => Col::Webhook,
        "teams" | "team" | "队伍" | "所属队伍" | "队伍编号" => Col::Teams,
        "homeregion" | "hometownship" | "township" | "所属乡镇" | "乡镇" | "街道" | "乡镇街道" => {
            Col::Home
        }
        "status" | "状态" => Col::Status,
        "insurancevaliduntil" | "insurance" | "保险有效期" | "保险到期" | "保险到期日" => {
            Col::Insurance
        }
        "qualifications" | "qualification" | "资质" | "资格证书" | "证书" | "培训资质" => {
            Col::Qualifications
        }
        _ => return None,
    })
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// `utf-8` or `gbk`.
    #[schema(value_type = String)]
    pub encoding: &'static str,
    /// Data rows read.
    pub rows: usize,
    /// New volunteers.
    pub created: usize,
    /// Existing volunteers (same phone) whose record changed.
    pub updated: usize,
    /// Existing volunteers already exactly so.
    pub unchanged: usize,
    /// Every bad row: its line in the file and why.
    pub rejected: Vec<Rejected>,
    /// Header names that were not understood (their columns are ignored).
    pub ignored_columns: Vec<String>,
}

/// One bad row.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Rejected {
    /// 1-based line in the file (the header is line 1).
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// What rows are checked against.
pub struct Lookup<'a> {
    /// Teams by id.
    pub teams: HashMap<String, Team>,
    /// Team ids by name.
    pub team_names: HashMap<String, String>,
    /// The region tree.
    pub regions: &'a RegionTree,
    /// Templates (for locales).
    pub templates: &'a Templates,
    /// Whether the importer acts on this region (its scope): a row's teams and home region
    /// must all be inside.
    pub allowed: Box<dyn Fn(&RegionCode) -> bool + Send + Sync + 'a>,
    /// Who imports: each written row is an audit entry `volunteer.import` of this actor.
    pub audit: Option<crate::store::audit::AuditEntry>,
}

impl<'a> Lookup<'a> {
    /// A lookup over `teams`.
    pub fn new(
        teams: Vec<Team>,
        regions: &'a RegionTree,
        templates: &'a Templates,
        allowed: Box<dyn Fn(&RegionCode) -> bool + Send + Sync + 'a>,
    ) -> Lookup<'a> {
        let team_names = teams
            .iter()
            .map(|t| (t.name.clone(), t.id.clone()))
            .collect();
        Lookup {
            teams: teams.into_iter().map(|t| (t.id.clone(), t)).collect(),
            team_names,
            audit: None,
            regions,
            templates,
            allowed,
        }
    }
}

/// Decodes the file: UTF-8 when valid, else GBK (GB18030).
pub fn decode(bytes: &[u8]) -> (String, &'static str) {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), "utf-8"),
        Err(_) => {
            let (s, _, _) = encoding_rs::GB18030.decode(bytes);
            (s.into_owned(), "gbk")
        }
    }
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split([';', '；', ',', '，', '、', '|'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
}

/// Parses the dates people type.
pub fn parse_date(s: &str) -> Option<Date> {
    let s = s.trim();
    if let Ok(d) = s.parse::<Date>() {
        return Some(d);
    }
    let norm: String = s
        .chars()
        .map(|c| match c {
            '/' | '.' | '年' | '月' => '-',
            '日' => ' ',
            c => c,
        })
        .collect();
    let parts: Vec<&str> = norm.trim().split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return None;
    };
    Date::new(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?).ok()
}

fn parse_phone(s: &str) -> std::result::Result<Phone, String> {
    let digits: String = s.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if digits.len() == 11 && digits.starts_with('1') && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Phone::parse(&format!("+86{digits}"));
    }
    Phone::parse(s)
}

fn parse_row(
    get: &dyn Fn(Col) -> Option<String>,
    lk: &Lookup<'_>,
) -> std::result::Result<Volunteer, String> {
    let name = get(Col::Name).unwrap_or_default();
    if name.is_empty() || name.chars().count() > 100 {
        return Err("name is empty or longer than 100 characters".into());
    }
    crate::domain::text::check(&name, crate::domain::text::Lines::One)
        .map_err(|e| format!("name {e}"))?;
    let phone = parse_phone(&get(Col::Phone).unwrap_or_default())?;
    let locale = match get(Col::Locale).as_deref() {
        None | Some("") | Some("中文") => "zh-CN".to_string(),
        Some("英文" | "English" | "english") => "en".to_string(),
        Some(l) if lk.templates.locale(l).is_some() => l.to_string(),
        Some(l) => return Err(format!("no templates for locale `{l}`")),
    };
    let webhook = match get(Col::Webhook).filter(|w| !w.is_empty()) {
        Some(w) => {
            check_webhook(&w)?;
            Some(w)
        }
        None => None,
    };
    let mut teams = Vec::new();
    for t in split_list(&get(Col::Teams).unwrap_or_default()) {
        let id = if lk.teams.contains_key(t) {
            t.to_string()
        } else {
            lk.team_names
                .get(t)
                .cloned()
                .ok_or_else(|| format!("unknown team `{t}`"))?
        };
        if !(lk.allowed)(&lk.teams[&id].region) {
            return Err(format!("team `{id}` is outside your scope"));
        }
        if !teams.contains(&id) {
            teams.push(id);
        }
    }
    if teams.is_empty() {
        return Err("no team given".into());
    }
    let home_region = match get(Col::Home).filter(|h| !h.is_empty()) {
        Some(h) => Some(
            lk.regions
                .lookup(&h)
                .or_else(|| lk.regions.find_by_name(&h))
                .ok_or_else(|| format!("unknown home region `{h}`"))?
                .code
                .clone(),
        ),
        None => None,
    };
    if let Some(h) = home_region.as_ref().filter(|h| !(lk.allowed)(h)) {
        return Err(format!("home region {h} is outside your scope"));
    }
    let status = match get(Col::Status).as_deref() {
        None | Some("") | Some("active" | "正常" | "在岗" | "在册") => {
            VolunteerStatus::Active
        }
        Some("suspended" | "暂停" | "停用") => VolunteerStatus::Suspended,
        Some("retired" | "退出" | "退役" | "注销") => VolunteerStatus::Retired,
        Some(s) => {
            return Err(format!(
                "status `{s}` is not active/正常, suspended/暂停 or retired/退出"
            ));
        }
    };
    let insurance_valid_until = match get(Col::Insurance).filter(|s| !s.is_empty()) {
        Some(s) => {
            Some(parse_date(&s).ok_or_else(|| format!("insurance date `{s}` is not a date"))?)
        }
        None => None,
    };
    let mut qualifications = Vec::new();
    for q in split_list(&get(Col::Qualifications).unwrap_or_default()) {
        let (code, until) = q
            .split_once([':', '：'])
            .ok_or_else(|| format!("qualification `{q}` is not code:date"))?;
        let d =
            parse_date(until).ok_or_else(|| format!("qualification `{q}` has no valid date"))?;
        qualifications.push((code.trim().to_string(), d));
    }
    let id = get(Col::Id).unwrap_or_default();
    if !id.is_empty() {
        crate::domain::volunteer::check_volunteer_id(&id)?;
    }
    Ok(Volunteer {
        id,
        name,
        phone,
        locale,
        webhook,
        teams,
        home_region,
        status,
        insurance_valid_until,
        qualifications,
    })
}

/// Imports a file's bytes; `progress(done, total)` is called after each batch.
pub async fn import(
    store: &Store,
    bytes: &[u8],
    lk: &Lookup<'_>,
    now: i64,
    mut progress: impl FnMut(usize, usize),
) -> Result<Report> {
    let (text, encoding) = decode(bytes);
    let mut report = Report {
        encoding,
        ..Report::default()
    };
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            report.rejected.push(Rejected {
                line: 1,
                reason: format!("unreadable header: {e}"),
            });
            return Ok(report);
        }
    };
    let cols: Vec<Option<Col>> = headers.iter().map(column).collect();
    report.ignored_columns = headers
        .iter()
        .zip(&cols)
        .filter(|(h, c)| c.is_none() && !h.trim().is_empty())
        .map(|(h, _)| h.to_string())
        .collect();
    for need in [Col::Name, Col::Phone, Col::Teams] {
        if !cols.contains(&Some(need)) {
            report.rejected.push(Rejected {
                line: 1,
                reason: format!(
                    "no {need:?} column (e.g. name/姓名, phone/手机号, teams/所属队伍)"
                )
                .to_lowercase(),
            });
        }
    }
    if !report.rejected.is_empty() {
        return Ok(report);
    }
    let total = text.lines().count().saturating_sub(1);
    let mut phones: HashMap<String, usize> = HashMap::new();
    let mut batch: Vec<(usize, Volunteer)> = Vec::with_capacity(BATCH);
    for rec in rdr.records() {
        report.rows += 1;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                report.rejected.push(Rejected {
                    line,
                    reason: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
        if rec.iter().all(|f| f.trim().is_empty()) {
            report.rows -= 1;
            continue;
        }
        let get = |c: Col| -> Option<String> {
            cols.iter()
                .position(|x| *x == Some(c))
                .and_then(|i| rec.get(i))
                .map(|s| s.trim().to_string())
        };
        match parse_row(&get, lk) {
            Ok(v) => match phones.get(v.phone.expose()) {
                Some(first) => report.rejected.push(Rejected {
                    line,
                    reason: format!("phone {} is also on line {first}", v.phone.masked()),
                }),
                None => {
                    phones.insert(v.phone.expose().to_string(), line);
                    batch.push((line, v));
                }
            },
            Err(reason) => report.rejected.push(Rejected { line, reason }),
        }
        if batch.len() >= BATCH {
            flush(store, &mut batch, &mut report, now, lk.audit.as_ref()).await?;
            progress(report.rows, total);
        }
    }
    flush(store, &mut batch, &mut report, now, lk.audit.as_ref()).await?;
    progress(report.rows, total.max(report.rows));
    Ok(report)
}

async fn flush(
    store: &Store,
    batch: &mut Vec<(usize, Volunteer)>,
    report: &mut Report,
    now: i64,
    audit: Option<&crate::store::audit::AuditEntry>,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let rows: Vec<Volunteer> = batch.iter().map(|(_, v)| v.clone()).collect();
    for ((line, _), o) in batch
        .iter()
        .zip(store.upsert_volunteers(&rows, now, audit).await?)
    {
        match o {
            Upsert::Created(_) => report.created += 1,
            Upsert::Updated(_) => report.updated += 1,
            Upsert::Unchanged(_) => report.unchanged += 1,
            Upsert::Rejected(reason) => report.rejected.push(Rejected {
                line: *line,
                reason,
            }),
        }
    }
    batch.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_phones_as_people_type_them() {
        let d: Date = "2027-06-30".parse().unwrap();
        for s in ["2027-06-30", "2027/6/30", "2027.6.30", "2027年6月30日"] {
            assert_eq!(parse_date(s), Some(d), "{s}");
        }
        assert_eq!(parse_date("30/06/2027"), None);
        assert_eq!(
            parse_phone("138 0013 8000").unwrap().expose(),
            "+8613800138000"
        );
        assert_eq!(
            parse_phone("+49 30 1234567").unwrap().expose(),
            "+49301234567"
        );
        assert!(parse_phone("12345").is_err());
    }

    #[test]
    fn gbk_is_detected_and_decoded() {
        let (bytes, _, _) = encoding_rs::GBK.encode("姓名,手机号\n张三,13800138000\n");
        let (text, enc) = decode(&bytes);
        assert_eq!(enc, "gbk");
        assert!(text.starts_with("姓名,手机号"));
        assert_eq!(
            decode("\u{feff}name".as_bytes()),
            ("name".to_string(), "utf-8")
        );
        assert_eq!(column("手机号码"), Some(Col::Phone));
        assert_eq!(column("Insurance Valid Until"), Some(Col::Insurance));
    }
}
