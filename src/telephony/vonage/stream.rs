//! `GET /carrier/vonage/stream`: one Vonage audio WebSocket is one call. The handler checks
//! the stream token in the first message, hands a `CallLeg` to the call session, then moves
//! audio (binary 16-bit PCM) and control (JSON text, REST calls) both ways.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::codec::{L16Codec, MAX_WIRE_FRAME_BYTES};
use super::protocol::{self, Connected, Inbound};
use super::{Shared, ncco, stream_token, unconfigured, unix_now};
use crate::agent::session::{CallRoute, run_call};
use crate::store::Scope;
use crate::telephony::{
    CallLeg, Direction, HangupReason, LegCommand, LegEnd, LegEvent, LegInfo, leg_pair,
};

/// Vonage sends `websocket:connected` right after the upgrade; a socket that does not is not
/// Vonage's.
const CONNECTED_TIMEOUT: Duration = Duration::from_secs(10);

/// How long hanging up through the REST API may hold up the end of a call.
const HANGUP_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn upgrade(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    if shared.services.drain.is_draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    if shared.secret().is_none() {
        return unconfigured("stream");
    }
    let Ok(slot) = shared.sockets.clone().try_acquire_owned() else {
        tracing::warn!("vonage stream refused: too many open sockets");
        return (StatusCode::SERVICE_UNAVAILABLE, "too many open streams").into_response();
    };
    crate::telephony::media_socket::configure(ws).on_upgrade(move |socket| async move {
        handle(socket, shared).await;
        drop(slot);
    })
}

/// A stream the token admitted, ready to run.
struct Admitted {
    leg: CallLeg,
    leg_end: LegEnd,
    route: CallRoute,
    /// The registry's key: Vonage's uuid inbound, our call id outbound.
    key: String,
    /// The agent's number, shown to the target of a transfer.
    caller_id: String,
}

async fn handle(mut socket: WebSocket, shared: Arc<Shared>) {
    let connected = match tokio::time::timeout(CONNECTED_TIMEOUT, wait_for_connected(&mut socket))
        .await
    {
        Ok(Some(connected)) => connected,
        Ok(None) => return,
        Err(_) => {
            tracing::warn!("vonage stream sent no websocket:connected in {CONNECTED_TIMEOUT:?}");
            return;
        }
    };
    let admitted = match admit(&shared, &connected).await {
        Ok(admitted) => admitted,
        Err(reason) => {
            tracing::warn!("vonage stream refused: {reason}");
            let _ = socket.close().await;
            return;
        }
    };
    let mut codec = match L16Codec::new(connected.rate) {
        Ok(codec) => codec,
        Err(e) => {
            tracing::error!("cannot build the vonage codec: {e}");
            shared.calls.end_stream(&admitted.key);
            return;
        }
    };
    let Admitted {
        leg,
        leg_end,
        route,
        key,
        caller_id,
    } = admitted;
    let session = tokio::spawn(run_call(shared.services.clone(), leg, route));
    let reason = shuttle(&mut socket, &shared, &key, &caller_id, &mut codec, leg_end).await;
    tracing::info!(%key, ?reason, "vonage stream ended");
    shared.calls.end_stream(&key);
    let _ = socket.close().await;
    if let Err(e) = session.await {
        tracing::error!(%key, "call session panicked: {e}");
    }
}

/// Reads until `websocket:connected`; `None` when the socket closes first or sends junk.
async fn wait_for_connected(socket: &mut WebSocket) -> Option<Connected> {
    while let Some(message) = socket.recv().await {
        match message {
            Ok(Message::Text(text)) => match protocol::parse(&text) {
                Ok(Inbound::Connected(connected)) => return Some(connected),
                Ok(other) => tracing::debug!(?other, "vonage message before connected ignored"),
                Err(e) => {
                    tracing::warn!("vonage stream opened with a bad first message: {e}");
                    return None;
                }
            },
            // Audio before the handshake message belongs to no call yet.
            Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_)) => {}
            Ok(Message::Close(_)) | Err(_) => return None,
        }
    }
    None
}

/// Checks the token and finds the call; an error says why the socket is refused.
async fn admit(shared: &Shared, connected: &Connected) -> Result<Admitted, String> {
    let secret = shared.secret().ok_or("not configured")?;
    let direction = match connected.header("direction") {
        "outbound" => Direction::Outbound,
        _ => Direction::Inbound,
    };
    let call = match direction {
        Direction::Inbound => connected.header("uuid"),
        Direction::Outbound => connected.header("call_id"),
    };
    let (to, from) = (connected.header("to"), connected.header("from"));
    let now = unix_now();
    let token = connected.header(stream_token::HEADER);
    stream_token::verify(secret, token, direction, call, to, from, now)
        .and_then(|expires_at| {
            let claim = format!("{}:{call}", direction.as_str());
            shared.used_tokens.claim(&claim, expires_at, now)
        })
        .map_err(|e| format!("{e} (call {call:?}, to {to:?})"))?;
    let parameters: Vec<(String, String)> = connected
        .headers
        .iter()
        .filter(|(k, _)| k != stream_token::HEADER)
        .cloned()
        .collect();
    let info = LegInfo {
        transport: "vonage",
        carrier_call_id: String::new(),
        from: from.to_string(),
        to: to.to_string(),
        direction,
        parameters,
        carrier_detects_machine: false,
        // Digits go out through the REST API when the engine has its credentials; otherwise
        // the session plays them in band.
        dtmf_out_of_band: shared.rest.is_some(),
        continuous_audio: false,
    };
    match direction {
        Direction::Inbound => admit_inbound(shared, info, call).await,
        Direction::Outbound => admit_outbound(shared, info, call),
    }
}

