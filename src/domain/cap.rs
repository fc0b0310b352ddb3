//! OASIS CAP 1.2 alerts, read: the parts muster acts on, from a document that is checked
//! before anything is believed. The parser (roxmltree) is told to refuse a DTD, and the text
//! is refused before parsing if it holds a `<!DOCTYPE` or `<!ENTITY` at all, so no entity is
//! ever expanded (XXE, billion laughs); the document's size and node count are bounded.
//! Every refusal names the element at fault.

use std::fmt;

/// The CAP 1.2 namespace.
pub const NS: &str = "urn:oasis:names:tc:emergency:cap:1.2";

/// The largest document read (bytes).
pub const MAX_BYTES: usize = 1024 * 1024;

/// The most XML nodes read.
const MAX_NODES: u32 = 50_000;

/// Why a document is not an alert muster can read: the element at fault and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapError {
    /// The element, as a path (`alert.info.severity`), or `body`.
    pub element: String,
    /// What is wrong.
    pub reason: String,
    /// The document is over [`MAX_BYTES`] (413).
    pub too_large: bool,
}

impl CapError {
    fn new(element: &str, reason: impl Into<String>) -> CapError {
        CapError {
            element: element.into(),
            reason: reason.into(),
            too_large: false,
        }
    }
}

impl fmt::Display for CapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.element, self.reason)
    }
}

/// `<status>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapStatus {
    Actual,
    Exercise,
    System,
    Test,
    Draft,
}

impl CapStatus {
    /// The CAP name.
    pub fn as_str(self) -> &'static str {
        match self {
            CapStatus::Actual => "Actual",
            CapStatus::Exercise => "Exercise",
            CapStatus::System => "System",
            CapStatus::Test => "Test",
            CapStatus::Draft => "Draft",
        }
    }
}

/// `<msgType>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgType {
    Alert,
    Update,
    Cancel,
    Ack,
    Error,
}

impl MsgType {
    /// The CAP name.
    pub fn as_str(self) -> &'static str {
        match self {
            MsgType::Alert => "Alert",
            MsgType::Update => "Update",
            MsgType::Cancel => "Cancel",
            MsgType::Ack => "Ack",
            MsgType::Error => "Error",
        }
    }
}

/// One earlier alert a `<references>` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub sender: String,
    pub identifier: String,
    pub sent: String,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{},{}", self.sender, self.identifier, self.sent)
    }
}

/// An `<area>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Area {
    /// `<areaDesc>`.
    pub desc: String,
    /// `<geocode>`s as (valueName, value).
    pub geocodes: Vec<(String, String)>,
}

/// The `<info>` muster acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// `<language>` (default `en-US`).
    pub language: String,
    /// `<category>`s.
    pub categories: Vec<String>,
    /// `<event>`.
    pub event: String,
    /// `<urgency>`, `<severity>`, `<certainty>`.
    pub urgency: String,
    pub severity: String,
    pub certainty: String,
    /// `<headline>`.
    pub headline: Option<String>,
    /// `<description>`.
    pub description: Option<String>,
    /// `<area>`s.
    pub areas: Vec<Area>,
}

/// An alert, as far as muster reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub identifier: String,
    pub sender: String,
    pub sent: String,
    pub status: CapStatus,
    pub msg_type: MsgType,
    pub scope: String,
    /// `<references>`, in order.
    pub references: Vec<Reference>,
    /// The `<info>` in zh-CN (or another zh) when there is one, else the first.
    pub info: Option<Info>,
}

impl Alert {
    /// `sender,identifier,sent`: how CAP names this alert in a reference.
    pub fn reference(&self) -> String {
        format!("{},{},{}", self.sender, self.identifier, self.sent)
    }
}

