//! SMS segments: how a text is encoded (GSM-7 or UCS-2) and how many segments it takes, as
//! phones and gateways count them.

/// Characters of the GSM 03.38 default alphabet (one septet each).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// Characters of the GSM extension table (two septets each).
const GSM_EXTENDED: &str = "^{}\\[~]|€\u{0C}";

/// How an SMS text is encoded and how many segments it takes: GSM-7 when every character
/// is in the GSM alphabet (160 septets in one segment, 153 per segment of a longer message),
/// else UCS-2 (70 UTF-16 units, 67 per segment). A character is never split between two
/// segments: a GSM extension character (escape + septet) or a UTF-16 surrogate pair that
/// would straddle a boundary starts the next segment, as phones and gateways do — so `€` × 153
/// takes 3 segments, not 2.
pub fn sms_encoding(text: &str) -> (&'static str, u32, u32) {
    let gsm: Option<Vec<u32>> = text
        .chars()
        .map(|c| {
            if GSM_BASIC.contains(c) {
                Some(1)
            } else if GSM_EXTENDED.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .collect();
    let (name, widths, single, multi) = match gsm {
        Some(w) => ("GSM-7", w, 160, 153),
        None => (
            "UCS-2",
            text.chars().map(|c| c.len_utf16() as u32).collect(),
            70,
            67,
        ),
    };
    let units: u32 = widths.iter().sum();
    if units <= single {
        return (name, units, 1);
    }
    let (mut segments, mut used) = (1, 0);
    for w in widths {
        if used + w > multi {
            segments += 1;
            used = 0;
        }
        used += w;
    }
    (name, units, segments)
}

/// The SMS segments `text` takes.
pub fn sms_segments(text: &str) -> u32 {
    sms_encoding(text).2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_segments_follow_gsm_and_ucs2_limits() {
        assert_eq!(sms_encoding(&"a".repeat(160)), ("GSM-7", 160, 1));
        assert_eq!(sms_encoding(&"a".repeat(161)), ("GSM-7", 161, 2));
        assert_eq!(sms_encoding(&"a".repeat(306)), ("GSM-7", 306, 2));
        assert_eq!(sms_encoding(&"a".repeat(307)), ("GSM-7", 307, 3));
        assert_eq!(sms_encoding("{}€"), ("GSM-7", 6, 1));
        assert_eq!(sms_encoding(&"好".repeat(70)), ("UCS-2", 70, 1));
        assert_eq!(sms_encoding(&"好".repeat(71)), ("UCS-2", 71, 2));
        assert_eq!(sms_encoding(&"好".repeat(134)), ("UCS-2", 134, 2));
        assert_eq!(sms_encoding(&"好".repeat(135)), ("UCS-2", 135, 3));
        // One Chinese character makes the whole message UCS-2.
        assert_eq!(sms_encoding(&format!("{}好", "a".repeat(69))).2, 1);
        assert_eq!(sms_encoding(&format!("{}好", "a".repeat(70))).2, 2);
    }

    #[test]
    fn no_character_straddles_two_segments() {
        // 153 × € is 306 septets, but a segment holds 76 of them (152 septets), not 76.5.
        assert_eq!(sms_encoding(&"€".repeat(153)), ("GSM-7", 306, 3));
        assert_eq!(sms_encoding(&"€".repeat(152)), ("GSM-7", 304, 2));
        assert_eq!(sms_encoding(&format!("{}€", "a".repeat(158))).2, 1);
        assert_eq!(
            sms_encoding(&format!("{}€{}", "a".repeat(152), "a".repeat(152))).2,
            3
        );
        // A surrogate pair (😀 is two UTF-16 units) never splits a UCS-2 segment.
        assert_eq!(
            sms_encoding(&format!("{}😀{}", "好".repeat(66), "好".repeat(66))),
            ("UCS-2", 134, 3)
        );
        assert_eq!(
            sms_encoding(&format!("{}😀{}", "好".repeat(65), "好".repeat(67))),
            ("UCS-2", 134, 2)
        );
    }
}
