//! Twilio Media Streams: the voice webhook (TwiML) and the bidirectional stream WebSocket.
