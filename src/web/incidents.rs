//! `/`: the incidents of the signed-in scope — the active ones as cards (level as colour *and*
//! text, kind and region by name, the drill banner, status, filled x/y per requirement, time
//! since raised), the stood-down ones below with a filter — and `/wall`, the active ones for a
//! wall screen, which follows them by itself.

use super::lang::Lang;
use super::session::{Signed, Who};
use super::{PageError, html};
use crate::api::AppState;
use crate::domain::incident::{Mode, Status};
use crate::domain::template::MessageVars;
use crate::seed::Seed;
use crate::store::incidents::IncidentView;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

/// One incident as a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// Id.
    pub id: String,
    /// 1–4.
    pub level: u8,
    /// Ⅳ级一般…
    pub level_text: String,
    /// The level's colour in words (红 … 蓝), beside the colour itself.
    pub colour: &'static str,
    /// The kind by name (洪涝).
    pub kind: String,
    /// The region by name.
    pub region: String,
    /// Title.
    pub title: String,
    /// A drill.
    pub drill: bool,
    /// The status's wire name (for styling).
    pub status: &'static str,
    /// The status in words.
    pub status_text: &'static str,
    /// "12 分钟前 (12 min ago)".
    pub since: String,
    /// Per requirement.
    pub requirements: Vec<Fill>,
}

/// How full one requirement is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fill {
    /// The team kind by name.
    pub team_kind: String,
    /// Accepted (arrived included).
    pub accepted: u32,
    /// Needed.
    pub needed: u32,
    /// The ladder ran out short.
    pub short: bool,
}

/// The status in words.
pub fn status_words(s: Status, l: Lang) -> &'static str {
    match s {
        Status::Mustering => l.t("集结中", "Mustering"),
        Status::Filled => l.t("已满员", "Filled"),
        Status::Short => l.t("缺员", "Short"),
        Status::StoodDown => l.t("已解除", "Stood down"),
        Status::Closed => l.t("已归档", "Closed"),
    }
}

/// A level's colour in words: Ⅰ red, Ⅱ orange, Ⅲ yellow, Ⅳ blue.
pub fn colour_words(level: u8, l: Lang) -> &'static str {
    match level {
        1 => l.t("红色", "red"),
        2 => l.t("橙色", "orange"),
        3 => l.t("黄色", "yellow"),
        _ => l.t("蓝色", "blue"),
    }
}

/// How long ago, in words.
pub fn ago(now_ms: i64, then_ms: i64, l: Lang) -> String {
    let mins = ((now_ms - then_ms).max(0) / 60_000) as u64;
    match (mins, l) {
        (0, _) => l.t("刚刚", "just now").into(),
        (m, Lang::Zh) if m < 60 => format!("{m} 分钟前"),
        (m, Lang::En) if m < 60 => format!("{m} min ago"),
        (m, Lang::Zh) if m < 48 * 60 => format!("{} 小时前", m / 60),
        (m, Lang::En) if m < 48 * 60 => format!("{} h ago", m / 60),
        (m, Lang::Zh) => format!("{} 天前", m / 1440),
        (m, Lang::En) => format!("{} d ago", m / 1440),
    }
}

