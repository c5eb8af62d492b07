//! Refuses new inbound SIP calls with 503 while the engine shuts down; everything else goes
//! to the wrapped handler.

use futures::future::BoxFuture;

use super::service::{CallHandler, OutboundStatus, Routing};
use crate::agent::session::Drain;
use crate::telephony::dialer::OutboundCall;
use crate::telephony::leg::{CallLeg, LegInfo};

pub struct Draining<H> {
    pub inner: H,
    pub drain: Drain,
}

impl<H: CallHandler> CallHandler for Draining<H> {
    fn route(&self, info: LegInfo) -> BoxFuture<'static, Routing> {
        if self.drain.is_draining() {
            tracing::info!(from = %info.from, to = %info.to, "shutting down: call refused");
            return Box::pin(async {
                Routing::Reject {
                    code: 503,
                    reason: "Service Unavailable",
                }
            });
        }
        self.inner.route(info)
    }

    fn outbound_status(&self, call: &OutboundCall, status: OutboundStatus) {
        self.inner.outbound_status(call, status);
    }

    fn outbound_answered(&self, call: OutboundCall, leg: CallLeg) {
        self.inner.outbound_answered(call, leg);
    }
}
