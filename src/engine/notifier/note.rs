//! SMS notes: the answers to volunteers' replies, sent through the gateway the reply came in
//! on and retried on the SMS schedule.

use super::*;

impl Inner {
    /// Sends one SMS note (the answer to a volunteer's reply, see `api::sms`) and finishes its
    /// entry: done, another attempt later through the delayed set, or given up after the
    /// SMS retry schedule.
    pub(super) async fn note(&self, p: u16, e: Entry) -> Result<(), StoreError> {
        let store = &self.ctx.store;
        let attempt: u32 = e.get("a").parse::<u32>().unwrap_or(1).max(1);
        let contact = store
            .delivery_contacts(&[e.get("v").to_string()], true)
            .await?
            .pop();
        let gw = self
            .ctx
            .sms
            .iter()
            .find(|g| g.name() == e.get("g"))
            .or_else(|| self.ctx.sms.first());
        let phone = contact.as_ref().and_then(|c| c.phone.clone());
        let (Some(contact), Some(gw), Some(phone)) = (contact, gw, phone) else {
            tracing::warn!(entry = %e.id, "SMS note dropped: its volunteer (erased?) or gateway is gone");
            return store.finish_entry(p, GROUP, &e.id, None).await;
        };
        let locale = contact.locale.as_deref().unwrap_or("zh-CN");
        let vars = MessageVars {
            code: e.get("c"),
            codes: e.get("cs"),
            ..Default::default()
        };
        let text = self.ctx.seed.templates.render_sms(
            locale,
            e.get("t"),
            &vars,
            self.ctx.config.sms.max_segments,
        );
        // A templated gateway takes the reply's own template (`reply_accepted`, …) where it has
        // one, else its `reply` template with the answer as `result`.
        let params: std::collections::BTreeMap<&'static str, String> = [
            ("code", e.get("c").to_string()),
            ("codes", e.get("cs").to_string()),
            ("result", text.clone()),
        ]
        .into();
        self.wait_turn(gw).await?;
        let status_url = format!("{}/v1/sms/status/{}", self.ctx.public_url, gw.name());
        let out = Outgoing {
            to: &phone,
            text: &text,
            msg_id: e.get("m"),
            kind: e.get("t"),
            params: &params,
            status_url: &status_url,
            drill: false,
        };
        let backoff = &self.ctx.config.sms.retry_backoff_ms;
        let (label, retry) = match gw.send(&out).await {
            Ok(_) => ("sent", None),
            Err(err) => match backoff.get(attempt as usize - 1) {
                Some(base) => {
                    let mut fields: Vec<(String, String)> = e
                        .fields
                        .iter()
                        .filter(|(k, _)| k.as_str() != "a")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    fields.push(("a".into(), (attempt + 1).to_string()));
                    ("retry", Some((self.retry_at(*base, &err), fields)))
                }
                None => {
                    tracing::warn!(entry = %e.id, gateway = gw.name(), attempt, error = %err, "SMS note failed for good");
                    ("failed", None)
                }
            },
        };
        metrics::counter!("muster_sms_notes_total", "outcome" => label).increment(1);
        let retry = retry.as_ref().map(|(at, f)| (*at, f.as_slice()));
        store.finish_entry(p, GROUP, &e.id, retry).await
    }
}
