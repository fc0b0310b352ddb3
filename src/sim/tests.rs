//! Simulator tests.

use super::*;
use crate::domain::sms_reply::{Action, Reply, parse};

#[test]
fn the_simulated_volunteers_type_within_the_grammar() {
    for v in 0..8 {
        for (accept, action) in [(true, Action::Accept), (false, Action::Decline)] {
            let text = sloppy("47", v, accept);
            assert_eq!(
                parse(&text),
                Reply::Answer {
                    code: Some("47".into()),
                    action
                },
                "{text:?}"
            );
        }
    }
}

#[test]
fn reply_instructions_are_found_in_the_demo_texts() {
    assert_eq!(
        instruction("【应急召集】…需救援队员，能来回复23Y，来不了回复23N。"),
        Some(("23".into(), 'Y'))
    );
    assert_eq!(
        instruction("已确认出动（编号23），谢谢！到达后回复23D报到。"),
        Some(("23".into(), 'D'))
    );
    assert_eq!(
        instruction("CALL-OUT Flood: x. Rescue needed. Reply 105Y = can come"),
        Some(("105".into(), 'Y'))
    );
    assert_eq!(instruction("未能识别您的回复。请回复编号加Y"), None);
    assert_eq!(instruction("【应急召集】响应已结束"), None);
}
