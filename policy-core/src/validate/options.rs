//! Options (SPEC §6): unknown state names (in `eligible_states` and in registered
//! prefixes alike), the header prefix, and the client-address rule they resolve to.

use alloc::format;
use alloc::string::{String, ToString};

use super::Checker;
use crate::diag::{Code, Diagnostic};
use crate::model::{AddressSource, ClientAddress};
use crate::policy::ClientRule;
use crate::state::PrefixState;
use crate::text::{closest, pointer, shown};

/// Azure's `prefixValidationState` values, as the help of an unknown state lists them.
const STATE_NAMES: [&str; 7] = [
    "None", "Invalid", "Verified", "Failed", "Pending", "Warning", "Unknown",
];

impl Checker {
    /// A prefix state by name; an unknown name is reported at `path`.
    pub(super) fn state(&mut self, text: &str, path: &str) -> Option<PrefixState> {
        if let Some(s) = PrefixState::from_name(text) {
            return Some(s);
        }
        if !self.take_slot(Code::UnknownState) {
            return None;
        }
        let d = Diagnostic::new(
            Code::UnknownState,
            path,
            format!("unknown prefix state `{}`", shown(text)),
        );
        let help = match closest(text, STATE_NAMES) {
            Some(s) => format!(
                "did you mean `{s}`? (Azure's prefixValidationState values: {})",
                STATE_NAMES.join(", ")
            ),
            None => format!(
                "use one of Azure's prefixValidationState values: {}",
                STATE_NAMES.join(", ")
            ),
        };
        self.push(d.with_help(help));
        None
    }

    /// The eligible states as a bit set (one bit per state); unknown names are
    /// reported and left out.
    pub(super) fn eligible_states(&mut self, states: &[String]) -> u8 {
        let mut eligible = 0u8;
        for (i, s) in states.iter().enumerate() {
            let path = pointer("/options/eligible_states", &[&i.to_string()]);
            if let Some(st) = self.state(s, &path) {
                eligible |= st.bit();
            }
        }
        eligible
    }

    /// The header prefix: lowercase letters, digits, `-` and `_`, ending in `-`, at
    /// least [`MIN_HEADER_PREFIX`] characters, and not the prefix of headers that
    /// proxies, browsers and the plugin itself rely on: the plugin removes every
    /// request header that starts with it (a client must not forge a decision), so
    /// `x-forwarded-` would delete `x-forwarded-for` before the client is read.
    pub(super) fn header_prefix(&mut self, hp: &str) {
        let problem = if hp.starts_with(':') {
            Some(String::from(
                "starts with `:`, which names HTTP/2 pseudo-headers (`:authority`, `:path`)",
            ))
        } else if hp.is_empty()
            || !hp
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            Some(String::from("is not a lowercase header-name prefix"))
        } else if hp.len() < MIN_HEADER_PREFIX {
            Some(format!(
                "is shorter than {MIN_HEADER_PREFIX} characters: it would be the prefix of \
                 unrelated headers"
            ))
        } else if !hp.ends_with('-') {
            Some(String::from(
                "does not end with `-`: it would also be the prefix of longer words",
            ))
        } else {
            RESERVED_HEADER_PREFIXES
                .iter()
                .find(|r| hp.starts_with(*r) || r.starts_with(hp))
                .map(|r| {
                    format!(
                        "overlaps `{r}`, the prefix of headers proxies and clients rely on \
                         (the plugin removes request headers that start with its prefix)"
                    )
                })
        };
        if let Some(problem) = problem {
            self.push(
                Diagnostic::new(
                    Code::BadHeaderPrefix,
                    "/options/header_prefix",
                    format!("header prefix `{}` {problem}", shown(hp).escape_debug()),
                )
                .with_help(
                    "use a prefix of your own, lowercase, ending in '-', e.g. \"x-maps-\": \
                     the plugin writes its decision headers with it and removes any a client \
                     sent",
                ),
            );
        }
    }
}

/// The shortest header prefix accepted.
pub const MIN_HEADER_PREFIX: usize = 4;

/// Families of request headers a header prefix must not overlap: the plugin deletes
/// every request header starting with its prefix.
const RESERVED_HEADER_PREFIXES: &[&str] = &[
    "x-forwarded-",
    "x-envoy-",
    "x-request-",
    "x-real-",
    "x-b3-",
    "x-ot-",
    "x-amzn-",
    "x-client-",
    "x-datadog-",
    "x-cloud-",
    "content-",
    "accept-",
    "access-control-",
    "proxy-",
    "sec-",
    "transfer-",
    "user-",
    "grpc-",
    "if-",
];

/// The most trusted proxies `client_address.trusted_hops` may name: an IP path has at
/// most 255 hops (the TTL), so more is a typo, not a network.
pub const MAX_TRUSTED_HOPS: u32 = 255;

impl Checker {
    /// `trusted_hops` at most [`MAX_TRUSTED_HOPS`].
    pub(super) fn trusted_hops(&mut self, client: &ClientAddress) {
        if client.trusted_hops > MAX_TRUSTED_HOPS {
            self.push(
                Diagnostic::new(
                    Code::BadValue,
                    "/options/client_address/trusted_hops",
                    format!(
                        "{} trusted hops; at most {MAX_TRUSTED_HOPS} are accepted",
                        client.trusted_hops
                    ),
                )
                .with_help(
                    "count the proxies you run between the client and this one (an IP path \
                     has at most 255 hops)",
                ),
            );
        }
    }
}

/// Where the client address comes from (every `client_address` is valid once parsed).
pub(super) fn client_rule(client: &ClientAddress) -> ClientRule {
    match client.from {
        AddressSource::Source => ClientRule::Source,
        AddressSource::Xff => ClientRule::Xff {
            trusted_hops: client.trusted_hops,
        },
    }
}
