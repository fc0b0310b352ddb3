//! iCalendar (RFC 5545) feeds of on-call shifts, for volunteers' phone calendars.
//!
//! Times are written in the roster's own time zone (`DTSTART;TZID=Europe/Berlin:…`) with a
//! `VTIMEZONE` built from the real transitions of that zone over the feed's span, so a
//! calendar shows a shift at the right hour on both sides of a DST change.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::fmt::Write;

/// One event of a feed.
#[derive(Debug, Clone)]
pub struct Event {
    /// Globally unique and stable across refreshes.
    pub uid: String,
    /// Start.
    pub start: Timestamp,
    /// End.
    pub end: Timestamp,
    /// Title.
    pub summary: String,
    /// Longer text.
    pub description: String,
}

/// A whole `VCALENDAR` named `name` with `events` in `tz` (`tz_name` its IANA name).
pub fn calendar(
    name: &str,
    tz_name: &str,
    tz: &TimeZone,
    now: Timestamp,
    events: &[Event],
) -> String {
    let mut out = String::new();
    line(&mut out, "BEGIN:VCALENDAR");
    line(&mut out, "VERSION:2.0");
    line(&mut out, "PRODID:-//muster//on-call//EN");
    line(&mut out, "CALSCALE:GREGORIAN");
    line(&mut out, "METHOD:PUBLISH");
    line(&mut out, &format!("X-WR-CALNAME:{}", escape(name)));
    line(&mut out, &format!("X-WR-TIMEZONE:{tz_name}"));
    let from = events.iter().map(|e| e.start).min().unwrap_or(now).min(now);
    let to = events.iter().map(|e| e.end).max().unwrap_or(now).max(now);
    vtimezone(&mut out, tz_name, tz, from, to);
    let stamp = utc(now);
    for e in events {
        line(&mut out, "BEGIN:VEVENT");
        line(&mut out, &format!("UID:{}", escape(&e.uid)));
        line(&mut out, &format!("DTSTAMP:{stamp}"));
        line(
            &mut out,
            &format!("DTSTART;TZID={tz_name}:{}", local(tz, e.start)),
        );
        line(
            &mut out,
            &format!("DTEND;TZID={tz_name}:{}", local(tz, e.end)),
        );
        line(&mut out, &format!("SUMMARY:{}", escape(&e.summary)));
        line(&mut out, &format!("DESCRIPTION:{}", escape(&e.description)));
        line(&mut out, "TRANSP:OPAQUE");
        line(&mut out, "END:VEVENT");
    }
    line(&mut out, "END:VCALENDAR");
    out
}

/// The zone's observances from before `from` through `to`: the one in force at `from`, then
/// one per transition.
fn vtimezone(out: &mut String, tz_name: &str, tz: &TimeZone, from: Timestamp, to: Timestamp) {
    line(out, "BEGIN:VTIMEZONE");
    line(out, &format!("TZID:{tz_name}"));
    let info = tz.to_offset_info(from);
    let mut prev = info.offset();
    observance(
        out,
        info.dst().is_dst(),
        &local(tz, from),
        prev,
        prev,
        info.abbreviation(),
    );
    for t in tz.following(from) {
        if t.timestamp() > to {
            break;
        }
        // DTSTART of an observance is the local time just before the change (in the old offset).
        let start = prev
            .to_datetime(t.timestamp())
            .strftime("%Y%m%dT%H%M%S")
            .to_string();
        observance(
            out,
            t.dst().is_dst(),
            &start,
            prev,
            t.offset(),
            t.abbreviation(),
        );
        prev = t.offset();
    }
    line(out, "END:VTIMEZONE");
}

fn observance(
    out: &mut String,
    dst: bool,
    start: &str,
    from: jiff::tz::Offset,
    to: jiff::tz::Offset,
    abbr: &str,
) {
    let kind = if dst { "DAYLIGHT" } else { "STANDARD" };
    line(out, &format!("BEGIN:{kind}"));
    line(out, &format!("DTSTART:{start}"));
    line(out, &format!("TZOFFSETFROM:{}", offset(from)));
    line(out, &format!("TZOFFSETTO:{}", offset(to)));
    if !abbr.is_empty() {
        line(out, &format!("TZNAME:{}", escape(abbr)));
    }
    line(out, &format!("END:{kind}"));
}

fn offset(o: jiff::tz::Offset) -> String {
    let secs = o.seconds();
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.abs();
    format!("{sign}{:02}{:02}", a / 3600, (a % 3600) / 60)
}

fn local(tz: &TimeZone, t: Timestamp) -> String {
    tz.to_datetime(t).strftime("%Y%m%dT%H%M%S").to_string()
}

fn utc(t: Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// TEXT escaping of RFC 5545 §3.3.11.
fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            ';' => o.push_str("\\;"),
            ',' => o.push_str("\\,"),
            '\n' => o.push_str("\\n"),
            '\r' => {}
            c => o.push(c),
        }
    }
    o
}

/// Writes a content line folded at 75 octets (never inside a UTF-8 character), CRLF-ended.
fn line(out: &mut String, content: &str) {
    let mut width = 0;
    for c in content.chars() {
        let n = c.len_utf8();
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += n;
    }
    let _ = out.write_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn berlin_feed_has_both_observances_and_local_times() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let start: Timestamp = "2026-03-28T07:00:00Z".parse().unwrap(); // 08:00 CET
        let end: Timestamp = "2026-03-29T06:00:00Z".parse().unwrap(); // 08:00 CEST
        let ev = Event {
            uid: "x@muster".into(),
            start,
            end,
            summary: "值班: 救援队, rescue; team".into(),
            description: "a".repeat(100),
        };
        let cal = calendar("张* on call", "Europe/Berlin", &tz, start, &[ev]);
        assert!(
            cal.contains("DTSTART;TZID=Europe/Berlin:20260328T080000\r\n"),
            "{cal}"
        );
        assert!(
            cal.contains("DTEND;TZID=Europe/Berlin:20260329T080000\r\n"),
            "{cal}"
        );
        assert!(cal.contains("BEGIN:DAYLIGHT\r\nDTSTART:20260329T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200"), "{cal}");
        assert!(
            cal.contains("SUMMARY:值班: 救援队\\, rescue\\; team"),
            "{cal}"
        );
        for l in cal.split("\r\n") {
            assert!(l.len() <= 75, "line over 75 octets: {l}");
        }
        assert!(cal.ends_with("END:VCALENDAR\r\n"));
    }
}
