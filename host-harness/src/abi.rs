//! Constants and wire formats of the proxy-wasm ABI v0.2.1 (the host's view).
//!
//! Every decoder here works on untrusted bytes that came out of guest memory: it returns
//! `None` on anything malformed and never panics or indexes unchecked.

use std::fmt;

/// `proxy_status_t`: what every hostcall returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    SerializationFailure = 3,
    ParseFailure = 4,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
    InternalFailure = 10,
    Unimplemented = 12,
}

impl Status {
    /// The status as the guest sees it.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// `proxy_log_level_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
    /// The level for an ABI code, `None` for an unknown one.
    pub fn from_code(code: i32) -> Option<LogLevel> {
        Some(match code {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }

    /// Lower-case name, as Envoy prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `proxy_action_t`: what a stream callback asks the host to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Carry on (forward what was just processed).
    Continue,
    /// Hold the stream until the plugin calls `proxy_continue_stream`.
    Pause,
}

impl Action {
    /// Decodes a callback's return value; anything but 1 is treated as `Continue`, as
    /// hosts do.
    pub fn from_code(code: i32) -> Action {
        if code == 1 {
            Action::Pause
        } else {
            Action::Continue
        }
    }
}

/// `proxy_buffer_type_t`.
pub mod buffer {
    pub const HTTP_REQUEST_BODY: i32 = 0;
    pub const HTTP_RESPONSE_BODY: i32 = 1;
    pub const DOWNSTREAM_DATA: i32 = 2;
    pub const UPSTREAM_DATA: i32 = 3;
    pub const HTTP_CALL_RESPONSE_BODY: i32 = 4;
    pub const GRPC_CALL_MESSAGE: i32 = 5;
    pub const VM_CONFIGURATION: i32 = 6;
    pub const PLUGIN_CONFIGURATION: i32 = 7;
    pub const FOREIGN_FUNCTION_ARGUMENTS: i32 = 8;
}

/// `proxy_map_type_t`.
pub mod map {
    pub const HTTP_REQUEST_HEADERS: i32 = 0;
    pub const HTTP_REQUEST_TRAILERS: i32 = 1;
    pub const HTTP_RESPONSE_HEADERS: i32 = 2;
    pub const HTTP_RESPONSE_TRAILERS: i32 = 3;
    pub const GRPC_CALL_INITIAL_METADATA: i32 = 4;
    pub const GRPC_CALL_TRAILING_METADATA: i32 = 5;
    pub const HTTP_CALL_RESPONSE_HEADERS: i32 = 6;
    pub const HTTP_CALL_RESPONSE_TRAILERS: i32 = 7;
}

/// `proxy_stream_type_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamType {
    HttpRequest,
    HttpResponse,
    Downstream,
    Upstream,
}

impl StreamType {
    pub fn from_code(code: i32) -> Option<StreamType> {
        Some(match code {
            0 => StreamType::HttpRequest,
            1 => StreamType::HttpResponse,
            2 => StreamType::Downstream,
            3 => StreamType::Upstream,
            _ => return None,
        })
    }
}

/// `proxy_peer_type_t` values passed to the connection-close callbacks.
pub mod peer {
    pub const UNKNOWN: i32 = 0;
    pub const LOCAL: i32 = 1;
    pub const REMOTE: i32 = 2;
}

/// `proxy_metric_type_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl MetricKind {
    pub fn from_code(code: i32) -> Option<MetricKind> {
        Some(match code {
            0 => MetricKind::Counter,
            1 => MetricKind::Gauge,
            2 => MetricKind::Histogram,
            _ => return None,
        })
    }

    pub(crate) fn code(self) -> u32 {
        match self {
            MetricKind::Counter => 0,
            MetricKind::Gauge => 1,
            MetricKind::Histogram => 2,
        }
    }
}

/// Serializes header pairs the way the ABI specifies: a u32 count, then a (key length,
/// value length) u32 pair per entry, then each key and value followed by a NUL byte; all
/// integers little-endian. An empty map is serialized as zero bytes.
pub fn encode_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    if pairs.is_empty() {
        return Vec::new();
    }
    let data: usize = pairs
        .iter()
        .map(|(k, v)| k.as_ref().len() + v.as_ref().len() + 2)
        .sum();
    let mut out = Vec::with_capacity(4 + 8 * pairs.len() + data);
    out.extend_from_slice(&len32(pairs.len()).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&len32(k.as_ref().len()).to_le_bytes());
        out.extend_from_slice(&len32(v.as_ref().len()).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Decodes serialized header pairs (see [`encode_pairs`]). Accepts the two encodings of an
/// empty map (no bytes, or a single zero byte). `None` when the bytes are malformed.
pub fn decode_pairs(bytes: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if bytes.is_empty() || bytes == [0] {
        return Some(Vec::new());
    }
    let count = read_u32(bytes, 0)? as usize;
    // Each entry needs at least 8 bytes of sizes and 2 NULs: bound the count by the input
    // before allocating anything.
    if count > bytes.len() / 10 + 1 {
        return None;
    }
    let mut sizes = Vec::with_capacity(count);
    let mut pos = 4usize;
    for _ in 0..count {
        let k = read_u32(bytes, pos)? as usize;
        let v = read_u32(bytes, pos.checked_add(4)?)? as usize;
        sizes.push((k, v));
        pos = pos.checked_add(8)?;
    }
    let mut out = Vec::with_capacity(count);
    for (k, v) in sizes {
        let key = bytes.get(pos..pos.checked_add(k)?)?.to_vec();
        pos = pos.checked_add(k)?;
        if bytes.get(pos) != Some(&0) {
            return None;
        }
        pos += 1;
        let value = bytes.get(pos..pos.checked_add(v)?)?.to_vec();
        pos = pos.checked_add(v)?;
        if bytes.get(pos) != Some(&0) {
            return None;
        }
        pos += 1;
        out.push((key, value));
    }
    Some(out)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(raw))
}

