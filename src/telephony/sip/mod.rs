//! SIP trunk signalling: sans-IO transactions and dialogs, with UDP/TCP IO at the edge.

pub mod auth;
pub mod dialog;
pub mod draining;
pub mod endpoint;
pub mod media_policy;
pub mod message;
pub mod policy;
pub mod routing;
pub mod sdp;
pub mod service;
pub mod transaction;

#[cfg(test)]
mod endpoint_hardening_tests;
#[cfg(test)]
mod endpoint_tests;
#[cfg(test)]
mod fuzz_tests;