async fn admit_inbound(shared: &Shared, info: LegInfo, uuid: &str) -> Result<Admitted, String> {
    let services = &shared.services;
    let agent = match services.store.find_agent_by_phone(&info.to, true).await {
        Ok(Some(agent)) if agent.status == "active" => agent,
        Ok(_) => return Err(format!("no active agent answers {}", info.to)),
        Err(e) => return Err(format!("agent lookup failed: {e}")),
    };
    let scope = Scope {
        workspace_id: agent.workspace_id.clone(),
        live: agent.live,
    };
    let permit = services
        .admission
        .admit(&services.store, &scope, None)
        .await
        .map_err(|refusal| refusal.to_string())?;
    let caller_id = info.to.clone();
    let (mut leg, leg_end) = leg_pair(info);
    leg.info.carrier_call_id = uuid.to_string();
    shared.calls.start_inbound(uuid, leg_end.events.clone());
    let mut route = CallRoute::new(agent.id, scope);
    route.permit = Some(Arc::new(permit));
    Ok(Admitted {
        leg,
        leg_end,
        route,
        key: uuid.to_string(),
        caller_id,
    })
}

fn admit_outbound(shared: &Shared, info: LegInfo, call_id: &str) -> Result<Admitted, String> {
    let (mut leg, leg_end) = leg_pair(info);
    let streaming = shared
        .calls
        .start_outbound(call_id, leg_end.events.clone())
        .ok_or_else(|| format!("call {call_id} is not connecting"))?;
    let call = streaming.call;
    leg.info.carrier_call_id = streaming.uuid.unwrap_or_default();
    leg.info.carrier_detects_machine = call.machine_detection.is_on();
    // Verdicts that beat the socket here: first in line, on a fresh channel with room.
    for verdict in streaming.verdicts {
        let _ = leg_end.events.try_send(LegEvent::AnsweredBy(verdict));
    }
    let mut route = CallRoute::new(
        call.agent_id,
        Scope {
            workspace_id: call.workspace_id,
            live: call.live,
        },
    );
    route.call_id = Some(call.call_id.clone());
    route.context = call.context;
    route.permit = call.permit;
    route.machine_detection = call.machine_detection;
    Ok(Admitted {
        leg,
        leg_end,
        route,
        key: call.call_id,
        caller_id: call.from,
    })
}

/// Moves audio and control between the socket and the session until either side ends.
async fn shuttle(
    socket: &mut WebSocket,
    shared: &Arc<Shared>,
    key: &str,
    caller_id: &str,
    codec: &mut L16Codec,
    mut leg: LegEnd,
) -> HangupReason {
    let mut wire = [0u8; MAX_WIRE_FRAME_BYTES];
    let mut dropped = DroppedFrames::default();
    let dtmf = dtmf_sender(shared.clone(), key.to_string());
    let reason = loop {
        tokio::select! {
            message = socket.next() => {
                let text = match message {
                    Some(Ok(Message::Binary(audio))) => {
                        let decoded = codec.decode(&audio, |frame| {
                            // The codec hands over 16 kHz frames, which always fit.
                            let Some(frame) = frame.convert() else { return };
                            match leg.events.try_send(LegEvent::Audio(frame)) {
                                Ok(()) | Err(TrySendError::Closed(_)) => {}
                                // The session is seconds behind: dropping audio beats
                                // stalling the socket (and with it the agent's playout).
                                Err(TrySendError::Full(_)) => dropped.count(key),
                            }
                        });
                        if let Err(e) = decoded {
                            tracing::warn!(%key, "undecodable vonage audio: {e}");
                        }
                        continue;
                    }
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => {
                        break hang_up(&leg, HangupReason::Remote).await;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        // A reset socket is how most dropped calls look: the caller is gone.
                        tracing::info!(%key, "vonage stream broke off: {e}");
                        break hang_up(&leg, HangupReason::Remote).await;
                    }
                };
                match protocol::parse(&text) {
                    Ok(Inbound::Dtmf(digit)) => {
                        let _ = leg.events.send(LegEvent::Dtmf(digit)).await;
                    }
                    Ok(Inbound::Notify(Some(mark))) => {
                        let _ = leg.events.send(LegEvent::Mark(mark)).await;
                    }
                    Ok(Inbound::Cleared) => tracing::trace!(%key, "vonage cleared its buffer"),
                    Ok(other) => tracing::debug!(%key, ?other, "vonage message ignored"),
                    Err(e) => tracing::warn!(%key, "skipping malformed vonage message: {e}"),
                }
            }
            command = leg.commands.recv() => {
                let out = match command {
                    Some(LegCommand::Audio(frame)) => match codec.encode(&frame.into(), &mut wire) {
                        Ok(bytes) => Message::Binary(bytes.to_vec().into()),
                        Err(e) => {
                            tracing::warn!(%key, "cannot encode agent audio: {e}");
                            continue;
                        }
                    },
                    Some(LegCommand::Mark(name)) => Message::Text(protocol::notify(&name).into()),
                    // Vonage drops what it still buffers and answers `websocket:cleared`.
                    Some(LegCommand::Clear) => Message::Text(protocol::clear().into()),
                    Some(LegCommand::SendDtmf(digits)) => {
                        if dtmf.try_send(digits).is_err() {
                            tracing::warn!(%key, "dtmf dropped: the previous digits are still being sent");
                        }
                        continue;
                    }
                    Some(LegCommand::Transfer(target)) => {
                        transfer(shared, key, &target, caller_id).await;
                        break HangupReason::Local;
                    }
                    Some(LegCommand::Hangup) | None => {
                        hang_up_call(shared, key).await;
                        break HangupReason::Local;
                    }
                };
                if let Err(e) = socket.send(out).await {
                    break hang_up(&leg, HangupReason::TransportError(e.to_string())).await;
                }
            }
        }
    };
    dropped.summarise(key);
    reason
}

