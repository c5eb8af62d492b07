//! Outbound calls through Vonage: `POST /v1/calls` with an NCCO that connects the callee to
//! our audio WebSocket. The call record (created `ringing` by the API) gets Vonage's uuid as
//! its carrier id; a refused create, or a call that ends before streaming (busy, unanswered…,
//! see `events`), is finished here exactly once.

use std::sync::Arc;
use std::time::Duration;

use super::rest::NewCall;
use super::{Shared, ncco, stream_token, unix_now};
use crate::telephony::engine_dialer::unplaced;
use crate::telephony::{Direction, OutboundCall};

pub(super) fn dial(shared: &Arc<Shared>, call: OutboundCall) {
    tokio::spawn(place(shared.clone(), call));
}

async fn place(shared: Arc<Shared>, call: OutboundCall) {
    let services = shared.services.clone();
    let (Some(rest), Some(secret)) = (&shared.rest, shared.secret()) else {
        let reason = "outbound calls through vonage need BOLTCALL_VONAGE_APPLICATION_ID, \
                      BOLTCALL_VONAGE_PRIVATE_KEY_PATH (a readable private key) and \
                      BOLTCALL_VONAGE_SIGNATURE_SECRET";
        unplaced(services, call, reason.into()).await;
        return;
    };
    let public_url = services.config.public_url();
    let expires_at = unix_now() + stream_token::OUTBOUND_TTL_SECS;
    let token = stream_token::mint(
        secret,
        Direction::Outbound,
        &call.call_id,
        &call.to,
        &call.from,
        expires_at,
    );
    let headers = [
        ("direction", "outbound"),
        ("call_id", call.call_id.as_str()),
        ("to", call.to.as_str()),
        ("from", call.from.as_str()),
        ("agent_id", call.agent_id.as_str()),
        (stream_token::HEADER, token.as_str()),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let query = serde_urlencoded::to_string([("call_id", &call.call_id)]).unwrap_or_default();
    let request = NewCall {
        to: &call.to,
        from: &call.from,
        ncco: ncco::connect_stream(&ncco::stream_url(&public_url), &headers),
        event_url: format!("{public_url}/carrier/vonage/event?{query}"),
        machine_detection: call.machine_detection.is_on(),
    };
    let call_id = call.call_id.clone();
    shared.calls.placing(call.clone());
    let created = rest.create_call(request).await;
    drop(call);
    let uuid = match created {
        Ok(uuid) => uuid,
        Err(e) => {
            if let Some(call) = shared.calls.take_unconnected(&call_id) {
                unplaced(services, call, e.to_string()).await;
            }
            return;
        }
    };
    tracing::info!(%call_id, %uuid, "vonage call placed");
    shared.calls.placed(&call_id, &uuid);
    if let Err(e) = services.store.set_call_carrier_id(&call_id, &uuid).await {
        tracing::error!(%call_id, "cannot record the vonage uuid: {e}");
    }
    // A call Vonage never reports on (our event URL unreachable, a lost webhook) must not
    // hold its admission slot forever: once its stream token has expired it cannot stream.
    tokio::time::sleep(Duration::from_secs(stream_token::OUTBOUND_TTL_SECS)).await;
    if let Some(call) = shared.calls.take_unconnected(&call_id) {
        if let Err(e) = rest.hangup(&uuid).await {
            tracing::warn!(%call_id, "cannot hang up the stalled vonage call: {e}");
        }
        let reason = format!(
            "vonage: no media stream within {} s",
            stream_token::OUTBOUND_TTL_SECS
        );
        unplaced(services, call, reason).await;
    }
}
