//! The consumer loop every stream worker shares.
//!
//! Reads new entries with `XREADGROUP BLOCK` on its own connection (the shared one has a
//! response timeout that a blocking read would trip), hands them to the handler, and every
//! `engine.reclaim_interval_ms` claims entries idle longer than `engine.reclaim_idle_ms` —
//! the unfinished work of a dead instance. When Redis is away it backs off and resumes by
//! itself. Handlers acknowledge what they finish; anything else stays pending and is reclaimed.

use super::Ctx;
use crate::store::queue::Entry;
use crate::store::{Keys, StoreError};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// A stream consumer.
pub trait Handler: Send + Sync + 'static {
    /// The consumer group.
    fn group(&self) -> &'static str;
    /// The stream of partition `p`.
    fn stream(&self, keys: &Keys, p: u16) -> String;
    /// How many entries to read at once (backpressure).
    fn capacity(&self) -> usize {
        64
    }
    /// Handles entries; acknowledges those it finishes. An error leaves the rest pending.
    fn handle(
        &self,
        p: u16,
        entries: Vec<Entry>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Runs handler `h` on partition `p` until shutdown.
pub fn spawn<H: Handler>(ctx: Arc<Ctx>, h: Arc<H>, p: u16) -> JoinHandle<()> {
    tokio::spawn(async move { run(ctx, h, p).await })
}

async fn run<H: Handler>(ctx: Arc<Ctx>, h: Arc<H>, p: u16) {
    let stream = h.stream(&ctx.store.keys, p);
    let group = h.group();
    let mut shutdown = ctx.shutdown.clone();
    let reclaim_every = Duration::from_millis(ctx.config.engine.reclaim_interval_ms.max(50));
    let mut backoff = Backoff::new();
    let mut conn = None;
    let mut grouped = false;
    let mut last_reclaim = Instant::now() - reclaim_every;
    while !*shutdown.borrow() {
        if !grouped {
            match ctx.store.ensure_group(&stream, group).await {
                Ok(()) => grouped = true,
                Err(e) => {
                    backoff.wait(&mut shutdown, &stream, &e).await;
                    continue;
                }
            }
        }
        if last_reclaim.elapsed() >= reclaim_every {
            last_reclaim = Instant::now();
            let idle = ctx.config.engine.reclaim_idle_ms;
            match ctx
                .store
                .reclaim(&stream, group, &ctx.consumer, idle, 256)
                .await
            {
                Ok(entries) if !entries.is_empty() => {
                    tracing::info!(
                        stream,
                        group,
                        count = entries.len(),
                        "reclaimed idle entries"
                    );
                    metrics::counter!("muster_stream_reclaimed_total", "group" => group)
                        .increment(entries.len() as u64);
                    if let Err(e) = h.handle(p, entries).await {
                        backoff.wait(&mut shutdown, &stream, &e).await;
                        continue;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    conn = None;
                    grouped = !is_nogroup(&e);
                    backoff.wait(&mut shutdown, &stream, &e).await;
                    continue;
                }
            }
        }
        if conn.is_none() {
            match ctx.store.blocking_connection(&stream).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    backoff.wait(&mut shutdown, &stream, &e).await;
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("connected above");
        let read = ctx
            .store
            .read_group(c, &stream, group, &ctx.consumer, h.capacity(), 1000);
        let entries = tokio::select! {
            r = read => r,
            _ = shutdown.changed() => break,
        };
        match entries {
            Ok(entries) => {
                backoff.reset();
                if entries.is_empty() {
                    continue;
                }
                if let Err(e) = h.handle(p, entries).await {
                    // Unfinished entries stay pending; reclaim picks them up again.
                    last_reclaim = Instant::now() - reclaim_every;
                    backoff.wait(&mut shutdown, &stream, &e).await;
                }
            }
            Err(e) => {
                conn = None;
                grouped = !is_nogroup(&e);
                backoff.wait(&mut shutdown, &stream, &e).await;
            }
        }
    }
}

fn is_nogroup(e: &StoreError) -> bool {
    matches!(e, StoreError::Redis(r) if r.code() == Some("NOGROUP"))
}

/// Exponential backoff between 50 ms and 5 s, logging once per failure streak.
pub(crate) struct Backoff {
    delay: Duration,
    failing: bool,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff {
            delay: Duration::from_millis(50),
            failing: false,
        }
    }

    pub fn reset(&mut self) {
        if self.failing {
            tracing::info!("redis is back; worker resumed");
        }
        self.delay = Duration::from_millis(50);
        self.failing = false;
    }

    pub async fn wait(
        &mut self,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
        what: &str,
        e: &StoreError,
    ) {
        if !self.failing {
            tracing::warn!(stream = what, error = %e, "worker backing off");
        }
        self.failing = true;
        tokio::select! {
            _ = tokio::time::sleep(self.delay) => {}
            _ = shutdown.changed() => {}
        }
        self.delay = (self.delay * 2).min(Duration::from_secs(5));
    }
}
