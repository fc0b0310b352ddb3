//! Message templates per locale (zh-CN default, en), and their rendering.
//!
//! A template is text with `{placeholders}`. Unknown placeholders are a seed error reported by
//! `muster check`, never a runtime surprise.

pub use super::segments::{sms_encoding, sms_segments};
use serde::Deserialize;
use std::collections::HashMap;

/// The locale used when a volunteer's locale has no templates.
pub const DEFAULT_LOCALE: &str = "zh-CN";

/// The message kinds every locale must define.
pub const MESSAGE_KINDS: [&str; 4] = ["callout", "standby", "promoted", "stand_down"];

/// Message kinds a locale may define: `recall`, a call-out sent again to those who stayed
/// silent (a ladder step with `renotify`); without it the `callout` text is sent again.
pub const OPTIONAL_MESSAGE_KINDS: [&str; 1] = ["recall"];

/// SMS texts a locale may define in `[sms]`: the messages (a shorter form of `[messages]`,
/// carrying the reply code instead of the link) and the answers to a volunteer's reply.
pub const SMS_KINDS: [&str; 16] = [
    "callout",
    "recall",
    "standby",
    "promoted",
    "stand_down",
    "reply_accepted",
    "reply_standby",
    "reply_declined",
    "reply_arrived",
    "reply_withdrawn",
    "reply_closed",
    "reply_which",
    "reply_unknown",
    "reply_stopped",
    "reply_engaged",
    "reply_nothing_open",
];

/// Placeholders a template may use.
pub const PLACEHOLDERS: [&str; 10] = [
    "title",
    "kind",
    "level",
    "region",
    "team_kind",
    "link",
    "code",
    "name",
    "drill",
    "codes",
];

/// One locale's templates, as written in `templates/<locale>.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocaleTemplates {
    /// Prefix of every drill message (【演练】 / [DRILL]).
    pub drill_prefix: String,
    /// Message texts by kind (`callout`, `standby`, `promoted`, `stand_down`).
    pub messages: HashMap<String, String>,
    /// Display names of incident kinds (flood → 洪涝).
    #[serde(default)]
    pub incident_kinds: HashMap<String, String>,
    /// Display names of team kinds (rescue → 救援).
    #[serde(default)]
    pub team_kinds: HashMap<String, String>,
    /// Display names of levels 1–4 (1 → Ⅰ级（特别重大）).
    #[serde(default)]
    pub levels: HashMap<String, String>,
    /// Texts of the ack page and answers (`accept`, `decline`, …).
    #[serde(default)]
    pub page: HashMap<String, String>,
    /// SMS texts by kind ([`SMS_KINDS`]); a message kind missing here is sent as its
    /// `[messages]` text.
    #[serde(default)]
    pub sms: HashMap<String, String>,
}

/// All locales.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    /// By locale tag.
    pub locales: HashMap<String, LocaleTemplates>,
}

/// The values a message is rendered with.
#[derive(Debug, Clone, Default)]
pub struct MessageVars<'a> {
    /// Incident title.
    pub title: &'a str,
    /// Incident kind (wire name; shown by its display name).
    pub kind: &'a str,
    /// Level 1–4.
    pub level: u8,
    /// Region display name.
    pub region: &'a str,
    /// Team kind (wire name).
    pub team_kind: &'a str,
    /// Ack link.
    pub link: &'a str,
    /// SMS reply code.
    pub code: &'a str,
    /// The volunteer's name.
    pub name: &'a str,
    /// Whether the incident is a drill.
    pub drill: bool,
    /// Open reply codes of a number (for `reply_which`).
    pub codes: &'a str,
}

/// Display names of a message (see [`Templates::words`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    /// The incident kind (洪涝).
    pub kind: String,
    /// The level (Ⅳ级一般).
    pub level: String,
    /// The team kind (救援).
    pub team_kind: String,
}

impl Templates {
    /// The templates of `locale`, falling back to the default locale.
    pub fn locale(&self, locale: &str) -> Option<&LocaleTemplates> {
        self.locales
            .get(locale)
            .or_else(|| self.locales.get(DEFAULT_LOCALE))
    }

    /// Whether `locale` (or the default locale standing in for it) has message `kind`.
    pub fn has(&self, locale: &str, kind: &str) -> bool {
        self.locale(locale)
            .is_some_and(|t| t.messages.contains_key(kind))
    }

