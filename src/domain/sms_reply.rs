//! The SMS reply grammar (`api.md`): what a volunteer's text message means.
//!
//! A reply is an action with an optional reply code, in either order, case- and
//! width-insensitive, spaces optional, stray punctuation around it ignored:
//!
//! | action | letters | digits (after a code) | Chinese |
//! | --- | --- | --- | --- |
//! | accept | `Y`, `YES`, `OK` | `1` | `是`, `好`, `是的`, `好的` |
//! | decline | `N`, `NO` | `2` | `否`, `不`, `不去` |
//! | arrived | `D` | — | `到`, `已到` |
//!
//! `{code}Y`, `Y{code}`, `{code} 1`, `23是`, `到23`, `ｙ２３`, ` 23 y `. A code is 2 to 4
//! digits. A bare action (`Y`, `是`, `1`) carries no code and acts only when the number has
//! exactly one open callout. `STOP`, `退订` and `TD` opt the number out. Anything else is
//! [`Reply::Unknown`]. Parsing never fails or panics: any text maps to one [`Reply`].

/// What a volunteer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Accept,
    Decline,
    Arrived,
}

impl Action {
    /// The ack response of the HTTP API (`POST /v1/acks/{token}`).
    pub fn response(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Decline => "decline",
            Action::Arrived => "arrived",
        }
    }
}

/// What a reply means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An answer, to the callout with this reply code, or (no code) to the number's only open
    /// callout.
    Answer {
        code: Option<String>,
        action: Action,
    },
    /// Stop sending SMS to this number.
    Stop,
    /// Not in the grammar.
    Unknown,
}

/// Shortest and longest reply code.
pub const CODE_DIGITS: std::ops::RangeInclusive<usize> = 2..=4;

/// Action words, longest first within each script so `YES` is not read as `Y` + `ES`.
const WORDS: &[(&str, Action)] = &[
    ("YES", Action::Accept),
    ("OK", Action::Accept),
    ("Y", Action::Accept),
    ("NO", Action::Decline),
    ("N", Action::Decline),
    ("D", Action::Arrived),
    ("是的", Action::Accept),
    ("好的", Action::Accept),
    ("是", Action::Accept),
    ("好", Action::Accept),
    ("不去", Action::Decline),
    ("否", Action::Decline),
    ("不", Action::Decline),
    ("已到", Action::Arrived),
    ("到", Action::Arrived),
];

const STOP_WORDS: &[&str] = &["STOP", "退订", "TD", "UNSUBSCRIBE"];

/// Folds a reply to its plain form: full-width ASCII to ASCII, letters upper-cased, every
/// space removed, punctuation at either end dropped.
pub fn normalize(text: &str) -> String {
    let folded: String = text
        .chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .filter(|c| !c.is_whitespace() && !matches!(c, '\u{200B}' | '\u{FEFF}'))
        .flat_map(char::to_uppercase)
        .collect();
    let stray = |c: char| {
        c.is_ascii_punctuation()
            || matches!(
                c,
                '。' | '，'
                    | '、'
                    | '！'
                    | '？'
                    | '～'
                    | '…'
                    | '“'
                    | '”'
                    | '‘'
                    | '’'
                    | '：'
                    | '；'
            )
    };
    folded.trim_matches(stray).to_string()
}

