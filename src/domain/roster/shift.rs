//! How long one shift of a rotation layer lasts.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How long one shift lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftLength {
    /// Elapsed hours (1–672).
    Hours(i64),
    /// Calendar days (1–28): hands off at the same wall-clock time.
    Days(i64),
}

impl ShiftLength {
    /// Parses `12h`, `1d`, `2w`.
    pub fn parse(s: &str) -> Result<ShiftLength, String> {
        let s = s.trim();
        let err = || format!("`{s}` is not a shift length like 8h, 12h, 1d or 1w");
        let (num, unit) = s.split_at(s.len().saturating_sub(1));
        let n: i64 = num.parse().map_err(|_| err())?;
        let len = match unit {
            "h" if (1..=672).contains(&n) => ShiftLength::Hours(n),
            "d" if (1..=28).contains(&n) => ShiftLength::Days(n),
            "w" if (1..=4).contains(&n) => ShiftLength::Days(n * 7),
            "h" | "d" | "w" => {
                return Err(format!("`{s}` is out of range (1h–672h, 1d–28d, 1w–4w)"));
            }
            _ => return Err(err()),
        };
        Ok(len)
    }

    pub(super) fn nominal_seconds(self) -> i64 {
        match self {
            ShiftLength::Hours(h) => h * 3600,
            ShiftLength::Days(d) => d * 86_400,
        }
    }
}

impl fmt::Display for ShiftLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ShiftLength::Hours(h) => write!(f, "{h}h"),
            ShiftLength::Days(d) if d % 7 == 0 => write!(f, "{}w", d / 7),
            ShiftLength::Days(d) => write!(f, "{d}d"),
        }
    }
}

impl Serialize for ShiftLength {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ShiftLength {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ShiftLength::parse(&s).map_err(serde::de::Error::custom)
    }
}
