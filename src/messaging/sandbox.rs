//! The provider of test keys: sends nothing, ever, and has the delivery simulated, so a
//! test-mode integration still sees `message.delivered`.

use futures::future::BoxFuture;

use super::provider::{Accepted, MessageSender, Outgoing, ProviderError};

pub struct Sandbox;

impl MessageSender for Sandbox {
    fn send<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Result<Accepted, ProviderError>> {
        Box::pin(async move {
            Ok(Accepted {
                provider_sid: None,
                from_number: message.from_number.clone(),
                simulated: true,
            })
        })
    }
}