/// An RFC 3339 time as milliseconds, if it is one.
pub fn millis_of(t: &str) -> Option<i64> {
    t.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

/// The card of an incident, its names in the page's language.
pub fn card(seed: &Seed, v: &IncidentView, now_ms: i64, lang: Lang) -> Card {
    let words = |team_kind: &str| {
        seed.templates.words(
            lang.locale(),
            &MessageVars {
                kind: &v.kind,
                level: v.level,
                team_kind,
                ..Default::default()
            },
        )
    };
    let w = words("");
    let raised = millis_of(&v.raised_at).unwrap_or(now_ms);
    Card {
        id: v.id.clone(),
        level: v.level,
        level_text: w.level,
        colour: colour_words(v.level, lang),
        kind: w.kind,
        region: seed.regions.name_of(&v.region),
        title: v.title.clone(),
        drill: v.mode == Mode::Drill,
        status: v.status.as_str(),
        status_text: status_words(v.status, lang),
        since: ago(now_ms, raised, lang),
        requirements: v
            .requirements
            .iter()
            .map(|r| Fill {
                team_kind: words(&r.team_kind).team_kind,
                accepted: r.accepted,
                needed: r.needed,
                short: r.short,
            })
            .collect(),
    }
}

/// The history filter of `/`.
#[derive(Debug, Default, Deserialize)]
pub struct HistoryFilter {
    /// An incident kind (`flood`), or all.
    #[serde(default)]
    kind: String,
    /// `live`, `drill`, or both.
    #[serde(default)]
    mode: String,
    /// Words the title or region name contains.
    #[serde(default)]
    q: String,
}

impl HistoryFilter {
    fn keeps(&self, v: &IncidentView, c: &Card) -> bool {
        let q = self.q.trim();
        (self.kind.is_empty() || v.kind == self.kind)
            && (self.mode.is_empty() || v.mode.as_str() == self.mode)
            && (q.is_empty() || c.title.contains(q) || c.region.contains(q))
    }
}

#[derive(Template)]
#[template(path = "incidents.html", config = "src/web/askama.toml")]
struct IncidentsPage {
    who: Option<Who>,
    lang: Lang,
    active: Vec<Card>,
    history: Vec<Card>,
    /// The kinds the filter offers: (code, name).
    kinds: Vec<(String, String)>,
    filter: HistoryFilter,
    /// CAP alerts waiting for a commander: (proposal, region name, level in words).
    proposals: Vec<(crate::api::cap_proposals::Proposal, String, String)>,
    /// The caller may confirm them.
    commander: bool,
    csrf: String,
}

/// The incident kinds of the plans, by code and name, for pickers and filters.
pub fn kinds(seed: &Seed, lang: Lang) -> Vec<(String, String)> {
    let mut ks: Vec<String> = seed.plans.iter().flat_map(|p| p.kinds.clone()).collect();
    ks.sort();
    ks.dedup();
    ks.into_iter()
        .map(|k| {
            let name = seed
                .templates
                .words(
                    lang.locale(),
                    &MessageVars {
                        kind: &k,
                        ..Default::default()
                    },
                )
                .kind;
            (k, name)
        })
        .collect()
}

/// `GET /`: the scope's incidents (303 to `/login` when not signed in).
pub async fn home(
    State(st): State<AppState>,
    signed: Signed,
    Query(filter): Query<HistoryFilter>,
) -> Result<Response, PageError> {
    let now = st.ctx.clock.now_ms();
    let lang = signed.lang;
    let (mut active, mut history) = (Vec::new(), Vec::new());
    for v in st.ctx.store.list_incidents(500).await? {
        if !signed.caller.sees(&st, &v.region) {
            continue;
        }
        let c = card(&st.ctx.seed, &v, now, lang);
        if v.status.is_active() {
            active.push(c);
        } else if filter.keeps(&v, &c) {
            history.push(c);
        }
    }
    Ok(html(&IncidentsPage {
        who: Some(signed.who(&st)),
        lang,
        active,
        history,
        kinds: kinds(&st.ctx.seed, lang),
        filter,
        proposals: crate::api::cap_proposals::proposals_in_scope(&st, &signed.caller)
            .await?
            .into_iter()
            .filter(|p| p.status == "pending")
            .map(|mut p| {
                let region = st.ctx.seed.regions.name_of(&p.region);
                if let Some((_, name)) = kinds(&st.ctx.seed, lang)
                    .into_iter()
                    .find(|k| k.0 == p.kind)
                {
                    p.kind = name;
                }
                let level = format!(
                    "{} · {}",
                    level_name(&st.ctx.seed, p.level, lang),
                    colour_words(p.level, lang)
                );
                (p, region, level)
            })
            .collect(),
        commander: signed.caller.role.may_command(),
        csrf: signed.csrf.clone(),
    }))
}

/// A level's name in the page's language (Ⅳ级一般 …).
fn level_name(seed: &Seed, level: u8, lang: Lang) -> String {
    seed.templates
        .words(
            lang.locale(),
            &MessageVars {
                level,
                ..Default::default()
            },
        )
        .level
}

#[derive(Template)]
#[template(path = "wall.html", config = "src/web/askama.toml")]
struct WallPage {
    lang: Lang,
    scope: String,
    now: String,
    active: Vec<Card>,
}

#[derive(Template)]
#[template(path = "wall_cards.html", config = "src/web/askama.toml")]
struct WallCards {
    lang: Lang,
    now: String,
    active: Vec<Card>,
}

/// The wall's cards: the scope's active incidents.
async fn wall_cards(st: &AppState, signed: &Signed) -> Result<(String, Vec<Card>), PageError> {
    let now = st.ctx.clock.now_ms();
    let active = st
        .ctx
        .store
        .list_incidents(500)
        .await?
        .iter()
        .filter(|v| v.status.is_active() && signed.caller.sees(st, &v.region))
        .map(|v| card(&st.ctx.seed, v, now, signed.lang))
        .collect();
    let clock = crate::clock::rfc3339(now)
        .chars()
        .take(16)
        .collect::<String>()
        .replace('T', " ")
        + " UTC";
    Ok((clock, active))
}

/// `GET /wall`: the scope's active incidents for a wall screen — large type, no controls.
/// Its script fetches `/wall/cards` every few seconds and keeps trying, saying so, while
/// muster is away (a restart), so the screen comes back on its own.
pub async fn wall(State(st): State<AppState>, signed: Signed) -> Result<Response, PageError> {
    let (now, active) = wall_cards(&st, &signed).await?;
    Ok(html(&WallPage {
        lang: signed.lang,
        scope: signed.who(&st).scope,
        now,
        active,
    }))
}

/// `GET /wall/cards`: the wall's cards alone, for its script to swap in.
pub async fn wall_fragment(
    State(st): State<AppState>,
    signed: Signed,
) -> Result<Response, PageError> {
    let (now, active) = wall_cards(&st, &signed).await?;
    Ok(html(&WallCards {
        lang: signed.lang,
        now,
        active,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_since_is_said_in_the_pages_language() {
        assert_eq!(ago(1_000, 0, Lang::Zh), "刚刚");
        assert_eq!(ago(12 * 60_000, 0, Lang::Zh), "12 分钟前");
        assert_eq!(ago(12 * 60_000, 0, Lang::En), "12 min ago");
        assert_eq!(ago(3 * 3_600_000, 0, Lang::Zh), "3 小时前");
        assert_eq!(ago(3 * 86_400_000, 0, Lang::En), "3 d ago");
        assert_eq!(
            ago(0, 5_000, Lang::Zh),
            "刚刚",
            "a clock behind is not negative"
        );
    }

    #[test]
    fn levels_have_their_colour_in_words() {
        assert_eq!(colour_words(1, Lang::Zh), "红色");
        assert_eq!(colour_words(4, Lang::En), "blue");
        assert_eq!(millis_of("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(millis_of("soon"), None);
    }
}
