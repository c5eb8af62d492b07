//! The WebSocket settings every carrier's media stream (Twilio, Telnyx, Vonage) shares.

use axum::extract::ws::WebSocketUpgrade;

/// Largest message accepted. Carriers' media messages are a few hundred bytes (20 ms of audio
/// and a little JSON); anything near this is not a media stream.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Read buffer per socket. tungstenite's default of 128 KiB is zeroed again on every read and
/// held per connection: with 50 small messages a second per call it was a tenth of the
/// engine's CPU at 200 calls, and an eighth of a megabyte per call.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// `ws` sized for one call's media stream.
pub(crate) fn configure(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
}
