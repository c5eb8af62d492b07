//! RTP ports: an even port per call from the configured range, RTCP on the odd one above.
//!
//! The sockets are non-blocking and not registered with the runtime: the call's bridge reads
//! them on its 20 ms tick, so a call's media costs one wake-up a period instead of one more
//! per packet. The kernel stamps each RTP packet's arrival (`SO_TIMESTAMPNS`), so reading it
//! up to a period later does not blur the jitter buffer's clock.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, SystemTime};

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use nix::sys::time::TimeSpec;

/// A call's media sockets; dropping them frees the ports.
pub struct RtpSocket {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    /// Room for the kernel's receive timestamp beside each packet, reused.
    control: Vec<u8>,
}

/// One datagram read by `recv_stamped`.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub len: usize,
    pub from: SocketAddr,
    /// How long ago the kernel received it.
    pub age: Duration,
}

impl RtpSocket {
    fn new(rtp: UdpSocket, rtcp: UdpSocket) -> io::Result<Self> {
        rtp.set_nonblocking(true)?;
        rtcp.set_nonblocking(true)?;
        stamp_arrivals(&rtp)?;
        Ok(RtpSocket {
            rtp,
            rtcp,
            control: arrival_control(),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.rtp.local_addr()
    }

    pub fn rtcp_local_addr(&self) -> io::Result<SocketAddr> {
        self.rtcp.local_addr()
    }

    /// The next RTP packet waiting, into `buf`; `None` when none is.
    pub fn recv_rtp(&mut self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        none_if_empty(recv_stamped(&self.rtp, buf, &mut self.control))
    }

    /// The next RTCP packet waiting, into `buf`; `None` when none is.
    pub fn recv_rtcp(&self, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
        none_if_empty(self.rtcp.recv_from(buf))
    }

    /// Sends at once; a full send buffer drops the packet, as the network would.
    pub fn send_rtp(&self, packet: &[u8], to: SocketAddr) {
        let _ = self.rtp.send_to(packet, to);
    }

    pub fn send_rtcp(&self, packet: &[u8], to: SocketAddr) {
        let _ = self.rtcp.send_to(packet, to);
    }
}

fn none_if_empty<T>(read: io::Result<T>) -> io::Result<Option<T>> {
    match read {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(err) => Err(err),
    }
}

/// Has the kernel stamp each datagram `socket` receives with its arrival time, for
/// `recv_stamped`.
pub fn stamp_arrivals(socket: &impl AsRawFd) -> io::Result<()> {
    setsockopt(socket.as_raw_fd(), sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)
}

/// Room for a datagram's arrival stamp, for `recv_stamped` (one per socket, reused).
pub fn arrival_control() -> Vec<u8> {
    nix::cmsg_space!(TimeSpec)
}

/// Reads the datagram waiting on `socket` without blocking (`WouldBlock` when none is), with
/// how long ago the kernel received it (zero on a socket `stamp_arrivals` was not called on).
pub fn recv_stamped(
    socket: &impl AsRawFd,
    buf: &mut [u8],
    control: &mut Vec<u8>,
) -> io::Result<Received> {
    let mut iov = [io::IoSliceMut::new(buf)];
    let message = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(control),
        MsgFlags::MSG_DONTWAIT,
    )?;
    let from = message
        .address
        .as_ref()
        .and_then(socket_addr)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "datagram without a source"))?;
    let age = message
        .cmsgs()
        .find_map(|cmsg| match cmsg {
            ControlMessageOwned::ScmTimestampns(at) => Some(Duration::from(at)),
            _ => None,
        })
        .and_then(|at| {
            let since_epoch = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .ok()?;
            since_epoch.checked_sub(at)
        })
        .unwrap_or_default();
    Ok(Received {
        len: message.bytes,
        from,
        age,
    })
}

fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    address
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
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

    pub fn bind(&self, ip: IpAddr) -> io::Result<RtpSocket> {
        let start = rand::random::<u32>() % self.pairs.max(1);
        for step in 0..self.pairs {
            let index = (start + step) % self.pairs;
            let port = self.low as u32 + 2 * index;
            let (Ok(rtp_port), Ok(rtcp_port)) = (u16::try_from(port), u16::try_from(port + 1))
            else {
                continue;
            };
            let Ok(rtp) = UdpSocket::bind((ip, rtp_port)) else {
                continue;
            };
            let Ok(rtcp) = UdpSocket::bind((ip, rtcp_port)) else {
                continue;
            };
            return RtpSocket::new(rtp, rtcp);
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

    #[test]
    fn hands_out_distinct_even_pairs_and_reports_exhaustion() {
        let pool = PortPool::new(41000, 41003);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = pool.bind(ip).unwrap();
        let b = pool.bind(ip).unwrap();
        let (pa, pb) = (
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port(),
        );
        assert_ne!(pa, pb);
        assert!(pa % 2 == 0 && pb % 2 == 0);
        assert_eq!(a.rtcp_local_addr().unwrap().port(), pa + 1);
        assert!(pool.bind(ip).is_err());
        drop(a);
        assert_eq!(pool.bind(ip).unwrap().local_addr().unwrap().port(), pa);
    }

    #[test]
    fn the_next_port_cannot_be_predicted() {
        let pool = PortPool::new(42000, 43999);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(pool.bind(ip).unwrap());
        }
        let ports: Vec<u16> = held
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        // Round-robin handed out p, p+2, p+4…: a flood of the next few ports found the call.
        assert!(ports.windows(2).any(|w| w[1] != w[0] + 2), "{ports:?}");
    }

    /// The next datagram on `socket`, polling for it: loopback delivers at once unless the
    /// machine is busy.
    fn next_rtp(socket: &mut RtpSocket, buf: &mut [u8]) -> Received {
        for _ in 0..500 {
            if let Some(received) = socket.recv_rtp(buf).unwrap() {
                return received;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no datagram arrived");
    }

    #[test]
    fn reads_what_is_waiting_with_the_kernels_arrival_time() {
        let pool = PortPool::new(44000, 44999);
        let mut socket = pool.bind("127.0.0.1".parse().unwrap()).unwrap();
        let to = socket.local_addr().unwrap();
        let mut buf = [0u8; 64];
        assert!(
            socket.recv_rtp(&mut buf).unwrap().is_none(),
            "nothing sent yet"
        );
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        // A datagram read 30 ms after it was sent is that old. The kernel turns stamps on for
        // the machine a moment after the first socket asks (until then it stamps a datagram
        // when it is read), and a busy machine may deliver late: try a few times.
        let stamped = (0..50).any(|_| {
            peer.send_to(b"probe", to).unwrap();
            std::thread::sleep(Duration::from_millis(30));
            let probe = next_rtp(&mut socket, &mut buf);
            assert_eq!(probe.from, peer.local_addr().unwrap());
            assert!(probe.age < Duration::from_secs(5), "{probe:?}");
            probe.age >= Duration::from_millis(25)
        });
        assert!(stamped, "no arrival was stamped");
        peer.send_to(b"first", to).unwrap();
        peer.send_to(b"second", to).unwrap();
        let first = next_rtp(&mut socket, &mut buf);
        assert_eq!(&buf[..first.len], b"first");
        let second = next_rtp(&mut socket, &mut buf);
        assert_eq!(&buf[..second.len], b"second");
        assert!(socket.recv_rtp(&mut buf).unwrap().is_none());
        peer.send_to(b"report", socket.rtcp_local_addr().unwrap())
            .unwrap();
        let mut report = None;
        for _ in 0..500 {
            report = socket.recv_rtcp(&mut buf).unwrap();
            if report.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let (len, from) = report.expect("the report arrived");
        assert_eq!(
            (&buf[..len], from),
            (&b"report"[..], peer.local_addr().unwrap())
        );
        assert!(socket.recv_rtcp(&mut buf).unwrap().is_none());
    }
}
