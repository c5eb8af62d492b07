//! What a messaging provider does: take one message and say whether it accepted it.

use futures::future::BoxFuture;

/// A message ready to hand to a provider. Numbers are E.164; the provider adds its own channel
/// prefixes (`whatsapp:`).
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// `sms` or `whatsapp`.
    pub channel: String,
    pub to: String,
    /// Sender number; the provider's configured sender when `None`.
    pub from_number: Option<String>,
    pub body: Option<String>,
    /// A pre-approved template (Twilio: a Content SID) and its variables.
    pub template: Option<String>,
    pub variables: Option<serde_json::Value>,
    /// Where the provider reports this message's status changes.
    pub status_callback: String,
}

/// The provider took the message.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The provider's id of the message (`None` for the sandbox).
    pub provider_sid: Option<String>,
    /// The sender the provider used, when known.
    pub from_number: Option<String>,
    /// The sandbox: nothing left the engine and delivery is to be simulated.
    pub simulated: bool,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered and refused the message (bad number, unverified sender, …).
    #[error("{message}")]
    Rejected {
        code: Option<String>,
        message: String,
    },
    /// No usable answer from the provider.
    #[error("{0}")]
    Unreachable(String),
}

pub trait MessageSender: Send + Sync {
    fn send<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Result<Accepted, ProviderError>>;
}
