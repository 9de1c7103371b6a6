//! Envoy's standard attributes, as `proxy_get_property` serves them.
//!
//! A path is its segments joined with `.` (`request.headers.x-id`). Values use Envoy's
//! encodings: strings as their bytes, integers, timestamps and durations as 8 bytes
//! little-endian (timestamps in nanoseconds since the epoch, durations in nanoseconds),
//! booleans as one byte, maps as the header-pairs serialisation.
//!
//! What comes from where:
//!
//! | path | source |
//! |---|---|
//! | `request.{path,url_path,host,scheme,method,referer,useragent,id}` | the request headers (`:path`, `:authority`, `:scheme`, `:method`, `referer`, `user-agent`, `x-request-id`) |
//! | `request.headers[.name]` | the request headers (all, or one value) |
//! | `request.{size,total_size}` | body bytes received; plus the headers' byte size |
//! | `request.duration` | once the request has ended: its end minus its start |
//! | `request.{time,protocol}` | set when the stream starts |
//! | `response.code` | `:status` of the response headers |
//! | `response.code_details` | the local reply's details, else `via_upstream` |
//! | `response.flags` | 0 (the harness injects no faults) |
//! | `response.{headers,trailers}[.name]`, `response.{size,total_size}` | the response |
//! | `connection.{id,mtls,requested_server_name}`, `source.*`, `destination.*` | set when the stream starts |
//! | `upstream.{address,port}` | set when the upstream answers |
//! | `xds.*`, `metadata.*`, `connection.tls_version`, anything else | set by the test (stream or harness property) |
//!
//! Properties the test or the plugin set explicitly win over computed ones.

use crate::abi::encode_pairs;
use crate::state::{Headers, StreamState};

fn int(v: u64) -> Vec<u8> {
    i64::try_from(v).unwrap_or(i64::MAX).to_le_bytes().to_vec()
}

fn text(v: &[u8]) -> Vec<u8> {
    v.to_vec()
}

/// Envoy's `HeaderMap::byteSize`: the sum of the names' and values' lengths.
fn byte_size(h: &Headers) -> u64 {
    h.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum()
}

fn map_or_entry(h: &Headers, rest: Option<&str>) -> Option<Vec<u8>> {
    match rest {
        None => Some(encode_pairs(h.pairs())),
        Some(name) => h.get_bytes(name).map(text),
    }
}

/// The computed value of `key` on stream `st`, if it has one now.
/// `headers_visible`: whether the request headers are there now (Envoy 1.40 measured: not
/// in the response callbacks, again in `on_log`); the attributes read from them follow.
pub(crate) fn computed(
    st: &StreamState,
    now_nanos: u64,
    headers_visible: bool,
    key: &str,
) -> Option<Vec<u8>> {
    let (head, rest) = match key.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (key, None),
    };
    match head {
        "request" => request(st, now_nanos, headers_visible, rest?),
        "response" => response(st, rest?),
        _ => None,
    }
}

fn request(st: &StreamState, _now: u64, visible: bool, rest: &str) -> Option<Vec<u8>> {
    let empty = Headers::new();
    let h = if visible { &st.request_headers } else { &empty };
    let header = |name: &str| h.get_bytes(name).map(text);
    if let Some(name) = rest.strip_prefix("headers.") {
        return map_or_entry(h, Some(name));
    }
    match rest {
        "path" => header(":path"),
        "url_path" => h
            .get_bytes(":path")
            .map(|p| text(p.split(|b| *b == b'?').next().unwrap_or(p))),
        "host" => header(":authority"),
        "scheme" => header(":scheme"),
        "method" => header(":method"),
        "referer" => header("referer"),
        "useragent" => header("user-agent"),
        "id" => header("x-request-id"),
        "headers" if visible => map_or_entry(h, None),
        "size" => Some(int(st.request_body_seen)),
        "total_size" => Some(int(st.request_body_seen.saturating_add(byte_size(h)))),
        "duration" => st
            .request_end_nanos
            .map(|end| int(end.saturating_sub(st.start_nanos))),
        _ => None,
    }
}

fn response(st: &StreamState, rest: &str) -> Option<Vec<u8>> {
    let headers = st.response_headers.as_ref();
    if let Some(name) = rest.strip_prefix("headers.") {
        return map_or_entry(headers?, Some(name));
    }
    if let Some(name) = rest.strip_prefix("trailers.") {
        return map_or_entry(st.response_trailers.as_ref()?, Some(name));
    }
    match rest {
        "code" => {
            let status = headers?.get(":status")?.parse::<u64>().ok()?;
            Some(int(status))
        }
        "code_details" => match &st.local_reply {
            Some(reply) => Some(text(reply.details.as_bytes())),
            None => headers.map(|_| text(b"via_upstream")),
        },
        "flags" => Some(int(0)),
        "headers" => map_or_entry(headers?, None),
        "trailers" => map_or_entry(st.response_trailers.as_ref()?, None),
        "size" => Some(int(st.response_body_seen)),
        "total_size" => Some(int(st
            .response_body_seen
            .saturating_add(headers.map_or(0, byte_size)))),
        _ => None,
    }
}
