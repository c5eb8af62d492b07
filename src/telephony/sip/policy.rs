//! Who may start calls: a source-address allowlist and a per-source INVITE rate limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// An address block, `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| format!("bad address {addr:?}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("bad prefix {p:?}"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// The source is not on the allowlist: 403.
    NotAllowed,
    /// Too many INVITEs from this source: 503 with Retry-After.
    RateLimited,
}

/// Sources idle this long are forgotten, so the table stays small.
const IDLE_SECS: f64 = 60.0;

/// Token bucket per source address; time is passed in.
pub struct SourcePolicy {
    allowlist: Vec<Cidr>,
    /// INVITEs per second per source (0 disables the limit); the burst is twice that.
    rate: f64,
    buckets: HashMap<IpAddr, (f64, Instant)>,
    last_sweep: Option<Instant>,
}

impl SourcePolicy {
    /// An empty allowlist admits every source.
    pub fn new(allowlist: Vec<Cidr>, invites_per_second: u32) -> Self {
        SourcePolicy {
            allowlist,
            rate: invites_per_second as f64,
            buckets: HashMap::new(),
            last_sweep: None,
        }
    }

    pub fn admit(&mut self, source: IpAddr, now: Instant) -> Admission {
        if !self.allowlist.is_empty() && !self.allowlist.iter().any(|c| c.contains(source)) {
            return Admission::NotAllowed;
        }
        if self.rate <= 0.0 {
            return Admission::Allowed;
        }
        self.sweep(now);
        let burst = self.rate * 2.0;
        let (tokens, last) = self.buckets.entry(source).or_insert((burst, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Admission::Allowed
        } else {
            Admission::RateLimited
        }
    }

    fn sweep(&mut self, now: Instant) {
        let due = self
            .last_sweep
            .is_none_or(|t| now.saturating_duration_since(t).as_secs_f64() > IDLE_SECS);
        if due {
            self.buckets.retain(|_, (_, last)| {
                now.saturating_duration_since(*last).as_secs_f64() < IDLE_SECS
            });
            self.last_sweep = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allowlist_matches_blocks_and_mapped_addresses() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        let mut policy = SourcePolicy::new(vec![net], 0);
        let now = Instant::now();
        assert_eq!(
            policy.admit("10.1.0.1".parse().unwrap(), now),
            Admission::Allowed
        );
        assert_eq!(
            policy.admit("192.0.2.1".parse().unwrap(), now),
            Admission::NotAllowed
        );
    }

    #[test]
    fn rate_limit_allows_a_burst_then_refills() {
        let mut policy = SourcePolicy::new(Vec::new(), 5);
        let src = "192.0.2.7".parse().unwrap();
        let other = "192.0.2.8".parse().unwrap();
        let t0 = Instant::now();
        let allowed = (0..20)
            .filter(|_| policy.admit(src, t0) == Admission::Allowed)
            .count();
        assert_eq!(allowed, 10, "burst of twice the rate");
        assert_eq!(policy.admit(other, t0), Admission::Allowed, "per source");
        assert_eq!(
            policy.admit(src, t0 + Duration::from_millis(200)),
            Admission::Allowed
        );
        assert_eq!(
            policy.admit(src, t0 + Duration::from_millis(200)),
            Admission::RateLimited
        );
    }
}
