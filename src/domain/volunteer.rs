//! Volunteers' personal data: phone numbers (E.164) and how they are masked.

use super::region::RegionCode;
use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A registered volunteer.
#[derive(Debug, Clone, PartialEq)]
pub struct Volunteer {
    /// Stable id (`v0001`, or `v-` and random letters for ones registered later).
    pub id: String,
    /// Name.
    pub name: String,
    /// Phone, E.164.
    pub phone: Phone,
    /// Locale of their messages (`zh-CN`, `en`).
    pub locale: String,
    /// Their (or their team app's) webhook URL.
    pub webhook: Option<String>,
    /// Team ids.
    pub teams: Vec<String>,
    /// Home township.
    pub home_region: Option<RegionCode>,
    /// Registry status.
    pub status: VolunteerStatus,
    /// Insurance valid until (inclusive).
    pub insurance_valid_until: Option<Date>,
    /// Qualification code and valid-until date (inclusive).
    pub qualifications: Vec<(String, Date)>,
}

/// Checks a volunteer id given in a seed or an import: 1–64 letters, digits, `_` or `-`
/// (ids end up in Redis keys and in delivery records, which use `:`, `|` and `,` as
/// separators).
pub fn check_volunteer_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 {
        return Err(format!("id `{id}` must be 1 to 64 characters"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!("id `{id}` may hold only letters, digits, _ and -"));
    }
    Ok(())
}

/// A time the volunteer said they cannot be called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Unavailable {
    /// From (inclusive).
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    /// Until (exclusive).
    #[schema(value_type = String, format = DateTime)]
    pub until: Timestamp,
    /// Why, in their words (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An E.164 phone number: `+` then 8–15 digits, the first not 0. Its `Debug` and `Display`
/// show the masked form, so a stray `{:?}` in a log line cannot leak it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    /// Accepts E.164, tolerating spaces and dashes a spreadsheet adds.
    pub fn parse(s: &str) -> Result<Phone, String> {
        let cleaned: String = s
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
            .collect();
        let digits = cleaned.strip_prefix('+').unwrap_or("");
        let ok = (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(Phone(cleaned))
        } else {
            Err(
                "phone must be E.164: + and country code, then the number (e.g. +8613800138000)"
                    .into(),
            )
        }
    }

    /// The full number: only for channels and roles that may see it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `+86 138****5678`: country code, first three and last four digits.
    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }
}

/// Masks any phone-like text: keeps the country code, three leading and four trailing digits.
pub fn mask_phone(p: &str) -> String {
    let digits = p.strip_prefix('+').unwrap_or(p);
    let (cc, rest) = if let Some(r) = digits.strip_prefix("86") {
        ("86", r)
    } else if digits.len() > 10 {
        digits.split_at(digits.len() - 10)
    } else {
        digits.split_at(digits.len().min(1))
    };
    if rest.len() < 8 {
        return format!("+{cc} ****");
    }
    let head = &rest[..3];
    let tail = &rest[rest.len() - 4..];
    format!("+{cc} {head}****{tail}")
}

/// Masks a webhook URL to its scheme and host (`https://hooks.example.org/…`): its path and
/// query often carry a secret, and only registry staff need them.
pub fn mask_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            // userinfo (`user:pass@host`) is a secret too.
            let host = rest[..end].rsplit('@').next().unwrap_or("");
            format!("{scheme}://{host}/…")
        }
        None => "…".to_string(),
    }
}

/// Masks a person's name to its first character (张** for 张三丰), for roles that may not see it.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => {
            let rest = chars.count().max(1);
            format!("{first}{}", "*".repeat(rest))
        }
        None => String::new(),
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Registry status of a volunteer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VolunteerStatus {
    /// Can be called.
    Active,
    /// Temporarily not called (by a coordinator).
    Suspended,
    /// No longer serving.
    Retired,
    /// Personal data erased; only anonymised service records remain.
    Erased,
}

impl VolunteerStatus {
    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<VolunteerStatus> {
        Some(match s {
            "active" => VolunteerStatus::Active,
            "suspended" => VolunteerStatus::Suspended,
            "retired" => VolunteerStatus::Retired,
            "erased" => VolunteerStatus::Erased,
            _ => return None,
        })
    }

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            VolunteerStatus::Active => "active",
            VolunteerStatus::Suspended => "suspended",
            VolunteerStatus::Retired => "retired",
            VolunteerStatus::Erased => "erased",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_masked_to_their_host() {
        assert_eq!(
            mask_url("https://hooks.example.org/t/9f8e7d?key=secret"),
            "https://hooks.example.org/…"
        );
        assert_eq!(
            mask_url("http://user:pw@127.0.0.1:8081/hooks/v1"),
            "http://127.0.0.1:8081/…"
        );
        assert_eq!(mask_url("https://h.example"), "https://h.example/…");
        assert_eq!(mask_url("not a url"), "…");
    }

    #[test]
    fn volunteer_ids_are_safe_to_embed() {
        for ok in ["v0001", "v-k3m9", "A_1", &"x".repeat(64)] {
            assert_eq!(check_volunteer_id(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a|b",
            "a:b",
            "a,b",
            "a b",
            "v\n1",
            "张三",
            &"x".repeat(65),
        ] {
            assert!(check_volunteer_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn phones_parse_and_mask() {
        let p = Phone::parse("+86 138-0013-5678").unwrap();
        assert_eq!(p.expose(), "+8613800135678");
        assert_eq!(p.masked(), "+86 138****5678");
        assert_eq!(format!("{p:?}"), "+86 138****5678");
        assert_eq!(mask_phone("+14155550123"), "+1 415****0123");
        assert!(Phone::parse("13800138000").is_err());
        assert!(Phone::parse("+0123456789").is_err());
        assert!(Phone::parse("+86abc").is_err());
    }

    #[test]
    fn names_mask_to_first_character() {
        assert_eq!(mask_name("张三丰"), "张**");
        assert_eq!(mask_name("Li"), "L*");
        assert_eq!(mask_name("王"), "王*");
    }
}
