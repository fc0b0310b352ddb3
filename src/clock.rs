//! Injected time. Every deadline in muster (delivery retries now, escalation steps later) is
//! computed from a [`Clock`], so tests run a 15-minute ladder in milliseconds by moving a
//! [`ManualClock`] instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// A source of "now".
pub trait Clock: Send + Sync + 'static {
    /// The current time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> Millis;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        wall_ms()
    }
}

/// Wall-clock milliseconds, for things that are about process liveness rather than domain time.
pub fn wall_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// A clock that moves only when told to. Cloning shares the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
}

impl ManualClock {
    /// Starts at the current wall time.
    pub fn new() -> ManualClock {
        ManualClock::at(wall_ms())
    }

    /// Starts at `ms`.
    pub fn at(ms: Millis) -> ManualClock {
        ManualClock {
            now: Arc::new(AtomicI64::new(ms)),
        }
    }

    /// Moves time forward by `ms`.
    pub fn advance(&self, ms: Millis) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        self.now.load(Ordering::SeqCst)
    }
}

/// The wall clock plus an offset read from a file that a test rewrites: how a test moves the
/// time of several real processes at once (`engine.clock_offset_file`). A watcher thread
/// re-reads the file every 5 ms; a missing or unreadable file leaves the offset as it was.
#[derive(Debug, Clone)]
pub struct OffsetFileClock {
    offset: Arc<AtomicI64>,
}

impl OffsetFileClock {
    /// Starts watching `path`.
    pub fn watch(path: std::path::PathBuf) -> OffsetFileClock {
        let offset = Arc::new(AtomicI64::new(read_offset(&path).unwrap_or(0)));
        let shared = offset.clone();
        std::thread::Builder::new()
            .name("clock-offset".into())
            .spawn(move || {
                loop {
                    if let Some(ms) = read_offset(&path) {
                        shared.store(ms, Ordering::SeqCst);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            })
            .expect("spawn the clock-offset watcher");
        OffsetFileClock { offset }
    }
}

fn read_offset(path: &std::path::Path) -> Option<Millis> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl Clock for OffsetFileClock {
    fn now_ms(&self) -> Millis {
        wall_ms() + self.offset.load(Ordering::SeqCst)
    }
}

/// RFC 3339 text of a millisecond timestamp, in UTC, as jiff writes it
/// (`2026-11-29T08:00:00.5Z`: the fraction without trailing zeros, none when whole). Written
/// by hand from 1970 to the end of jiff's range: a board of 10,000 callouts formats 80,000 of these,
/// and jiff's general formatter took a third of its time. Outside that range, jiff's.
pub fn rfc3339(ms: Millis) -> String {
    const MAX: Millis = 253_402_207_200_000; // jiff's last instant, 9999-12-30T22:00:00Z
    if !(0..=MAX).contains(&ms) {
        return jiff::Timestamp::from_millisecond(ms)
            .map(|t| t.to_string())
            .unwrap_or_default();
    }
    let (days, in_day) = (ms / 86_400_000, ms % 86_400_000);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s, frac) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    let mut out = format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if frac != 0 {
        let f = format!(".{frac:03}");
        out.push_str(f.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn jiffs(ms: Millis) -> String {
        jiff::Timestamp::from_millisecond(ms).unwrap().to_string()
    }

    #[test]
    fn rfc3339_is_jiffs_text_at_the_edges() {
        for ms in [
            0,
            1,
            10,
            100,
            999,
            1000,
            86_399_999,
            86_400_000,
            951_782_400_000,     // 2000-02-29
            1_795_939_200_500,   // 2026-11-29T08:00:00.5Z
            4_107_542_400_000,   // 2100-03-01
            253_402_207_200_000, // the last instant formatted by hand
            -1,
        ] {
            assert_eq!(rfc3339(ms), jiffs(ms), "{ms}");
        }
        assert_eq!(rfc3339(253_402_207_200_001), "", "past jiff's range");
    }

    proptest! {
        #[test]
        fn rfc3339_is_jiffs_text(ms in 0i64..253_402_207_200_000) {
            prop_assert_eq!(rfc3339(ms), jiffs(ms));
        }
    }
}
