//! Address space (SPEC §6): a prefix's syntax and canonical form (malformed prefix,
//! host bits set), and what a registered prefix's address allows: public space only,
//! no IPv4 shorter than /8 or IPv6 shorter than /16 (errors); documentation ranges,
//! IPv6, IPv4 longer than /24 without a prefix key (warnings).

use alloc::format;
use alloc::string::String;
use core::net::{Ipv4Addr, Ipv6Addr};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::Checker;
use crate::diag::{Code, Diagnostic};

impl Checker {
    /// Syntax and canonical form of a prefix.
    pub(super) fn prefix_syntax(&mut self, text: &str, path: &str) -> Option<IpNet> {
        if let Some((why, canonical)) = non_canonical_text(text) {
            let help = match canonical {
                Some(c) => format!("write it as {c}"),
                None => String::from("write address/length, e.g. 198.51.100.0/24"),
            };
            self.push(
                Diagnostic::new(
                    Code::MalformedPrefix,
                    path,
                    format!(
                        "`{}` is not a prefix as written: {why}",
                        crate::text::shown(text).escape_debug()
                    ),
                )
                .with_help(help),
            );
            return None;
        }
        let net: IpNet = match text.parse() {
            Ok(n) => n,
            Err(_) => {
                let help = if text.contains('/') {
                    "write address/length, e.g. 198.51.100.0/24 or 2001:db8:100::/48"
                } else {
                    "add the prefix length, e.g. 198.51.100.0/24"
                };
                self.push(
                    Diagnostic::new(
                        Code::MalformedPrefix,
                        path,
                        format!("`{}` is not a prefix", crate::text::shown(text)),
                    )
                    .with_help(help),
                );
                return None;
            }
        };
        if net.trunc() != net {
            self.push(
                Diagnostic::new(
                    Code::HostBitsSet,
                    path,
                    format!("prefix {text} has host bits set"),
                )
                .with_help(format!("write it as {}", net.trunc())),
            );
            return None;
        }
        Some(net)
    }

    /// The checks of a registered prefix beyond its syntax: public, length (errors,
    /// false), documentation range, IPv6, long IPv4 without key (warnings). `label`
    /// prefixes messages (a packed record's number).
    pub(super) fn registered_net(
        &mut self,
        net: IpNet,
        has_key: bool,
        path: &str,
        label: &str,
    ) -> bool {
        if let Some(what) = non_public(&net) {
            self.push_capped(
                Diagnostic::new(
                    Code::NonPublicPrefix,
                    path,
                    format!("{label}{net} is {what}, not public address space"),
                )
                .with_help("MAPS carries traffic from public prefixes only: register the public prefix your customer announces"),
            );
            return false;
        }
        let short = match net {
            IpNet::V4(n) => (n.prefix_len() < 8).then_some("/8"),
            IpNet::V6(n) => (n.prefix_len() < 16).then_some("/16"),
        };
        if let Some(min) = short {
            self.push_capped(
                Diagnostic::new(
                    Code::PrefixTooShort,
                    path,
                    format!("{label}{net} is shorter than {min}"),
                )
                .with_help("register the customer's own, more specific prefixes"),
            );
            return false;
        }
        if let Some(rfc) = documentation(&net) {
            self.push_capped(
                Diagnostic::new(
                    Code::DocumentationPrefix,
                    path,
                    format!("{label}{net} is a documentation range ({rfc})"),
                )
                .with_help(
                    "fine for examples; a real registration needs the customer's public prefix",
                ),
            );
        }
        match net {
            IpNet::V6(_) => self.push_capped(
                Diagnostic::new(
                    Code::Ipv6Prefix,
                    path,
                    format!("{label}{net} is IPv6: Azure Peering Service accepts IPv4 prefixes only today"),
                )
                .with_help("it is classified here, but Azure will not register it yet"),
            ),
            IpNet::V4(n) if n.prefix_len() > 24 && !has_key => self.push_capped(
                Diagnostic::new(
                    Code::LongPrefixWithoutKey,
                    path,
                    format!("{label}{net} is longer than /24 and has no prefix `key`"),
                )
                .with_help("prefixes longer than /24 need a partner-registered peering service prefix key"),
            ),
            _ => {}
        }
        true
    }
}

