//! Service certificates (志愿服务记录证明): what one says, and its verification code. The code
//! is an HMAC-SHA256 of everything the certificate states, keyed from config (never stored in
//! Redis), shown as 16 characters (80 bits) of an unambiguous alphabet: nobody can guess a code
//! that exists, and a certificate whose stored statement was changed no longer matches its
//! code.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The characters of a code (Crockford's base 32: no I, L, O or U; read back, O is 0 and I
/// or L is 1).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// What a certificate states.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub volunteer: String,
    /// The masked name (all a verifier may see).
    pub masked_name: String,
    /// The period, as dates (`YYYY-MM-DD`).
    pub from: String,
    pub to: String,
    /// Live hours and training (drill) hours, two decimals.
    pub live_hours: f64,
    pub training_hours: f64,
    pub records: u32,
    /// The issuing unit.
    pub issuer: String,
    /// When (RFC 3339).
    pub issued_at: String,
}

impl Statement {
    /// The statement's fields as stored.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("volunteer", self.volunteer.clone()),
            ("masked_name", self.masked_name.clone()),
            ("from", self.from.clone()),
            ("to", self.to.clone()),
            ("live_hours", format!("{:.2}", self.live_hours)),
            ("training_hours", format!("{:.2}", self.training_hours)),
            ("records", self.records.to_string()),
            ("issuer", self.issuer.clone()),
            ("issued_at", self.issued_at.clone()),
        ]
    }

    /// A statement read back from its stored fields.
    pub fn from_fields(f: &std::collections::HashMap<String, String>) -> Option<Statement> {
        let g = |k: &str| f.get(k).cloned();
        Some(Statement {
            volunteer: g("volunteer")?,
            masked_name: g("masked_name")?,
            from: g("from")?,
            to: g("to")?,
            live_hours: g("live_hours")?.parse().ok()?,
            training_hours: g("training_hours")?.parse().ok()?,
            records: g("records")?.parse().ok()?,
            issuer: g("issuer")?,
            issued_at: g("issued_at")?,
        })
    }

    /// Its code under `key`.
    pub fn code(&self, key: &[u8]) -> String {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
        m.update(b"muster certificate v1");
        for (k, v) in self.fields() {
            m.update(format!("\n{k}={v}").as_bytes());
        }
        let tag = m.finalize().into_bytes();
        // 80 bits: 16 characters of 5 bits.
        let mut bits: u128 = 0;
        for b in &tag[..10] {
            bits = (bits << 8) | u128::from(*b);
        }
        (0..16)
            .rev()
            .map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize] as char)
            .collect()
    }
}

/// A code as people write it (`abcd-efgh …`) in its stored form, or `None` if it cannot be one.
pub fn normalize(code: &str) -> Option<String> {
    let c: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect();
    (c.len() == 16 && c.bytes().all(|b| ALPHABET.contains(&b))).then_some(c)
}

/// A code grouped for print: `ABCD-EFGH-JKMN-PQRS`.
pub fn grouped(code: &str) -> String {
    code.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).to_string())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st() -> Statement {
        Statement {
            volunteer: "v0001".into(),
            masked_name: "王*".into(),
            from: "2026-01-01".into(),
            to: "2026-12-31".into(),
            live_hours: 12.5,
            training_hours: 4.0,
            records: 3,
            issuer: "东湖区应急指挥中心".into(),
            issued_at: "2026-11-29T08:00:00Z".into(),
        }
    }

    #[test]
    fn a_code_is_its_statement_under_the_key() {
        let c = st().code(b"k");
        assert_eq!(c.len(), 16);
        assert_eq!(normalize(&grouped(&c).to_lowercase()), Some(c.clone()));
        assert_eq!(st().code(b"k"), c, "deterministic");
        assert_ne!(st().code(b"other"), c, "keyed");
        let mut changed = st();
        changed.to = "2027-12-31".into();
        assert_ne!(changed.code(b"k"), c, "the period is part of it");
        let back = Statement::from_fields(
            &st()
                .fields()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
        .unwrap();
        assert_eq!(back.code(b"k"), c, "stored and read back, it still matches");
        assert_eq!(normalize("not-a-code"), None);
    }
}
