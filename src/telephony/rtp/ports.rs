//! RTP ports: an even port per call from the configured range, RTCP on the odd one above.

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::net::UdpSocket;

/// A call's media sockets; dropping them frees the ports.
pub struct RtpSocket {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
}

impl RtpSocket {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.rtp.local_addr()
    }
}

/// Hands out port pairs from a random place in the range, so nobody can predict (and flood
/// ahead of time) the port the next call gets; a pair in use (bind fails) is skipped, so the
/// pool needs no bookkeeping of its own when calls end.
pub struct PortPool {
    low: u16,
    pairs: u32,
}

impl PortPool {
    pub fn new(low: u16, high: u16) -> Self {
        let low = low + low % 2;
        let pairs = (high.saturating_sub(low) as u32).div_ceil(2);
        PortPool { low, pairs }
    }

    pub async fn bind(&self, ip: IpAddr) -> io::Result<RtpSocket> {
        let start = rand::random::<u32>() % self.pairs.max(1);
        for step in 0..self.pairs {
            let index = (start + step) % self.pairs;
            let port = self.low as u32 + 2 * index;
            let (Ok(rtp_port), Ok(rtcp_port)) = (u16::try_from(port), u16::try_from(port + 1))
            else {
                continue;
            };
            let Ok(rtp) = UdpSocket::bind((ip, rtp_port)).await else {
                continue;
            };
            let Ok(rtcp) = UdpSocket::bind((ip, rtcp_port)).await else {
                continue;
            };
            return Ok(RtpSocket { rtp, rtcp });
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "no free RTP port pair in the configured range",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hands_out_distinct_even_pairs_and_reports_exhaustion() {
        let pool = PortPool::new(41000, 41003);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = pool.bind(ip).await.unwrap();
        let b = pool.bind(ip).await.unwrap();
        let (pa, pb) = (
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port(),
        );
        assert_ne!(pa, pb);
        assert!(pa % 2 == 0 && pb % 2 == 0);
        assert_eq!(a.rtcp.local_addr().unwrap().port(), pa + 1);
        assert!(pool.bind(ip).await.is_err());
        drop(a);
        assert_eq!(
            pool.bind(ip).await.unwrap().local_addr().unwrap().port(),
            pa
        );
    }

    #[tokio::test]
    async fn the_next_port_cannot_be_predicted() {
        let pool = PortPool::new(42000, 43999);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(pool.bind(ip).await.unwrap());
        }
        let ports: Vec<u16> = held
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        // Round-robin handed out p, p+2, p+4…: a flood of the next few ports found the call.
        assert!(ports.windows(2).any(|w| w[1] != w[0] + 2), "{ports:?}");
    }
}
