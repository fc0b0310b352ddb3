//! Channel choice and one send: a volunteer's plan (webhook, then each SMS gateway unless the
//! number opted out), which channel an attempt number falls on, the send over it, SMS
//! rendering and the shared send rate, and when to try again.

use super::*;
use std::borrow::Cow;
use std::collections::BTreeMap;

impl Inner {
    /// Sends one attempt of one message over the channel its attempt number falls on (see
    /// [`Channel`]); the outcome says what to record.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn send(
        &self,
        id: &IncidentId,
        n: u32,
        kind: &str,
        attempt: u32,
        requirement: &str,
        info: &IncidentInfo,
        contact: &Contact,
    ) -> DeliveryOutcome {
        if kind == "callout" && n == 1 && attempt == 1 {
            let secs = (self.ctx.clock.now_ms() - info.raised_at).max(0) as f64 / 1000.0;
            metrics::histogram!("muster_raise_to_first_handoff_seconds").record(secs);
        }
        let plan = self.channels(contact, info, id, n);
        let Some((channel, nth, tries, next)) = locate(&plan, attempt) else {
            let why = if plan.is_empty() && info.simulated && self.ctx.drill_sms.is_none() {
                "no channel: a drill on simulated channels, and drill.simulator_url is not configured"
                    .to_string()
            } else if plan.is_empty() {
                match (&contact.sms_off, self.ctx.sms.is_empty()) {
                    (Some(_), _) => "no channel: no webhook, and the number opted out of SMS",
                    (None, true) => "no channel: no webhook, and no SMS gateway is configured",
                    (None, false) => "no channel: no webhook and no phone number",
                }
                .to_string()
            } else {
                format!("every channel failed (after {} attempts)", attempt - 1)
            };
            return DeliveryOutcome::Failed { error: why };
        };
        let msg_id = format!("msg_{}_{}_{}", id.0.simple(), n, kind);
        let sent = match &channel.via {
            Via::Webhook(url) => {
                let body = self.payload(id, n, kind, requirement, info, contact);
                self.ctx
                    .webhook
                    .send(url.as_ref(), &msg_id, body)
                    .await
                    .map(|()| "webhook".to_string())
            }
            Via::Sms(gw) => {
                // Where an `undelivered` receipt for this message hands it on: the next
                // channel's first attempt (0: there is none).
                let onward = next.map_or(0, |_| attempt - nth + 1 + tries);
                let sent = SentSms {
                    kind,
                    msg_id: &msg_id,
                    onward,
                };
                self.send_sms(gw, id, n, &sent, requirement, info, contact)
                    .await
            }
        };
        match sent {
            Ok(channel) => DeliveryOutcome::Delivered { channel },
            Err(err) if nth < tries => DeliveryOutcome::Retry {
                at: self.retry_at(channel.backoff[nth as usize - 1], &err),
                attempt: attempt + 1,
                error: err.to_string(),
            },
            Err(err) => match next.map(Channel::name) {
                Some(next) => {
                    metrics::counter!("muster_delivery_failovers_total", "to" => next.clone())
                        .increment(1);
                    DeliveryOutcome::Retry {
                        at: self.ctx.clock.now_ms(),
                        attempt: attempt + 1,
                        error: format!("{err}; failing over to {next}"),
                    }
                }
                None => DeliveryOutcome::Failed {
                    error: format!("{err} (after {attempt} attempts)"),
                },
            },
        }
    }

    /// The channels of a volunteer in order: the webhook where they have one, then each SMS
    /// gateway (unless the number opted out). A drill on simulated channels has the same plan
    /// with every hop pointed at the simulator (`[drill] simulator_url`): the same code path
    /// up to the last hop, and nothing reaches a real receiver or gateway.
    fn channels<'a>(
        &'a self,
        contact: &'a Contact,
        info: &IncidentInfo,
        id: &IncidentId,
        n: u32,
    ) -> Vec<Channel<'a>> {
        let gateways: &[Arc<Gateway>] = if info.simulated {
            match &self.ctx.drill_sms {
                Some(gw) => std::slice::from_ref(gw),
                None => return vec![],
            }
        } else {
            &self.ctx.sms
        };
        let mut plan = Vec::new();
        if let Some(url) = contact.webhook.as_deref().filter(|w| !w.is_empty()) {
            let url = match (&self.ctx.config.drill.simulator_url, info.simulated) {
                (Some(sim), true) => Cow::Owned(format!(
                    "{}/hooks/{}",
                    sim.trim_end_matches('/'),
                    callout_ref(id, n)
                )),
                _ => Cow::Borrowed(url),
            };
            plan.push(Channel {
                via: Via::Webhook(url),
                backoff: &self.ctx.config.webhook.retry_backoff_ms,
            });
        }
        if contact.phone.as_deref().is_some_and(|p| !p.is_empty()) && contact.sms_off.is_none() {
            for gw in gateways {
                plan.push(Channel {
                    via: Via::Sms(gw),
                    backoff: &self.ctx.config.sms.retry_backoff_ms,
                });
            }
        }
        plan
    }

    /// Renders and sends one SMS through `gw`, after its shared rate allows; the channel name
    /// (`sms:GATEWAY`) on success.
    #[allow(clippy::too_many_arguments)]
    async fn send_sms(
        &self,
        gw: &Gateway,
        id: &IncidentId,
        n: u32,
        sent: &SentSms<'_>,
        requirement: &str,
        info: &IncidentInfo,
        contact: &Contact,
    ) -> Result<String, SendError> {
        let (kind, msg_id) = (sent.kind, sent.msg_id);
        let store = &self.ctx.store;
        let phone = contact.phone.as_deref().unwrap_or_default();
        let cref = callout_ref(id, n);
        let redis = |e: StoreError| SendError::Transport(format!("redis: {e}"));
        // Messages a volunteer may answer carry the callout's reply code.
        let code = if kind == "stand_down" {
            String::new()
        } else {
            store
                .sms_code(phone, &cref, self.ctx.clock.now_ms())
                .await
                .map_err(redis)?
        };
        let (template, text, params) = self.sms_text(kind, &code, requirement, info, contact);
        self.wait_turn(gw).await.map_err(redis)?;
        let status_url = format!("{}/v1/sms/status/{}", self.ctx.public_url, gw.name());
        let out = Outgoing {
            to: phone,
            text: &text,
            msg_id,
            kind: template,
            params: &params,
            status_url: &status_url,
            drill: info.mode == Mode::Drill,
        };
        let started = Instant::now();
        let result = gw.send(&out).await;
        let label = match &result {
            Ok(_) => "sent",
            Err(SendError::Status { status: 429, .. }) => "throttled",
            Err(_) => "error",
        };
        metrics::counter!("muster_sms_sends_total", "gateway" => gw.name().to_string(), "outcome" => label).increment(1);
        metrics::histogram!("muster_delivery_duration_seconds", "channel" => "sms")
            .record(started.elapsed().as_secs_f64());
        let gw_id = result?;
        if let Err(e) = store
            .sms_sent(gw.name(), &gw_id, &cref, kind, sent.onward)
            .await
        {
            tracing::warn!(gateway = gw.name(), error = %e, "could not remember the gateway's message id; its receipts will be ignored");
        }
        Ok(format!("sms:{}", gw.name()))
    }

    /// One SMS's text (its kind's `[sms]` template in the volunteer's locale, shortened to
    /// fit) and, for templated gateways, its template and variables in the volunteer's words.
    fn sms_text<'k>(
        &self,
        kind: &'k str,
        code: &str,
        requirement: &str,
        info: &IncidentInfo,
        contact: &Contact,
    ) -> (&'k str, String, BTreeMap<&'static str, String>) {
        let locale = contact.locale.as_deref().unwrap_or("zh-CN");
        let template = self.template_of(locale, kind).1;
        let vars = info.vars(requirement, contact, "", code);
        let text = self.ctx.seed.templates.render_sms(
            locale,
            template,
            &vars,
            self.ctx.config.sms.max_segments,
        );
        // Template variables (templated gateways) in the volunteer's words: 洪涝, 救援, Ⅳ级…
        let words = self.ctx.seed.templates.words(locale, &vars);
        let params: BTreeMap<&'static str, String> = [
            ("code", code.to_string()),
            ("title", info.title.clone()),
            ("region", info.region_name.clone()),
            ("kind", words.kind),
            ("level", words.level),
            ("team_kind", words.team_kind),
        ]
        .into();
        (template, text, params)
    }

    /// Waits for this message's turn at gateway `gw`, whose rate every instance shares.
    pub(super) async fn wait_turn(&self, gw: &Gateway) -> Result<(), StoreError> {
        let burst = (gw.cfg.rate_per_sec / 10.0).ceil().max(1.0) as u32;
        loop {
            let wait = self
                .ctx
                .store
                .sms_rate(
                    gw.name(),
                    gw.cfg.rate_per_sec,
                    burst,
                    crate::clock::wall_ms(),
                )
                .await?;
            if wait == 0 {
                return Ok(());
            }
            metrics::counter!("muster_sms_throttled_total", "gateway" => gw.name().to_string(), "by" => "muster").increment(1);
            tokio::time::sleep(Duration::from_millis(wait.min(5_000))).await;
        }
    }

    /// When to try again after waiting about `base` ms (±20 % jitter), or longer if the
    /// receiver asked with `Retry-After` (up to `webhook.max_retry_after_ms`).
    pub(super) fn retry_at(&self, base: u64, err: &SendError) -> i64 {
        let jitter = 0.8 + rand::random::<f64>() * 0.4;
        let mut wait = (base as f64 * jitter) as u64;
        if let Some(ra) = err.retry_after() {
            let cap = self.ctx.config.webhook.max_retry_after_ms;
            wait = wait.max((ra.as_millis() as u64).min(cap));
        }
        self.ctx.clock.now_ms() + wait as i64
    }
}

