//! Batch delivery: an entry of one message kind for many callouts becomes a job; its callouts
//! are claimed a chunk at a time, their contacts read in one pipeline, each message sent as its
//! own task, and the outcomes recorded many per script until the entry is finished.

use super::*;

impl Inner {
    /// Delivers every message of one entry, then finishes it.
    pub(super) async fn run(self: &Arc<Self>, job: Job) -> Result<(), StoreError> {
        let store = &self.ctx.store;
        let Some(info) = self.incident_info(&job.id).await? else {
            let stream = store.keys.deliveries(job.p);
            return store
                .ack_entries(&stream, GROUP, std::slice::from_ref(&job.entry))
                .await;
        };
        let (tx, rx) = mpsc::unbounded_channel::<Sent>();
        let failed = AtomicBool::new(false);
        let work = async {
            tokio::join!(
                self.produce(&job, &info, tx, &failed),
                self.collect(&job, rx, &failed)
            )
        };
        tokio::pin!(work);
        // While the entry is worked on, its idle time is reset regularly, so other instances
        // reclaim it only if this one stops (dies or stalls), not because a batch is long.
        let beat = Duration::from_millis((self.ctx.config.engine.reclaim_idle_ms / 3).max(100));
        let stream = store.keys.deliveries(job.p);
        let (produced, collected) = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = tokio::time::sleep(beat) => {
                    if let Err(e) = store.touch_entry(&stream, GROUP, &self.ctx.consumer, &job.entry).await {
                        tracing::debug!(entry = job.entry, error = %e, "could not refresh the entry's claim");
                    }
                }
            }
        };
        collected?;
        let rest = produced?;
        let now = self.ctx.clock.now_ms();
        let finish = Finish {
            entry: &job.entry,
            group: GROUP,
            rest: &rest,
            attempt: job.attempt,
        };
        store
            .deliveries_done(&job.id, &job.kind, now, &[], Some(&finish))
            .await?;
        Ok(())
    }

    /// Claims and sends the entry's messages chunk by chunk. Returns the callouts it never got
    /// to because the process is shutting down.
    pub(super) async fn produce(
        self: &Arc<Self>,
        job: &Job,
        info: &Arc<IncidentInfo>,
        tx: mpsc::UnboundedSender<Sent>,
        failed: &AtomicBool,
    ) -> Result<Vec<u32>, StoreError> {
        let store = &self.ctx.store;
        let concurrency = self.ctx.config.webhook.concurrency.max(1);
        for (i, ns) in job.ns.chunks(CHUNK).enumerate() {
            if failed.load(Ordering::Relaxed) {
                return Ok(vec![]); // the collector failed: the entry stays pending
            }
            // The chunk's permits come first, so a claimed chunk is a chunk being sent (a crash
            // then leaves few messages whose outcome is unknown).
            let mut permits = self
                .permits
                .clone()
                .acquire_many_owned(ns.len().min(concurrency) as u32)
                .await
                .expect("semaphore is never closed");
            if *self.ctx.shutdown.borrow() {
                return Ok(job.ns[i * CHUNK..].to_vec());
            }
            let known = job.known.as_ref().map(|(vs, r)| {
                let at = i * CHUNK;
                (&vs[at..at + ns.len()], r.as_str())
            });
            let claims = store
                .deliveries_begin(
                    &job.id,
                    &job.kind,
                    job.attempt,
                    &chunk_mark(&job.entry, ns),
                    ns,
                    known,
                )
                .await?;
            let sending: Vec<&Claim> = claims.iter().filter(|c| c.skip.is_none()).collect();
            let resends = sending.iter().filter(|c| c.resend).count() as u64;
            let vids: Vec<String> = sending.iter().map(|c| c.volunteer_id.clone()).collect();
            let contacts = store
                .delivery_contacts(&vids, !self.ctx.sms.is_empty() || info.simulated)
                .await?;
            let mut unsent = self
                .send_chunk(job, info, sending, contacts, &mut permits, &tx)
                .await;
            if resends > 0 {
                metrics::counter!("muster_delivery_resends_total", "kind" => job.kind.clone())
                    .increment(resends);
                tracing::warn!(incident = %job.id, kind = job.kind, resends, first = ns[0], "re-sending messages whose first outcome is unknown (their worker stopped mid-send)");
            }
            if !unsent.is_empty() {
                unsent.extend_from_slice(&job.ns[((i + 1) * CHUNK).min(job.ns.len())..]);
                return Ok(unsent);
            }
        }
        Ok(vec![])
    }

    /// Sends the claimed messages of one chunk, each as its own task holding one of `permits`
    /// (or, with fewer permits than messages, one taken per message); answers the callouts
    /// left unsent because the process is stopping.
    async fn send_chunk(
        self: &Arc<Self>,
        job: &Job,
        info: &Arc<IncidentInfo>,
        sending: Vec<&Claim>,
        contacts: Vec<Contact>,
        permits: &mut tokio::sync::OwnedSemaphorePermit,
        tx: &mpsc::UnboundedSender<Sent>,
    ) -> Vec<u32> {
        let mut unsent = Vec::new();
        for (c, contact) in sending.into_iter().zip(contacts) {
            let permit = match permits.split(1) {
                Some(p) => p,
                // Fewer permits than a chunk (`webhook.concurrency` < CHUNK): wait per
                // message, and stop sending if the process is going away meanwhile.
                None => {
                    let p = self
                        .permits
                        .clone()
                        .acquire_owned()
                        .await
                        .expect("semaphore is never closed");
                    if *self.ctx.shutdown.borrow() {
                        unsent.push(c.n);
                        continue;
                    }
                    p
                }
            };
            let me = self.clone();
            let tx = tx.clone();
            let (info, id, kind, attempt) = (info.clone(), job.id, job.kind.clone(), job.attempt);
            let (n, requirement) = (c.n, c.requirement.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let outcome = me
                    .send(&id, n, &kind, attempt, &requirement, &info, &contact)
                    .await;
                let secs = started.elapsed().as_secs_f64();
                let _ = tx.send(Sent { n, outcome, secs });
                drop(permit);
            });
        }
        unsent
    }

    /// Records outcomes as they come in, many per script, until every send has reported.
    pub(super) async fn collect(
        &self,
        job: &Job,
        mut rx: mpsc::UnboundedReceiver<Sent>,
        failed: &AtomicBool,
    ) -> Result<(), StoreError> {
        let mut batch: Vec<(u32, DeliveryOutcome)> = Vec::new();
        while let Some(first) = rx.recv().await {
            let mut sent = vec![first];
            while sent.len() < FLUSH_MAX {
                match rx.try_recv() {
                    Ok(s) => sent.push(s),
                    Err(_) => break,
                }
            }
            let mut tally: HashMap<&'static str, u64> = HashMap::new();
            for s in sent {
                metrics::histogram!("muster_delivery_duration_seconds", "channel" => "webhook")
                    .record(s.secs);
                let label = match &s.outcome {
                    DeliveryOutcome::Delivered { .. } => "delivered",
                    DeliveryOutcome::Retry { .. } => "retry",
                    DeliveryOutcome::Failed { error } => {
                        tracing::warn!(incident = %job.id, n = s.n, kind = job.kind, error, "delivery failed for good");
                        "failed"
                    }
                };
                *tally.entry(label).or_default() += 1;
                batch.push((s.n, s.outcome));
            }
            for (label, k) in tally {
                metrics::counter!("muster_deliveries_total", "kind" => job.kind.clone(), "outcome" => label)
                    .increment(k);
            }
            let now = self.ctx.clock.now_ms();
            if let Err(e) = self
                .ctx
                .store
                .deliveries_done(&job.id, &job.kind, now, &batch, None)
                .await
            {
                failed.store(true, Ordering::Relaxed);
                return Err(e);
            }
            batch.clear();
        }
        Ok(())
    }
}