/// Sends DTMF through the REST API, in order, without holding up the audio.
fn dtmf_sender(shared: Arc<Shared>, key: String) -> mpsc::Sender<String> {
    let (tx, mut rx) = mpsc::channel::<String>(8);
    tokio::spawn(async move {
        while let Some(digits) = rx.recv().await {
            let Some(rest) = &shared.rest else {
                tracing::warn!(%key, %digits, "dtmf needs BOLTCALL_VONAGE_APPLICATION_ID and BOLTCALL_VONAGE_PRIVATE_KEY_PATH");
                continue;
            };
            let uuid = shared.calls.uuid(&key).unwrap_or_default();
            match rest.send_dtmf(&uuid, &digits).await {
                Ok(()) => tracing::info!(%key, %digits, "dtmf sent"),
                Err(e) => tracing::warn!(%key, %digits, "dtmf not sent: {e}"),
            }
        }
    });
    tx
}

/// Moves the caller to `target` with the REST API. Closing the socket afterwards ends only
/// our leg: the call follows its new NCCO. Without REST, closing it ends the call.
async fn transfer(shared: &Shared, key: &str, target: &str, caller_id: &str) {
    let Some(rest) = &shared.rest else {
        tracing::warn!(%key, %target, "transfer needs BOLTCALL_VONAGE_APPLICATION_ID and BOLTCALL_VONAGE_PRIVATE_KEY_PATH; hanging up");
        return;
    };
    let uuid = shared.calls.uuid(key).unwrap_or_default();
    let destination = ncco::transfer_destination(target, caller_id);
    match rest.transfer(&uuid, destination).await {
        Ok(()) => tracing::info!(%key, %target, "vonage call transferred"),
        Err(e) => tracing::error!(%key, %target, "transfer failed, hanging up: {e}"),
    }
}

/// Ends the whole call with the REST API (closing the socket alone raises Vonage's
/// `disconnected` fallback); closing the socket is the fallback without credentials.
async fn hang_up_call(shared: &Shared, key: &str) {
    let (Some(rest), Some(uuid)) = (&shared.rest, shared.calls.uuid(key)) else {
        return;
    };
    match tokio::time::timeout(HANGUP_TIMEOUT, rest.hangup(&uuid)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(%key, "vonage hangup failed (closing the stream instead): {e}")
        }
        Err(_) => tracing::warn!(%key, "vonage hangup timed out (closing the stream instead)"),
    }
}

/// Caller frames dropped because the session fell behind: counted, logged once when it
/// starts and once as a total, not once per frame (a stalled session would flood the log).
#[derive(Default)]
struct DroppedFrames(u64);

impl DroppedFrames {
    fn count(&mut self, key: &str) {
        if self.0 == 0 {
            tracing::warn!(%key, "session behind; dropping caller frames");
        }
        self.0 += 1;
    }

    fn summarise(&self, key: &str) {
        if self.0 > 0 {
            tracing::warn!(%key, dropped = self.0, "caller frames dropped while the session was behind");
        }
    }
}

async fn hang_up(leg: &LegEnd, reason: HangupReason) -> HangupReason {
    let _ = leg.events.send(LegEvent::Hangup(reason.clone())).await;
    reason
}
