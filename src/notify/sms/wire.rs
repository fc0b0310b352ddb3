//! The vendors' wire formats: form encoding, Twilio's request signature, and Aliyun's
//! numbers, template variables and signed `SendSms` request.

use super::*;

/// RFC 3986 percent-encoding (unreserved characters kept), as Aliyun's signature and form
/// bodies need.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An `application/x-www-form-urlencoded` body.
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Decodes an `application/x-www-form-urlencoded` body (`+` is a space); bad escapes are kept
/// as they are.
pub fn form_decode(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &[u8]| {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => {
                    let hex = std::str::from_utf8(&s[i + 1..i + 3]).ok();
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    body.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|b| *b == b'=') {
            Some(i) => (decode(&p[..i]), decode(&p[i + 1..])),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Twilio's request signature: base64 HMAC-SHA1 of the URL followed by every form field's
/// name and value, sorted by name.
pub fn twilio_signature(auth_token: &str, url: &str, fields: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = fields.iter().collect();
    sorted.sort();
    let mut mac =
        <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(auth_token.as_bytes()).expect("any key");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The longest value of an Aliyun template variable (characters).
pub const ALIYUN_VAR_MAX: usize = 35;

/// A number as Aliyun takes it: mainland numbers without `+86`, others with their country
/// code and no `+`.
pub fn aliyun_number(to: &str) -> &str {
    to.strip_prefix("+86")
        .or_else(|| to.strip_prefix('+'))
        .unwrap_or(to)
}

/// The template code and variables of one Aliyun message (see the module): the kind's code
/// (`{kind}_drill` for a drill where configured, else the title marked 【演练】), variables
/// shortened to [`ALIYUN_VAR_MAX`] characters, empty ones left out.
pub fn aliyun_message(cfg: &SmsGateway, m: &Outgoing<'_>) -> (String, BTreeMap<String, String>) {
    let code = |k: &str| cfg.templates.get(k).cloned();
    let drill_code = m
        .drill
        .then(|| code(&format!("{}_drill", m.kind)))
        .flatten();
    let template = drill_code
        .clone()
        .or_else(|| code(m.kind))
        .or_else(|| {
            m.kind
                .starts_with("reply_")
                .then(|| code("reply"))
                .flatten()
        })
        .or_else(|| code("callout"))
        .unwrap_or_default();
    let mut vars = BTreeMap::new();
    for (k, v) in m.params {
        let mut v = v.trim().to_string();
        if *k == "title" && m.drill && drill_code.is_none() && !v.starts_with("【演练】") {
            v = format!("【演练】{v}");
        }
        if v.is_empty() {
            continue;
        }
        if v.chars().count() > ALIYUN_VAR_MAX {
            v = v.chars().take(ALIYUN_VAR_MAX - 1).chain(['…']).collect();
        }
        vars.insert(k.to_string(), v);
    }
    (template, vars)
}

/// The signed form body of an Aliyun `SendSms` call (RPC signature version 1.0).
pub fn aliyun_request(
    cfg: &SmsGateway,
    to: &str,
    template: &str,
    params: &str,
    out_id: &str,
    now_ms: i64,
    nonce: &str,
) -> String {
    let timestamp = jiff::Timestamp::from_millisecond(now_ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let phone = aliyun_number(to);
    let mut fields: Vec<(&str, &str)> = vec![
        ("AccessKeyId", &cfg.key_id),
        ("Action", "SendSms"),
        ("Format", "JSON"),
        ("OutId", out_id),
        ("PhoneNumbers", phone),
        ("SignName", &cfg.sign_name),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", nonce),
        ("SignatureVersion", "1.0"),
        ("TemplateCode", template),
        ("TemplateParam", params),
        ("Timestamp", &timestamp),
        ("Version", "2017-05-25"),
    ];
    fields.sort();
    let canonical = form_encode(&fields);
    let to_sign = format!(
        "POST&{}&{}",
        percent_encode("/"),
        percent_encode(&canonical)
    );
    let mut mac =
        <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(format!("{}&", cfg.secret).as_bytes())
            .expect("any key");
    mac.update(to_sign.as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    format!("Signature={}&{canonical}", percent_encode(&signature))
}
