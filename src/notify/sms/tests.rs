use super::*;

fn gw(kind: SmsGatewayKind) -> SmsGateway {
    SmsGateway {
        name: "g".into(),
        kind,
        url: "http://127.0.0.1:1".into(),
        from: "+15005550006".into(),
        key_id: "AC123".into(),
        secret: "12345".into(),
        callback_secret: String::new(),
        sign_name: "应急召集".into(),
        templates: BTreeMap::new(),
        rate_per_sec: 10.0,
        concurrency: 1,
        timeout_ms: 1000,
    }
}

#[test]
fn form_bodies_round_trip() {
    let body = form_encode(&[("Body", "23Y 是 & = + %"), ("From", "+8613800000000")]);
    assert_eq!(
        form_decode(body.as_bytes()),
        vec![
            ("Body".to_string(), "23Y 是 & = + %".to_string()),
            ("From".to_string(), "+8613800000000".to_string())
        ]
    );
    assert_eq!(
        form_decode(b"a=b+c&d=%E5%A5%BD&bad=%zz&t=%"),
        vec![
            ("a".to_string(), "b c".to_string()),
            ("d".to_string(), "好".to_string()),
            ("bad".to_string(), "%zz".to_string()),
            ("t".to_string(), "%".to_string())
        ]
    );
}

