//! The audit log's chain, as data: how an entry is put in canonical form, how its HMAC chains
//! to the one before, and how a walk over stored entries names the first that was changed,
//! removed or inserted.
//!
//! An entry is written (unsealed) in the same Redis step as the change it records. The sealer
//! then gives each entry, in stream order, `mac = HMAC-SHA256(key, prev_mac ‖ id ‖ fields)`,
//! with `fields` sorted by name; the key comes from config and is never stored in Redis.
//! Without the key nobody can make a MAC that fits, so an entry changed, removed or inserted
//! in the sealed part of a chain breaks it where it happened.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;

type HmacSha256 = Hmac<Sha256>;

/// The MAC before a chain's first entry.
pub const GENESIS: &str = "genesis";

/// One stored entry: its stream id and fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: String,
    pub fields: BTreeMap<String, String>,
}

/// The MAC of entry (`id`, `fields`) after `prev` (hex).
pub fn mac(key: &[u8], prev: &str, id: &str, fields: &BTreeMap<String, String>) -> String {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(prev.as_bytes());
    m.update(b"\n");
    m.update(id.as_bytes());
    for (k, v) in fields {
        // Length-prefixed, so no two field lists run together the same way.
        m.update(b"\n");
        m.update(k.len().to_string().as_bytes());
        m.update(b":");
        m.update(k.as_bytes());
        m.update(v.len().to_string().as_bytes());
        m.update(b":");
        m.update(v.as_bytes());
    }
    hex(&m.finalize().into_bytes())
}

/// The MAC of a chain's head record (its last sealed id, count and MAC), so the head cannot be
/// rewritten to hide a cut tail without the key.
pub fn head_mac(key: &[u8], last_id: &str, count: u64, last_mac: &str) -> String {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(format!("head\n{last_id}\n{count}\n{last_mac}").as_bytes());
    hex(&m.finalize().into_bytes())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What a walk found wrong, naming the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// The entry's fields are not what was sealed.
    Changed { id: String },
    /// A sealed entry is gone (its MAC is still recorded); `after` is the entry before it.
    Removed { id: String, after: Option<String> },
    /// An entry that was never sealed sits inside the sealed part of the chain.
    Inserted { id: String },
    /// The chain's head does not match its entries (the tail was cut, or the head rewritten).
    Head { detail: String },
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Break::Changed { id } => write!(f, "entry {id} was changed after it was sealed"),
            Break::Removed { id, after } => match after {
                Some(a) => write!(f, "entry {id} (after {a}) was removed"),
                None => write!(f, "entry {id} (the first) was removed"),
            },
            Break::Inserted { id } => write!(f, "entry {id} was inserted: it was never sealed"),
            Break::Head { detail } => write!(f, "the chain's head does not match: {detail}"),
        }
    }
}

/// The head of a chain as stored: last sealed id, how many sealed, last MAC, and its own MAC.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Head {
    pub last_id: String,
    pub count: u64,
    pub last_mac: String,
    pub mac: String,
}

/// Compares stream ids (`ms-seq`) numerically.
pub fn id_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let p = |s: &str| {
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        (
            ms.parse::<u64>().unwrap_or(0),
            seq.parse::<u64>().unwrap_or(0),
        )
    };
    p(a).cmp(&p(b))
}