/// Parses one reply.
pub fn parse(text: &str) -> Reply {
    let s = normalize(text);
    if STOP_WORDS.contains(&s.as_str()) {
        return Reply::Stop;
    }
    let digits_at_start = s.chars().take_while(char::is_ascii_digit).count();
    let digits_at_end = s.chars().rev().take_while(char::is_ascii_digit).count();
    let answer = |code: Option<&str>, action| Reply::Answer {
        code: code.map(String::from),
        action,
    };
    // All digits: a bare `1`/`2`, or a code followed by `1`/`2`.
    if digits_at_start == s.chars().count() {
        let action = match s.as_bytes().last() {
            Some(b'1') => Action::Accept,
            Some(b'2') => Action::Decline,
            _ => return Reply::Unknown,
        };
        let code = &s[..s.len() - 1];
        return match code.len() {
            0 => answer(None, action),
            n if CODE_DIGITS.contains(&n) => answer(Some(code), action),
            _ => Reply::Unknown,
        };
    }
    // `{code}{word}`, `{word}{code}` or a bare word (digits are ASCII, so byte offsets are
    // char offsets for them).
    let (code, word) = if digits_at_start > 0 {
        (Some(&s[..digits_at_start]), &s[digits_at_start..])
    } else if digits_at_end > 0 {
        (
            Some(&s[s.len() - digits_at_end..]),
            &s[..s.len() - digits_at_end],
        )
    } else {
        (None, s.as_str())
    };
    if code.is_some_and(|c| !CODE_DIGITS.contains(&c.len())) {
        return Reply::Unknown;
    }
    match WORDS.iter().find(|(w, _)| *w == word) {
        Some((_, action)) => answer(code, *action),
        None => Reply::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ans(code: Option<&str>, action: Action) -> Reply {
        Reply::Answer {
            code: code.map(String::from),
            action,
        }
    }

    #[test]
    fn the_documented_forms() {
        use Action::*;
        let cases = [
            ("23Y", ans(Some("23"), Accept)),
            ("Y23", ans(Some("23"), Accept)),
            ("23 1", ans(Some("23"), Accept)),
            ("231", ans(Some("23"), Accept)),
            ("23N", ans(Some("23"), Decline)),
            ("23 2", ans(Some("23"), Decline)),
            ("23D", ans(Some("23"), Arrived)),
            ("23是", ans(Some("23"), Accept)),
            ("好23", ans(Some("23"), Accept)),
            ("23到", ans(Some("23"), Arrived)),
            ("否 23", ans(Some("23"), Decline)),
            ("23不", ans(Some("23"), Decline)),
            ("y", ans(None, Accept)),
            ("是", ans(None, Accept)),
            ("1", ans(None, Accept)),
            ("2", ans(None, Decline)),
            ("ｙ２３", ans(Some("23"), Accept)),
            ("　２３　ｎ　", ans(Some("23"), Decline)),
            (" 23 y. ", ans(Some("23"), Accept)),
            ("好的！", ans(None, Accept)),
            ("4711 yes", ans(Some("4711"), Accept)),
            ("stop", Reply::Stop),
            ("退订", Reply::Stop),
            ("ＳＴＯＰ", Reply::Stop),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), want, "{text:?}");
        }
    }

    #[test]
    fn what_is_not_in_the_grammar_is_unknown() {
        for text in [
            "",
            "   ",
            "hello",
            "23",
            "3Y",
            "23456Y",
            "Y23Y",
            "23Y45",
            "1234567",
            "23 3",
            "YN",
            "我不知道",
            "???",
            "23 maybe",
        ] {
            assert_eq!(parse(text), Reply::Unknown, "{text:?}");
        }
    }

    /// One way of writing `action`, and whether it may stand after a code as a digit.
    fn spellings(action: Action) -> Vec<&'static str> {
        WORDS
            .iter()
            .filter(|(_, a)| *a == action)
            .map(|(w, _)| *w)
            .collect()
    }

    /// Writes `s` sloppily: each ASCII character possibly full-width, letters in either case,
    /// spaces (ASCII or ideographic) sprinkled between characters and around.
    fn sloppy(s: &str, wide: &[bool], lower: &[bool], gaps: &[u8]) -> String {
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            match gaps.get(i).copied().unwrap_or(0) % 4 {
                1 => out.push(' '),
                2 => out.push('\u{3000}'),
                _ => {}
            }
            let c = if lower.get(i).copied().unwrap_or(false) {
                c.to_ascii_lowercase()
            } else {
                c
            };
            let c = if c.is_ascii_graphic() && wide.get(i).copied().unwrap_or(false) {
                char::from_u32(c as u32 + 0xFEE0).unwrap()
            } else {
                c
            };
            out.push(c);
        }
        if gaps.last().copied().unwrap_or(0) % 3 == 1 {
            out.push_str(" 。");
        }
        out
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            Just(Action::Accept),
            Just(Action::Decline),
            Just(Action::Arrived)
        ]
    }

    proptest! {
        /// Every reply the grammar allows, however sloppily typed, means what it says.
        #[test]
        fn every_grammatical_reply_parses_to_its_action(
            code in proptest::option::of("[0-9]{2,4}"),
            action in action(),
            pick in 0usize..8,
            form in 0u8..3,
            wide in proptest::collection::vec(any::<bool>(), 12),
            lower in proptest::collection::vec(any::<bool>(), 12),
            gaps in proptest::collection::vec(any::<u8>(), 12),
        ) {
            let words = spellings(action);
            let word = words[pick % words.len()];
            let digit = match action { Action::Accept => Some("1"), Action::Decline => Some("2"), Action::Arrived => None };
            let text = match (&code, form, digit) {
                (Some(c), 0, _) => format!("{c}{word}"),
                (Some(c), 1, _) => format!("{word}{c}"),
                (Some(c), _, Some(d)) => format!("{c} {d}"),
                (Some(c), _, None) => format!("{c}{word}"),
                (None, 2, Some(d)) => d.to_string(),
                (None, _, _) => word.to_string(),
            };
            let typed = sloppy(&text, &wide, &lower, &gaps);
            prop_assert_eq!(parse(&typed), Reply::Answer { code: code.clone(), action }, "{:?} typed as {:?}", text, typed);
        }

        /// Any text at all gets an answer, never a panic, and normalising is idempotent.
        #[test]
        fn any_text_parses_without_panicking(text in "\\PC{0,40}") {
            let _ = parse(&text);
            let once = normalize(&text);
            prop_assert_eq!(normalize(&once), once);
        }

        /// Arbitrary bytes taken as (lossy) UTF-8, including control characters.
        #[test]
        fn any_bytes_parse_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