    /// Renders message `kind` for `locale`; drills get the drill prefix.
    pub fn render(&self, locale: &str, kind: &str, v: &MessageVars<'_>) -> String {
        let Some(t) = self.locale(locale) else {
            return format!("{} {}", v.title, v.link);
        };
        let text = t
            .messages
            .get(kind)
            .map(String::as_str)
            .unwrap_or("{title}");
        Self::render_text(t, text, v)
    }

    /// Renders SMS text `kind` for `locale` (its `[sms]` text, else its `[messages]` one),
    /// shortening the incident title with "…" until it fits in `max_segments` segments.
    pub fn render_sms(
        &self,
        locale: &str,
        kind: &str,
        v: &MessageVars<'_>,
        max_segments: u32,
    ) -> String {
        let Some(t) = self.locale(locale) else {
            return v.title.to_string();
        };
        let Some(text) = t.sms.get(kind).or_else(|| t.messages.get(kind)) else {
            return v.title.to_string();
        };
        let mut out = Self::render_text(t, text, v);
        let title: Vec<char> = v.title.chars().collect();
        // "…" is not in the GSM alphabet: on a GSM-7 text it would turn the whole message into
        // UCS-2 (less than half the characters per segment), so GSM-7 texts get "...".
        let ellipsis: &[char] = if sms_encoding(&out).0 == "GSM-7" {
            &['.', '.', '.']
        } else {
            &['…']
        };
        let mut keep = title.len();
        while sms_segments(&out) > max_segments && keep > 0 {
            keep -= 1;
            let short: String = title[..keep].iter().chain(ellipsis.iter()).collect();
            out = Self::render_text(
                t,
                text,
                &MessageVars {
                    title: &short,
                    ..v.clone()
                },
            );
        }
        out
    }

    /// Every SMS text of every locale rendered with `sample` values (4-digit codes), and the
    /// segments each takes: (locale, kind, encoding, units, segments), sorted.
    pub fn sms_report(
        &self,
        sample: &MessageVars<'_>,
    ) -> Vec<(String, String, &'static str, u32, u32)> {
        let mut out = Vec::new();
        for (locale, t) in &self.locales {
            for kind in SMS_KINDS {
                if !t.sms.contains_key(kind) && !MESSAGE_KINDS.contains(&kind) {
                    continue;
                }
                let text = self.render_sms(locale, kind, sample, u32::MAX);
                let (enc, units, segments) = sms_encoding(&text);
                out.push((locale.clone(), kind.to_string(), enc, units, segments));
            }
        }
        out.sort();
        out
    }

    fn render_text(t: &LocaleTemplates, text: &str, v: &MessageVars<'_>) -> String {
        let level_key = v.level.to_string();
        let lookup = |map: &HashMap<String, String>, k: &str| -> String {
            map.get(k).cloned().unwrap_or_else(|| k.to_string())
        };
        let body = fill(text, |name| match name {
            "title" => Some(v.title.to_string()),
            "kind" => Some(lookup(&t.incident_kinds, v.kind)),
            "level" => Some(lookup(&t.levels, &level_key)),
            "region" => Some(v.region.to_string()),
            "team_kind" => Some(lookup(&t.team_kinds, v.team_kind)),
            "link" => Some(v.link.to_string()),
            "code" => Some(v.code.to_string()),
            "name" => Some(v.name.to_string()),
            "codes" => Some(v.codes.to_string()),
            "drill" => Some(if v.drill {
                t.drill_prefix.clone()
            } else {
                String::new()
            }),
            _ => None,
        });
        if v.drill && !text.contains("{drill}") {
            format!("{}{}", t.drill_prefix, body)
        } else {
            body
        }
    }

    /// The display names a message uses, in `locale`'s words: the incident kind (洪涝), the
    /// level (Ⅳ级一般), the team kind (救援). A name the locale lacks stays as written.
    pub fn words(&self, locale: &str, v: &MessageVars<'_>) -> Words {
        let name = |map: Option<&HashMap<String, String>>, k: &str| {
            map.and_then(|m| m.get(k).cloned())
                .unwrap_or_else(|| k.to_string())
        };
        let t = self.locale(locale);
        Words {
            kind: name(t.map(|t| &t.incident_kinds), v.kind),
            level: name(t.map(|t| &t.levels), &v.level.to_string()),
            team_kind: name(t.map(|t| &t.team_kinds), v.team_kind),
        }
    }

