//! Which address is the client (SPEC §2 `options.client_address`), for hosts that see
//! `x-forwarded-for`: counted from the right as Envoy's `xff_num_trusted_hops`, so
//! entries a client wrote itself (on the left) never win.

/// The client entry of an `x-forwarded-for` list: with `trusted_hops = n`, the
/// (n+1)-th entry from the right. `None` when there are n or fewer entries (the host
/// then uses the downstream peer, as Envoy falls back to the remote address). `values`
/// are the header's values in order (several headers read as one list).
///
/// ```
/// use policy_core::xff_client;
/// assert_eq!(xff_client(["198.51.100.7, 192.0.2.1"], 1), Some("198.51.100.7"));
/// assert_eq!(xff_client(["6.6.6.6, 198.51.100.7, 192.0.2.1"], 1), Some("198.51.100.7"));
/// assert_eq!(xff_client(["198.51.100.7"], 1), None);
/// ```
pub fn xff_client<'a>(
    values: impl IntoIterator<Item = &'a str>,
    trusted_hops: u32,
) -> Option<&'a str> {
    let hops = usize::try_from(trusted_hops).unwrap_or(usize::MAX);
    // Every entry, left to right; the client is counted from the right end.
    let entries: alloc::vec::Vec<&'a str> = values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let index = entries.len().checked_sub(hops)?.checked_sub(1)?;
    entries.get(index).copied()
}