/// Walks one chain: `entries` in stream order, `macs` the recorded MAC of each sealed id,
/// `head` the stored head (`None`: nothing sealed yet). Answers the first break, and how many
/// entries after the head are not sealed yet.
pub fn verify(
    key: &[u8],
    entries: &[Stored],
    macs: &BTreeMap<String, String>,
    head: Option<&Head>,
) -> (Option<Break>, usize) {
    if let Some(h) = head
        && head_mac(key, &h.last_id, h.count, &h.last_mac) != h.mac
    {
        return (
            Some(Break::Head {
                detail: "its own MAC is wrong (rewritten by hand)".into(),
            }),
            0,
        );
    }
    let sealed_to = head.map(|h| h.last_id.as_str());
    let in_sealed =
        |id: &str| sealed_to.is_some_and(|s| id_cmp(id, s) != std::cmp::Ordering::Greater);
    // Recorded MACs whose entry is gone, in order.
    let present: std::collections::HashSet<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    let mut gone: Vec<&String> = macs
        .keys()
        .filter(|id| !present.contains(id.as_str()))
        .collect();
    gone.sort_by(|a, b| id_cmp(a, b));
    let mut prev = GENESIS.to_string();
    let mut prev_id: Option<String> = None;
    let mut count = 0u64;
    let mut unsealed = 0;
    for e in entries {
        if let Some(g) = gone.first()
            && id_cmp(g, &e.id) == std::cmp::Ordering::Less
        {
            return (
                Some(Break::Removed {
                    id: (*g).clone(),
                    after: prev_id,
                }),
                0,
            );
        }
        if !in_sealed(&e.id) {
            unsealed += 1;
            continue;
        }
        let Some(recorded) = macs.get(&e.id) else {
            return (Some(Break::Inserted { id: e.id.clone() }), 0);
        };
        if mac(key, &prev, &e.id, &e.fields) != *recorded {
            return (Some(Break::Changed { id: e.id.clone() }), 0);
        }
        prev = recorded.clone();
        prev_id = Some(e.id.clone());
        count += 1;
    }
    if let Some(g) = gone.first() {
        return (
            Some(Break::Removed {
                id: (*g).clone(),
                after: prev_id,
            }),
            0,
        );
    }
    if let Some(h) = head
        && (h.count != count || h.last_mac != prev)
    {
        return (
            Some(Break::Head {
                detail: format!(
                    "it records {} sealed entries ending {}, the stream holds {count} ending {}",
                    h.count,
                    h.last_id,
                    prev_id.as_deref().unwrap_or("nowhere")
                ),
            }),
            0,
        );
    }
    (None, unsealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, action: &str) -> Stored {
        Stored {
            id: id.into(),
            fields: [("action".to_string(), action.to_string())].into(),
        }
    }

    /// Seals `entries` as the sealer would: their MACs and the head.
    fn seal(key: &[u8], entries: &[Stored]) -> (BTreeMap<String, String>, Head) {
        let mut prev = GENESIS.to_string();
        let mut macs = BTreeMap::new();
        for e in entries {
            prev = mac(key, &prev, &e.id, &e.fields);
            macs.insert(e.id.clone(), prev.clone());
        }
        let last = entries.last().unwrap().id.clone();
        let h = Head {
            mac: head_mac(key, &last, entries.len() as u64, &prev),
            last_id: last,
            count: entries.len() as u64,
            last_mac: prev,
        };
        (macs, h)
    }

    #[test]
    fn an_untouched_chain_verifies_and_each_tampering_is_named() {
        let key = b"k";
        let es: Vec<Stored> = (1..=5).map(|i| entry(&format!("{i}-0"), "raise")).collect();
        let (macs, head) = seal(key, &es);
        assert_eq!(verify(key, &es, &macs, Some(&head)), (None, 0));

        let mut changed = es.clone();
        changed[2]
            .fields
            .insert("action".into(), "stand_down".into());
        assert_eq!(
            verify(key, &changed, &macs, Some(&head)).0,
            Some(Break::Changed { id: "3-0".into() })
        );

        let mut removed = es.clone();
        removed.remove(1);
        assert_eq!(
            verify(key, &removed, &macs, Some(&head)).0,
            Some(Break::Removed {
                id: "2-0".into(),
                after: Some("1-0".into())
            })
        );
        // Removed with its MAC too: the next entry no longer chains.
        let mut macs2 = macs.clone();
        macs2.remove("2-0");
        assert_eq!(
            verify(key, &removed, &macs2, Some(&head)).0,
            Some(Break::Changed { id: "3-0".into() })
        );

        let mut inserted = es.clone();
        inserted.insert(2, entry("2-5", "erase"));
        assert_eq!(
            verify(key, &inserted, &macs, Some(&head)).0,
            Some(Break::Inserted { id: "2-5".into() })
        );

        // The tail cut, head left: named; head rewritten without the key: named.
        let cut = es[..4].to_vec();
        let mut macs3 = macs.clone();
        macs3.remove("5-0");
        assert!(matches!(
            verify(key, &cut, &macs3, Some(&head)).0,
            Some(Break::Head { .. })
        ));
        let forged = Head {
            last_id: "4-0".into(),
            count: 4,
            last_mac: macs["4-0"].clone(),
            mac: "00".into(),
        };
        assert!(matches!(
            verify(key, &cut, &macs3, Some(&forged)).0,
            Some(Break::Head { .. })
        ));
        // With the wrong key nothing verifies.
        assert!(verify(b"other", &es, &macs, Some(&head)).0.is_some());
    }

    #[test]
    fn entries_after_the_head_are_counted_as_not_yet_sealed() {
        let key = b"k";
        let es: Vec<Stored> = (1..=3).map(|i| entry(&format!("{i}-0"), "raise")).collect();
        let (macs, head) = seal(key, &es[..2]);
        assert_eq!(verify(key, &es, &macs, Some(&head)), (None, 1));
        assert_eq!(verify(key, &es, &BTreeMap::new(), None), (None, 3));
    }

    #[test]
    fn field_boundaries_are_part_of_the_mac() {
        let a: BTreeMap<String, String> = [("ab".into(), "c".into())].into();
        let b: BTreeMap<String, String> = [("a".into(), "bc".into())].into();
        assert_ne!(mac(b"k", GENESIS, "1-0", &a), mac(b"k", GENESIS, "1-0", &b));
        assert_eq!(id_cmp("10-0", "9-5"), std::cmp::Ordering::Greater);
    }
}
