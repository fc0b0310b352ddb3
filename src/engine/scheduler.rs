//! Moves due delivery retries from each partition's `delayed` set back to its delivery stream,
//! fires due escalation timers from its `timers` set onto its bus, and raises scheduled
//! drills whose time has come ([`crate::api::drills::fire_due`]). Each move is one script,
//! so with many instances ticking, each retry moves and each timer fires exactly once. Due
//! times are on the injected clock: tests move time instead of sleeping.
//!
//! Every [`TRIM_EVERY`] it also trims each partition's `bus` and `deliveries` streams below
//! what every consumer group has finished ([`crate::store::Store::trim_finished`]): streams
//! are never trimmed by length, which could cut a backlog nobody has read yet.

use super::Ctx;
use super::worker::Backoff;
use std::sync::Arc;
use std::time::Duration;

/// How often the finished part of the streams is trimmed (wall time).
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// How often incidents past `retention.incident_days` are looked for (wall time).
pub const RETIRE_EVERY: Duration = Duration::from_secs(600);

/// Runs until shutdown.
pub async fn run(ctx: Arc<Ctx>) {
    let tick = Duration::from_millis(ctx.config.engine.scheduler_tick_ms.max(5));
    let mut shutdown = ctx.shutdown.clone();
    let mut backoff = Backoff::new();
    let mut last_trim = std::time::Instant::now();
    let mut last_retire = std::time::Instant::now() - RETIRE_EVERY;
    while !*shutdown.borrow() {
        if last_trim.elapsed() >= TRIM_EVERY {
            last_trim = std::time::Instant::now();
            trim(&ctx).await;
        }
        if last_retire.elapsed() >= RETIRE_EVERY {
            last_retire = std::time::Instant::now();
            if let Err(e) = crate::api::report::retire_due(&ctx, ctx.clock.now_ms()).await {
                tracing::warn!(error = %e, "retention sweep failed; it runs again later");
            }
        }
        let mut failed = None;
        for p in 0..ctx.store.keys.partitions() {
            loop {
                let now = ctx.clock.now_ms();
                let moved = match ctx.store.promote_due(p, now, 500).await {
                    Ok(n) => ctx.store.fire_timers(p, now, 500).await.map(|t| n.max(t)),
                    Err(e) => Err(e),
                };
                match moved {
                    Ok(n) if n >= 500 => continue,
                    Ok(_) => break,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
        }
        if failed.is_none()
            && let Err(e) = crate::api::drills::fire_due(&ctx).await
        {
            failed = Some(e);
        }
        match failed {
            Some(e) => backoff.wait(&mut shutdown, "delayed", &e).await,
            None => {
                backoff.reset();
                tokio::select! {
                    _ = tokio::time::sleep(tick) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

/// Trims the finished part of every partition's streams; a failure waits for the next round.
async fn trim(ctx: &Ctx) {
    let keys = &ctx.store.keys;
    for p in 0..keys.partitions() {
        for stream in [keys.bus(p), keys.deliveries(p)] {
            match ctx.store.trim_finished(&stream).await {
                Ok(n) if n > 0 => tracing::debug!(stream, trimmed = n, "trimmed finished entries"),
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(stream, error = %e, "trim skipped");
                    return;
                }
            }
        }
    }
}
