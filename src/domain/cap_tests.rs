//! The CAP parser's unit and property tests.
use super::*;
use proptest::prelude::*;

const MIN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>A1</identifier><sender>ews@example.org</sender>
  <sent>2026-11-29T08:00:00+08:00</sent><status>Exercise</status><msgType>Alert</msgType>
  <scope>Public</scope>
  <info><language>en-US</language><category>Met</category><event>Flood</event>
<urgency>Immediate</urgency><severity>Moderate</severity><certainty>Likely</certainty>
<headline>River rising</headline><area><areaDesc>滨江街道</areaDesc></area></info>
  <info><language>zh-CN</language><category>Met</category><event>洪水</event>
<urgency>Immediate</urgency><severity>Moderate</severity><certainty>Likely</certainty>
<headline>江水上涨</headline>
<area><areaDesc>滨江街道</areaDesc><geocode><valueName>GB/T 2260</valueName><value>990101001</value></geocode></area></info>
</alert>"#;

#[test]
fn reads_an_alert_and_prefers_its_chinese_info() {
    let a = parse(MIN.as_bytes()).unwrap();
    assert_eq!(a.identifier, "A1");
    assert_eq!(a.status, CapStatus::Exercise);
    assert_eq!(a.msg_type, MsgType::Alert);
    let i = a.info.unwrap();
    assert_eq!(i.language, "zh-CN");
    assert_eq!(i.headline.as_deref(), Some("江水上涨"));
    assert_eq!(
        i.areas[0].geocodes,
        vec![("GB/T 2260".to_string(), "990101001".to_string())]
    );
}

#[test]
fn severities_map_to_levels() {
    for (s, l) in [
        ("Extreme", Some(1)),
        ("Severe", Some(2)),
        ("Moderate", Some(3)),
        ("Minor", Some(4)),
        ("红色", Some(1)),
        ("橙", Some(2)),
        ("黄色", Some(3)),
        ("蓝", Some(4)),
        ("III", Some(3)),
        ("Ⅳ级", Some(4)),
        ("Unknown", None),
        ("", None),
    ] {
        assert_eq!(level_of(s), l, "{s}");
    }
}

#[test]
fn refusals_name_the_element() {
    let cases = [
        (MIN.replace("<identifier>A1</identifier>", ""), "alert.identifier"),
        (MIN.replace("<status>Exercise</status>", "<status>Real</status>"), "alert.status"),
        (MIN.replace("<sent>2026-11-29T08:00:00+08:00</sent>", "<sent>yesterday</sent>"), "alert.sent"),
        (MIN.replace("<event>洪水</event>", ""), "alert.info.event"),
        (MIN.replace("<areaDesc>滨江街道</areaDesc><geocode>", "<geocode>"), "alert.info.area.areaDesc"),
        (MIN.replace("<msgType>Alert</msgType>", "<msgType>Update</msgType>"), "alert.references"),
        (MIN.replace("cap:1.2", "cap:1.1"), "alert"),
        (MIN.replace("</alert>", ""), "body"),
        (
            MIN.replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "<?xml version=\"1.0\"?><!DOCTYPE alert [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"),
            "DOCTYPE",
        ),
    ];
    for (doc, element) in cases {
        let e = parse(doc.as_bytes()).unwrap_err();
        assert_eq!(e.element, element, "{e}");
    }
    let big = format!("{MIN}{}", " ".repeat(MAX_BYTES));
    assert!(parse(big.as_bytes()).unwrap_err().too_large);
}

#[test]
fn references_are_triples_separated_by_spaces() {
    let doc = MIN.replace(
        "<msgType>Alert</msgType>",
        "<msgType>Update</msgType><references>a@x,ID1,2026-11-29T07:00:00+08:00 b@y,ID2,2026-11-29T07:30:00+08:00</references>",
    );
    let a = parse(doc.as_bytes()).unwrap();
    assert_eq!(a.references.len(), 2);
    assert_eq!(a.references[1].identifier, "ID2");
    assert_eq!(
        a.references[0].to_string(),
        "a@x,ID1,2026-11-29T07:00:00+08:00"
    );
    let bad = doc.replace("b@y,ID2,", "b@y;ID2;");
    assert_eq!(
        parse(bad.as_bytes()).unwrap_err().element,
        "alert.references"
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn mangled_alerts_never_panic(cut in 0usize..1500, insert in "[<>&;!\\[\\]a-zA-Z0-9 \"'=/]{0,40}") {
        let mut doc = MIN.to_string();
        let at = doc.char_indices().map(|(i, _)| i).nth(cut % MIN.chars().count()).unwrap_or(0);
        doc.insert_str(at, &insert);
        let _ = parse(doc.as_bytes());
    }
}
