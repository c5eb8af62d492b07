//! `GET /carrier/twilio/stream`: one Twilio Media Streams WebSocket is one call. The handler
//! waits for `start`, hands a `CallLeg` to the call session, then shuttles audio both ways.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc::error::TrySendError;

use super::codec::{StreamCodec, WIRE_FRAME_BYTES};
use super::protocol::{self, Inbound, Start};
use super::rest::TwilioRest;
use super::stream_token::Subject;
use super::twiml::{self, stream_url};
use super::webhook::unix_now;
use super::{Auth, TwilioState, signature, stream_token, unconfigured};
use crate::agent::session::{CallRoute, run_call};
use crate::store::Scope;
use crate::telephony::{Direction, HangupReason, LegCommand, LegEnd, LegEvent, LegInfo, leg_pair};

/// Twilio sends `connected` and `start` right after the upgrade; a socket that does not is
/// not a Media Stream.
const START_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn upgrade(
    State(state): State<Arc<TwilioState>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let services = &state.services;
    if services.drain.is_draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let token = match state.auth() {
        Auth::Token(token) => Some(token.to_string()),
        Auth::Unsigned => None,
        Auth::Unconfigured => return unconfigured("stream"),
    };
    if let Some(token) = &token {
        // Twilio signs the handshake like a webhook: the full wss:// URL, no parameters.
        let mut url = stream_url(&services.config.public_url());
        if let Some(query) = uri.query() {
            url = format!("{url}?{query}");
        }
        let given = headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !signature::is_valid(token, &url, &[], given) {
            tracing::warn!("twilio stream handshake with a bad or missing signature");
            return (StatusCode::FORBIDDEN, "invalid X-Twilio-Signature").into_response();
        }
    }
    let Ok(slot) = state.streams.clone().try_acquire_owned() else {
        tracing::warn!(
            max = services.config.twilio_max_streams,
            "twilio stream refused: BOLTCALL_TWILIO_MAX_STREAMS streams are open"
        );
        return (StatusCode::SERVICE_UNAVAILABLE, "too many open streams").into_response();
    };
    crate::telephony::media_socket::configure(ws).on_upgrade(move |socket| async move {
        handle(socket, state, token.as_deref()).await;
        drop(slot);
    })
}

async fn handle(mut socket: WebSocket, state: Arc<TwilioState>, token: Option<&str>) {
    let start = match tokio::time::timeout(START_TIMEOUT, wait_for_start(&mut socket)).await {
        Ok(Some(start)) => start,
        Ok(None) => return,
        Err(_) => {
            tracing::warn!("twilio stream sent no start in {START_TIMEOUT:?}; closing");
            return;
        }
    };
    let mut codec = match StreamCodec::new() {
        Ok(codec) => codec,
        Err(e) => {
            tracing::error!("cannot build the twilio codec: {e}");
            return;
        }
    };
    let outbound = param(&start, "direction") == "outbound";
    let accepted = if outbound {
        accept_outbound(&state, token, &start)
    } else {
        accept_inbound(&state, token, &start).await
    };
    let Some((info, route)) = accepted else {
        let _ = socket.close().await;
        return;
    };
    let (leg, leg_end) = leg_pair(info);
    let call_id = route.call_id.clone();
    if let Some(call_id) = &call_id
        && let Some(verdict) = state.calls.placed.attach(call_id, leg_end.events.clone())
    {
        // A fresh channel has room: the verdict that came before the stream goes first.
        let _ = leg_end.events.try_send(LegEvent::AnsweredBy(verdict));
    }
    let session = tokio::spawn(run_call(state.services.clone(), leg, route));
    let rest = state.calls.rest();
    let (reason, ended) = shuttle(&mut socket, &start, &mut codec, leg_end, rest).await;
    if let Some(call_id) = &call_id {
        state.calls.placed.remove(call_id);
    }
    tracing::info!(call_sid = %start.call_sid, ?reason, ?ended, "twilio stream ended");
    if ended == Ended::ByUs
        && let Some(rest) = rest
        && let Err(e) = rest.hang_up(&start.call_sid).await
    {
        // Closing the socket below ends the call anyway (no TwiML follows `<Connect>`).
        tracing::warn!(call_sid = %start.call_sid, "twilio REST hang-up failed: {e}");
    }
    let _ = socket.close().await;
    if let Err(e) = session.await {
        tracing::error!(call_sid = %start.call_sid, "call session panicked: {e}");
    }
}

