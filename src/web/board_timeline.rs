//! The board's timeline: the incident's typed events in words, newest first — milestones one
//! line each, bursts of answers and deliveries merged per requirement and minute.

use super::super::lang::Lang;
use super::{MAX_MOMENTS, Moment, clock_of, tier_words};
use crate::api::timeline::TimelineEvent;
use crate::domain::template::MessageVars;
use crate::seed::Seed;
use std::collections::BTreeMap;

/// The timeline, newest first: milestones one line each; answers, callouts made, deliveries
/// and failures of one requirement merged per minute into one line with counts.
pub(super) fn timeline(
    events: &[TimelineEvent],
    req_name: &dyn Fn(&str) -> String,
    seed: &Seed,
    kind: &str,
    l: Lang,
) -> Vec<Moment> {
    struct Bucket {
        minute: i64,
        req: String,
        tone: &'static str,
        at: i64,
        counts: BTreeMap<&'static str, u32>,
    }
    let mut out: Vec<(i64, Moment)> = Vec::new();
    let mut open: Vec<Bucket> = Vec::new();
    let flush = |b: Bucket, out: &mut Vec<(i64, Moment)>| {
        let parts: Vec<String> = b
            .counts
            .iter()
            .map(|(what, n)| format!("{what} {n}"))
            .collect();
        out.push((
            b.at,
            Moment {
                at: clock_of(b.at),
                tone: b.tone,
                text: if b.req.is_empty() {
                    parts.join(" · ")
                } else {
                    format!("{}: {}", req_name(&b.req), parts.join(" · "))
                },
            },
        ));
    };
    for e in events {
        let at = e.at_ms.unwrap_or(0);
        let req = e.requirement.clone().unwrap_or_default();
        let merged: Option<(&'static str, &'static str, u32)> = match e.kind.as_str() {
            "callouts.created" => Some(("delivery", l.t("呼叫", "called"), e.count.unwrap_or(0))),
            "callouts.notified" => {
                Some(("delivery", l.t("已通知", "notified"), e.count.unwrap_or(0)))
            }
            "callout.failed" => Some(("delivery", l.t("发送失败", "failed"), 1)),
            "callout.sms_delivered" => Some(("delivery", l.t("短信送达", "SMS delivered"), 1)),
            "callout.sms_undelivered" => {
                Some(("delivery", l.t("短信未送达", "SMS undelivered"), 1))
            }
            "callout.failover" => Some(("delivery", l.t("改用短信", "failed over"), 1)),
            "callout.accepted" => Some(("answers", l.t("接受", "accepted"), 1)),
            "callout.standby" => Some(("answers", l.t("候补", "standby"), 1)),
            "callout.declined" => Some(("answers", l.t("拒绝", "declined"), 1)),
            "callout.withdrawn" => Some(("answers", l.t("撤回", "withdrew"), 1)),
            "callout.arrived" => Some(("answers", l.t("到达", "arrived"), 1)),
            "callout.promoted" => Some(("answers", l.t("候补转正", "promoted"), 1)),
            _ => None,
        };
        if let Some((tone, what, n)) = merged {
            let minute = at / 60_000;
            let i = match open.iter().position(|b| b.req == req && b.tone == tone) {
                Some(i) if open[i].minute == minute => i,
                found => {
                    if let Some(i) = found {
                        flush(open.remove(i), &mut out);
                    }
                    open.push(Bucket {
                        minute,
                        req: req.clone(),
                        tone,
                        at,
                        counts: BTreeMap::new(),
                    });
                    open.len() - 1
                }
            };
            *open[i].counts.entry(what).or_default() += n;
            continue;
        }
        let text = milestone(e, &req, req_name, seed, kind, l);
        if let Some((tone, text)) = text {
            out.push((
                at,
                Moment {
                    at: clock_of(at),
                    tone,
                    text,
                },
            ));
        }
    }
    for b in open {
        flush(b, &mut out);
    }
    // Stable: equal times keep the order they happened in, reversed with the rest.
    out.sort_by_key(|(at, _)| *at);
    out.into_iter()
        .rev()
        .take(MAX_MOMENTS)
        .map(|(_, m)| m)
        .collect()
}

/// A milestone in words, with its tone; `None` for an event the timeline does not show.
fn milestone(
    e: &TimelineEvent,
    req: &str,
    req_name: &dyn Fn(&str) -> String,
    seed: &Seed,
    kind: &str,
    l: Lang,
) -> Option<(&'static str, String)> {
    let r = req_name(req);
    Some(match (e.kind.as_str(), l) {
        ("incident.raised", _) => ("milestone", l.t("发起事件", "Raised").to_string()),
        ("cap.received", _) => (
            "milestone",
            format!(
                "{}{}",
                l.t("CAP 预警：", "CAP alert: "),
                e.detail.as_deref().unwrap_or("")
            ),
        ),
        ("requirement.step", Lang::Zh) => (
            "milestone",
            format!(
                "{r}：第 {} 梯次，呼叫{}队伍",
                e.step.unwrap_or(0) + 1,
                tier_words(e.tier, l)
            ),
        ),
        ("requirement.step", Lang::En) => (
            "milestone",
            format!(
                "{r}: step {}, calling {} teams",
                e.step.unwrap_or(0) + 1,
                tier_words(e.tier, l)
            ),
        ),
        ("requirement.renotified", Lang::Zh) => (
            "milestone",
            format!("{r}：再次通知未回复的 {} 人", e.count.unwrap_or(0)),
        ),
        ("requirement.renotified", Lang::En) => (
            "milestone",
            format!("{r}: {} silent ones told again", e.count.unwrap_or(0)),
        ),
        ("requirement.short", Lang::Zh) => (
            "alert",
            format!(
                "{r} 缺员：需要 {}，仅 {} 人，已告警",
                e.needed.unwrap_or(0),
                e.taken.unwrap_or(0)
            ),
        ),
        ("requirement.short", Lang::En) => (
            "alert",
            format!(
                "{r} SHORT: {} needed, {} taken; alert sent",
                e.needed.unwrap_or(0),
                e.taken.unwrap_or(0)
            ),
        ),
        ("incident.upgraded", _) => {
            let level = seed
                .templates
                .words(
                    l.locale(),
                    &MessageVars {
                        kind,
                        level: e.level.unwrap_or(4),
                        ..Default::default()
                    },
                )
                .level;
            ("alert", format!("{} {level}", l.t("升级为", "Upgraded to")))
        }
        ("incident.filled", _) => ("milestone", l.t("全部满员", "All filled").to_string()),
        ("incident.short", _) => ("alert", l.t("事件缺员", "Incident short").to_string()),
        ("incident.mustering", _) => ("milestone", l.t("重新集结", "Mustering again").to_string()),
        ("incident.stood_down", _) => (
            "milestone",
            format!(
                "{}{}",
                l.t("解除", "Stood down"),
                e.detail
                    .as_ref()
                    .map(|by| format!(" ({by})"))
                    .unwrap_or_default()
            ),
        ),
        _ => return None,
    })
}
