//! SSRF guard: which addresses a tenant-chosen URL may reach, and a DNS resolver that enforces
//! it at connect time. The resolver hands reqwest only the addresses it checked, so the
//! connection goes to exactly those (a second lookup could be rebound to an internal address).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Where an address leads, as far as a server-side request is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// A public unicast address.
    Public,
    /// Loopback or private (RFC 1918, IPv6 unique-local): allowed only when the operator says
    /// so (`BOLTCALL_WEBHOOK_ALLOW_LOOPBACK`, for development and tests).
    Local,
    /// Never reachable from a tenant's URL; the reason names the range.
    Forbidden(&'static str),
}

/// Classifies `ip`.
pub fn classify(ip: IpAddr) -> Reach {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Whether `ip` may be reached, with `allow_local` from the operator.
pub fn check(ip: IpAddr, allow_local: bool) -> Result<(), String> {
    match classify(ip) {
        Reach::Public => Ok(()),
        Reach::Local if allow_local => Ok(()),
        Reach::Local => Err(format!("{ip} is a loopback or private address")),
        Reach::Forbidden(why) => Err(format!("{ip} is {why}")),
    }
}

fn classify_v4(v4: Ipv4Addr) -> Reach {
    let [a, b, c, _] = v4.octets();
    if v4.is_loopback() || v4.is_private() {
        Reach::Local
    } else if v4 == Ipv4Addr::new(169, 254, 169, 254) || v4 == Ipv4Addr::new(100, 100, 100, 200) {
        Reach::Forbidden("a cloud metadata address")
    } else if v4.is_link_local() {
        Reach::Forbidden("a link-local address")
    } else if a == 100 && (64..=127).contains(&b) {
        Reach::Forbidden("a carrier-grade NAT address")
    } else if v4.is_multicast() {
        Reach::Forbidden("a multicast address")
    } else if v4.is_unspecified() || a == 0 {
        Reach::Forbidden("an unspecified (0.0.0.0/8) address")
    } else if v4.is_broadcast() || a >= 240 {
        Reach::Forbidden("a reserved address")
    } else if v4.is_documentation() || (a == 198 && (b == 18 || b == 19)) {
        Reach::Forbidden("a documentation or benchmarking address")
    } else if a == 192 && b == 0 && c == 0 {
        Reach::Forbidden("an IETF protocol-assignment address")
    } else {
        Reach::Public
    }
}

fn classify_v6(v6: Ipv6Addr) -> Reach {
    let seg = v6.segments();
    if v6.is_loopback() {
        Reach::Local
    } else if v6.is_unspecified() {
        Reach::Forbidden("the unspecified address")
    } else if seg[..5] == [0; 5] && (seg[5] == 0 || seg[5] == 0xffff) {
        // ::a.b.c.d (compatible) and ::ffff:a.b.c.d (mapped) reach IPv4 hosts by another name.
        Reach::Forbidden("an IPv4-mapped or IPv4-compatible IPv6 address")
    } else if seg[0] == 0x64 && seg[1] == 0xff9b {
        Reach::Forbidden("a NAT64 address")
    } else if seg[0] == 0x2002 {
        Reach::Forbidden("a 6to4 address")
    } else if seg[0] == 0x2001 && seg[1] == 0 {
        Reach::Forbidden("a Teredo address")
    } else if seg[0] == 0xfd00 && seg[1] == 0x0ec2 {
        Reach::Forbidden("a cloud metadata address")
    } else if seg[0] & 0xfe00 == 0xfc00 {
        Reach::Local
    } else if seg[0] & 0xffc0 == 0xfe80 || seg[0] & 0xffc0 == 0xfec0 {
        Reach::Forbidden("a link-local address")
    } else if v6.is_multicast() {
        Reach::Forbidden("a multicast address")
    } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
        Reach::Forbidden("a documentation address")
    } else if seg[..4] == [0x100, 0, 0, 0] {
        Reach::Forbidden("a discard-only address")
    } else {
        Reach::Public
    }
}

/// A resolver that refuses a name if any of its addresses may not be reached.
pub struct GuardedResolver {
    pub allow_local: bool,
}

impl GuardedResolver {
    /// The resolver as reqwest takes it.
    pub fn shared(allow_local: bool) -> Arc<dyn Resolve> {
        Arc::new(GuardedResolver { allow_local })
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(resolve_checked(name.as_str().to_string(), self.allow_local))
    }
}

async fn resolve_checked(
    host: String,
    allow_local: bool,
) -> Result<Addrs, Box<dyn std::error::Error + Send + Sync>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
    if addrs.is_empty() {
        return Err(format!("{host} has no address").into());
    }
    for addr in &addrs {
        check(addr.ip(), allow_local).map_err(|why| format!("refused {host}: {why}"))?;
    }
    Ok(Box::new(addrs.into_iter()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(ip: &str) -> Reach {
        classify(ip.parse().unwrap())
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "100.128.0.1",
        ] {
            assert_eq!(reach(ip), Reach::Public, "{ip}");
        }
    }

    #[test]
    fn loopback_and_private_need_the_operator_flag() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "::1",
            "fd12::1",
        ] {
            assert_eq!(reach(ip), Reach::Local, "{ip}");
            assert!(check(ip.parse().unwrap(), false).is_err(), "{ip}");
            assert!(check(ip.parse().unwrap(), true).is_ok(), "{ip}");
        }
    }

    #[test]
    fn forbidden_ranges_are_refused_even_with_the_flag() {
        for ip in [
            "169.254.169.254", // metadata
            "100.100.100.200", // Alibaba metadata (CGNAT range)
            "fd00:ec2::254",   // AWS IPv6 metadata
            "169.254.1.1",     // link-local
            "fe80::1",
            "100.64.0.1", // CGNAT
            "100.127.255.254",
            "224.0.0.1", // multicast
            "ff02::1",
            "0.0.0.0", // unspecified
            "::",
            "64:ff9b::7f00:1", // NAT64 of 127.0.0.1
            "64:ff9b::808:808",
            "2002:7f00:1::1",   // 6to4
            "::ffff:127.0.0.1", // mapped
            "::ffff:8.8.8.8",
            "::127.0.0.1", // compatible
            "::8.8.8.8",
            "255.255.255.255",
            "240.0.0.1",
        ] {
            let addr: IpAddr = ip.parse().unwrap();
            assert!(matches!(classify(addr), Reach::Forbidden(_)), "{ip}");
            assert!(check(addr, true).is_err(), "{ip}");
        }
    }

    #[tokio::test]
    async fn resolver_refuses_names_of_local_addresses() {
        let name: Name = "localhost".parse().unwrap();
        let refused = GuardedResolver::shared(false).resolve(name).await;
        let err = refused.err().expect("localhost refused").to_string();
        assert!(err.contains("loopback"), "{err}");
        let name: Name = "localhost".parse().unwrap();
        let allowed = GuardedResolver::shared(true).resolve(name).await;
        assert!(
            allowed
                .expect("allowed with the flag")
                .all(|a| a.ip().is_loopback())
        );
    }
}