/// What kind of non-public space `net` lies in, if any.
pub(crate) fn non_public(net: &IpNet) -> Option<&'static str> {
    match net {
        IpNet::V4(n) => {
            const RANGES: &[([u8; 4], u8, &str)] = &[
                ([0, 0, 0, 0], 8, "\"this network\" (RFC 1122)"),
                ([10, 0, 0, 0], 8, "private (RFC 1918)"),
                ([100, 64, 0, 0], 10, "shared address space (RFC 6598)"),
                ([127, 0, 0, 0], 8, "loopback"),
                ([169, 254, 0, 0], 16, "link-local"),
                ([172, 16, 0, 0], 12, "private (RFC 1918)"),
                ([192, 0, 0, 0], 24, "IETF protocol assignments (RFC 6890)"),
                ([192, 168, 0, 0], 16, "private (RFC 1918)"),
                ([198, 18, 0, 0], 15, "benchmarking (RFC 2544)"),
                ([224, 0, 0, 0], 4, "multicast"),
                ([240, 0, 0, 0], 4, "reserved"),
            ];
            RANGES.iter().find_map(|(a, len, what)| {
                let r = Ipv4Net::new(Ipv4Addr::from(*a), *len).ok()?;
                r.contains(n).then_some(*what)
            })
        }
        IpNet::V6(n) => {
            let first = n.network().segments()[0];
            let in_range = |a: Ipv6Addr, len: u8| Ipv6Net::new(a, len).is_ok_and(|r| r.contains(n));
            if in_range(Ipv6Addr::from(0xffffu128 << 32), 96) {
                Some("IPv4-mapped space")
            } else if first & 0xfe00 == 0xfc00 {
                Some("unique local (ULA, RFC 4193)")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if first & 0xff00 == 0xff00 {
                Some("multicast")
            } else if n.network() == Ipv6Addr::LOCALHOST && n.prefix_len() == 128 {
                Some("loopback")
            } else if first & 0xe000 != 0x2000 {
                Some("reserved (outside global unicast 2000::/3)")
            } else {
                None
            }
        }
    }
}

/// The documentation RFC whose range contains `net`, if any.
pub(crate) fn documentation(net: &IpNet) -> Option<&'static str> {
    let docs: [(&str, &str); 4] = [
        ("192.0.2.0/24", "RFC 5737"),
        ("198.51.100.0/24", "RFC 5737"),
        ("203.0.113.0/24", "RFC 5737"),
        ("2001:db8::/32", "RFC 3849"),
    ];
    docs.iter().find_map(|(r, rfc)| {
        let r: IpNet = r.parse().ok()?;
        r.contains(net).then_some(*rfc)
    })
}

/// A prefix written with surrounding whitespace or with leading zeros in an IPv4 octet
/// or in the length (`" 20.4.0.0/16"`, `"020.6.0.0/16"`: is `020` octal?): why, and the
/// canonical form when it parses once cleaned.
fn non_canonical_text(text: &str) -> Option<(&'static str, Option<String>)> {
    let canonical = |t: &str| -> Option<String> {
        let (addr, len) = t.split_once('/')?;
        let len: u8 = len.parse().ok()?;
        let addr = if addr.contains(':') {
            String::from(addr)
        } else {
            let octets: Option<alloc::vec::Vec<String>> = addr
                .split('.')
                .map(|o| o.parse::<u8>().ok().map(|n| format!("{n}")))
                .collect();
            octets?.join(".")
        };
        let net: IpNet = format!("{addr}/{len}").parse().ok()?;
        Some(format!("{net}"))
    };
    if text.trim() != text {
        return Some(("it has spaces around it", canonical(text.trim())));
    }
    let (addr, len) = text.split_once('/').unwrap_or((text, ""));
    let zero_led = |part: &str| {
        part.len() > 1 && part.starts_with('0') && part.bytes().all(|b| b.is_ascii_digit())
    };
    if (!addr.contains(':') && addr.split('.').any(zero_led)) || zero_led(len) {
        return Some((
            "a number with a leading zero is ambiguous (octal in some tools)",
            canonical(text),
        ));
    }
    None
}
