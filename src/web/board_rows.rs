//! Which responders a board lists and in what order: `?sort=`, `?only=` and `?page=`.

use crate::api::callouts::CalloutView;
use crate::domain::callout::CalloutState;
use serde::Deserialize;

/// How the responders are listed: `?sort=` and `?only=` on the board.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Rows {
    /// `called` (default), `name`, `team`, `tier`, `state`, `answered`.
    #[serde(default)]
    pub sort: String,
    /// `open` (not answered), `accepted`, `declined`, or everyone.
    #[serde(default)]
    pub only: String,
    /// The page of rows (0 = the first [`MAX_ROWS`]).
    #[serde(default)]
    pub page: usize,
}

impl Rows {
    pub(super) fn keeps(&self, state: Option<CalloutState>) -> bool {
        use CalloutState::*;
        match self.only.as_str() {
            "open" => matches!(state, Some(Pending | Notified | Silent)),
            "accepted" => matches!(state, Some(Accepted | Arrived | Standby)),
            "declined" => matches!(state, Some(Declined | Withdrawn | Failed)),
            _ => true,
        }
    }

    /// The board's link with this sort (the filter kept, the first page).
    pub fn sort_link(&self, sort: &str) -> String {
        query(sort, &self.only, 0)
    }

    /// The board's link with this filter (the sort kept, the first page).
    pub fn only_link(&self, only: &str) -> String {
        query(&self.sort, only, 0)
    }

    /// The board's link to another page of rows (sort and filter kept).
    pub fn page_link(&self, page: usize) -> String {
        query(&self.sort, &self.only, page)
    }

    /// The same rows again (the live details' address).
    pub fn same(&self) -> String {
        query(&self.sort, &self.only, self.page)
    }
}

fn query(sort: &str, only: &str, page: usize) -> String {
    let mut q = Vec::new();
    if !sort.is_empty() && sort != "called" {
        q.push(format!("sort={sort}"));
    }
    if !only.is_empty() {
        q.push(format!("only={only}"));
    }
    if page > 0 {
        q.push(format!("page={page}"));
    }
    if q.is_empty() {
        "?".into()
    } else {
        format!("?{}#responders", q.join("&"))
    }
}

/// Sorts the rows: by the column asked, then in calling order. `state` puts the ones to chase
/// (silent, then waiting) first.
pub(super) fn sort_rows(
    rows: &mut [&CalloutView],
    by: &str,
    team: &dyn Fn(&CalloutView) -> String,
) {
    fn chase(s: Option<CalloutState>) -> u8 {
        use CalloutState::*;
        match s {
            Some(Silent) => 0,
            Some(Notified) => 1,
            Some(Pending) => 2,
            Some(Failed) => 3,
            Some(Declined) => 4,
            Some(Withdrawn) => 5,
            Some(Standby) => 6,
            Some(Accepted) => 7,
            Some(Arrived) => 8,
            Some(StoodDown) | None => 9,
        }
    }
    match by {
        "name" => rows.sort_by(|a, b| a.volunteer_name.cmp(&b.volunteer_name)),
        "team" => rows.sort_by_cached_key(|c| team(c)),
        "tier" => rows.sort_by_key(|c| c.tier.map(|t| t as u8)),
        "state" => rows.sort_by_key(|c| chase(c.state)),
        "answered" => rows.sort_by(|a, b| {
            (a.answered_at.is_none(), &a.answered_at)
                .cmp(&(b.answered_at.is_none(), &b.answered_at))
        }),
        _ => {}
    }
}
