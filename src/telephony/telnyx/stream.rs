//! `GET /carrier/telnyx/stream`: one Telnyx media stream WebSocket is one call. The URL's token
//! is checked before the upgrade; the handler waits for `start`, hands a `CallLeg` to the call
//! session, shuttles audio both ways, and carries the session's hang-up, transfer and DTMF out
//! as Call Control commands (closing the socket alone would leave the call up).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc::error::TrySendError;

use super::call_events::decode_client_state;
use super::dialer::give_up;
use super::media_protocol::{self, Inbound, Start};
use super::rest::Action;
use super::stream_token::{self, StreamLeg};
use super::{TelnyxState, unconfigured, unix_now};
use crate::agent::session::{CallRoute, run_call};
use crate::store::Scope;
use crate::telephony::stream_codec::{MAX_WIRE_FRAME_BYTES, WireCodec};
use crate::telephony::{
    Direction, HangupReason, LegCommand, LegEnd, LegEvent, LegInfo, OutboundCall, leg_pair,
};

/// Telnyx sends `connected` and `start` right after the upgrade.
const START_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn upgrade(
    State(state): State<Arc<TelnyxState>>,
    OriginalUri(uri): OriginalUri,
    ws: WebSocketUpgrade,
) -> Response {
    if state.services.drain.is_draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let Some(auth) = &state.auth else {
        return unconfigured("stream");
    };
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    let now = unix_now();
    let checked =
        stream_token::verify_query(&auth.api_key, &query, now).and_then(|(leg, expires)| {
            if state.used_tokens.claim_key(leg.replay_key(), expires, now) {
                Ok(leg)
            } else {
                Err(stream_token::TokenError::Replayed(leg.call))
            }
        });
    let leg = match checked {
        Ok(leg) => leg,
        Err(e) => {
            tracing::warn!("telnyx stream refused: {e}");
            return (StatusCode::FORBIDDEN, "invalid or used stream token").into_response();
        }
    };
    crate::telephony::media_socket::configure(ws)
        .on_upgrade(move |socket| handle(socket, state, leg))
}

/// How the stream ended, and so what Telnyx still has to be told.
#[derive(Debug, PartialEq)]
enum Ending {
    /// The far end hung up: nothing to do.
    Remote,
    /// Our side ended the call (or the socket failed under us): hang it up.
    HangUp,
    Transfer(String),
}

async fn handle(mut socket: WebSocket, state: Arc<TelnyxState>, leg: StreamLeg) {
    let start = match tokio::time::timeout(START_TIMEOUT, wait_for_start(&mut socket)).await {
        Ok(Some(start)) => start,
        Ok(None) => {
            abandon(&state, &leg).await;
            return;
        }
        Err(_) => {
            tracing::warn!(call = %leg.call, "telnyx stream sent no start in {START_TIMEOUT:?}; closing");
            let _ = socket.close().await;
            abandon(&state, &leg).await;
            return;
        }
    };
    let id = start.call_control_id.clone();
    let mut codec = match WireCodec::new(start.format) {
        Ok(codec) => codec,
        Err(e) => {
            tracing::error!("cannot build the telnyx codec: {e}");
            let _ = socket.close().await;
            command(&state, &id, Action::Hangup).await;
            return;
        }
    };
    let (mut call_leg, leg_end) = leg_pair(leg_info(&start, leg.direction));
    let route = match leg.direction {
        Direction::Inbound => inbound_route(&state, &leg, &start, &leg_end).await,
        Direction::Outbound => outbound_route(&state, &leg, &start, &leg_end, &mut call_leg.info),
    };
    let route = match route {
        Ok(route) => route,
        Err(refused) => {
            let _ = socket.close().await;
            // A call we cannot run is hung up rather than left silent; a `start` that is not
            // for the token's call names a call that is none of this stream's business.
            if refused == Refused::CannotRun {
                command(&state, &id, Action::Hangup).await;
            }
            return;
        }
    };
    let session = tokio::spawn(run_call(state.services.clone(), call_leg, route));
    let ending = shuttle(&mut socket, &state, &id, &mut codec, leg_end).await;
    state.registry.end(&id);
    tracing::info!(call_control_id = %id, ?ending, "telnyx stream ended");
    let _ = socket.close().await;
    match ending {
        Ending::Remote => {}
        Ending::HangUp => {
            command(&state, &id, Action::Hangup).await;
        }
        Ending::Transfer(to) => {
            if !command(&state, &id, Action::Transfer { to }).await {
                // The session has ended; a caller left on a silent line is worse than a hang-up.
                command(&state, &id, Action::Hangup).await;
            }
        }
    }
    if let Err(e) = session.await {
        tracing::error!(call_control_id = %id, "call session panicked: {e}");
    }
}

