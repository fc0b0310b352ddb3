//! Moves due delivery retries from each partition's `delayed` set back to its delivery stream,
//! and fires due escalation timers from its `timers` set onto its bus. Each move is one script,
//! so with many instances ticking, each retry moves and each timer fires exactly once. Due
//! times are on the injected clock: tests move time instead of sleeping.

use super::Ctx;
use super::worker::Backoff;
use std::sync::Arc;
use std::time::Duration;

/// Runs until shutdown.
pub async fn run(ctx: Arc<Ctx>) {
    let tick = Duration::from_millis(ctx.config.engine.scheduler_tick_ms.max(5));
    let mut shutdown = ctx.shutdown.clone();
    let mut backoff = Backoff::new();
    while !*shutdown.borrow() {
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
