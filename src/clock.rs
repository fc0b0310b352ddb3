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

/// RFC 3339 text of a millisecond timestamp, in UTC.
pub fn rfc3339(ms: Millis) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}