/// The stream ended before a usable `start`: the call it was for is hung up rather than left
/// silent (an outbound one is finished `failed`; its permit goes with it).
async fn abandon(state: &TelnyxState, leg: &StreamLeg) {
    match leg.direction {
        Direction::Inbound => {
            command(state, &leg.call, Action::Hangup).await;
        }
        Direction::Outbound => {
            give_up(
                state,
                &leg.call,
                "telnyx media stream ended before it started",
            )
            .await;
        }
    }
}

/// Why a stream gets no session.
#[derive(Debug, PartialEq)]
enum Refused {
    /// The `start` is not for the call the token was minted for.
    NotThisCall,
    /// The call is ours but cannot run here (no active agent, admission, no longer waiting).
    CannotRun,
}

/// An inbound call's route: the token was minted for the call we answered, an active agent
/// answers the number, and admission lets the call in (the permit rides with the route).
async fn inbound_route(
    state: &TelnyxState,
    leg: &StreamLeg,
    start: &Start,
    leg_end: &LegEnd,
) -> Result<CallRoute, Refused> {
    let services = &state.services;
    let id = &start.call_control_id;
    if *id != leg.call {
        tracing::warn!(call_control_id = %id, token_for = %leg.call, "telnyx stream refused: start is for another call");
        return Err(Refused::NotThisCall);
    }
    let agent = match services.store.find_agent_by_phone(&start.to, true).await {
        Ok(Some(agent)) if agent.status == "active" => agent,
        Ok(_) => {
            tracing::warn!(call_control_id = %id, to = %start.to, "telnyx stream for no active agent");
            return Err(Refused::CannotRun);
        }
        Err(e) => {
            tracing::error!(call_control_id = %id, "agent lookup failed: {e}");
            return Err(Refused::CannotRun);
        }
    };
    let scope = Scope {
        workspace_id: agent.workspace_id.clone(),
        live: agent.live,
    };
    let permit = match services
        .admission
        .admit(&services.store, &scope, None)
        .await
    {
        Ok(permit) => permit,
        Err(refusal) => {
            tracing::warn!(call_control_id = %id, "telnyx stream refused: {refusal}");
            return Err(Refused::CannotRun);
        }
    };
    state.registry.start_inbound(id, &leg_end.events);
    let mut route = CallRoute::new(agent.id, scope);
    route.permit = Some(Arc::new(permit));
    Ok(route)
}

/// An outbound call's route: the call this engine placed (the `client_state` we set must name
/// the call the token was minted for) and is still waiting for its stream.
fn outbound_route(
    state: &TelnyxState,
    leg: &StreamLeg,
    start: &Start,
    leg_end: &LegEnd,
    info: &mut LegInfo,
) -> Result<CallRoute, Refused> {
    let id = &start.call_control_id;
    let ours = start.client_state.as_deref().and_then(decode_client_state);
    if ours.as_deref() != Some(leg.call.as_str()) {
        tracing::warn!(call_control_id = %id, token_for = %leg.call, "telnyx stream refused: start is for another call");
        return Err(Refused::NotThisCall);
    }
    let Some(call) = state
        .registry
        .start_outbound(&leg.call, id, &leg_end.events)
    else {
        tracing::warn!(call_id = %leg.call, "telnyx stream for an outbound call that is not waiting for one");
        return Err(Refused::CannotRun);
    };
    info.from = call.from.clone();
    info.to = call.to.clone();
    info.carrier_detects_machine = call.machine_detection.is_on();
    Ok(outbound_call_route(call))
}

fn outbound_call_route(call: OutboundCall) -> CallRoute {
    let mut route = CallRoute::new(
        call.agent_id,
        Scope {
            workspace_id: call.workspace_id,
            live: call.live,
        },
    );
    route.call_id = Some(call.call_id);
    route.context = call.context;
    route.permit = call.permit;
    route.machine_detection = call.machine_detection;
    route
}

