//! muster — an emergency volunteer mobilization dispatcher.
//!
//! Command staff raise an incident; muster picks the contingency plan, calls out the on-call
//! professional volunteer teams over webhooks (and SMS), counts acceptances atomically against
//! each requirement's headcount, and shows the muster filling up live.
//!
//! # Map
//! - [`domain`]: pure types and rules (regions, incidents, plans, callout state machine,
//!   tokens, templates). No I/O.
//! - [`seed`]: loading and checking the seed directory (`muster check`).
//! - [`store`]: Redis — keys, Lua scripts, streams. Every state change is one atomic script.
//! - [`engine`]: the stream workers — fan-out, notifier, projection, retry scheduler.
//! - [`notify`]: channels (signed webhooks).
//! - [`import`]: bulk registry import from spreadsheets (CSV, UTF-8 or GBK).
//! - [`api`]: the HTTP API (axum), one file per resource.
//! - [`web`]: the command centre (指挥台), HTML pages over the same models.
//! - [`app`]: wiring it all into a running service.
//! - [`redis_server`]: the embedded, supervised `redis-server` child; [`local_cluster`]: a
//!   local Redis Cluster for the Cluster tests and benchmarks.
//! - [`sim`]: the simulated volunteer population (`muster sim`).
//! - [`config`], [`clock`], [`telemetry`]: configuration, injected time, logs and metrics.

pub mod api;
pub mod app;
pub mod clock;
pub mod config;
pub mod domain;
pub mod engine;
pub mod import;
pub mod local_cluster;
pub mod notify;
pub mod redis_server;
pub mod seed;
pub mod sim;
pub mod store;
pub mod telemetry;
pub mod web;
