//! Per-20 ms-frame cost of each media stage and of a whole call frame.
//! `cargo bench -p media -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;
use std::io::{Seek, SeekFrom, Write};

use criterion::{Criterion, criterion_group, criterion_main};
use media::codec::opus::{MAX_PACKET, OpusDecoder, OpusEncoder};
use media::g711;
use media::jitter::{JitterBuffer, JitterConfig, Playout};
use media::pacer::Pacer;
use media::recorder::{Channel, StereoRecorder};
use media::resample::FrameResampler;
use media::rtp::{Packetizer, parse};
use media::vad::{VadConfig, VoiceDetector};
use media::{Frame, INTERNAL_RATE};

/// A writer that keeps nothing, so recorder cost excludes the disk.
#[derive(Default)]
struct Discard {
    pos: u64,
    len: u64,
}

impl Write for Discard {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pos += buf.len() as u64;
        self.len = self.len.max(self.pos);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for Discard {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => (self.len as i64 + d) as u64,
            SeekFrom::Current(d) => (self.pos as i64 + d) as u64,
        };
        Ok(self.pos)
    }
}

/// Speech-like test signal: a vowel-ish mix of harmonics.
fn voice(rate: u32, frame_index: usize) -> Frame {
    let mut frame = Frame::silence(rate);
    let n = frame.samples().len();
    for (i, s) in frame.samples_mut().iter_mut().enumerate() {
        let t = (frame_index * n + i) as f32 / rate as f32;
        let v = (2.0 * std::f32::consts::PI * 140.0 * t).sin() * 0.5
            + (2.0 * std::f32::consts::PI * 700.0 * t).sin() * 0.3
            + (2.0 * std::f32::consts::PI * 1_200.0 * t).sin() * 0.2;
        *s = (v * 8_000.0) as i16;
    }
    frame
}

fn stages(c: &mut Criterion) {
    let f8 = voice(8_000, 3);
    let f16 = voice(16_000, 3);
    let f48 = voice(48_000, 3);
    let mut ulaw = [0u8; 160];
    g711::encode_ulaw(f8.samples(), &mut ulaw).unwrap();

    c.bench_function("g711_ulaw_decode_160", |b| {
        let mut out = [0i16; 160];
        b.iter(|| g711::decode_ulaw(black_box(&ulaw), &mut out).unwrap())
    });
    c.bench_function("g711_ulaw_encode_160", |b| {
        let mut out = [0u8; 160];
        b.iter(|| g711::encode_ulaw(black_box(f8.samples()), &mut out).unwrap())
    });
    for (from, to, frame) in [
        (8_000, 16_000, f8),
        (16_000, 8_000, f16),
        (16_000, 48_000, f16),
        (48_000, 16_000, f48),
        (24_000, 16_000, voice(24_000, 3)),
    ] {
        let mut r = FrameResampler::new(from, to).unwrap();
        c.bench_function(
            &format!("resample_{}k_to_{}k", from / 1000, to / 1000),
            |b| b.iter(|| r.process(black_box(&frame)).unwrap()),
        );
    }
    c.bench_function("vad_16k", |b| {
        let mut vad = VoiceDetector::new(VadConfig::default());
        b.iter(|| vad.process(black_box(&f16)))
    });
    c.bench_function("pacer_push_and_next_frame", |b| {
        let mut pacer = Pacer::new();
        b.iter(|| {
            pacer.push(black_box(f16.samples())).unwrap();
            pacer.next_frame()
        })
    });
    c.bench_function("recorder_both_sides", |b| {
        let mut rec = StereoRecorder::new(Discard::default()).unwrap();
        let mut ms = 0u64;
        b.iter(|| {
            rec.write(Channel::Caller, ms, &f16).unwrap();
            rec.write(Channel::Agent, ms, &f16).unwrap();
            ms += 20;
        })
    });
    c.bench_function("rtp_packetize_and_parse_pcmu", |b| {
        let mut p = Packetizer::new(1, 0, 0, 0);
        let mut buf = [0u8; 200];
        b.iter(|| {
            let len = p.packetize(black_box(&ulaw), 160, false, &mut buf).unwrap();
            parse(&buf[..len]).unwrap().payload.len()
        })
    });
    c.bench_function("jitter_insert_and_pop", |b| {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut seq = 0u16;
        let mut now = 0u64;
        b.iter(|| {
            jb.insert(now, 1, seq, u32::from(seq) * 160, black_box(&ulaw));
            seq = seq.wrapping_add(1);
            now += 20;
            matches!(jb.pop(now), Playout::Packet { .. })
        })
    });
    let mut enc = OpusEncoder::new(24_000, 10).unwrap();
    let mut packet = [0u8; MAX_PACKET];
    let opus_len = enc.encode(&f48, &mut packet).unwrap();
    c.bench_function("opus_encode_48k", |b| {
        let mut out = [0u8; MAX_PACKET];
        b.iter(|| enc.encode(black_box(&f48), &mut out).unwrap())
    });
    c.bench_function("opus_decode_48k", |b| {
        let mut dec = OpusDecoder::new().unwrap();
        b.iter(|| dec.decode(black_box(&packet[..opus_len])).unwrap())
    });
}

