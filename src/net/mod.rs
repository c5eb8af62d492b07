//! Outbound network policy for requests whose target a tenant chooses.

pub mod ssrf;
