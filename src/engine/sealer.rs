//! Seals the audit log: every few hundred milliseconds, the instance holding the sealer's lease
//! gives each unsealed entry of each chain its HMAC, chained to the one before
//! ([`crate::store::Store::audit_seal`]). The lease only saves duplicate work: a seal moves a
//! chain's head only from where its sealer read it, so two sealers never fork a chain.

use super::Ctx;
use super::worker::Backoff;
use crate::store::StoreError;
use std::sync::Arc;
use std::time::Duration;

/// How often the sealer looks (wall time).
pub const EVERY: Duration = Duration::from_millis(200);

/// How long a lease lasts without renewal.
const LEASE_MS: u64 = 5_000;

/// Runs until shutdown.
pub async fn run(ctx: Arc<Ctx>) {
    let key = ctx.config.audit.key_bytes();
    let mut shutdown = ctx.shutdown.clone();
    let mut backoff = Backoff::new();
    while !*shutdown.borrow() {
        match round(&ctx, &key).await {
            Ok(_) => {
                backoff.reset();
                tokio::select! {
                    _ = tokio::time::sleep(EVERY) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(e) => backoff.wait(&mut shutdown, "audit", &e).await,
        }
    }
}

/// One round: take or renew the lease, then seal every chain to its end. Answers how many
/// entries were sealed.
pub async fn round(ctx: &Ctx, key: &[u8]) -> Result<usize, StoreError> {
    if !ctx
        .store
        .lease(&ctx.store.keys.audit_sealer(), &ctx.consumer, LEASE_MS)
        .await?
    {
        return Ok(0);
    }
    let mut sealed = 0;
    for chain in ctx.store.keys.audit_chains() {
        loop {
            let n = ctx.store.audit_seal(key, &chain, 1000).await?;
            sealed += n;
            if n < 1000 {
                break;
            }
        }
    }
    if sealed > 0 {
        metrics::counter!("muster_audit_sealed_total").increment(sealed as u64);
    }
    Ok(sealed)
}
