//! Callouts: one request to one volunteer for one requirement of one incident, and the state
//! machine of its answer.
//!
//! The transitions are decided here, in one function, and the Lua script that applies an
//! answer atomically in Redis (`store/lua/ack.lua`) mirrors this table; the unit tests below
//! pin it and the integration tests check the script against it.

use serde::{Deserialize, Serialize};

/// The state of a callout, as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CalloutState {
    /// Created, not yet handed to a channel.
    Pending,
    /// A channel accepted the message.
    Notified,
    /// Accepted while a slot was free; counts toward the headcount.
    Accepted,
    /// Accepted after the requirement was full; waits in acceptance order.
    Standby,
    /// Said no.
    Declined,
    /// Its step's wait ran out unanswered; it can still accept.
    Silent,
    /// Accepted, then withdrew.
    Withdrawn,
    /// Accepted and checked in on site.
    Arrived,
    /// The incident was stood down.
    StoodDown,
    /// No channel could deliver.
    Failed,
}

/// Every state, in wire order; the progress counters are kept per state.
pub const ALL_STATES: [CalloutState; 10] = [
    CalloutState::Pending,
    CalloutState::Notified,
    CalloutState::Accepted,
    CalloutState::Standby,
    CalloutState::Declined,
    CalloutState::Silent,
    CalloutState::Withdrawn,
    CalloutState::Arrived,
    CalloutState::StoodDown,
    CalloutState::Failed,
];

impl CalloutState {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CalloutState::Pending => "pending",
            CalloutState::Notified => "notified",
            CalloutState::Accepted => "accepted",
            CalloutState::Standby => "standby",
            CalloutState::Declined => "declined",
            CalloutState::Silent => "silent",
            CalloutState::Withdrawn => "withdrawn",
            CalloutState::Arrived => "arrived",
            CalloutState::StoodDown => "stood_down",
            CalloutState::Failed => "failed",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<CalloutState> {
        ALL_STATES.iter().copied().find(|st| st.as_str() == s)
    }

    /// Counted on the incident: accepted, or arrived since.
    pub fn is_serving(self) -> bool {
        matches!(self, CalloutState::Accepted | CalloutState::Arrived)
    }

    /// Still waiting for or holding an answer (its SMS reply code stays bound).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            CalloutState::Pending
                | CalloutState::Notified
                | CalloutState::Silent
                | CalloutState::Accepted
                | CalloutState::Standby
                | CalloutState::Arrived
        )
    }

    /// Whether the wire name `s` is a serving state (see [`CalloutState::is_serving`]).
    pub fn serving(s: &str) -> bool {
        CalloutState::parse(s).is_some_and(CalloutState::is_serving)
    }
}

/// What a volunteer can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// I'm coming.
    Accept,
    /// I can't.
    Decline,
    /// I'm on site (到).
    Arrived,
    /// I accepted but can no longer come.
    Withdraw,
}

impl Response {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Response::Accept => "accept",
            Response::Decline => "decline",
            Response::Arrived => "arrived",
            Response::Withdraw => "withdraw",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Response> {
        Some(match s {
            "accept" => Response::Accept,
            "decline" => Response::Decline,
            "arrived" => Response::Arrived,
            "withdraw" => Response::Withdraw,
            _ => return None,
        })
    }
}

/// What an answer does to a callout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing changes (a repeated answer): idempotent success.
    Unchanged,
    /// Accept: `accepted` if a slot is free, otherwise `standby`.
    TakeSlotOrStandby,
    /// Move to this state.
    To(CalloutState),
    /// Move to this state and give the freed slot to the first on standby.
    ToAndPromote(CalloutState),
    /// The answer makes no sense in this state; the reason says why.
    Refused(&'static str),
}

