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

    /// The header prefix: lowercase letters, digits, `-` and `_`, not empty.
    pub(super) fn header_prefix(&mut self, hp: &str) {
        if hp.is_empty()
            || !hp
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            self.push(
                Diagnostic::new(
                    Code::BadHeaderPrefix,
                    "/options/header_prefix",
                    format!("header prefix `{hp}` is not a lowercase header-name prefix"),
                )
                .with_help("use lowercase letters, digits and '-', e.g. \"x-maps-\""),
            );
        }
    }
}

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
