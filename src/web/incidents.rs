//! `/`: the incidents of the signed-in scope — the active ones as cards (level as colour *and*
//! text, kind and region by name, the drill banner, status, filled x/y per requirement, time
//! since raised), the stood-down ones below.

use super::session::{Signed, Who};
use super::{PageError, html};
use crate::api::AppState;
use crate::domain::incident::{Mode, Status};
use crate::domain::template::MessageVars;
use crate::seed::Seed;
use crate::store::incidents::IncidentView;
use askama::Template;
use axum::extract::State;
use axum::response::Response;

/// One incident as a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// Id.
    pub id: String,
    /// 1–4.
    pub level: u8,
    /// Ⅳ级（一般）…
    pub level_text: String,
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
pub fn status_words(s: Status) -> &'static str {
    match s {
        Status::Mustering => "集结中 Mustering",
        Status::Filled => "已满员 Filled",
        Status::Short => "缺员 Short",
        Status::StoodDown => "已解除 Stood down",
        Status::Closed => "已归档 Closed",
    }
}

/// How long ago, in words both ways.
pub fn ago(now_ms: i64, then_ms: i64) -> String {
    let mins = ((now_ms - then_ms).max(0) / 60_000) as u64;
    match mins {
        0 => "刚刚 just now".into(),
        m if m < 60 => format!("{m} 分钟前 ({m} min ago)"),
        m if m < 48 * 60 => format!("{} 小时前 ({} h ago)", m / 60, m / 60),
        m => format!("{} 天前 ({} d ago)", m / 1440, m / 1440),
    }
}

/// The card of an incident, its names in zh-CN.
pub fn card(seed: &Seed, v: &IncidentView, now_ms: i64) -> Card {
    let words = |team_kind: &str| {
        seed.templates.words(
            "zh-CN",
            &MessageVars {
                kind: &v.kind,
                level: v.level,
                team_kind,
                ..Default::default()
            },
        )
    };
    let w = words("");
    let raised = jiff::Timestamp::strptime("%Y-%m-%dT%H:%M:%S%.fZ", &v.raised_at)
        .or_else(|_| v.raised_at.parse::<jiff::Timestamp>())
        .map(|t| t.as_millisecond())
        .unwrap_or(now_ms);
    Card {
        id: v.id.clone(),
        level: v.level,
        level_text: w.level,
        kind: w.kind,
        region: seed
            .regions
            .lookup(&v.region)
            .map(|r| r.name.clone())
            .unwrap_or_else(|| v.region.clone()),
        title: v.title.clone(),
        drill: v.mode == Mode::Drill,
        status: v.status.as_str(),
        status_text: status_words(v.status),
        since: ago(now_ms, raised),
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

#[derive(Template)]
#[template(path = "incidents.html", config = "src/web/askama.toml")]
struct IncidentsPage {
    who: Option<Who>,
    active: Vec<Card>,
    history: Vec<Card>,
}

/// `GET /`: the scope's incidents (303 to `/login` when not signed in).
pub async fn home(State(st): State<AppState>, signed: Signed) -> Result<Response, PageError> {
    let now = st.ctx.clock.now_ms();
    let (mut active, mut history) = (Vec::new(), Vec::new());
    for v in st.ctx.store.list_incidents(200).await? {
        if !signed.caller.sees(&st, &v.region) {
            continue;
        }
        let c = card(&st.ctx.seed, &v, now);
        if v.status.is_active() {
            active.push(c);
        } else {
            history.push(c);
        }
    }
    Ok(html(&IncidentsPage {
        who: Some(signed.who(&st)),
        active,
        history,
    }))
}

#[derive(Template)]
#[template(path = "wall.html", config = "src/web/askama.toml")]
struct WallPage {
    scope: String,
    now: String,
    active: Vec<Card>,
}

/// `GET /wall`: the scope's active incidents for a wall screen — large type, no controls,
/// refreshing itself every 15 s (a plain meta refresh: it comes back on its own after a muster
/// restart, with no script to break).
pub async fn wall(State(st): State<AppState>, signed: Signed) -> Result<Response, PageError> {
    let now = st.ctx.clock.now_ms();
    let active = st
        .ctx
        .store
        .list_incidents(200)
        .await?
        .iter()
        .filter(|v| v.status.is_active() && signed.caller.sees(&st, &v.region))
        .map(|v| card(&st.ctx.seed, v, now))
        .collect();
    Ok(html(&WallPage {
        scope: signed.who(&st).scope,
        now: crate::clock::rfc3339(now)
            .chars()
            .take(16)
            .collect::<String>()
            .replace('T', " ")
            + " UTC",
        active,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_since_is_said_both_ways() {
        assert_eq!(ago(1_000, 0), "刚刚 just now");
        assert_eq!(ago(12 * 60_000, 0), "12 分钟前 (12 min ago)");
        assert_eq!(ago(3 * 3_600_000, 0), "3 小时前 (3 h ago)");
        assert_eq!(ago(3 * 86_400_000, 0), "3 天前 (3 d ago)");
        assert_eq!(
            ago(0, 5_000),
            "刚刚 just now",
            "a clock behind is not negative"
        );
    }
}
