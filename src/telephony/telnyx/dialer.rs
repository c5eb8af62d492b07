//! Live outbound calls through Telnyx: `POST /v2/calls` with our media stream URL; the call
//! waits in the registry until its stream starts (the session runs it) or a hang-up webhook
//! says it never connected (busy, no answer, failed).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::call_events::client_state;
use super::rest::Action;
use super::stream_token::{OUTBOUND_TTL_SECS, StreamLeg};
use super::webhook::stream_settings;
use super::{TelnyxState, WEBHOOK_PATH, stream_url, unix_now};
use crate::store::CallOutcome;
use crate::telephony::engine_dialer::unplaced;
use crate::telephony::{Dialer, Direction, MachineDetection, OutboundCall};

pub struct TelnyxDialer {
    state: Arc<TelnyxState>,
}

impl TelnyxDialer {
    pub(super) fn new(state: Arc<TelnyxState>) -> Self {
        TelnyxDialer { state }
    }
}

impl Dialer for TelnyxDialer {
    fn dial(&self, call: OutboundCall) {
        tokio::spawn(place(self.state.clone(), call));
    }

    fn accepting(&self) -> bool {
        !self.state.services.drain.is_draining()
    }
}

async fn place(state: Arc<TelnyxState>, call: OutboundCall) {
    let services = state.services.clone();
    let config = &services.config;
    let (Some(auth), Some(connection_id)) = (&state.auth, &config.telnyx_connection_id) else {
        let reason = "outbound calls through telnyx need BOLTCALL_TELNYX_API_KEY, \
                      BOLTCALL_TELNYX_CONNECTION_ID and BOLTCALL_TELNYX_PUBLIC_KEY (its \
                      call webhooks are verified with it)";
        unplaced(services.clone(), call, reason.into()).await;
        return;
    };
    let call_id = call.call_id.clone();
    let leg = StreamLeg {
        direction: Direction::Outbound,
        call: call_id.clone(),
    };
    let public_url = config.public_url();
    let query = leg.query(&auth.api_key, unix_now() + OUTBOUND_TTL_SECS);
    let mut body = stream_settings(stream_url(&public_url, &query));
    body["connection_id"] = json!(connection_id);
    body["to"] = json!(call.to);
    body["from"] = json!(call.from);
    body["webhook_url"] = json!(format!("{public_url}{WEBHOOK_PATH}"));
    body["webhook_url_method"] = json!("POST");
    body["client_state"] = json!(client_state(&call_id));
    if let Some(mode) = machine_detection(&call.machine_detection) {
        body["answering_machine_detection"] = json!(mode);
    }
    state.registry.add_pending(call);
    let call_control_id = match auth.rest.dial(&body).await {
        Ok(id) => id,
        Err(e) => {
            if let Some(pending) = state.registry.take_pending(&call_id) {
                unplaced(
                    services.clone(),
                    pending.call,
                    format!("telnyx refused the call: {e}"),
                )
                .await;
            }
            return;
        }
    };
    tracing::info!(%call_id, %call_control_id, "telnyx outbound call placed");
    if let Err(e) = services
        .store
        .set_call_carrier_id(&call_id, &call_control_id)
        .await
    {
        tracing::error!(%call_id, "cannot record the telnyx call control id: {e}");
    }
    if !state.registry.placed(&call_id, &call_control_id) {
        // Already streaming, or already finished by its hang-up webhook.
        return;
    }
    // A call whose stream never comes (webhooks lost, the stream URL unreachable) must not
    // stay `ringing` holding its admission slot: past the token's life it cannot stream.
    tokio::time::sleep(Duration::from_secs(OUTBOUND_TTL_SECS)).await;
    give_up(&state, &call_id, "telnyx media stream never connected").await;
}

/// An outbound call still waiting for its stream that will not get one: hung up at Telnyx and
/// finished `failed` with `reason` (its admission permit goes with it). Nothing when the call
/// is no longer waiting (streaming, or finished already).
pub(super) async fn give_up(state: &TelnyxState, call_id: &str, reason: &str) {
    let Some(pending) = state.registry.take_pending(call_id) else {
        return;
    };
    tracing::warn!(%call_id, "{reason}; hanging up");
    if let (Some(auth), Some(id)) = (&state.auth, &pending.call_control_id)
        && let Err(e) = auth.rest.command(id, &Action::Hangup).await
    {
        tracing::warn!(%call_id, "telnyx hangup failed: {e}");
    }
    let outcome = CallOutcome::unanswered("failed", reason);
    if let Err(e) = state.services.store.finish_call(call_id, outcome).await {
        tracing::error!(%call_id, "cannot record the outbound call's end: {e}");
    }
}

/// Telnyx's `answering_machine_detection` for what the request asked: leaving a message needs
/// the end of the greeting too; hanging up on a machine only the verdict.
fn machine_detection(asked: &MachineDetection) -> Option<&'static str> {
    match asked {
        MachineDetection::Off => None,
        MachineDetection::LeaveMessage(_) => Some("greeting_end"),
        MachineDetection::HangUp => Some("detect"),
    }
}
