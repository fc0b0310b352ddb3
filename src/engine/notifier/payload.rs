//! Payload rendering: the webhook body a volunteer's app gets (Standard Webhooks signed by the
//! sender), and which template a message kind is rendered from.

use super::*;

/// The webhook body (`api.md`), serialised straight from borrowed parts.
#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    callout_id: String,
    incident: PayloadIncident<'a>,
    team_kind: &'a str,
    requirement_id: &'a str,
    message: String,
    drill: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    ack: Option<PayloadAck>,
}

#[derive(Serialize)]
pub(super) struct PayloadIncident<'a> {
    pub(super) id: String,
    pub(super) kind: &'a str,
    pub(super) level: u8,
    pub(super) region: &'a str,
    pub(super) title: &'a str,
    pub(super) mode: &'a str,
}

#[derive(Serialize)]
struct PayloadAck {
    token: String,
    accept_url: String,
    decline_url: String,
    page_url: String,
}

impl Inner {
    pub(super) fn payload(
        &self,
        id: &IncidentId,
        n: u32,
        kind: &str,
        requirement: &str,
        info: &IncidentInfo,
        contact: &Contact,
    ) -> Vec<u8> {
        let token = self.ctx.signer.sign(AckToken { incident: *id, n });
        let base = &self.ctx.public_url;
        let link = format!("{base}/a/{token}");
        let vars = info.vars(requirement, contact, &link, "");
        let (team_kind, drill) = (vars.team_kind, vars.drill);
        let locale = contact.locale.as_deref().unwrap_or("zh-CN");
        let (kind, template) = self.template_of(locale, kind);
        let message = self.ctx.seed.templates.render(locale, template, &vars);
        let ack = (kind != "stand_down").then(|| PayloadAck {
            accept_url: format!("{base}/v1/acks/{token}?response=accept"),
            decline_url: format!("{base}/v1/acks/{token}?response=decline"),
            page_url: link.clone(),
            token,
        });
        let body = Payload {
            kind,
            callout_id: format!("{id}.{n}"),
            incident: PayloadIncident {
                id: id.to_string(),
                kind: &info.kind,
                level: info.level,
                region: &info.region,
                title: &info.title,
                mode: info.mode.as_str(),
            },
            team_kind,
            requirement_id: requirement,
            message,
            drill,
            ack,
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }

    /// The message kind as sent and the template it is rendered from: a re-sent call-out
    /// (`recall:STEP`) is a call-out, in the `recall` template where the locale has one; a
    /// call-out handed to the next channel after an `undelivered` receipt (`failover`) is the
    /// call-out again.
    pub(super) fn template_of<'k>(&self, locale: &str, kind: &'k str) -> (&'k str, &'k str) {
        if kind == "failover" {
            return ("callout", "callout");
        }
        match kind.strip_prefix("recall:") {
            Some(_) if self.ctx.seed.templates.has(locale, "recall") => ("callout", "recall"),
            Some(_) => ("callout", "callout"),
            None => (kind, kind),
        }
    }
}