/// How a message goes out.
enum Via<'a> {
    Webhook(Cow<'a, str>),
    Sms(&'a Arc<Gateway>),
}

/// One SMS being sent: its message kind, id, and the attempt an `undelivered` receipt for it
/// hands the message on to (the next channel's first; 0 when none).
struct SentSms<'a> {
    kind: &'a str,
    msg_id: &'a str,
    onward: u32,
}

/// One channel of a volunteer's plan: its attempts are one plus its backoff's length.
struct Channel<'a> {
    via: Via<'a>,
    backoff: &'a [u64],
}

impl Channel<'_> {
    pub(super) fn tries(&self) -> u32 {
        self.backoff.len() as u32 + 1
    }

    pub(super) fn name(&self) -> String {
        match &self.via {
            Via::Webhook(_) => "webhook".into(),
            Via::Sms(gw) => format!("sms:{}", gw.name()),
        }
    }
}

/// The channel attempt `attempt` (1-based, counted over the whole plan) falls on: the
/// channel, which of its tries this is (1-based), its number of tries, and the next channel. Attempts run through each channel's tries in turn, so the attempt number a retry
/// carries is all it takes to know where it goes.
fn locate<'p, 'a>(
    plan: &'p [Channel<'a>],
    attempt: u32,
) -> Option<(&'p Channel<'a>, u32, u32, Option<&'p Channel<'a>>)> {
    let mut left = attempt.max(1);
    for (i, c) in plan.iter().enumerate() {
        if left <= c.tries() {
            return Some((c, left, c.tries(), plan.get(i + 1)));
        }
        left -= c.tries();
    }
    None
}
