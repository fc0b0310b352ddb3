//! Channels that hand a message to a volunteer. A webhook POST signed per Standard Webhooks
//! ([`webhook`]); SMS gateways arrive with their own issue.

pub mod sms;
pub mod webhook;