fn leg_info(start: &Start, direction: Direction) -> LegInfo {
    LegInfo {
        transport: "telnyx",
        carrier_call_id: start.call_control_id.clone(),
        from: start.from.clone(),
        to: start.to.clone(),
        direction,
        parameters: vec![("stream_id".into(), start.stream_id.clone())],
        carrier_detects_machine: false,
        // `send_dtmf` plays the digits on the call itself.
        dtmf_out_of_band: true,
        continuous_audio: false,
    }
}

/// Reads until `start`; `None` when the socket closes first or the start cannot be used.
async fn wait_for_start(socket: &mut WebSocket) -> Option<Start> {
    while let Some(message) = socket.recv().await {
        let Ok(Message::Text(text)) = message else {
            match message {
                Ok(Message::Close(_)) | Err(_) => return None,
                _ => continue,
            }
        };
        match media_protocol::parse(&text) {
            Ok(Inbound::Start(start)) => return Some(start),
            Ok(Inbound::Connected) => {}
            Ok(other) => tracing::debug!(?other, "telnyx message before start ignored"),
            Err(e @ media_protocol::ProtocolError::Format { .. }) => {
                tracing::warn!("telnyx stream refused: {e}");
                return None;
            }
            Err(e) => tracing::warn!("telnyx stream: {e}"),
        }
    }
    None
}

/// Moves audio and control between the socket and the session until either side ends.
async fn shuttle(
    socket: &mut WebSocket,
    state: &Arc<TelnyxState>,
    id: &str,
    codec: &mut WireCodec,
    mut leg: LegEnd,
) -> Ending {
    let mut wire = [0u8; MAX_WIRE_FRAME_BYTES];
    let mut dropped = 0u64;
    let ending = loop {
        tokio::select! {
            message = socket.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => {
                        // Closed without `stop`: the caller is lost to us; make sure the
                        // call does not stay up at Telnyx with nobody on our side.
                        break hang_up(&leg, HangupReason::Remote, Ending::HangUp).await;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        tracing::info!(call_control_id = %id, "telnyx stream broke off: {e}");
                        let reason = HangupReason::TransportError(e.to_string());
                        // The call may still be up at Telnyx with nobody on our side.
                        break hang_up(&leg, reason, Ending::HangUp).await;
                    }
                };
                match media_protocol::parse(&text) {
                    Ok(Inbound::Media { payload }) => {
                        let decoded = codec.decode(&payload, |frame| {
                            // The codec hands over 16 kHz frames, which always fit.
                            let Some(frame) = frame.convert() else { return };
                            match leg.events.try_send(LegEvent::Audio(frame)) {
                                Ok(()) | Err(TrySendError::Closed(_)) => {}
                                // The session is seconds behind: dropping audio beats
                                // stalling the socket (and with it the agent's playout).
                                Err(TrySendError::Full(_)) => {
                                    if dropped == 0 {
                                        tracing::warn!(call_control_id = %id, "session behind; dropping caller frames");
                                    }
                                    dropped += 1;
                                }
                            }
                        });
                        if let Err(e) = decoded {
                            tracing::warn!(call_control_id = %id, "undecodable telnyx media: {e}");
                        }
                    }
                    Ok(Inbound::Dtmf(digit)) => {
                        let _ = leg.events.send(LegEvent::Dtmf(digit)).await;
                    }
                    Ok(Inbound::Mark(name)) => {
                        let _ = leg.events.send(LegEvent::Mark(name)).await;
                    }
                    Ok(Inbound::Stop) => break hang_up(&leg, HangupReason::Remote, Ending::Remote).await,
                    Ok(Inbound::Error(detail)) => {
                        tracing::warn!(call_control_id = %id, %detail, "telnyx reports a streaming error");
                    }
                    Ok(Inbound::Connected | Inbound::Start(_) | Inbound::OwnTrack) => {}
                    Err(e) => tracing::warn!(call_control_id = %id, "skipping malformed telnyx message: {e}"),
                }
            }
            next = leg.commands.recv() => {
                let out = match outgoing(next, codec, &mut wire) {
                    Outgoing::Send(text) => text,
                    Outgoing::Command(action) => {
                        // Off the audio path: the REST round trip must not stall playout.
                        let (state, id) = (state.clone(), id.to_string());
                        tokio::spawn(async move { command(&state, &id, action).await });
                        continue;
                    }
                    Outgoing::End(ending) => break ending,
                    Outgoing::Skip => continue,
                };
                if let Err(e) = socket.send(Message::Text(out.into())).await {
                    let reason = HangupReason::TransportError(e.to_string());
                    break hang_up(&leg, reason, Ending::HangUp).await;
                }
            }
        }
    };
    if dropped > 0 {
        tracing::warn!(call_control_id = %id, dropped, "caller frames dropped while the session was behind");
    }
    ending
}

