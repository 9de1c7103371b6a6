//! Where the client address comes from (SPEC §2 `options.client_address`).
//!
//! - `from: "source"` (default): the `source.address` property, i.e. the downstream
//!   peer as the proxy sees it (`ip:port`; `policy_core::parse_address` drops the port).
//! - `from: "xff"`: `x-forwarded-for`, counted from the right as Envoy does with
//!   `xff_num_trusted_hops`: with `trusted_hops = n` the client is the (n+1)-th entry from
//!   the right, so entries a client wrote itself (on the left) never win. Several
//!   `x-forwarded-for` headers are read as one list, in order. When the header has n or
//!   fewer entries, the downstream peer is the client (Envoy's fallback to the remote
//!   address).
//!
//! Only text is produced here; whether it is an address is the classifier's business
//! (an unparsable entry becomes `invalid-source`).

use policy_core::ClientRule;

use super::property_text;

/// The client address text for a request whose (already prefix-stripped) headers are
/// `headers`: the rule is the policy's ([`ClientRule::client`]); this only gathers
/// the header values and the `source.address` property.
pub(crate) fn client_address(rule: ClientRule, headers: &[(String, Vec<u8>)]) -> String {
    let peer = property_text(&["source", "address"]).unwrap_or_default();
    if !rule.reads_xff() {
        return peer;
    }
    // Non-UTF-8 bytes are kept as replacement characters (the entry then fails to
    // parse and the request is `invalid-source`, rather than silently trusting
    // another hop).
    let values: Vec<std::borrow::Cow<'_, str>> = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("x-forwarded-for"))
        .map(|(_, value)| String::from_utf8_lossy(value))
        .collect();
    rule.client(values.iter().map(|v| v.as_ref()), &peer)
        .to_string()
}
