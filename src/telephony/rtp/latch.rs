//! Which source a call's RTP is accepted from, sans-IO. Only the address the SDP offered is
//! trusted, or — for a peer behind NAT, whose SDP names a private address — a packet from the
//! signalling source's IP within a short window after media starts. Once latched, every other
//! source is a stranger: its packets are dropped and counted, so a flood of packets at the
//! call's port cannot steal the agent's audio or silence the caller.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// How long after media starts (or moves) a NAT'd peer may latch from the signalling IP.
pub const NAT_LATCH_WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Latch {
    offered: SocketAddr,
    signalling_ip: IpAddr,
    nat_until: Instant,
    latched: Option<SocketAddr>,
    strangers: u64,
}

/// What to do with one inbound packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Not our peer: drop it. `first` is true for the call's first stranger (log it once).
    Stranger {
        first: bool,
    },
}

impl Latch {
    pub fn new(offered: SocketAddr, signalling_ip: IpAddr, now: Instant) -> Self {
        Latch {
            offered,
            signalling_ip,
            nat_until: now + NAT_LATCH_WINDOW,
            latched: None,
            strangers: 0,
        }
    }

    pub fn check(&mut self, from: SocketAddr, now: Instant) -> Verdict {
        let accept = match self.latched {
            Some(peer) => from == peer,
            None => {
                from == self.offered
                    || (same_ip(from.ip(), self.signalling_ip) && now < self.nat_until)
            }
        };
        if accept {
            self.latched = Some(from);
            return Verdict::Accept;
        }
        self.strangers += 1;
        Verdict::Stranger {
            first: self.strangers == 1,
        }
    }

    /// Where our RTP goes: the latched source, else the offered address.
    pub fn target(&self) -> SocketAddr {
        self.latched.unwrap_or(self.offered)
    }

    /// The peer's signalling (a re-INVITE from the dialog's own peer) moved the media.
    pub fn repoint(&mut self, offered: SocketAddr, now: Instant) {
        if offered != self.offered {
            self.offered = offered;
            self.latched = None;
            self.nat_until = now + NAT_LATCH_WINDOW;
        }
    }

    /// Packets dropped from sources other than the peer.
    pub fn strangers(&self) -> u64 {
        self.strangers
    }
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn latches_only_to_the_offered_address_and_counts_strangers() {
        let t0 = Instant::now();
        let mut latch = Latch::new(
            addr("198.51.100.7:4000"),
            "203.0.113.1".parse().unwrap(),
            t0,
        );
        assert_eq!(
            latch.check(addr("192.0.2.66:4002"), t0),
            Verdict::Stranger { first: true }
        );
        assert_eq!(latch.target(), addr("198.51.100.7:4000"));
        assert_eq!(latch.check(addr("198.51.100.7:4000"), t0), Verdict::Accept);
        // Once latched, even the signalling IP on another port is a stranger.
        assert_eq!(
            latch.check(addr("203.0.113.1:9000"), t0),
            Verdict::Stranger { first: false }
        );
        assert_eq!(latch.strangers(), 2);
        assert_eq!(latch.target(), addr("198.51.100.7:4000"));
    }

    #[test]
    fn a_natted_peer_latches_from_the_signalling_ip_only_within_the_window() {
        let t0 = Instant::now();
        let signalling = "203.0.113.1".parse().unwrap();
        let mut late = Latch::new(addr("10.0.0.5:4000"), signalling, t0);
        assert!(matches!(
            late.check(addr("203.0.113.1:31000"), t0 + NAT_LATCH_WINDOW),
            Verdict::Stranger { .. }
        ));
        let mut natted = Latch::new(addr("10.0.0.5:4000"), signalling, t0);
        assert_eq!(
            natted.check(addr("203.0.113.1:31000"), t0 + Duration::from_secs(1)),
            Verdict::Accept
        );
        assert_eq!(natted.target(), addr("203.0.113.1:31000"));
        // The dialog moved the media: latch afresh to the new offer.
        natted.repoint(addr("198.51.100.9:5000"), t0 + NAT_LATCH_WINDOW * 3);
        assert_eq!(natted.target(), addr("198.51.100.9:5000"));
        assert!(matches!(
            natted.check(addr("203.0.113.1:31000"), t0 + NAT_LATCH_WINDOW * 5),
            Verdict::Stranger { .. }
        ));
        assert_eq!(
            natted.check(addr("198.51.100.9:5000"), t0 + NAT_LATCH_WINDOW * 5),
            Verdict::Accept
        );
    }
}
