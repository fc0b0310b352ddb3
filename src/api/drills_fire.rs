//! Firing scheduled drills: the claim, the raise in the name of the trainer who scheduled it,
//! and what is recorded either way.

use super::*;

/// Raises every drill that is due (or whose claim ran out), once across instances: what the
/// scheduler runs each tick, and `POST /v1/drills` for a drill due now. A drill that cannot
/// be raised (its plan or region gone) is marked failed with the reason; a Redis failure
/// leaves it claimed, to be taken again after [`LEASE_MS`].
pub async fn fire_due(ctx: &Ctx) -> Result<usize, StoreError> {
    let now = ctx.clock.now_ms();
    let ids = ctx
        .store
        .drills_claim(now, crate::clock::wall_ms(), LEASE_MS, 50)
        .await?;
    for id in &ids {
        fire(ctx, id, now).await?;
    }
    Ok(ids.len())
}

pub(super) async fn fire(ctx: &Ctx, id: &str, now: Millis) -> Result<(), StoreError> {
    let Some(m) = ctx.store.drill(id).await? else {
        return ctx
            .store
            .drill_failed(id, "the drill record is gone", now)
            .await;
    };
    let f = |k: &str| m.get(k).cloned().unwrap_or_default();
    let body = Level::new(f("level").parse().unwrap_or(0)).map(|level| RaiseIncident {
        kind: f("kind"),
        level,
        region: f("region"),
        title: f("title"),
        mode: Mode::Drill,
        location: m.get("location").and_then(|l| serde_json::from_str(l).ok()),
        idempotency_key: None,
        include_deployed: f("include_deployed") == "1",
    });
    let scope = RegionCode::parse(&f("region"));
    let (body, scope) = match (body, scope) {
        (Ok(b), Ok(s)) => (b, s),
        _ => {
            return ctx
                .store
                .drill_failed(id, "its level or region is not valid", now)
                .await;
        }
    };
    let origin = Origin {
        channels: Some(f("channels")),
        objectives: m.get("objectives").cloned(),
        drill_id: Some(id.to_string()),
        cap: None,
    };
    let iid = incident_of(id);
    // Raised in the name of the trainer who scheduled it, bounded by its region.
    let by = Caller {
        name: f("created_by"),
        role: crate::domain::access::Role::Trainer,
        scope,
        request: crate::api::auth::RequestMeta {
            id: format!("drill:{id}"),
            addr: String::new(),
        },
    };
    match raise_as(ctx, &by, iid, body, origin).await {
        Ok(_) => {
            tracing::info!(drill = %id, incident = %iid, "drill started");
            metrics::counter!("muster_drills_started_total").increment(1);
            ctx.store.drill_started(id, &iid.to_string(), now).await
        }
        Err(ApiError::Unavailable(e)) => Err(StoreError::Corrupt(format!(
            "drill {id}: Redis unavailable while raising: {e}"
        ))),
        Err(e) => {
            let why = match &e {
                ApiError::Invalid(errs) => errs
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.reason))
                    .collect::<Vec<_>>()
                    .join("; "),
                other => other.to_string(),
            };
            tracing::warn!(drill = %id, error = %why, "drill could not be raised");
            ctx.store.drill_failed(id, &why, now).await
        }
    }
}
