//! Payload codecs beside G.711 (`crate::g711`): L16, Opus, and loss concealment for G.711.

pub mod l16;
pub mod opus;
pub mod plc;
