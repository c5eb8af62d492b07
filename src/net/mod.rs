//! Outbound network policy for requests whose target a tenant chooses.

pub mod guarded_client;
pub mod ssrf;
