//! Addresses and host names as proxies and policies write them: the one place that
//! reads an address (`a.b.c.d`, `[v6]:port`, IPv4-mapped IPv6), normalises a host
//! (SPEC §3) and checks a `host:port`. A leaf: it imports nothing of the crate.

use alloc::borrow::Cow;
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
///
/// A port must be 1 to 65535 in digits: a host with any other port
/// (`outlook.office365.com:evil`, `:99999`, `:0`, a bare `:`) or an unclosed `[` is not
/// a valid host, and normalises to the empty string, which matches no destination.
///
/// ```
/// use policy_core::normalize_host;
/// assert_eq!(normalize_host("Outlook.Office365.com.:443"), "outlook.office365.com");
/// assert_eq!(normalize_host("[2603:1006::1]:443"), "2603:1006::1");
/// assert_eq!(normalize_host("outlook.office365.com:evil"), "");
/// assert_eq!(normalize_host("outlook.office365.com:99999"), "");
/// ```
pub fn normalize_host(host: &str) -> String {
    host_parts(host).name.into_owned()
}

/// A host split once (SPEC §3): the name without brackets or port, and the port.
/// `None` for an invalid host (a port other than 1–65535 in digits, an unclosed `[`,
/// junk after `]`).
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    let h = host.trim();
    if let Some(rest) = h.strip_prefix('[') {
        // [v6] or [v6]:port
        let (inside, after) = rest.split_once(']')?;
        if after.is_empty() {
            return Some((inside, None));
        }
        return Some((inside, Some(parse_port(after.strip_prefix(':')?)?)));
    }
    let mut colons = h.bytes().enumerate().filter(|&(_, b)| b == b':');
    match (colons.next(), colons.next()) {
        (Some((at, _)), None) => {
            let name = h.get(..at)?;
            let port = h.get(at + 1..)?;
            Some((name, Some(parse_port(port)?)))
        }
        // No colon, or an IPv6 address (several).
        _ => Some((h, None)),
    }
}

/// A host as the classifier reads it, split once.
pub(crate) struct HostParts<'a> {
    /// [`normalize_host`]'s answer, borrowed when the host is already lowercase (the
    /// common case): nothing allocated per request. Empty for an invalid host.
    pub name: Cow<'a, str>,
    /// [`port_of`]'s answer.
    pub port: Option<u16>,
}

/// Splits and normalises a host (SPEC §3) in one pass.
pub(crate) fn host_parts(host: &str) -> HostParts<'_> {
    let Some((h, port)) = split_host(host) else {
        return HostParts {
            name: Cow::Borrowed(""),
            port: None,
        };
    };
    let h = h.strip_suffix('.').unwrap_or(h);
    let name = if h.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(h.to_ascii_lowercase())
    } else {
        Cow::Borrowed(h)
    };
    HostParts { name, port }
}

/// Whether a normalised host could be an IP literal: [`parse_address`] accepts only
/// hex digits, `.`, `:` and surrounding spaces, so a host name (`outlook...`) skips
/// the parse at its first letter past `f`.
pub(crate) fn may_be_address(norm: &str) -> bool {
    norm.bytes()
        .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':' || b.is_ascii_whitespace())
}

/// The port a destination address or host carries (`13.107.6.152:443`,
/// `[2603:1006::1]:443`, `outlook.office365.com:587`), if any (1–65535).
///
/// ```
/// use policy_core::port_of;
/// assert_eq!(port_of("13.107.6.152:443"), Some(443));
/// assert_eq!(port_of("[2603:1006::1]:995"), Some(995));
/// assert_eq!(port_of("outlook.office365.com:587"), Some(587));
/// assert_eq!(port_of("outlook.office365.com"), None);
/// assert_eq!(port_of("2603:1006::1"), None);
/// assert_eq!(port_of("outlook.office365.com:99999"), None);
/// ```
pub fn port_of(text: &str) -> Option<u16> {
    split_host(text)?.1
}

/// A port as written after a host: 1 to 65535, digits only.
fn parse_port(port: &str) -> Option<u16> {
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    port.parse::<u16>().ok().filter(|&p| p != 0)
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
    /// 253 characters; a last label that is not all digits nor hexadecimal `0x..`, so
    /// that nothing that looks like an address is taken for a name), and a port from 1
    /// to 65535 in digits. `None` for anything else; [`HostPort::check`] says why.
    ///
    /// ```
    /// use policy_core::HostPort;
    /// assert_eq!(HostPort::parse("[2001:db8::1]:443").unwrap().host, "2001:db8::1");
    /// assert!(HostPort::parse("edge-1.example.net:8443").is_some());
    /// assert!(HostPort::parse("under_score.example:80").is_none());
    /// assert!(HostPort::parse("127.0.0.1:0").is_none());
    /// assert!(HostPort::parse("no-port").is_none());
    /// assert!(HostPort::parse("999.1.1.1:80").is_none());
    /// assert!(HostPort::parse("127.1:80").is_none());
    /// assert!(HostPort::parse("0x7f.0.0.1:80").is_none());
    /// assert!(HostPort::parse("[fe80::1%2]:443").is_none());
    /// ```
    pub fn parse(s: &str) -> Option<HostPort> {
        HostPort::check(s).ok()
    }

    /// [`HostPort::parse`], with the reason when `s` is refused (for a message).
    pub fn check(s: &str) -> Result<HostPort, &'static str> {
        if s.contains('%') {
            return Err(
                "a zone (`%eth0`, `%2`) is not carried by an upstream address: \
                        use a global address, not a link-local one",
            );
        }
        if let Ok(sa) = s.parse::<SocketAddr>() {
            if sa.port() == 0 {
                return Err("the port must be 1 to 65535");
            }
            return Ok(HostPort {
                host: alloc::string::ToString::to_string(&sa.ip()),
                port: sa.port(),
                ip: true,
            });
        }
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err("there is no `:port`");
        };
        let Some(port) = parse_port(port) else {
            return Err("the port must be 1 to 65535, in digits");
        };
        if host.starts_with('[') || host.contains(':') {
            return Err("an IPv6 address is written [address]:port");
        }
        if host.parse::<IpAddr>().is_ok() {
            // Unreachable (SocketAddr parsed it), kept for safety.
            return Err("the address does not parse");
        }
        if looks_numeric(host) {
            return Err(
                "the host looks like an IPv4 address but is not one (four decimal \
                        numbers 0-255, no leading zeros, no hexadecimal)",
            );
        }
        if !dns_name(host) {
            return Err("the host is neither an IP address nor a DNS name");
        }
        Ok(HostPort {
            host: String::from(host),
            port,
            ip: false,
        })
    }
}

/// A name whose last label is all digits or hexadecimal `0x…` (`999.1.1.1`, `127.1`,
/// `0x7f.0.0.1`, `1.2.3.0x4`): a mistyped address, never a DNS host name (RFC 3696:
/// a top-level domain is not all-numeric).
fn looks_numeric(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let last = name.rsplit('.').next().unwrap_or(name);
    let hex = last
        .strip_prefix("0x")
        .or_else(|| last.strip_prefix("0X"))
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    hex || (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
}

/// A DNS host name (RFC 1123 labels).
fn dns_name(name: &str) -> bool {
    host_labels(name, false)
}

/// Dot-separated labels of letters, digits and `-` (and `_` with `underscore`: domain
/// names in destinations may carry it, a host to connect to may not), 63 bytes at most,
/// not starting or ending with `-`; 253 bytes at most in all. The one label rule of the
/// crate (link addresses and destination domains).
pub(crate) fn host_labels(name: &str, underscore: bool) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || (underscore && b == b'_'))
        })
}
