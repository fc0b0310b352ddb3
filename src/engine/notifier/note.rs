//! SMS notes: the answers to volunteers' replies, sent through the gateway the reply came in
//! on and retried on the SMS schedule.

use super::*;
use crate::store::sms::SmsNote;

impl Inner {
    /// Sends one SMS note (the answer to a volunteer's reply, see `api::sms`) and finishes its
    /// entry: done, another attempt later through the delayed set, or given up after the
    /// SMS retry schedule.
    pub(super) async fn note(&self, p: u16, entry: &str, note: SmsNote) -> Result<(), StoreError> {
        let store = &self.ctx.store;
        let attempt = note.attempt.max(1);
        let contact = store
            .delivery_contacts(std::slice::from_ref(&note.volunteer), true)
            .await?
            .pop();
        let gw = self
            .ctx
            .gateway(&note.gateway)
            .or_else(|| self.ctx.sms.first());
        let phone = contact.as_ref().and_then(|c| c.phone.clone());
        let (Some(contact), Some(gw), Some(phone)) = (contact, gw, phone) else {
            tracing::warn!(
                entry,
                "SMS note dropped: its volunteer (erased?) or gateway is gone"
            );
            return store.finish_entry(p, GROUP, entry, None).await;
        };
        let locale = contact.locale.as_deref().unwrap_or("zh-CN");
        let vars = MessageVars {
            code: &note.code,
            codes: &note.codes,
            ..Default::default()
        };
        let text = self.ctx.seed.templates.render_sms(
            locale,
            &note.text,
            &vars,
            self.ctx.config.sms.max_segments,
        );
        // A templated gateway takes the reply's own template (`reply_accepted`, …) where it has
        // one, else its `reply` template with the answer as `result`.
        let params: std::collections::BTreeMap<&'static str, String> = [
            ("code", note.code.clone()),
            ("codes", note.codes.clone()),
            ("result", text.clone()),
        ]
        .into();
        self.wait_turn(gw).await?;
        let status_url = format!("{}/v1/sms/status/{}", self.ctx.public_url, gw.name());
        let out = Outgoing {
            to: &phone,
            text: &text,
            msg_id: &note.msg_id,
            kind: &note.text,
            params: &params,
            status_url: &status_url,
            drill: false,
        };
        let backoff = &self.ctx.config.sms.retry_backoff_ms;
        let (label, retry) = match gw.send(&out).await {
            Ok(_) => ("sent", None),
            Err(err) => match backoff.get(attempt as usize - 1) {
                Some(base) => {
                    let next = SmsNote {
                        attempt: attempt + 1,
                        ..note.clone()
                    };
                    ("retry", Some((self.retry_at(*base, &err), next.fields())))
                }
                None => {
                    tracing::warn!(entry, gateway = gw.name(), attempt, error = %err, "SMS note failed for good");
                    ("failed", None)
                }
            },
        };
        metrics::counter!("muster_sms_notes_total", "outcome" => label).increment(1);
        let retry = retry.as_ref().map(|(at, f)| (*at, f.as_slice()));
        store.finish_entry(p, GROUP, entry, retry).await
    }
}