/// One call frame both ways on a PCMU leg: inbound packet → jitter buffer → μ-law decode
/// → 8→16 kHz → VAD → recorder, and outbound 16 kHz → 16→8 kHz → μ-law → RTP packet.
fn call_frame(c: &mut Criterion) {
    // Pre-built inbound packets (what the socket would hand over).
    let mut far_end = Packetizer::new(7, 0, 65_000, 0);
    let inbound: Vec<Vec<u8>> = (0..1_000)
        .map(|i| {
            let mut ulaw = [0u8; 160];
            g711::encode_ulaw(voice(8_000, i).samples(), &mut ulaw).unwrap();
            let mut buf = [0u8; 200];
            let len = far_end.packetize(&ulaw, 160, false, &mut buf).unwrap();
            buf[..len].to_vec()
        })
        .collect();
    let agent = voice(INTERNAL_RATE, 5);

    let mut jb = JitterBuffer::new(JitterConfig::default());
    let mut up = FrameResampler::new(8_000, 16_000).unwrap();
    let mut down = FrameResampler::new(16_000, 8_000).unwrap();
    let mut vad = VoiceDetector::new(VadConfig::default());
    let mut rec = StereoRecorder::new(Discard::default()).unwrap();
    let mut out_rtp = Packetizer::new(9, 0, 0, 0);
    let mut pcm8 = Frame::silence(8_000);
    let mut ulaw_out = [0u8; 160];
    let mut wire = [0u8; 200];
    let mut i = 0usize;
    let mut now = 0u64;

    c.bench_function("call_frame_pcmu_full_pipeline", |b| {
        b.iter(|| {
            // Inbound.
            let view = parse(&inbound[i % inbound.len()]).unwrap();
            jb.insert(
                now,
                view.ssrc,
                view.sequence_number,
                view.timestamp,
                view.payload,
            );
            if let Playout::Packet { payload, .. } = jb.pop(now) {
                g711::decode_ulaw(payload, pcm8.samples_mut()).unwrap();
            }
            let caller = up.process(&pcm8).unwrap();
            let event = vad.process(&caller);
            rec.write(Channel::Caller, now, &caller).unwrap();
            rec.write(Channel::Agent, now, &agent).unwrap();
            // Outbound.
            let narrow = down.process(black_box(&agent)).unwrap();
            g711::encode_ulaw(narrow.samples(), &mut ulaw_out).unwrap();
            let len = out_rtp.packetize(&ulaw_out, 160, false, &mut wire).unwrap();
            i += 1;
            now += 20;
            (event, len)
        })
    });
}

criterion_group!(benches, stages, call_frame);
criterion_main!(benches);
