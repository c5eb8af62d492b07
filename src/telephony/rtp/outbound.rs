//! The call's outbound RTP stream: voice frames and DTMF events packetized in one sequence
//! and timestamp space, with the counts its RTCP sender reports carry.

use std::net::SocketAddr;

use media::Frame;
use media::rtp::{HEADER_LEN, Packetizer};

use super::dtmf_out::{DtmfOut, Outgoing};
use super::ports::RtpSocket;
use super::voice::{self, VoiceCodec};
use crate::telephony::sip::sdp::NegotiatedMedia;

pub struct OutboundStream {
    packetizer: Packetizer,
    first_packet: bool,
    packet: [u8; HEADER_LEN + voice::MAX_PAYLOAD],
    payload: [u8; voice::MAX_PAYLOAD],
    /// Packets and payload octets sent (RTCP sender info; they wrap, as RFC 3550 says).
    pub packets: u32,
    pub octets: u32,
}

impl OutboundStream {
    /// A stream with a random SSRC, first sequence number and timestamp (RFC 3550).
    pub fn new(payload_type: u8) -> Self {
        OutboundStream {
            packetizer: Packetizer::new(
                rand::random(),
                payload_type,
                rand::random(),
                rand::random(),
            ),
            first_packet: true,
            packet: [0; HEADER_LEN + voice::MAX_PAYLOAD],
            payload: [0; voice::MAX_PAYLOAD],
            packets: 0,
            octets: 0,
        }
    }

    /// The stream goes on in another payload type (a re-INVITE changed the codec): same
    /// source, sequence and timestamp.
    pub fn switch_payload_type(&mut self, payload_type: u8) {
        let old = &self.packetizer;
        self.packetizer = Packetizer::new(
            old.ssrc(),
            payload_type,
            old.sequence_number(),
            old.timestamp(),
        );
    }

    pub fn ssrc(&self) -> u32 {
        self.packetizer.ssrc()
    }

    /// The RTP timestamp of the next packet.
    pub fn timestamp(&self) -> u32 {
        self.packetizer.timestamp()
    }

    /// Sends 20 ms of audio, or, while a key sounds, its telephone-event packet in its place.
    pub fn send_frame(
        &mut self,
        socket: &RtpSocket,
        to: SocketAddr,
        media: &NegotiatedMedia,
        codec: &mut VoiceCodec,
        keys: &mut DtmfOut,
        mut frame: Frame,
    ) {
        let step = codec.timestamp_step();
        match keys.next(
            media.dtmf,
            &mut frame,
            &mut self.packetizer,
            step,
            &mut self.packet,
        ) {
            Ok(Outgoing::Event(len)) => return self.send(socket, to, len),
            Ok(Outgoing::Voice) => {}
            Err(err) => tracing::warn!("DTMF event not sent: {err}"),
        }
        let Ok(size) = codec.encode(&frame, &mut self.payload) else {
            return;
        };
        let Ok(len) = self.packetizer.packetize(
            &self.payload[..size],
            step,
            self.first_packet,
            &mut self.packet,
        ) else {
            return;
        };
        self.first_packet = false;
        self.send(socket, to, len);
    }

    fn send(&mut self, socket: &RtpSocket, to: SocketAddr, len: usize) {
        socket.send_rtp(&self.packet[..len], to);
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add((len - HEADER_LEN) as u32);
    }
}
