//! Which SDP connection addresses we agree to send RTP to. A forged INVITE can name any
//! address; without this check it turns the engine into a traffic source aimed at a victim
//! (a multicast group, or a host inside the engine's own network).

use std::net::IpAddr;

/// `media` is the offered `c=` address, `source` where the INVITE came from.
pub fn media_address_allowed(media: IpAddr, source: IpAddr, allow_private: bool) -> bool {
    let media = media.to_canonical();
    if media.is_unspecified() || media.is_multicast() || is_broadcast(media) {
        return false;
    }
    allow_private || !is_public(source.to_canonical()) || is_public(media)
}

fn is_broadcast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

/// Routable on the internet: not loopback, private, link-local, shared (CGNAT) or ULA.
fn is_public(ip: IpAddr) -> bool {
    if ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() {
        return false;
    }
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            let shared = a == 100 && (64..128).contains(&b);
            !(v4.is_private() || v4.is_link_local() || v4.is_broadcast() || shared)
        }
        IpAddr::V6(v6) => !(v6.is_unique_local() || v6.is_unicast_link_local()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(media: &str, source: &str, allow_private: bool) -> bool {
        media_address_allowed(
            media.parse().unwrap(),
            source.parse().unwrap(),
            allow_private,
        )
    }

    #[test]
    fn multicast_unspecified_and_broadcast_are_always_refused() {
        for media in [
            "224.0.0.1",
            "239.1.2.3",
            "0.0.0.0",
            "255.255.255.255",
            "ff02::1",
            "::",
        ] {
            assert!(!allowed(media, "10.0.0.1", true), "{media}");
        }
    }

    #[test]
    fn a_public_source_cannot_point_media_inside_unless_configured() {
        for media in [
            "10.1.2.3",
            "192.168.0.9",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!allowed(media, "198.51.100.7", false), "{media}");
            assert!(allowed(media, "198.51.100.7", true), "{media}");
        }
        assert!(allowed("198.51.100.8", "198.51.100.7", false));
        // A source inside the network (a local PBX, tests on loopback) may name local media.
        assert!(allowed("10.1.2.3", "10.0.0.1", false));
        assert!(allowed("127.0.0.1", "127.0.0.1", false));
    }
}