/// The incident level a `<severity>` means: Extreme 1, Severe 2, Moderate 3, Minor 4; also
/// 红/橙/黄/蓝 (预警 colours) and I–IV (Ⅰ–Ⅳ, 1–4). `None` for `Unknown` or anything else.
pub fn level_of(severity: &str) -> Option<u8> {
    let s = severity.trim();
    let s = s
        .strip_suffix("级")
        .or_else(|| s.strip_suffix("色"))
        .unwrap_or(s)
        .trim();
    Some(match s.to_ascii_lowercase().as_str() {
        "extreme" | "红" | "i" | "Ⅰ" | "1" => 1,
        "severe" | "橙" | "ii" | "Ⅱ" | "2" => 2,
        "moderate" | "黄" | "iii" | "Ⅲ" | "3" => 3,
        "minor" | "蓝" | "iv" | "Ⅳ" | "4" => 4,
        _ => return None,
    })
}

/// Reads a CAP 1.2 alert from `bytes`; see the module text for what is refused.
pub fn parse(bytes: &[u8]) -> Result<Alert, CapError> {
    if bytes.len() > MAX_BYTES {
        return Err(CapError {
            too_large: true,
            ..CapError::new("body", format!("the document is over {} bytes", MAX_BYTES))
        });
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| CapError::new("body", format!("not UTF-8 text: {e}")))?;
    let upper = text.to_ascii_uppercase();
    if upper.contains("<!DOCTYPE") || upper.contains("<!ENTITY") {
        return Err(CapError::new(
            "DOCTYPE",
            "a document type or entity declaration is not accepted (CAP needs none)",
        ));
    }
    let opt = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, opt)
        .map_err(|e| CapError::new("body", format!("not well-formed XML: {e}")))?;
    let root = doc.root_element();
    if root.tag_name().name() != "alert" {
        return Err(CapError::new(
            "alert",
            format!(
                "the root element is <{}>, not a CAP <alert>",
                root.tag_name().name()
            ),
        ));
    }
    match root.tag_name().namespace() {
        Some(NS) => {}
        other => {
            return Err(CapError::new(
                "alert",
                format!(
                    "namespace {} is not CAP 1.2 ({NS})",
                    other.map_or("(none)".to_string(), |n| format!("`{n}`"))
                ),
            ));
        }
    }
    let identifier = required(root, "alert", "identifier")?;
    let sender = required(root, "alert", "sender")?;
    let sent = required(root, "alert", "sent")?;
    if sent.parse::<jiff::Timestamp>().is_err() {
        return Err(CapError::new(
            "alert.sent",
            format!("`{sent}` is not a date and time with an offset"),
        ));
    }
    for (name, v) in [("identifier", &identifier), ("sender", &sender)] {
        if v.chars()
            .any(|c| c.is_whitespace() || c == ',' || c == '<' || c == '&')
        {
            return Err(CapError::new(
                &format!("alert.{name}"),
                "must not hold spaces, commas, < or &",
            ));
        }
        if v.chars().count() > 200 {
            return Err(CapError::new(
                &format!("alert.{name}"),
                "longer than 200 characters",
            ));
        }
    }
    let status = match required(root, "alert", "status")?.as_str() {
        "Actual" => CapStatus::Actual,
        "Exercise" => CapStatus::Exercise,
        "System" => CapStatus::System,
        "Test" => CapStatus::Test,
        "Draft" => CapStatus::Draft,
        other => {
            return Err(CapError::new(
                "alert.status",
                format!("`{other}` is not Actual, Exercise, System, Test or Draft"),
            ));
        }
    };
    let msg_type = match required(root, "alert", "msgType")?.as_str() {
        "Alert" => MsgType::Alert,
        "Update" => MsgType::Update,
        "Cancel" => MsgType::Cancel,
        "Ack" => MsgType::Ack,
        "Error" => MsgType::Error,
        other => {
            return Err(CapError::new(
                "alert.msgType",
                format!("`{other}` is not Alert, Update, Cancel, Ack or Error"),
            ));
        }
    };
    let scope = required(root, "alert", "scope")?;
    let references = match child_text(root, "references") {
        None => vec![],
        Some(r) => r
            .split_whitespace()
            .map(|t| {
                let parts: Vec<&str> = t.split(',').collect();
                match parts.as_slice() {
                    [s, i, at] if !s.is_empty() && !i.is_empty() && !at.is_empty() => {
                        Ok(Reference {
                            sender: s.to_string(),
                            identifier: i.to_string(),
                            sent: at.to_string(),
                        })
                    }
                    _ => Err(CapError::new(
                        "alert.references",
                        format!("`{t}` is not a sender,identifier,sent triple"),
                    )),
                }
            })
            .collect::<Result<_, _>>()?,
    };
    if matches!(msg_type, MsgType::Update | MsgType::Cancel) && references.is_empty() {
        return Err(CapError::new(
            "alert.references",
            format!("an {} must name the alert it changes", msg_type.as_str()),
        ));
    }
    let infos: Vec<roxmltree::Node> = children(root, "info").collect();
    let mut parsed = Vec::with_capacity(infos.len());
    for n in infos {
        parsed.push(info(n)?);
    }
    let info = parsed
        .iter()
        .position(|i| i.language.eq_ignore_ascii_case("zh-CN"))
        .or_else(|| {
            parsed
                .iter()
                .position(|i| i.language.to_ascii_lowercase().starts_with("zh"))
        })
        .or(if parsed.is_empty() { None } else { Some(0) })
        .map(|i| parsed.swap_remove(i));
    if msg_type == MsgType::Alert && status != CapStatus::Draft && info.is_none() {
        return Err(CapError::new(
            "alert.info",
            "an Alert needs an <info> (event, severity, area) to act on",
        ));
    }
    Ok(Alert {
        identifier,
        sender,
        sent,
        status,
        msg_type,
        scope,
        references,
        info,
    })
}

