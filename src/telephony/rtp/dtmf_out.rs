//! The agent's DTMF keys in the call's RTP stream, as RFC 4733 telephone-events: each key is
//! one event sent in place of the voice packets while it sounds — same SSRC, the sequence
//! numbers running on, every packet of the event carrying the timestamp it started at, the
//! marker bit on its first packet, its duration growing every 20 ms, then the end bit three
//! times. The gap after a key and a pause (`w`) go out as ordinary voice packets. If the peer
//! no longer takes telephone-events (a re-INVITE dropped them), keys are played in band
//! instead, as tones in place of the voice frames.
//!
//! Sans-IO: the bridge asks `next` what to send for each 20 ms packet.

use std::collections::VecDeque;

use media::Frame;
use media::dtmf::DtmfSender;
use media::dtmf::tones::{self, DtmfTones, KeySequence, PAUSE, TONE_MS};
use media::rtp::{Packetizer, RtpError};

use crate::telephony::sip::sdp::TelephoneEvent;

/// One packet per frame.
const PACKET_MS: u32 = 20;
/// Keys waiting beyond this many are refused: nothing can queue minutes of keys.
pub const MAX_QUEUED: usize = 4 * tones::MAX_SEQUENCE;

/// What the bridge sends for one 20 ms packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing {
    /// The voice frame, as usual (in band its samples may now be a key's tones).
    Voice,
    /// A telephone-event packet of this many bytes was written into the buffer; the voice
    /// frame is not sent.
    Event(usize),
}

#[derive(Debug)]
enum Playing {
    /// A key as telephone-events: its packets, their payload type and shared timestamp.
    Event {
        sender: DtmfSender,
        payload_type: u8,
        timestamp: u32,
    },
    /// A key as tones in the voice frames, or (no tones) a pause.
    InBand(Option<DtmfTones>),
}

/// Keys waiting to be sent and the one being sent.
#[derive(Debug, Default)]
pub struct DtmfOut {
    waiting: VecDeque<char>,
    playing: Option<Playing>,
    /// Packets left in the current key's step (tone and gap, or pause).
    slots_left: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{waiting} DTMF keys are already waiting; {refused} more refused")]
pub struct QueueFull {
    pub waiting: usize,
    pub refused: usize,
}

impl DtmfOut {
    /// Queues `keys` after any already waiting; all or nothing.
    pub fn queue(&mut self, keys: &KeySequence) -> Result<(), QueueFull> {
        let count = keys.chars().count();
        if self.waiting.len() + count > MAX_QUEUED {
            return Err(QueueFull {
                waiting: self.waiting.len(),
                refused: count,
            });
        }
        self.waiting.extend(keys.chars());
        Ok(())
    }

    /// Drops the keys not yet started; the one sounding finishes (its end packets still go).
    pub fn clear(&mut self) {
        self.waiting.clear();
    }

    /// Whether nothing is being sent or waiting.
    pub fn is_idle(&self) -> bool {
        self.playing.is_none() && self.waiting.is_empty()
    }

    /// Decides the next 20 ms packet. `events` is the negotiated telephone-event format (none:
    /// in band), `frame` the voice frame about to go out, `step` the timestamp units one
    /// packet covers. On `Event` the packet is in `out` and the packetizer's clock has moved
    /// on by `step`, as a voice packet would have moved it.
    pub fn next(
        &mut self,
        events: Option<TelephoneEvent>,
        frame: &mut Frame,
        packetizer: &mut Packetizer,
        step: u32,
        out: &mut [u8],
    ) -> Result<Outgoing, RtpError> {
        if self.playing.is_none() && !self.start(events, frame.rate(), packetizer) {
            return Ok(Outgoing::Voice);
        }
        self.slots_left = self.slots_left.saturating_sub(1);
        let outgoing = match &mut self.playing {
            Some(Playing::Event {
                sender,
                payload_type,
                timestamp,
            }) => match sender.next_packet() {
                Some(packet) => {
                    let len = packetizer.packetize_at(
                        *payload_type,
                        *timestamp,
                        &packet.payload,
                        packet.marker,
                        out,
                    )?;
                    packetizer.advance(step);
                    Outgoing::Event(len)
                }
                // The gap after the key.
                None => Outgoing::Voice,
            },
            Some(Playing::InBand(Some(tones))) => {
                let samples = frame.samples_mut();
                let written = tones.fill(samples);
                samples[written..].fill(0);
                Outgoing::Voice
            }
            Some(Playing::InBand(None)) | None => Outgoing::Voice,
        };
        if self.slots_left == 0 {
            self.playing = None;
        }
        Ok(outgoing)
    }

