//! Who may be called out right now, and why not.
//!
//! Training before deployment (先培训再上岗) and insurance for every deployed volunteer
//! (谁使用、谁招募、谁保障) are checked on the incident's day; a volunteer who said they are
//! unavailable, who is resting after a deployment, or who is already accepted on another live
//! incident is left out. Every exclusion has a stable `reason` code and a human `detail`.

use super::volunteer::{Unavailable, Volunteer, VolunteerStatus};
use jiff::Timestamp;
use jiff::civil::Date;

/// Why a volunteer was not called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exclusion {
    /// A member of the team, but not on call now (a later escalation step may call them).
    NotOnCall,
    /// Suspended, retired or erased.
    Status(VolunteerStatus),
    /// The requirement names a qualification they do not hold.
    QualificationMissing(String),
    /// They hold it, but it expired before the incident's day.
    QualificationExpired(String, Date),
    /// No insurance on record.
    InsuranceMissing,
    /// Insurance expired before the incident's day.
    InsuranceExpired(Date),
    /// They said they are unavailable until then.
    Unavailable(Timestamp),
    /// Resting after a deployment until then.
    Resting(Timestamp),
    /// Accepted on another live incident.
    Engaged(String),
    /// No channel reaches them.
    NoChannel,
}

impl Exclusion {
    /// The stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Exclusion::NotOnCall => "not_on_call",
            Exclusion::Status(_) => "status",
            Exclusion::QualificationMissing(_) => "qualification_missing",
            Exclusion::QualificationExpired(..) => "qualification_expired",
            Exclusion::InsuranceMissing => "insurance_missing",
            Exclusion::InsuranceExpired(_) => "insurance_expired",
            Exclusion::Unavailable(_) => "unavailable",
            Exclusion::Resting(_) => "resting",
            Exclusion::Engaged(_) => "engaged",
            Exclusion::NoChannel => "no_channel",
        }
    }

    /// A sentence for people.
    pub fn detail(&self) -> String {
        match self {
            Exclusion::NotOnCall => "not on call now".into(),
            Exclusion::Status(s) => format!("registry status is {}", s.as_str()),
            Exclusion::QualificationMissing(q) => format!("does not hold qualification {q}"),
            Exclusion::QualificationExpired(q, d) => format!("qualification {q} expired on {d}"),
            Exclusion::InsuranceMissing => "no insurance on record".into(),
            Exclusion::InsuranceExpired(d) => format!("insurance expired on {d}"),
            Exclusion::Unavailable(t) => format!("unavailable until {t}"),
            Exclusion::Resting(t) => format!("resting after a deployment until {t}"),
            Exclusion::Engaged(i) => format!("accepted on live incident {i}"),
            Exclusion::NoChannel => "no webhook or phone channel".into(),
        }
    }
}

/// What eligibility needs of a registry record (and no more: selection reads just these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing<'a> {
    /// Registry status.
    pub status: VolunteerStatus,
    /// Qualification code and valid-until date (inclusive).
    pub qualifications: &'a [(String, Date)],
    /// Insurance valid until (inclusive).
    pub insurance_valid_until: Option<Date>,
}

impl Volunteer {
    /// The part of the record eligibility looks at.
    pub fn standing(&self) -> Standing<'_> {
        Standing {
            status: self.status,
            qualifications: &self.qualifications,
            insurance_valid_until: self.insurance_valid_until,
        }
    }
}

/// Checks what the registry alone can tell: status, qualification, insurance, unavailability.
/// `today` is the incident's day in the deployment's time zone.
pub fn check_registry(
    v: &Standing<'_>,
    unavailable: &[Unavailable],
    qualification: Option<&str>,
    today: Date,
    now: Timestamp,
) -> Result<(), Exclusion> {
    if v.status != VolunteerStatus::Active {
        return Err(Exclusion::Status(v.status));
    }
    if let Some(q) = qualification {
        match v
            .qualifications
            .iter()
            .filter(|(c, _)| c == q)
            .map(|(_, d)| *d)
            .max()
        {
            None => return Err(Exclusion::QualificationMissing(q.to_string())),
            Some(d) if d < today => return Err(Exclusion::QualificationExpired(q.to_string(), d)),
            Some(_) => {}
        }
    }
    match v.insurance_valid_until {
        None => return Err(Exclusion::InsuranceMissing),
        Some(d) if d < today => return Err(Exclusion::InsuranceExpired(d)),
        Some(_) => {}
    }
    if let Some(u) = unavailable
        .iter()
        .filter(|u| u.from <= now && now < u.until)
        .map(|u| u.until)
        .max()
    {
        return Err(Exclusion::Unavailable(u));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::volunteer::Phone;

    fn vol() -> Volunteer {
        Volunteer {
            id: "v1".into(),
            name: "张三".into(),
            phone: Phone::parse("+8613800000001").unwrap(),
            locale: "zh-CN".into(),
            webhook: None,
            teams: vec![],
            home_region: None,
            status: VolunteerStatus::Active,
            insurance_valid_until: Some("2026-12-31".parse().unwrap()),
            qualifications: vec![("water_rescue".into(), "2026-11-23".parse().unwrap())],
        }
    }

    #[test]
    fn each_rule_excludes_with_its_reason() {
        let today: Date = "2026-11-23".parse().unwrap();
        let now: Timestamp = "2026-11-23T02:00:00Z".parse().unwrap();
        let ok = |v: &Volunteer, q| check_registry(&v.standing(), &[], q, today, now);
        assert_eq!(
            ok(&vol(), Some("water_rescue")),
            Ok(()),
            "valid through today"
        );
        assert_eq!(
            ok(&vol(), Some("hazmat")).unwrap_err().code(),
            "qualification_missing"
        );
        let tomorrow = today.tomorrow().unwrap();
        assert_eq!(
            check_registry(&vol().standing(), &[], Some("water_rescue"), tomorrow, now)
                .unwrap_err(),
            Exclusion::QualificationExpired("water_rescue".into(), today)
        );
        let mut v = vol();
        v.insurance_valid_until = Some("2026-11-22".parse().unwrap());
        assert_eq!(ok(&v, None).unwrap_err().code(), "insurance_expired");
        v.insurance_valid_until = None;
        assert_eq!(ok(&v, None).unwrap_err().code(), "insurance_missing");
        let mut v = vol();
        v.status = VolunteerStatus::Suspended;
        assert_eq!(
            ok(&v, None).unwrap_err().detail(),
            "registry status is suspended"
        );
        let until: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let away = [Unavailable {
            from: "2026-11-22T00:00:00Z".parse().unwrap(),
            until,
            reason: None,
        }];
        assert_eq!(
            check_registry(&vol().standing(), &away, None, today, now),
            Err(Exclusion::Unavailable(until))
        );
        assert_eq!(
            check_registry(&vol().standing(), &away, None, today, until),
            Ok(())
        );
    }
}