/// A property path as the guest sends it: segments separated by NUL bytes. The harness
/// names properties by their segments joined with `.` (`source.address`).
pub fn property_key(path: &[u8]) -> String {
    let trimmed = path.strip_suffix(&[0]).unwrap_or(path);
    trimmed
        .split(|b| *b == 0)
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join(".")
}

/// `envoy.source.extensions.common.wasm.SetEnvoyFilterStateArguments`, the protobuf
/// argument of Envoy's `set_envoy_filter_state` foreign function.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetEnvoyFilterStateArguments {
    /// Field 1: the filter state key, e.g. `envoy.tcp_proxy.cluster`.
    pub path: String,
    /// Field 2: the input of the key's object factory (for the TCP proxy: a cluster name).
    pub value: String,
    /// Field 3: `LifeSpan` (0 FilterChain, 1 DownstreamRequest, 2 DownstreamConnection).
    pub span: u64,
}

impl SetEnvoyFilterStateArguments {
    /// Parses the protobuf wire format: fields 1 and 2 length-delimited UTF-8, field 3 a
    /// varint; unknown fields are skipped as protobuf requires. `None` when malformed.
    pub fn decode(mut bytes: &[u8]) -> Option<SetEnvoyFilterStateArguments> {
        let mut out = SetEnvoyFilterStateArguments::default();
        while !bytes.is_empty() {
            let (key, rest) = read_varint(bytes)?;
            bytes = rest;
            let field = key >> 3;
            match key & 7 {
                0 => {
                    let (value, rest) = read_varint(bytes)?;
                    bytes = rest;
                    if field == 3 {
                        out.span = value;
                    }
                }
                2 => {
                    let (len, rest) = read_varint(bytes)?;
                    let len = usize::try_from(len).ok()?;
                    let data = rest.get(..len)?;
                    bytes = rest.get(len..)?;
                    match field {
                        1 => out.path = String::from_utf8(data.to_vec()).ok()?,
                        2 => out.value = String::from_utf8(data.to_vec()).ok()?,
                        _ => {}
                    }
                }
                1 => bytes = bytes.get(8..)?,
                5 => bytes = bytes.get(4..)?,
                _ => return None,
            }
        }
        Some(out)
    }
}

fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, bytes.get(i + 1..)?));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_and_spec_example() {
        let pairs = vec![("a", "1"), ("b", "22")];
        let bytes = encode_pairs(&pairs);
        // The example of the ABI's "Serialization" section.
        assert_eq!(
            bytes,
            [
                2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, b'a', 0, b'1', 0, b'b',
                0, b'2', b'2', 0
            ]
        );
        let back = decode_pairs(&bytes).unwrap();
        assert_eq!(
            back,
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"22".to_vec())
            ]
        );
        assert_eq!(decode_pairs(&[]).unwrap(), vec![]);
        assert_eq!(decode_pairs(&[0]).unwrap(), vec![]);
    }

    #[test]
    fn malformed_pairs_are_refused() {
        let bytes = encode_pairs(&[("a", "1")]);
        for cut in 1..bytes.len() {
            assert!(decode_pairs(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        assert!(decode_pairs(&[0xff, 0xff, 0xff, 0xff]).is_none());
        let mut no_nul = bytes.clone();
        let last = no_nul.len() - 1;
        no_nul[last] = b'x';
        assert!(decode_pairs(&no_nul).is_none());
    }

    #[test]
    fn property_paths_join_with_dots() {
        assert_eq!(property_key(b"source\0address"), "source.address");
        assert_eq!(property_key(b"plugin_root_id"), "plugin_root_id");
        assert_eq!(property_key(b"a\0b\0"), "a.b");
    }

    #[test]
    fn filter_state_arguments_decode() {
        let mut bytes = vec![0x0a, 23];
        bytes.extend_from_slice(b"envoy.tcp_proxy.cluster");
        bytes.extend_from_slice(&[0x12, 8]);
        bytes.extend_from_slice(b"maps_sea");
        bytes.extend_from_slice(&[0x18, 2]);
        let args = SetEnvoyFilterStateArguments::decode(&bytes).unwrap();
        assert_eq!(args.path, "envoy.tcp_proxy.cluster");
        assert_eq!(args.value, "maps_sea");
        assert_eq!(args.span, 2);
        assert!(SetEnvoyFilterStateArguments::decode(&bytes[..5]).is_none());
        assert!(SetEnvoyFilterStateArguments::decode(&[0x0a, 0xff]).is_none());
    }
}