fn info(n: roxmltree::Node) -> Result<Info, CapError> {
    let categories: Vec<String> = children(n, "category")
        .filter_map(|c| c.text().map(|t| t.trim().to_string()))
        .filter(|c| !c.is_empty())
        .collect();
    if categories.is_empty() {
        return Err(CapError::new(
            "alert.info.category",
            "required element missing",
        ));
    }
    let mut areas = Vec::new();
    for a in children(n, "area") {
        let desc = required(a, "alert.info.area", "areaDesc")?;
        let geocodes = children(a, "geocode")
            .map(|g| {
                Ok((
                    required(g, "alert.info.area.geocode", "valueName")?,
                    required(g, "alert.info.area.geocode", "value")?,
                ))
            })
            .collect::<Result<_, CapError>>()?;
        areas.push(Area { desc, geocodes });
    }
    Ok(Info {
        language: child_text(n, "language").unwrap_or_else(|| "en-US".into()),
        categories,
        event: required(n, "alert.info", "event")?,
        urgency: required(n, "alert.info", "urgency")?,
        severity: required(n, "alert.info", "severity")?,
        certainty: required(n, "alert.info", "certainty")?,
        headline: child_text(n, "headline"),
        description: child_text(n, "description"),
        areas,
    })
}

fn children<'a, 'i>(
    n: roxmltree::Node<'a, 'i>,
    name: &'static str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    n.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

/// The trimmed text of `n`'s first child `name`, if it has any.
fn child_text(n: roxmltree::Node, name: &'static str) -> Option<String> {
    children(n, name)
        .next()
        .and_then(|c| c.text())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// The text of `n`'s child `name`, or the error naming `at.name` as missing.
fn required(n: roxmltree::Node, at: &str, name: &'static str) -> Result<String, CapError> {
    child_text(n, name)
        .ok_or_else(|| CapError::new(&format!("{at}.{name}"), "required element missing"))
}

#[cfg(test)]
#[path = "cap_tests.rs"]
mod tests;
