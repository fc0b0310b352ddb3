//! Free text that people type and other people read — titles, names, notes, reasons. It
//! reaches an SMS, a webhook, a spreadsheet or a wall screen, so it must not carry what
//! cannot be shown: control characters (C0, DEL, C1; a NUL truncates a C string, an ESC
//! drives a terminal, a CR forges a line) and the bidirectional overrides that make a text
//! read differently from what it holds. A newline is allowed only where the field is
//! several lines long.

/// Whether a field may hold several lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// One line: no newline.
    One,
    /// Several lines: `\n` allowed (never `\r`).
    Many,
}

/// Checks a free-text value; the error says which character is refused and where.
pub fn check(s: &str, lines: Lines) -> Result<(), String> {
    for (i, c) in s.chars().enumerate() {
        let refused = match c {
            '\n' => lines == Lines::One,
            c if c.is_control() => true,
            // Bidirectional embeddings, overrides and isolates.
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => true,
            _ => false,
        };
        if refused {
            let what = match c {
                '\n' => "a line break (this field is one line)".to_string(),
                c if c.is_control() => format!("the control character U+{:04X}", c as u32),
                c => format!("the direction override U+{:04X}", c as u32),
            };
            return Err(format!("contains {what} at character {}", i + 1));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn control_characters_are_refused_and_named() {
        for (s, at) in [
            ("a\0b", "U+0000 at character 2"),
            ("\u{1b}[31m", "U+001B at character 1"),
            ("x\ry", "U+000D"),
            ("tab\there", "U+0009"),
            ("\u{7f}", "U+007F"),
            ("c1\u{85}", "U+0085"),
            ("\u{9f}", "U+009F"),
            ("abc\u{202E}fdp.exe", "override U+202E"),
        ] {
            let e = check(s, Lines::Many).unwrap_err();
            assert!(e.contains(at), "{s:?}: {e}");
        }
        assert!(
            check("两行\n文字", Lines::One)
                .unwrap_err()
                .contains("line break")
        );
        assert_eq!(check("两行\n文字", Lines::Many), Ok(()));
        assert_eq!(check("滨江堤段管涌险情 №3 — 😀 ‍👩‍🚒", Lines::One), Ok(()));
    }

    proptest! {
        #[test]
        fn printable_text_passes_and_any_control_fails(s in "[^\\p{Cc}\\u{202A}-\\u{202E}\\u{2066}-\\u{2069}]{0,40}", c in prop::sample::select(vec!['\0', '\u{7}', '\r', '\u{1b}', '\u{7f}', '\u{80}', '\u{9b}']), at in 0usize..40) {
            prop_assert_eq!(check(&s, Lines::One), Ok(()));
            let mut with: Vec<char> = s.chars().collect();
            let at = at.min(with.len());
            with.insert(at, c);
            let with: String = with.into_iter().collect();
            prop_assert!(check(&with, Lines::Many).is_err());
        }
    }
}
