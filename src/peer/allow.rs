//! Which peers may connect: an allowlist of Origin-Host names and source prefixes, the
//! local policy behind DIAMETER_UNKNOWN_PEER (RFC 6733 §5.3, §7.1.3: 3010 in the CEA).
//!
//! Pure data and matching. Must not depend on: tokio, the server, the store.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IP prefix (`addr/len`), e.g. `10.0.0.0/8`, `::1/128`; a bare address is a host
/// prefix (`/32` or `/128`). IPv4-mapped IPv6 source addresses are compared as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    /// The network address (host bits past `prefix_len` are ignored when matching).
    pub addr: IpAddr,
    /// Prefix length in bits (≤ 32 for IPv4, ≤ 128 for IPv6).
    pub prefix_len: u8,
}

/// Why an [`IpNet`] could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpNetError {
    /// The address part is not an IP address.
    #[error("invalid IP address in prefix {0:?}")]
    Address(String),
    /// The length part is not a number or is too long for the address family.
    #[error("invalid prefix length in {0:?}")]
    PrefixLen(String),
}

impl IpNet {
    /// A prefix; `None` when `prefix_len` is too long for the address family.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Option<Self> {
        (prefix_len <= max_len(addr)).then_some(IpNet { addr, prefix_len })
    }

    /// Whether `ip` lies inside this prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let net = self.addr.to_canonical();
        // An IPv4-mapped prefix (::ffff:a.b.c.d/n) counts its length from the IPv4 part.
        let len = if self.addr.is_ipv6() && net.is_ipv4() {
            self.prefix_len.saturating_sub(96)
        } else {
            self.prefix_len
        };
        match (net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let bits = u32::from(len.min(32));
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let bits = u32::from(len.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn max_len(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| IpNetError::Address(s.to_owned()))?;
        let prefix_len = match l {
            None => max_len(addr),
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|&n| n <= max_len(addr))
                .ok_or_else(|| IpNetError::PrefixLen(s.to_owned()))?,
        };
        Ok(IpNet { addr, prefix_len })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// One allowlist entry: admits a peer when every given condition holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEntry {
    /// Origin-Host the peer must announce in its CER (compared case-insensitively).
    pub origin_host: Option<String>,
    /// Prefix the connection's source address must lie in.
    pub source: Option<IpNet>,
}

impl AllowEntry {
    /// Whether this entry admits a peer announcing `origin_host` from `source`.
    /// An entry with neither condition admits everyone.
    pub fn admits(&self, origin_host: &str, source: IpAddr) -> bool {
        self.origin_host
            .as_deref()
            .map_or(true, |h| h.eq_ignore_ascii_case(origin_host))
            && self.source.map_or(true, |n| n.contains(source))
    }
}

/// The peers this HSS talks to (checked on CER, RFC 6733 §5.3: "local policy").
///
/// [`Allowlist::default`] admits any Origin-Host connecting from a loopback address
/// (`127.0.0.0/8`, `::1`) and nothing else; an empty list admits nobody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowlist {
    /// Entries; a peer is admitted when any entry admits it.
    pub entries: Vec<AllowEntry>,
}

impl Allowlist {
    /// Admits any Origin-Host from loopback only (the default).
    pub fn loopback() -> Self {
        let e = |net: &str| AllowEntry {
            origin_host: None,
            source: net.parse().ok(),
        };
        Allowlist {
            entries: vec![e("127.0.0.0/8"), e("::1/128")],
        }
    }

    /// Admits everyone (for tests and closed networks).
    pub fn any() -> Self {
        Allowlist {
            entries: vec![AllowEntry {
                origin_host: None,
                source: None,
            }],
        }
    }

    /// Whether a peer announcing `origin_host` from `source` may connect.
    pub fn admits(&self, origin_host: &str, source: IpAddr) -> bool {
        self.entries.iter().any(|e| e.admits(origin_host, source))
    }
}

impl Default for Allowlist {
    fn default() -> Self {
        Self::loopback()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_prefixes_and_bare_addresses() {
        let n: IpNet = "10.1.0.0/16".parse().unwrap();
        assert_eq!(n.prefix_len, 16);
        assert_eq!("::1".parse::<IpNet>().unwrap().prefix_len, 128);
        assert_eq!("192.0.2.7".parse::<IpNet>().unwrap().prefix_len, 32);
        assert_eq!("[2001:db8::]/32".parse::<IpNet>().unwrap().prefix_len, 32);
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("::/129".parse::<IpNet>().is_err());
        assert!("nope/8".parse::<IpNet>().is_err());
        assert!("10.0.0.0/x".parse::<IpNet>().is_err());
        assert_eq!(n.to_string(), "10.1.0.0/16");
    }

    #[test]
    fn matches_v4_v6_and_mapped_addresses() {
        let n: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains(ip("10.1.200.3")));
        assert!(!n.contains(ip("10.2.0.1")));
        assert!(n.contains(ip("::ffff:10.1.0.9")));
        assert!(!n.contains(ip("2001:db8::1")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("198.51.100.1")));
        let v6: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
    }

    #[test]
    fn default_admits_only_loopback() {
        let a = Allowlist::default();
        assert!(a.admits("any.host", ip("127.0.0.1")));
        assert!(a.admits("any.host", ip("127.8.9.10")));
        assert!(a.admits("any.host", ip("::1")));
        assert!(a.admits("any.host", ip("::ffff:127.0.0.1")));
        assert!(!a.admits("any.host", ip("192.0.2.1")));
        assert!(!a.admits("any.host", ip("::2")));
        assert!(!Allowlist { entries: vec![] }.admits("h", ip("127.0.0.1")));
    }

    #[test]
    fn entry_needs_host_and_source_when_both_given() {
        let a = Allowlist {
            entries: vec![AllowEntry {
                origin_host: Some("scscf.ims.example".into()),
                source: "192.0.2.0/24".parse().ok(),
            }],
        };
        assert!(a.admits("SCSCF.ims.example", ip("192.0.2.9")));
        assert!(!a.admits("icscf.ims.example", ip("192.0.2.9")));
        assert!(!a.admits("scscf.ims.example", ip("198.51.100.9")));
        let host_only = Allowlist {
            entries: vec![AllowEntry {
                origin_host: Some("icscf.ims.example".into()),
                source: None,
            }],
        };
        assert!(host_only.admits("icscf.ims.example", ip("203.0.113.5")));
    }
}