    /// Starts the next waiting key, if any.
    fn start(
        &mut self,
        events: Option<TelephoneEvent>,
        rate: u32,
        packetizer: &Packetizer,
    ) -> bool {
        let Some(key) = self.waiting.pop_front() else {
            return false;
        };
        self.slots_left = (tones::step_ms(key) / PACKET_MS).max(1);
        let mut text = [0u8; 4];
        let single = KeySequence::parse(key.encode_utf8(&mut text)).ok();
        self.playing = Some(match (key, events, single) {
            (PAUSE, _, _) | (_, _, None) => Playing::InBand(None),
            (_, Some(format), Some(_)) => {
                match DtmfSender::new(key, TONE_MS, PACKET_MS, format.clock_rate) {
                    Ok(sender) => Playing::Event {
                        sender,
                        payload_type: format.payload_type,
                        timestamp: packetizer.timestamp(),
                    },
                    Err(_) => Playing::InBand(None),
                }
            }
            (_, None, Some(single)) => Playing::InBand(Some(DtmfTones::new(single, rate))),
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telephony::rtp::dtmf::DtmfReceiver;
    use media::INTERNAL_RATE;
    use media::dtmf::ToneDetector;
    use media::rtp::HEADER_LEN;

    const SSRC: u32 = 0x1122_3344;
    const PCMU_EVENTS: TelephoneEvent = TelephoneEvent {
        payload_type: 101,
        clock_rate: 8_000,
    };

    /// One packet as it left the bridge: voice (payload type 0) or an event.
    #[derive(Debug)]
    struct Sent {
        bytes: Vec<u8>,
    }

    impl Sent {
        fn marker(&self) -> bool {
            self.bytes[1] & 0x80 != 0
        }
        fn payload_type(&self) -> u8 {
            self.bytes[1] & 0x7F
        }
        fn sequence(&self) -> u16 {
            u16::from_be_bytes([self.bytes[2], self.bytes[3]])
        }
        fn timestamp(&self) -> u32 {
            u32::from_be_bytes(self.bytes[4..8].try_into().unwrap())
        }
        fn ssrc(&self) -> u32 {
            u32::from_be_bytes(self.bytes[8..12].try_into().unwrap())
        }
        fn payload(&self) -> &[u8] {
            &self.bytes[HEADER_LEN..]
        }
    }

    /// Runs `packets` 20 ms packets of a PCMU call through `out`, as the bridge does.
    fn run(
        out: &mut DtmfOut,
        events: Option<TelephoneEvent>,
        packets: usize,
        step: u32,
    ) -> (Vec<Sent>, Vec<Frame>) {
        let mut packetizer = Packetizer::new(SSRC, 0, 65_530, 5_000);
        let mut buf = [0u8; 200];
        let (mut sent, mut frames) = (Vec::new(), Vec::new());
        for _ in 0..packets {
            let mut frame = Frame::silence(INTERNAL_RATE);
            let len = match out
                .next(events, &mut frame, &mut packetizer, step, &mut buf)
                .unwrap()
            {
                Outgoing::Event(len) => len,
                Outgoing::Voice => {
                    frames.push(frame);
                    packetizer
                        .packetize(&[0xFF; 160], step, false, &mut buf)
                        .unwrap()
                }
            };
            sent.push(Sent {
                bytes: buf[..len].to_vec(),
            });
        }
        (sent, frames)
    }

    fn keys(text: &str) -> KeySequence {
        KeySequence::parse(text).unwrap()
    }

    #[test]
    fn a_key_is_one_event_in_place_of_voice_with_the_rfc_4733_layout() {
        let mut out = DtmfOut::default();
        out.queue(&keys("1")).unwrap();
        let (sent, _) = run(&mut out, Some(PCMU_EVENTS), 12, 160);
        assert!(out.is_idle());
        // 4 updates, 3 end packets, then the gap (voice) until the key's 200 ms are up.
        let kinds: Vec<u8> = sent.iter().map(Sent::payload_type).collect();
        assert_eq!(kinds, [101, 101, 101, 101, 101, 101, 101, 0, 0, 0, 0, 0]);
        for (n, packet) in sent.iter().enumerate() {
            // Version 2, no padding, extension or CSRCs; one SSRC; sequence numbers run on
            // (and wrap) across events and voice alike.
            assert_eq!(packet.bytes[0], 0x80);
            assert_eq!(packet.ssrc(), SSRC);
            assert_eq!(packet.sequence(), 65_530u16.wrapping_add(n as u16));
        }
        // §2.3: event code, E bit | reserved 0 | volume, duration in timestamp units; every
        // packet of the event carries its start timestamp; the marker is on the first only.
        let expected: [[u8; 4]; 7] = [
            [1, 10, 0, 160],
            [1, 10, 1, 64],
            [1, 10, 1, 224],
            [1, 10, 2, 128],
            [1, 0x80 | 10, 3, 32],
            [1, 0x80 | 10, 3, 32],
            [1, 0x80 | 10, 3, 32],
        ];
        for (packet, payload) in sent[..7].iter().zip(expected) {
            assert_eq!(packet.payload(), payload);
            assert_eq!(packet.timestamp(), 5_000);
            assert_eq!(packet.bytes.len(), HEADER_LEN + 4);
        }
        assert!(sent[0].marker() && sent[1..7].iter().all(|p| !p.marker()));
        // Voice resumes on the clock as if it had never stopped.
        assert_eq!(sent[7].timestamp(), 5_000 + 7 * 160);
        assert_eq!(sent[11].timestamp(), 5_000 + 11 * 160);
    }

    #[test]
    fn keys_follow_each_other_and_pauses_wait_half_a_second() {
        let mut out = DtmfOut::default();
        out.queue(&keys("1#")).unwrap();
        out.queue(&keys("w0")).unwrap();
        let (sent, _) = run(&mut out, Some(PCMU_EVENTS), 60, 160);
        let mut receiver = DtmfReceiver::default();
        let digits: String = sent
            .iter()
            .filter(|p| p.payload_type() == 101)
            .filter_map(|p| receiver.receive(p.timestamp(), p.payload()))
            .collect();
        assert_eq!(digits, "1#0");
        let starts: Vec<u32> = sent
            .iter()
            .filter(|p| p.marker())
            .map(Sent::timestamp)
            .collect();
        // 200 ms per key, 500 ms for the pause.
        assert_eq!(starts, [5_000, 5_000 + 1_600, 5_000 + 3_200 + 4_000]);
        assert!(out.is_idle());
    }

    #[test]
    fn opus_events_count_in_its_48_khz_clock() {
        let mut out = DtmfOut::default();
        out.queue(&keys("D")).unwrap();
        let format = TelephoneEvent {
            payload_type: 102,
            clock_rate: 48_000,
        };
        let (sent, _) = run(&mut out, Some(format), 10, 960);
        let durations: Vec<u16> = sent[..7]
            .iter()
            .map(|p| u16::from_be_bytes([p.payload()[2], p.payload()[3]]))
            .collect();
        assert_eq!(durations, [960, 1_920, 2_880, 3_840, 4_800, 4_800, 4_800]);
        assert!(sent[..7].iter().all(|p| p.payload()[0] == 15));
        assert_eq!(sent[7].timestamp(), 5_000 + 7 * 960);
    }

    #[test]
    fn without_telephone_events_keys_are_tones_in_the_voice_frames() {
        let mut out = DtmfOut::default();
        out.queue(&keys("58")).unwrap();
        let (sent, frames) = run(&mut out, None, 25, 160);
        assert!(sent.iter().all(|p| p.payload_type() == 0));
        let mut detector = ToneDetector::new(INTERNAL_RATE);
        let heard: String = frames.iter().filter_map(|f| detector.process(f)).collect();
        assert_eq!(heard, "58");
        assert!(
            frames[20..]
                .iter()
                .all(|f| f.samples().iter().all(|&s| s == 0))
        );
    }

    #[test]
    fn clear_finishes_the_sounding_key_and_drops_the_rest() {
        let mut out = DtmfOut::default();
        out.queue(&keys("123")).unwrap();
        let (first, _) = run(&mut out, Some(PCMU_EVENTS), 2, 160);
        assert_eq!(first.len(), 2);
        out.clear();
        let (rest, _) = run(&mut out, Some(PCMU_EVENTS), 30, 160);
        let events: Vec<&Sent> = rest.iter().filter(|p| p.payload_type() == 101).collect();
        // The rest of key 1: two updates and its three end packets, nothing of 2 or 3.
        assert_eq!(events.len(), 5);
        assert!(events.iter().all(|p| p.payload()[0] == 1));
        assert!(events[2..].iter().all(|p| p.payload()[1] & 0x80 != 0));
        assert!(out.is_idle());
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut out = DtmfOut::default();
        let full = keys(&"1".repeat(tones::MAX_SEQUENCE));
        for _ in 0..MAX_QUEUED / tones::MAX_SEQUENCE {
            out.queue(&full).unwrap();
        }
        assert_eq!(
            out.queue(&keys("2")),
            Err(QueueFull {
                waiting: MAX_QUEUED,
                refused: 1
            })
        );
    }
}