/// A vector of Twilio's own request-validator tests (twilio-ruby, voice request).
#[test]
fn twilio_signature_matches_twilios_test_vector() {
    let fields: Vec<(String, String)> = [
        ("ToState", "California"),
        ("CalledState", "California"),
        ("Direction", "inbound"),
        ("FromState", "CA"),
        ("AccountSid", "ACba8bc05eacf94afdae398e642c9cc32d"),
        ("Caller", "+14153595711"),
        ("CallerZip", "94108"),
        ("CallerCountry", "US"),
        ("From", "+14153595711"),
        ("FromCity", "SAN FRANCISCO"),
        ("CallerCity", "SAN FRANCISCO"),
        ("To", "+14157669926"),
        ("FromZip", "94108"),
        ("FromCountry", "US"),
        ("ToCity", ""),
        ("CallStatus", "ringing"),
        ("CalledCity", ""),
        ("CallerState", "CA"),
        ("CalledZip", ""),
        ("ToZip", ""),
        ("ToCountry", "US"),
        ("CallSid", "CA136d09cd59a3c0ec8dbff44da5c03f31"),
        ("CalledCountry", "US"),
        ("Called", "+14157669926"),
        ("ApiVersion", "2010-04-01"),
        ("ApplicationSid", "AP44efecad51364e80b133bb7c07eb8204"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        twilio_signature(
            "2bd9e9638872de601313dc77410d3b23",
            "http://twiliotests.heroku.com/validate/voice",
            &fields
        ),
        "oVb2kXoVy8GEfwBDjR8bk/ZZ6eA="
    );
}

#[test]
fn twilio_callbacks_are_verified_and_read() {
    let g = Gateway::new(gw(SmsGatewayKind::Twilio));
    let url = "http://127.0.0.1:8080/v1/sms/inbound/g";
    let body = form_encode(&[
        ("From", "+8613800000001"),
        ("Body", "23Y"),
        ("MessageSid", "SM1"),
    ]);
    let sig = twilio_signature("12345", url, &form_decode(body.as_bytes()));
    let mut h = axum::http::HeaderMap::new();
    h.insert("x-twilio-signature", sig.parse().unwrap());
    assert!(g.verify(url, &h, body.as_bytes(), None));
    assert!(!g.verify(
        url,
        &h,
        b"From=%2B8613800000001&Body=23N&MessageSid=SM1",
        None
    ));
    assert!(!g.verify(url, &axum::http::HeaderMap::new(), body.as_bytes(), None));
    // A Twilio gateway never takes a path secret instead of its signature.
    assert!(!g.verify(
        url,
        &axum::http::HeaderMap::new(),
        body.as_bytes(),
        Some("12345")
    ));
    assert_eq!(
        g.inbound(body.as_bytes()).unwrap(),
        vec![Inbound {
            from: "+8613800000001".into(),
            text: "23Y".into(),
            id: "SM1".into()
        }]
    );
    let r = form_encode(&[("MessageSid", "SM9"), ("MessageStatus", "delivered")]);
    assert_eq!(
        g.receipts(r.as_bytes()).unwrap(),
        vec![Receipt {
            id: "SM9".into(),
            status: ReceiptStatus::Delivered
        }]
    );
}

#[test]
fn aliyun_requests_are_signed_over_the_sorted_fields() {
    let mut c = gw(SmsGatewayKind::Aliyun);
    c.secret = "testsecret".into();
    c.key_id = "testid".into();
    let body = aliyun_request(
        &c,
        "+8615300000001",
        "SMS_1",
        r#"{"code":"23"}"#,
        "msg_1",
        0,
        "nonce",
    );
    let f = form_decode(body.as_bytes());
    let get = |k: &str| f.iter().find(|(n, _)| n == k).unwrap().1.clone();
    assert_eq!(get("PhoneNumbers"), "15300000001");
    assert_eq!(get("TemplateParam"), r#"{"code":"23"}"#);
    assert_eq!(get("Timestamp"), "1970-01-01T00:00:00Z");
    // Recompute the signature from the other fields.
    let mut rest: Vec<(&str, &str)> = f
        .iter()
        .filter(|(k, _)| k != "Signature")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    rest.sort();
    let to_sign = format!("POST&%2F&{}", percent_encode(&form_encode(&rest)));
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(b"testsecret&").unwrap();
    mac.update(to_sign.as_bytes());
    assert_eq!(
        get("Signature"),
        STANDARD.encode(mac.finalize().into_bytes())
    );
}

#[test]
fn aliyun_messages_are_in_the_volunteers_words_bounded_and_never_empty() {
    let mut c = gw(SmsGatewayKind::Aliyun);
    c.templates = [
        ("callout".to_string(), "SMS_1".to_string()),
        ("stand_down".to_string(), "SMS_5".to_string()),
        ("reply".to_string(), "SMS_6".to_string()),
    ]
    .into();
    let params: BTreeMap<&'static str, String> = [
        ("code", String::new()),
        ("title", "河".repeat(200)),
        ("kind", "洪涝".to_string()),
        ("level", "Ⅳ级一般".to_string()),
        ("team_kind", "救援".to_string()),
    ]
    .into();
    let m = |kind, drill| Outgoing {
        to: "+8613800000001",
        text: "",
        msg_id: "m",
        kind,
        params: &params,
        status_url: "",
        drill,
    };
    let (t, v) = aliyun_message(&c, &m("stand_down", false));
    assert_eq!(t, "SMS_5");
    assert!(!v.contains_key("code"), "no empty variable: {v:?}");
    assert!(
        v.values()
            .all(|x| !x.is_empty() && x.chars().count() <= ALIYUN_VAR_MAX),
        "{v:?}"
    );
    assert!(v["title"].ends_with('…'));
    assert_eq!(
        (v["kind"].as_str(), v["team_kind"].as_str()),
        ("洪涝", "救援")
    );
    // A drill without a drill template: the title says so, within the limit.
    let (t, v) = aliyun_message(&c, &m("callout", true));
    assert_eq!(t, "SMS_1");
    assert!(v["title"].starts_with("【演练】"), "{v:?}");
    assert_eq!(v["title"].chars().count(), ALIYUN_VAR_MAX);
    // With one, the drill template.
    c.templates.insert("callout_drill".into(), "SMS_9".into());
    let (t, v) = aliyun_message(&c, &m("callout", true));
    assert_eq!(t, "SMS_9");
    assert!(!v["title"].starts_with("【演练】"));
    // A reply kind without its own template takes `reply`.
    assert_eq!(aliyun_message(&c, &m("reply_accepted", false)).0, "SMS_6");
    assert_eq!(aliyun_number("+8613800000001"), "13800000001");
    assert_eq!(aliyun_number("+85291234567"), "85291234567");
    assert_eq!(aliyun_number("+14155550100"), "14155550100");
}

#[test]
fn aliyun_takes_its_secret_in_the_path_and_vendors_get_their_answers() {
    let mut c = gw(SmsGatewayKind::Aliyun);
    c.callback_secret = "path-secret-0123".into();
    let g = Gateway::new(c);
    let h = axum::http::HeaderMap::new();
    assert!(g.verify(
        "http://x/v1/sms/inbound/a/path-secret-0123",
        &h,
        b"[]",
        Some("path-secret-0123")
    ));
    assert!(!g.verify("http://x", &h, b"[]", Some("path-secret-0124")));
    assert!(
        !g.verify("http://x", &h, b"[]", None),
        "no headers, no path secret"
    );
    let r = g.answer(true, serde_json::json!({"messages": []}));
    assert_eq!(r.status(), 200);
    let t = Gateway::new(gw(SmsGatewayKind::Twilio));
    let r = t.answer(true, serde_json::json!({}));
    assert_eq!(r.headers()["content-type"], "text/xml; charset=utf-8");
}

#[test]
fn aliyun_and_generic_callbacks_are_read() {
    let a = Gateway::new(gw(SmsGatewayKind::Aliyun));
    let up = br#"[{"phone_number":"13800000001","content":"23Y","sequence_id":1234}]"#;
    assert_eq!(
        a.inbound(up).unwrap(),
        vec![Inbound {
            from: "13800000001".into(),
            text: "23Y".into(),
            id: "1234".into()
        }]
    );
    let rep = br#"[{"biz_id":"b1","success":false,"err_code":"MOBILE_NOT_ON_SERVICE"}]"#;
    assert_eq!(
        a.receipts(rep).unwrap()[0].status,
        ReceiptStatus::Undelivered
    );
    assert!(a.inbound(b"not json").is_err());
    let g = Gateway::new(gw(SmsGatewayKind::Generic));
    assert!(g.inbound(br#"{"from":"+1"}"#).is_err());
    assert_eq!(
        g.receipts(br#"{"id":"x","status":"queued"}"#).unwrap(),
        vec![]
    );
}
