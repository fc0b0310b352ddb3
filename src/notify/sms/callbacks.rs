//! Reading a verified callback: inbound replies and delivery receipts, in each vendor's
//! own shape (generic JSON, Twilio forms, Aliyun JSON arrays).

use super::*;

impl Gateway {
    /// Reads the inbound messages of a (verified) callback.
    pub fn inbound(&self, body: &[u8]) -> Result<Vec<Inbound>, CallbackError> {
        match self.cfg.kind {
            SmsGatewayKind::Generic => {
                let v: Value = json(body)?;
                Ok(vec![Inbound {
                    from: need(&v, "from")?,
                    text: need(&v, "text")?,
                    id: need(&v, "id")?,
                }])
            }
            SmsGatewayKind::Twilio => {
                let f: BTreeMap<String, String> = form_decode(body).into_iter().collect();
                let get = |k: &str| {
                    f.get(k)
                        .cloned()
                        .ok_or_else(|| CallbackError::Body(format!("`{k}` missing")))
                };
                Ok(vec![Inbound {
                    from: get("From")?,
                    text: get("Body")?,
                    id: get("MessageSid")?,
                }])
            }
            SmsGatewayKind::Aliyun => items(body)?
                .iter()
                .map(|v| {
                    Ok(Inbound {
                        from: need(v, "phone_number")?,
                        text: need(v, "content")?,
                        id: need(v, "sequence_id")?,
                    })
                })
                .collect(),
        }
    }

    /// Reads the delivery receipts of a (verified) callback. Statuses muster does not track
    /// (`queued`, `accepted`, …) are left out.
    pub fn receipts(&self, body: &[u8]) -> Result<Vec<Receipt>, CallbackError> {
        let status = |s: &str| match s {
            "sent" => Some(ReceiptStatus::Sent),
            "delivered" => Some(ReceiptStatus::Delivered),
            "undelivered" | "failed" => Some(ReceiptStatus::Undelivered),
            _ => None,
        };
        match self.cfg.kind {
            SmsGatewayKind::Generic => {
                let v: Value = json(body)?;
                let id = need(&v, "id")?;
                Ok(status(&need(&v, "status")?)
                    .map(|status| Receipt { id, status })
                    .into_iter()
                    .collect())
            }
            SmsGatewayKind::Twilio => {
                let f: BTreeMap<String, String> = form_decode(body).into_iter().collect();
                let (Some(id), Some(st)) = (f.get("MessageSid"), f.get("MessageStatus")) else {
                    return Err(CallbackError::Body(
                        "`MessageSid` or `MessageStatus` missing".into(),
                    ));
                };
                Ok(status(st)
                    .map(|status| Receipt {
                        id: id.clone(),
                        status,
                    })
                    .into_iter()
                    .collect())
            }
            SmsGatewayKind::Aliyun => items(body)?
                .iter()
                .map(|v| {
                    let ok = v.get("success").and_then(Value::as_bool).ok_or_else(|| {
                        CallbackError::Body("`success` missing or not a boolean".into())
                    })?;
                    Ok(Receipt {
                        id: need(v, "biz_id")?,
                        status: if ok {
                            ReceiptStatus::Delivered
                        } else {
                            ReceiptStatus::Undelivered
                        },
                    })
                })
                .collect(),
        }
    }
}

fn json(body: &[u8]) -> Result<Value, CallbackError> {
    serde_json::from_slice(body).map_err(|e| CallbackError::Body(e.to_string()))
}

fn items(body: &[u8]) -> Result<Vec<Value>, CallbackError> {
    match json(body)? {
        Value::Array(a) => Ok(a),
        v @ Value::Object(_) => Ok(vec![v]),
        _ => Err(CallbackError::Body("expected a JSON array".into())),
    }
}

fn need(v: &Value, k: &str) -> Result<String, CallbackError> {
    match v.get(k) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(CallbackError::Body(format!("`{k}` missing"))),
    }
}
