//! Microsoft 365's vocabulary for its endpoints (SPEC §7): the category of an endpoint
//! set and its port lists, and the in-label `*` of its domain patterns. A leaf.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Serialize, Serializer};

/// A Microsoft 365 endpoint category, lowest first: `Default` < `Allow` < `Optimize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// May be hosted outside Microsoft: no special path needed.
    Default,
    /// Microsoft-hosted, routed like Optimize but less sensitive.
    Allow,
    /// Most of the traffic, latency-sensitive: nearest Microsoft edge.
    Optimize,
}

impl Category {
    /// Every category, lowest first.
    pub const ALL: [Category; 3] = [Category::Default, Category::Allow, Category::Optimize];

    /// Microsoft's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Default => "Default",
            Category::Allow => "Allow",
            Category::Optimize => "Optimize",
        }
    }

    /// Parses Microsoft's spelling (exact case).
    pub fn from_name(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub(crate) const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Category {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A port list in Microsoft's `tcpPorts` form: ports and inclusive ranges, 1–65535,
/// separated by commas (`"80,443"`, `"143,587,993-995"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports(Vec<(u16, u16)>);

impl Ports {
    /// Parses a port list; `None` when any item is not a port or range in 1–65535 (a
    /// range's start not above its end), or the list is empty.
    ///
    /// ```
    /// use policy_core::Ports;
    /// let p = Ports::parse("143, 587,993-995").unwrap();
    /// assert!(p.contains(994) && p.contains(587) && !p.contains(443));
    /// assert!(Ports::parse("80,").is_none());
    /// assert!(Ports::parse("0").is_none());
    /// assert!(Ports::parse("995-993").is_none());
    /// assert!(Ports::parse("65536").is_none());
    /// ```
    pub fn parse(text: &str) -> Option<Ports> {
        let port = |t: &str| -> Option<u16> {
            let t = t.trim();
            if t.is_empty() || t.len() > 5 || !t.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            t.parse::<u16>().ok().filter(|p| *p > 0)
        };
        let mut out = Vec::new();
        for item in text.split(',') {
            let range = match item.split_once('-') {
                Some((a, b)) => (port(a)?, port(b)?),
                None => {
                    let p = port(item)?;
                    (p, p)
                }
            };
            if range.0 > range.1 {
                return None;
            }
            out.push(range);
        }
        (!out.is_empty()).then_some(Ports(out))
    }

    /// Whether `port` is in the list.
    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| lo <= port && port <= hi)
    }
}

/// A domain pattern with `*` inside labels (SPEC §7): a leading `*.` stands for one or
/// more labels; any other `*` for any characters (none included) inside one label.
/// Names and patterns are normalised (lower case, no trailing dot) before they meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    /// A leading `*.`: one or more labels before `labels`.
    pub(crate) any_labels: bool,
    pub(crate) labels: Vec<String>,
}

impl Pattern {
    /// The pattern of a normalised domain, when it has a `*` other than a leading `*.`
    /// with no other `*` (those are plain suffix wildcards).
    pub(crate) fn of(domain: &str) -> Option<Pattern> {
        let (any_labels, rest) = match domain.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, domain),
        };
        if !rest.contains('*') {
            return None;
        }
        Some(Pattern {
            any_labels,
            labels: rest.split('.').map(String::from).collect(),
        })
    }

    /// Whether the normalised host `name` matches.
    pub(crate) fn matches(&self, name: &str) -> bool {
        let labels: Vec<&str> = name.split('.').collect();
        let n = self.labels.len();
        let ok_len = if self.any_labels {
            labels.len() > n
        } else {
            labels.len() == n
        };
        if !ok_len {
            return false;
        }
        let tail = labels.get(labels.len() - n..).unwrap_or(&[]);
        tail.iter()
            .zip(&self.labels)
            .all(|(label, pat)| glob(pat.as_bytes(), label.as_bytes()))
    }
}

/// `*` matches any run of bytes (none included); everything else itself. Linear
/// (greedy with one backtrack point), so a hostile pattern cannot make it slow.
fn glob(pat: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if Some(c) == text.get(t) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat.get(p..).unwrap_or(&[]).iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, name: &str) -> bool {
        Pattern::of(pattern).is_some_and(|p| p.matches(name))
    }

    #[test]
    fn in_label_stars_stay_inside_their_label() {
        assert!(m("*-files.sharepoint.com", "contoso-files.sharepoint.com"));
        assert!(!m(
            "*-files.sharepoint.com",
            "a.contoso-files.sharepoint.com"
        ));
        assert!(m("*cdn.onenote.net", "xcdn.onenote.net"));
        assert!(m("*cdn.onenote.net", "cdn.onenote.net"));
        assert!(m(
            "autodiscover.*.onmicrosoft.com",
            "autodiscover.contoso.onmicrosoft.com"
        ));
        assert!(!m(
            "autodiscover.*.onmicrosoft.com",
            "autodiscover.a.b.onmicrosoft.com"
        ));
        assert!(m("*.a*.example.com", "x.y.abc.example.com"));
        assert!(!m("*.a*.example.com", "abc.example.com"));
        assert!(Pattern::of("*.sharepoint.com").is_none());
        assert!(Pattern::of("outlook.office365.com").is_none());
    }

    #[test]
    fn glob_is_linear_and_exact() {
        assert!(glob(b"a*b*c", b"axxbyyc"));
        assert!(!glob(b"a*b*c", b"axxbyy"));
        let long = alloc::vec![b'a'; 10_000];
        assert!(!glob(b"*a*a*a*a*b", &long));
    }
}
