//! Outbound calls through Twilio: the engine asks Twilio's REST API to call the callee with
//! TwiML that, once answered, connects the call to our Media Streams WebSocket. The stream's
//! `start` (stream.rs) takes over from there; status and AMD callbacks (callbacks.rs) report
//! what happened to calls that never got that far, and who answered.

use std::sync::Arc;
use std::time::Instant;

use super::placed::{Ending, PlacedCalls};
use super::rest::{NewCall, TwilioRest};
use super::stream_token::{self, Subject};
use super::twiml::{Answer, stream_url};
use super::webhook::unix_now;
use crate::agent::session::CallServices;
use crate::config::Config;
use crate::telephony::OutboundCall;
use crate::telephony::engine_dialer::unplaced;

/// The engine's Twilio voice side: one REST client (when the account is configured) and the
/// calls it placed. Shared by the dialer and the `/carrier/twilio/*` handlers.
#[derive(Debug, Default)]
pub struct TwilioCalls {
    rest: Option<TwilioRest>,
    pub(super) placed: PlacedCalls,
}

impl TwilioCalls {
    /// REST is available when both `BOLTCALL_TWILIO_ACCOUNT_SID` and
    /// `BOLTCALL_TWILIO_AUTH_TOKEN` are set.
    pub fn from_config(config: &Config) -> Arc<TwilioCalls> {
        let rest = match (&config.twilio_account_sid, &config.twilio_auth_token) {
            (Some(sid), Some(token)) => Some(TwilioRest::new(&config.twilio_api_base, sid, token)),
            _ => None,
        };
        Arc::new(TwilioCalls {
            rest,
            placed: PlacedCalls::default(),
        })
    }

    pub(super) fn rest(&self) -> Option<&TwilioRest> {
        self.rest.as_ref()
    }

    /// Places a live outbound call in the background; its progress lands in the store.
    pub fn dial(self: &Arc<Self>, services: Arc<CallServices>, call: OutboundCall) {
        tokio::spawn(place(self.clone(), services, call));
    }
}

/// `{public_url}/carrier/twilio/{endpoint}?call_id=…`: Twilio signs the whole URL, so the
/// call id in it is as authentic as the callback's body.
fn callback_url(public_url: &str, endpoint: &str, call_id: &str) -> String {
    let query = serde_urlencoded::to_string([("call_id", call_id)]).unwrap_or_default();
    format!(
        "{}/carrier/twilio/{endpoint}?{query}",
        public_url.trim_end_matches('/')
    )
}

/// The TwiML a placed call runs once answered: connect to our stream, carrying the call id
/// and the token the stream's `start` must bring back.
fn stream_twiml(config: &Config, auth_token: &str, call: &OutboundCall) -> String {
    let subject = Subject::Outbound {
        call_id: &call.call_id,
    };
    let expires_at = unix_now() + stream_token::OUTBOUND_TTL_SECS;
    let token = stream_token::mint(auth_token, subject, &call.to, &call.from, expires_at);
    Answer::Stream {
        url: stream_url(&config.public_url()),
        parameters: vec![
            ("call_id".into(), call.call_id.clone()),
            ("direction".into(), "outbound".into()),
            ("from".into(), call.from.clone()),
            ("to".into(), call.to.clone()),
            (stream_token::PARAMETER.into(), token),
        ],
    }
    .to_xml()
}

async fn place(calls: Arc<TwilioCalls>, services: Arc<CallServices>, call: OutboundCall) {
    let config = services.config.clone();
    let (Some(rest), Some(auth_token)) = (calls.rest(), config.twilio_auth_token.as_deref()) else {
        let reason = "outbound calls through twilio need BOLTCALL_TWILIO_ACCOUNT_SID and \
                      BOLTCALL_TWILIO_AUTH_TOKEN";
        unplaced(services, call, reason.into()).await;
        return;
    };
    let public_url = config.public_url();
    let request = NewCall {
        to: call.to.clone(),
        from: call.from.clone(),
        twiml: stream_twiml(&config, auth_token, &call),
        status_callback: callback_url(&public_url, "status", &call.call_id),
        amd_callback: call
            .machine_detection
            .is_on()
            .then(|| callback_url(&public_url, "amd", &call.call_id)),
    };
    let call_id = call.call_id.clone();
    // Registered first: Twilio may call back before its answer to the create reaches us.
    calls.placed.insert(call, Instant::now());
    match rest.create_call(&request).await {
        Ok(call_sid) => {
            tracing::info!(%call_id, %call_sid, to = %request.to, "twilio is placing the call");
            calls.placed.set_call_sid(&call_id, &call_sid);
            if let Err(e) = services
                .store
                .set_call_carrier_id(&call_id, &call_sid)
                .await
            {
                tracing::error!(%call_id, "cannot record the call's CallSid: {e}");
            }
        }
        Err(e) => {
            if let Ending::Unstarted(call) = calls.placed.end(&call_id) {
                unplaced(services, call, e.reason()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_urls_carry_the_call_id_in_their_signed_query() {
        assert_eq!(
            callback_url("https://calls.example.com/", "status", "call_1"),
            "https://calls.example.com/carrier/twilio/status?call_id=call_1"
        );
        assert_eq!(
            callback_url("http://127.0.0.1:9000", "amd", "a b&c"),
            "http://127.0.0.1:9000/carrier/twilio/amd?call_id=a+b%26c"
        );
    }

    #[test]
    fn the_stream_twiml_carries_a_token_for_this_call_only() {
        let config = Config {
            public_url: Some("https://calls.example.com".into()),
            ..Config::default()
        };
        let call = OutboundCall {
            call_id: "call_1".into(),
            workspace_id: "ws".into(),
            live: true,
            agent_id: "agent_1".into(),
            from: "+15550001000".into(),
            to: "+15550002000".into(),
            context: None,
            permit: None,
            machine_detection: Default::default(),
        };
        let xml = stream_twiml(&config, "secret", &call);
        assert!(xml.contains(r#"<Stream url="wss://calls.example.com/carrier/twilio/stream">"#));
        assert!(xml.contains(r#"<Parameter name="call_id" value="call_1"/>"#));
        assert!(xml.contains(r#"<Parameter name="direction" value="outbound"/>"#));
        let marker = r#"<Parameter name="boltcall_token" value=""#;
        let at = xml.find(marker).unwrap() + marker.len();
        let token = &xml[at..at + xml[at..].find('"').unwrap()];
        let subject = Subject::Outbound { call_id: "call_1" };
        let now = unix_now();
        assert!(stream_token::verify("secret", token, subject, &call.to, &call.from, now).is_ok());
        let other = Subject::Outbound { call_id: "call_2" };
        assert!(stream_token::verify("secret", token, other, &call.to, &call.from, now).is_err());
    }
}