/// What a session command becomes: a message on the stream, a Call Control command, or the
/// end of the stream.
#[derive(Debug, PartialEq)]
enum Outgoing {
    Send(String),
    Command(Action),
    End(Ending),
    Skip,
}

fn outgoing(
    command: Option<LegCommand>,
    codec: &mut WireCodec,
    wire: &mut [u8; MAX_WIRE_FRAME_BYTES],
) -> Outgoing {
    match command {
        Some(LegCommand::Audio(frame)) => match codec.encode(&frame.into(), wire) {
            Ok(len) => Outgoing::Send(media_protocol::media(&wire[..len])),
            Err(e) => {
                tracing::warn!("cannot encode agent audio: {e}");
                Outgoing::Skip
            }
        },
        Some(LegCommand::Mark(name)) => Outgoing::Send(media_protocol::mark(&name)),
        Some(LegCommand::Clear) => Outgoing::Send(media_protocol::clear()),
        Some(LegCommand::SendDtmf(digits)) => Outgoing::Command(Action::SendDtmf { digits }),
        Some(LegCommand::Transfer(target)) => Outgoing::End(Ending::Transfer(target)),
        Some(LegCommand::Hangup) | None => Outgoing::End(Ending::HangUp),
    }
}

async fn hang_up(leg: &LegEnd, reason: HangupReason, ending: Ending) -> Ending {
    let _ = leg.events.send(LegEvent::Hangup(reason)).await;
    ending
}

/// Sends one Call Control command; `false` (logged) when Telnyx did not take it.
async fn command(state: &TelnyxState, id: &str, action: Action) -> bool {
    let Some(auth) = &state.auth else {
        return false;
    };
    match auth.rest.command(id, &action).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(call_control_id = %id, ?action, "telnyx command failed: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use media::InternalFrame;

    use super::*;
    use crate::telephony::stream_codec::WireFormat;

    #[test]
    fn session_commands_become_stream_messages_or_call_control_commands() {
        let format = WireFormat::from_name("PCMU", 8_000, 1).unwrap();
        let mut codec = WireCodec::new(format).unwrap();
        let mut wire = [0u8; MAX_WIRE_FRAME_BYTES];
        let mut out = |command| outgoing(Some(command), &mut codec, &mut wire);
        let Outgoing::Send(media) = out(LegCommand::Audio(InternalFrame::silence(16_000))) else {
            panic!("audio is not a media message")
        };
        let media: serde_json::Value = serde_json::from_str(&media).unwrap();
        assert_eq!(
            media["media"]["payload"].as_str().unwrap().len(),
            216,
            "160 bytes base64"
        );
        assert_eq!(
            out(LegCommand::Clear),
            Outgoing::Send(media_protocol::clear())
        );
        assert_eq!(
            out(LegCommand::Mark("m1".into())),
            Outgoing::Send(media_protocol::mark("m1"))
        );
        assert_eq!(
            out(LegCommand::SendDtmf("12#".into())),
            Outgoing::Command(Action::SendDtmf {
                digits: "12#".into()
            })
        );
        assert_eq!(
            out(LegCommand::Transfer("+15550009000".into())),
            Outgoing::End(Ending::Transfer("+15550009000".into()))
        );
        assert_eq!(out(LegCommand::Hangup), Outgoing::End(Ending::HangUp));
        assert_eq!(
            outgoing(None, &mut codec, &mut wire),
            Outgoing::End(Ending::HangUp)
        );
    }
}