    /// A page text with placeholders (`summary`: what the call-out is about, without the
    /// link or reply code a message carries), rendered like a message (drills prefixed);
    /// `{title}` where the locale has no such text.
    pub fn render_page(&self, locale: &str, key: &str, v: &MessageVars<'_>) -> String {
        let Some(t) = self.locale(locale) else {
            return v.title.to_string();
        };
        let text = t.page.get(key).map(String::as_str).unwrap_or("{title}");
        Self::render_text(t, text, v)
    }

    /// A page text (`accept`, `decline`, …) for `locale`, or the key itself.
    pub fn page_text(&self, locale: &str, key: &str) -> String {
        self.locale(locale)
            .and_then(|t| t.page.get(key).cloned())
            .unwrap_or_else(|| key.to_string())
    }
}

/// Replaces `{name}` with `value(name)`; unknown names stay as written. `{{` is a literal `{`.
pub fn fill(text: &str, mut value: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('{') {
            out.push('{');
            rest = stripped;
            continue;
        }
        match after.find('}') {
            Some(j) => {
                let name = &after[..j];
                match value(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[j + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The placeholders used in a template text (for `muster check`).
pub fn placeholders(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    fill(text, |name| {
        found.push(name.to_string());
        Some(String::new())
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates() -> Templates {
        let zh: LocaleTemplates = toml::from_str(
            r#"
drill_prefix = "【演练】"
incident_kinds = { flood = "洪涝" }
team_kinds = { rescue = "救援" }
levels = { "4" = "Ⅳ级" }
[messages]
callout = "{kind}{level}：{title}，请{team_kind}队员回复。{link}"
"#,
        )
        .unwrap();
        Templates {
            locales: [("zh-CN".to_string(), zh)].into(),
        }
    }

    #[test]
    fn renders_display_names_and_drill_prefix() {
        let t = templates();
        let mut v = MessageVars {
            title: "河堤险情",
            kind: "flood",
            level: 4,
            team_kind: "rescue",
            link: "L",
            ..Default::default()
        };
        assert_eq!(
            t.render("zh-CN", "callout", &v),
            "洪涝Ⅳ级：河堤险情，请救援队员回复。L"
        );
        v.drill = true;
        assert!(t.render("en", "callout", &v).starts_with("【演练】洪涝"));
    }

    #[test]
    fn shortening_a_gsm_title_keeps_the_text_gsm() {
        let mut t = templates();
        let mut en = t.locales["zh-CN"].clone();
        en.drill_prefix = "[DRILL] ".into();
        en.sms
            .insert("callout".into(), "{title}: reply {code}Y".into());
        t.locales.insert("en".into(), en);
        let title = "levee breach at the north dike ".repeat(20);
        let v = MessageVars {
            title: &title,
            code: "23",
            ..Default::default()
        };
        let text = t.render_sms("en", "callout", &v, 2);
        assert_eq!(sms_encoding(&text).0, "GSM-7", "{text}");
        assert_eq!(sms_segments(&text), 2, "{text}");
        assert!(text.ends_with("...: reply 23Y"), "{text}");
        assert!(
            text.len() > 250,
            "most of two GSM-7 segments is used: {text}"
        );
    }

    #[test]
    fn a_long_title_is_shortened_to_fit_the_segments() {
        let mut t = templates();
        let zh = t.locales.get_mut("zh-CN").unwrap();
        zh.sms
            .insert("callout".into(), "{title}：回复{code}Y能来".into());
        let title = "河".repeat(200);
        let v = MessageVars {
            title: &title,
            code: "23",
            ..Default::default()
        };
        let text = t.render_sms("zh-CN", "callout", &v, 2);
        assert_eq!(sms_segments(&text), 2, "{text}");
        assert!(text.ends_with("…：回复23Y能来"), "{text}");
        let short = MessageVars {
            title: "河堤",
            code: "23",
            ..Default::default()
        };
        assert_eq!(
            t.render_sms("zh-CN", "callout", &short, 2),
            "河堤：回复23Y能来"
        );
    }

    #[test]
    fn fill_keeps_unknown_and_escapes() {
        assert_eq!(fill("a{x}b{{c", |_| None), "a{x}b{c");
        assert_eq!(fill("{y} {unclosed", |_| Some("Y".into())), "Y {unclosed");
        assert_eq!(placeholders("{a}{b}"), ["a", "b"]);
    }
}