/// A `customParameters` entry of `start` (empty when absent).
fn param(start: &Start, name: &str) -> String {
    start
        .custom_parameters
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Checks the stream token of `start` for `subject` and claims its single use.
fn check_token(
    state: &TwilioState,
    token: Option<&str>,
    start: &Start,
    subject: Subject<'_>,
) -> bool {
    let Some(token) = token else {
        return true;
    };
    let (to, from) = (param(start, "to"), param(start, "from"));
    let now = unix_now();
    let checked = stream_token::verify(
        token,
        &param(start, stream_token::PARAMETER),
        subject,
        &to,
        &from,
        now,
    )
    .and_then(|expires_at| state.used_tokens.claim(subject, expires_at, now));
    if let Err(e) = checked {
        tracing::warn!(call_sid = %start.call_sid, %to, "twilio stream refused: {e}");
        return false;
    }
    true
}

/// A call Twilio brought to the voice webhook: the agent of the called number takes it.
async fn accept_inbound(
    state: &TwilioState,
    token: Option<&str>,
    start: &Start,
) -> Option<(LegInfo, CallRoute)> {
    let services = &state.services;
    let subject = Subject::Inbound {
        call_sid: &start.call_sid,
    };
    if !check_token(state, token, start, subject) {
        return None;
    }
    let (to, from) = (param(start, "to"), param(start, "from"));
    let agent = match services.store.find_agent_by_phone(&to, true).await {
        Ok(Some(agent)) if agent.status == "active" => agent,
        Ok(_) => {
            tracing::warn!(call_sid = %start.call_sid, %to, "twilio stream for no active agent");
            return None;
        }
        Err(e) => {
            tracing::error!(call_sid = %start.call_sid, "agent lookup failed: {e}");
            return None;
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
            tracing::warn!(call_sid = %start.call_sid, %to, "twilio stream refused: {refusal}");
            return None;
        }
    };
    let info = LegInfo {
        transport: "twilio",
        carrier_call_id: start.call_sid.clone(),
        from,
        to,
        direction: Direction::Inbound,
        parameters: start.custom_parameters.clone(),
        carrier_detects_machine: false,
        dtmf_out_of_band: false,
        continuous_audio: false,
    };
    let mut route = CallRoute::new(agent.id.clone(), scope);
    route.permit = Some(Arc::new(permit));
    Some((info, route))
}

/// A call this engine placed (outbound.rs), now answered: its session runs the existing call
/// record with the admission permit the API took for it.
fn accept_outbound(
    state: &TwilioState,
    token: Option<&str>,
    start: &Start,
) -> Option<(LegInfo, CallRoute)> {
    let call_id = param(start, "call_id");
    let subject = Subject::Outbound { call_id: &call_id };
    if !check_token(state, token, start, subject) {
        return None;
    }
    let Some(call) = state.calls.placed.take(&call_id, &start.call_sid) else {
        tracing::warn!(%call_id, call_sid = %start.call_sid,
            "twilio outbound stream for a call this engine is not placing; refused");
        return None;
    };
    let info = LegInfo {
        transport: "twilio",
        carrier_call_id: start.call_sid.clone(),
        from: call.from.clone(),
        to: call.to.clone(),
        direction: Direction::Outbound,
        parameters: start.custom_parameters.clone(),
        // outbound.rs asked Twilio for async AMD exactly when the request asked for detection.
        carrier_detects_machine: call.machine_detection.is_on(),
        dtmf_out_of_band: false,
        continuous_audio: false,
    };
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
    Some((info, route))
}

/// Who ended the stream, which decides what else must happen to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The caller hung up or the socket broke: Twilio has ended the call.
    ByCaller,
    /// The session hung up: the call is ended through REST too, when configured.
    ByUs,
    /// Twilio runs the transfer's `<Dial>` now; the call goes on without us.
    Transferred,
}

/// Reads until `start`; `None` when the socket closes first.
async fn wait_for_start(socket: &mut WebSocket) -> Option<Start> {
    while let Some(message) = socket.recv().await {
        let Ok(Message::Text(text)) = message else {
            if matches!(message, Err(_) | Ok(Message::Close(_))) {
                return None;
            }
            continue;
        };
        match protocol::parse(&text) {
            Ok(Inbound::Start(start)) => return Some(start),
            Ok(Inbound::Connected) => {}
            Ok(other) => tracing::debug!(?other, "twilio message before start ignored"),
            Err(e) => tracing::warn!("twilio stream: {e}"),
        }
    }
    None
}

