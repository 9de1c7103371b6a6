//! Addresses and host names as proxies and policies write them: the one place that
//! reads an address (`a.b.c.d`, `[v6]:port`, IPv4-mapped IPv6), normalises a host
//! (SPEC §3) and checks a `host:port`. A leaf: it imports nothing of the crate.

use alloc::string::String;
use core::net::{IpAddr, SocketAddr};

/// An IPv4-mapped IPv6 address is its IPv4 address (SPEC §3).
pub fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Parses an address as proxies write it: `a.b.c.d`, an IPv6 address, either with a
/// port (`a.b.c.d:port`, `[v6]:port`), surrounding whitespace ignored. IPv4-mapped
/// IPv6 becomes IPv4.
///
/// ```
/// use policy_core::parse_address;
/// assert_eq!(parse_address("[::ffff:198.51.100.7]:443").unwrap().to_string(), "198.51.100.7");
/// assert!(parse_address("not-an-address").is_none());
/// ```
pub fn parse_address(text: &str) -> Option<IpAddr> {
    let t = text.trim();
    if let Ok(a) = t.parse::<IpAddr>() {
        return Some(canonical(a));
    }
    if let Ok(sa) = t.parse::<core::net::SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    None
}

/// Lowercase, without a trailing dot or port (SPEC §3).
pub fn normalize_host(host: &str) -> String {
    let h = host.trim();
    let h = if let Some(rest) = h.strip_prefix('[') {
        // [v6]:port
        rest.split(']').next().unwrap_or(rest)
    } else if h.matches(':').count() == 1 {
        h.split(':').next().unwrap_or(h)
    } else {
        h
    };
    let h = h.strip_suffix('.').unwrap_or(h);
    h.to_ascii_lowercase()
}

/// A `host:port` upstream address (a link's next hop, the default path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// An IP address (IPv6 without brackets) or a DNS name.
    pub host: String,
    /// 1–65535.
    pub port: u16,
    /// Whether `host` is an IP address.
    pub ip: bool,
}

impl HostPort {
    /// Parses `host:port`: an IP address (`[v6]:port` for IPv6) or a DNS host name
    /// (labels of 1–63 letters, digits and `-`, not starting or ending with `-`; at most
    /// 253 characters), and a port from 1 to 65535. `None` for anything else.
    ///
    /// ```
    /// use policy_core::HostPort;
    /// assert_eq!(HostPort::parse("[2001:db8::1]:443").unwrap().host, "2001:db8::1");
    /// assert!(HostPort::parse("edge-1.example.net:8443").is_some());
    /// assert!(HostPort::parse("under_score.example:80").is_none());
    /// assert!(HostPort::parse("127.0.0.1:0").is_none());
    /// assert!(HostPort::parse("no-port").is_none());
    /// ```
    pub fn parse(s: &str) -> Option<HostPort> {
        if let Ok(sa) = s.parse::<SocketAddr>() {
            if sa.port() == 0 {
                return None;
            }
            return Some(HostPort {
                host: alloc::string::ToString::to_string(&sa.ip()),
                port: sa.port(),
                ip: true,
            });
        }
        let (host, port) = s.rsplit_once(':')?;
        let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
        if host.contains(':') || !dns_name(host) {
            return None;
        }
        Some(HostPort {
            host: String::from(host),
            port,
            ip: host.parse::<IpAddr>().is_ok(),
        })
    }
}

/// A DNS host name (RFC 1123 labels).
fn dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}