/// The transition table. `stood_down` is refused here; the store answers 410 before asking.
pub fn transition(state: CalloutState, response: Response) -> Transition {
    use CalloutState as S;
    use Response as R;
    use Transition as T;
    match (response, state) {
        (_, S::StoodDown) => T::Refused("the incident was stood down"),
        (R::Accept, S::Accepted | S::Standby | S::Arrived) => T::Unchanged,
        (R::Accept, _) => T::TakeSlotOrStandby,
        (R::Decline, S::Declined) => T::Unchanged,
        (R::Decline | R::Withdraw, S::Accepted | S::Arrived) => T::ToAndPromote(S::Withdrawn),
        (R::Decline | R::Withdraw, S::Standby) => T::To(S::Withdrawn),
        (R::Withdraw, S::Withdrawn) | (R::Decline, S::Withdrawn) => T::Unchanged,
        (R::Withdraw, S::Declined) => T::Unchanged,
        (R::Decline | R::Withdraw, _) => T::To(S::Declined),
        (R::Arrived, S::Arrived) => T::Unchanged,
        (R::Arrived, S::Accepted) => T::To(S::Arrived),
        (R::Arrived, S::Standby) => {
            T::Refused("you are on standby: the requirement is full; wait to be promoted")
        }
        (R::Arrived, _) => T::Refused("accept the call-out before reporting arrival"),
    }
}

/// The transition table rendered as a Lua table literal, so `ack.lua` applies exactly the rules
/// of [`transition`] and the two can never drift apart.
///
/// Shape: `{accept = {pending = "slot", accepted = "same", ...}, ...}` where the action is
/// `same`, `slot`, `to:<state>`, `promote:<state>` or `refuse:<reason>`.
pub fn lua_transition_table() -> String {
    let mut out = String::from("{");
    for r in [
        Response::Accept,
        Response::Decline,
        Response::Arrived,
        Response::Withdraw,
    ] {
        out.push_str(r.as_str());
        out.push_str("={");
        for s in ALL_STATES {
            let action = match transition(s, r) {
                Transition::Unchanged => "same".to_string(),
                Transition::TakeSlotOrStandby => "slot".to_string(),
                Transition::To(t) => format!("to:{}", t.as_str()),
                Transition::ToAndPromote(t) => format!("promote:{}", t.as_str()),
                Transition::Refused(why) => format!("refuse:{why}"),
            };
            out.push_str(&format!("{}={:?},", s.as_str(), action));
        }
        out.push_str("},");
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use CalloutState as S;

    #[test]
    fn accepting_is_idempotent_once_holding_a_place() {
        for s in [S::Accepted, S::Standby, S::Arrived] {
            assert_eq!(transition(s, Response::Accept), Transition::Unchanged);
        }
        for s in [
            S::Pending,
            S::Notified,
            S::Silent,
            S::Declined,
            S::Withdrawn,
            S::Failed,
        ] {
            assert_eq!(
                transition(s, Response::Accept),
                Transition::TakeSlotOrStandby
            );
        }
    }

    #[test]
    fn leaving_a_slot_promotes_but_leaving_standby_does_not() {
        assert_eq!(
            transition(S::Accepted, Response::Withdraw),
            Transition::ToAndPromote(S::Withdrawn)
        );
        assert_eq!(
            transition(S::Arrived, Response::Decline),
            Transition::ToAndPromote(S::Withdrawn)
        );
        assert_eq!(
            transition(S::Standby, Response::Withdraw),
            Transition::To(S::Withdrawn)
        );
        assert_eq!(
            transition(S::Notified, Response::Withdraw),
            Transition::To(S::Declined)
        );
    }

    #[test]
    fn arrival_needs_an_accepted_place_and_nothing_moves_after_stand_down() {
        assert_eq!(
            transition(S::Accepted, Response::Arrived),
            Transition::To(S::Arrived)
        );
        assert!(matches!(
            transition(S::Standby, Response::Arrived),
            Transition::Refused(_)
        ));
        assert!(matches!(
            transition(S::Notified, Response::Arrived),
            Transition::Refused(_)
        ));
        for r in [
            Response::Accept,
            Response::Decline,
            Response::Arrived,
            Response::Withdraw,
        ] {
            assert!(matches!(
                transition(S::StoodDown, r),
                Transition::Refused(_)
            ));
        }
    }

    #[test]
    fn wire_names_round_trip() {
        for s in ALL_STATES {
            assert_eq!(CalloutState::parse(s.as_str()), Some(s));
        }
    }
}
