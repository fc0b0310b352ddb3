//! Pure domain types and rules: no tokio, no Redis, no HTTP.
//!
//! - [`access`]: roles and teams.
//! - [`region`]: the city → county → township tree and region codes.
//! - [`roster`]: on-call rotation layers, overrides, who is on call when.
//! - [`incident`]: incident ids, levels, modes and statuses.
//! - [`ladder`]: escalation ladders (township → county → city) and scope distances.
//! - [`plan`]: contingency plans, requirements and choosing the plan for an incident.
//! - [`callout`]: callout states and the answer state machine.
//! - [`eligibility`]: who may be called right now, and the reason for everyone left out.
//! - [`ical`]: iCalendar feeds of on-call shifts.
//! - [`volunteer`]: phone numbers and masking of personal data.
//! - [`template`]: per-locale message templates.
//! - [`sms_reply`]: the SMS reply grammar; [`segments`]: SMS encoding and segment counting.
//! - [`token`]: signed ack tokens.
//! - [`text`]: what free text may hold (no control characters).

pub mod access;
pub mod audit;
pub mod callout;
pub mod cap;
pub mod certificate;
pub mod eligibility;
pub mod ical;
pub mod incident;
pub mod ladder;
pub mod plan;
pub mod region;
pub mod roster;
pub mod segments;
pub mod sms_reply;
pub mod template;
pub mod text;
pub mod token;
pub mod volunteer;