/// Moves audio and control between the socket and the session until either side ends.
async fn shuttle(
    socket: &mut WebSocket,
    start: &Start,
    codec: &mut StreamCodec,
    mut leg: LegEnd,
    rest: Option<&TwilioRest>,
) -> (HangupReason, Ended) {
    let sid = start.stream_sid.as_str();
    let mut wire = [0u8; WIRE_FRAME_BYTES];
    let mut dropped = DroppedFrames::default();
    let ended = loop {
        tokio::select! {
            message = socket.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => {
                        // Dropped without `stop`: the caller is gone all the same.
                        break hang_up(&leg, HangupReason::Remote).await;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        // A reset socket is how most dropped calls look: the caller is gone.
                        tracing::info!(%sid, "twilio stream broke off: {e}");
                        break hang_up(&leg, HangupReason::Remote).await;
                    }
                };
                match protocol::parse(&text) {
                    Ok(Inbound::Media { payload }) => {
                        let sent = codec.decode(&payload, |frame| {
                            // The codec hands over 16 kHz frames, which always fit.
                            let Some(frame) = frame.convert() else { return };
                            match leg.events.try_send(LegEvent::Audio(frame)) {
                                Ok(()) | Err(TrySendError::Closed(_)) => {}
                                // The session is seconds behind: dropping audio beats
                                // stalling the socket (and with it the agent's playout).
                                Err(TrySendError::Full(_)) => dropped.count(sid),
                            }
                        });
                        if let Err(e) = sent {
                            tracing::warn!(%sid, "undecodable twilio media: {e}");
                        }
                    }
                    Ok(Inbound::Dtmf(digit)) => {
                        let _ = leg.events.send(LegEvent::Dtmf(digit)).await;
                    }
                    Ok(Inbound::Mark(name)) => {
                        let _ = leg.events.send(LegEvent::Mark(name)).await;
                    }
                    Ok(Inbound::Stop) => break hang_up(&leg, HangupReason::Remote).await,
                    Ok(Inbound::Connected | Inbound::Start(_) | Inbound::OwnTrack) => {}
                    Err(e) => tracing::warn!(%sid, "skipping malformed twilio message: {e}"),
                }
            }
            command = leg.commands.recv() => {
                let out = match command {
                    Some(LegCommand::Audio(frame)) => match codec.encode(&frame.into(), &mut wire) {
                        Ok(()) => protocol::media(sid, &wire),
                        Err(e) => {
                            tracing::warn!(%sid, "cannot encode agent audio: {e}");
                            continue;
                        }
                    },
                    Some(LegCommand::Mark(name)) => protocol::mark(sid, &name),
                    Some(LegCommand::Clear) => protocol::clear(sid),
                    Some(LegCommand::SendDtmf(digits)) => {
                        tracing::warn!(%sid, %digits, "out-of-band DTMF is not available on twilio streams");
                        continue;
                    }
                    Some(LegCommand::Transfer(target)) => {
                        break (HangupReason::Local, transfer(rest, &start.call_sid, &target).await);
                    }
                    // Closing the socket ends `<Connect>`, and with no TwiML after it the call.
                    Some(LegCommand::Hangup) | None => break (HangupReason::Local, Ended::ByUs),
                };
                if let Err(e) = socket.send(Message::Text(out.into())).await {
                    break hang_up(&leg, HangupReason::TransportError(e.to_string())).await;
                }
            }
        }
    };
    dropped.summarise(sid);
    ended
}

/// Media Streams cannot redirect a call; Twilio's REST API can: the call's TwiML becomes a
/// `<Dial>` to `target`, which ends our stream and rings the target. Without REST (or when it
/// fails) the call is hung up instead.
async fn transfer(rest: Option<&TwilioRest>, call_sid: &str, target: &str) -> Ended {
    let Some(rest) = rest else {
        tracing::warn!(%call_sid, %target, "transfer on twilio needs its REST API: set \
            BOLTCALL_TWILIO_ACCOUNT_SID (with BOLTCALL_TWILIO_AUTH_TOKEN); hanging up instead");
        return Ended::ByUs;
    };
    match rest.redirect(call_sid, &twiml::transfer(target)).await {
        Ok(()) => {
            tracing::info!(%call_sid, %target, "call transferred");
            Ended::Transferred
        }
        Err(e) => {
            tracing::error!(%call_sid, %target, "twilio transfer failed, hanging up: {e}");
            Ended::ByUs
        }
    }
}

/// Caller frames dropped because the session fell behind: counted, logged once when it
/// starts and once as a total, not once per frame (a stalled session would flood the log).
#[derive(Default)]
struct DroppedFrames(u64);

impl DroppedFrames {
    fn count(&mut self, sid: &str) {
        if self.0 == 0 {
            tracing::warn!(%sid, "session behind; dropping caller frames");
        }
        self.0 += 1;
    }

    fn summarise(&self, sid: &str) {
        if self.0 > 0 {
            tracing::warn!(%sid, dropped = self.0, "caller frames dropped while the session was behind");
        }
    }
}

async fn hang_up(leg: &LegEnd, reason: HangupReason) -> (HangupReason, Ended) {
    let _ = leg.events.send(LegEvent::Hangup(reason.clone())).await;
    (reason, Ended::ByCaller)
}
