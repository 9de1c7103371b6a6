//! The host functions: the `env` module of proxy-wasm ABI 0.1.0, 0.2.0 and 0.2.1 (a module
//! gets only those Envoy gives its version, `AbiVersion::provides`), plus two WASI preview 1
//! functions the ABI gives a proxy meaning (`fd_write` logs, `clock_time_get` reads the
//! host's clock).
//!
//! Contract: guest memory is touched only through [`read`], [`write`] and [`copy_out`],
//! which check every range. A bad range makes the hostcall return `INVALID_MEMORY_ACCESS`
//! (WASI: `FAULT`), as the ABI says, and records a fault that the harness reports as an
//! error when the callback returns. A trap inside the guest allocator propagates as a trap.
//! Host functions never panic.

use wasmtime::{Caller, Linker, Memory};

use crate::abi::{
    buffer, decode_pairs, encode_pairs, map, property_key, LogLevel, MetricKind,
    SetEnvoyFilterStateArguments, Status, StreamType,
};
use crate::state::{Fault, ForeignCall, GrpcCall, Headers, HostState, HttpCall, LocalReply};

#[path = "attributes.rs"]
mod attributes;

type C<'a> = Caller<'a, HostState>;
type Ret = wasmtime::Result<i32>;

/// Why a hostcall stops early: a status for the guest, or a trap to propagate.
pub(crate) enum HostErr {
    Status(Status),
    Trap(wasmtime::Error),
}

impl From<Status> for HostErr {
    fn from(s: Status) -> HostErr {
        HostErr::Status(s)
    }
}

/// Unwraps a `Result<_, HostErr>` inside a host function: a status is returned to the
/// guest, a trap is propagated.
macro_rules! h {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(HostErr::Status(s)) => return Ok(s.code()),
            Err(HostErr::Trap(t)) => return Err(t),
        }
    };
}

fn memory(c: &C<'_>) -> Option<Memory> {
    c.data().memory
}

fn fault(c: &mut C<'_>, hostcall: &'static str, offset: u64, len: u64) -> HostErr {
    let memory_size = memory(c).map_or(0, |m| m.data_size(&*c) as u64);
    c.data_mut().fault.get_or_insert(Fault {
        hostcall,
        offset,
        len,
        memory_size,
    });
    HostErr::Status(Status::InvalidMemoryAccess)
}

/// Copies `len` bytes at `ptr` out of guest memory.
pub(crate) fn read(
    c: &mut C<'_>,
    call: &'static str,
    ptr: i32,
    len: i32,
) -> Result<Vec<u8>, HostErr> {
    let (p, l) = (ptr as u32 as usize, len as u32 as usize);
    let bytes = memory(c).and_then(|m| {
        p.checked_add(l)
            .and_then(|end| m.data(&*c).get(p..end))
            .map(<[u8]>::to_vec)
    });
    match bytes {
        Some(b) => Ok(b),
        None => Err(fault(c, call, p as u64, l as u64)),
    }
}

fn read_str(c: &mut C<'_>, call: &'static str, ptr: i32, len: i32) -> Result<String, HostErr> {
    Ok(String::from_utf8_lossy(&read(c, call, ptr, len)?).into_owned())
}

/// Copies `bytes` into guest memory at `ptr`.
pub(crate) fn write(
    c: &mut C<'_>,
    call: &'static str,
    ptr: u32,
    bytes: &[u8],
) -> Result<(), HostErr> {
    let p = ptr as usize;
    let ok = match memory(c) {
        Some(m) => match p
            .checked_add(bytes.len())
            .and_then(|end| m.data_mut(&mut *c).get_mut(p..end))
        {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                true
            }
            None => false,
        },
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(fault(c, call, p as u64, bytes.len() as u64))
    }
}

fn write_u32(c: &mut C<'_>, call: &'static str, ptr: i32, v: u32) -> Result<(), HostErr> {
    write(c, call, ptr as u32, &v.to_le_bytes())
}

fn write_u64(c: &mut C<'_>, call: &'static str, ptr: i32, v: u64) -> Result<(), HostErr> {
    write(c, call, ptr as u32, &v.to_le_bytes())
}

/// Allocates `len` bytes in the guest with its `proxy_on_memory_allocate` (or `malloc`).
fn alloc(c: &mut C<'_>, call: &'static str, len: usize) -> Result<u32, HostErr> {
    let Some(f) = c.data().alloc.clone() else {
        return Err(fault(c, call, 0, len as u64));
    };
    let size = i32::try_from(len).map_err(|_| HostErr::Status(Status::InvalidMemoryAccess))?;
    let ptr = f.call(&mut *c, size).map_err(HostErr::Trap)? as u32;
    if ptr == 0 {
        return Err(fault(c, call, 0, len as u64));
    }
    Ok(ptr)
}

/// Hands `bytes` to the guest: allocates a block in guest memory, copies the bytes there,
/// and writes its address and size at `ptr_ptr` and `size_ptr`. Empty data is returned as
/// (0, 0) without allocating, as Envoy does.
pub(crate) fn copy_out(
    c: &mut C<'_>,
    call: &'static str,
    bytes: &[u8],
    ptr_ptr: i32,
    size_ptr: i32,
) -> Result<(), HostErr> {
    let size = u32::try_from(bytes.len()).map_err(|_| HostErr::Status(Status::BadArgument))?;
    let addr = if bytes.is_empty() {
        0
    } else {
        let a = alloc(c, call, bytes.len())?;
        write(c, call, a, bytes)?;
        a
    };
    write_u32(c, call, ptr_ptr, addr)?;
    write_u32(c, call, size_ptr, size)
}

fn header_map(s: &mut HostState, map_type: i32) -> Result<&mut Headers, Status> {
    match map_type {
        map::HTTP_REQUEST_HEADERS
        | map::HTTP_REQUEST_TRAILERS
        | map::HTTP_RESPONSE_HEADERS
        | map::HTTP_RESPONSE_TRAILERS => {
            let in_log = s.in_log;
            let st = s.stream().ok_or(Status::NotFound)?;
            // A map the stream does not hold now is refused with BAD_ARGUMENT, as Envoy
            // 1.40 does (measured: request trailers in the request headers callback; the
            // request headers once the response is being processed, except in on_log).
            match map_type {
                map::HTTP_REQUEST_HEADERS if st.response_headers.is_some() && !in_log => {
                    Err(Status::BadArgument)
                }
                map::HTTP_REQUEST_HEADERS => Ok(&mut st.request_headers),
                map::HTTP_REQUEST_TRAILERS => {
                    st.request_trailers.as_mut().ok_or(Status::BadArgument)
                }
                map::HTTP_RESPONSE_HEADERS => {
                    st.response_headers.as_mut().ok_or(Status::BadArgument)
                }
                _ => st.response_trailers.as_mut().ok_or(Status::BadArgument),
            }
        }
        map::HTTP_CALL_RESPONSE_HEADERS | map::HTTP_CALL_RESPONSE_TRAILERS => {
            let r = s.http_call_response.as_mut().ok_or(Status::NotFound)?;
            Ok(if map_type == map::HTTP_CALL_RESPONSE_HEADERS {
                &mut r.0
            } else {
                &mut r.2
            })
        }
        // Outside the callback that hands them over (also in a unary call's answer: Envoy
        // gives unary calls no metadata) the gRPC metadata maps are BAD_ARGUMENT, as in
        // Envoy 1.40 (measured: conformance case `grpc_unary_call_answered`).
        map::GRPC_CALL_INITIAL_METADATA => s
            .callout
            .initial_metadata
            .as_mut()
            .ok_or(Status::BadArgument),
        map::GRPC_CALL_TRAILING_METADATA => s
            .callout
            .trailing_metadata
            .as_mut()
            .ok_or(Status::BadArgument),
        _ => Err(Status::BadArgument),
    }
}

fn buffer_ref(s: &mut HostState, buffer_type: i32) -> Result<&mut Vec<u8>, Status> {
    match buffer_type {
        buffer::HTTP_REQUEST_BODY
        | buffer::HTTP_RESPONSE_BODY
        | buffer::DOWNSTREAM_DATA
        | buffer::UPSTREAM_DATA => {
            let st = s.stream().ok_or(Status::NotFound)?;
            Ok(match buffer_type {
                buffer::HTTP_REQUEST_BODY => &mut st.request_body,
                buffer::HTTP_RESPONSE_BODY => &mut st.response_body,
                buffer::DOWNSTREAM_DATA => &mut st.downstream_data,
                _ => &mut st.upstream_data,
            })
        }
        buffer::HTTP_CALL_RESPONSE_BODY => s
            .http_call_response
            .as_mut()
            .map(|r| &mut r.1)
            .ok_or(Status::NotFound),
        buffer::VM_CONFIGURATION => Ok(&mut s.vm_configuration),
        buffer::PLUGIN_CONFIGURATION => Ok(&mut s.plugin_configuration),
        buffer::FOREIGN_FUNCTION_ARGUMENTS => Ok(&mut s.foreign_arguments),
        buffer::GRPC_CALL_MESSAGE => s.callout.message.as_mut().ok_or(Status::NotFound),
        _ => Err(Status::BadArgument),
    }
}

/// Envoy's Wasm filter clears the route cache whenever the plugin changes the request
/// headers (measured in Envoy 1.40: conformance case `route_chosen_again_after_a_header_change`).
fn request_headers_changed(s: &mut HostState, map_type: i32) {
    if map_type == map::HTTP_REQUEST_HEADERS {
        if let Some(st) = s.stream() {
            st.route_stale = true;
        }
    }
}

/// A property: one the test or the plugin set on the stream, else Envoy's computed
/// attribute (see `attributes.rs`), else one set for the whole plugin.
fn property(s: &mut HostState, key: &str) -> Option<Vec<u8>> {
    let now = s.now_nanos;
    let in_log = s.in_log;
    if let Some(st) = s.stream() {
        if let Some(v) = st.properties.get(key) {
            return Some(v.clone());
        }
        if key == "xds.route_name" {
            if let Some(route) = &st.route {
                return Some(route.as_bytes().to_vec());
            }
        }
        if let Some(name) = key.strip_prefix("filter_state.") {
            if let Some(v) = st.filter_state.get(name) {
                return Some(v.as_bytes().to_vec());
            }
        }
        let visible = st.response_headers.is_none() || in_log;
        if let Some(v) = attributes::computed(st, now, visible, key) {
            return Some(v);
        }
    }
    s.properties.get(key).cloned()
}

/// Envoy's `Buffer::copyFrom` on a stream buffer: `start == 0` with `size == 0`
/// prepends, `start == 0` with `size >= len` replaces, `start >= len` appends; anything
/// else (a splice in the middle) is refused with `BAD_ARGUMENT`.
fn envoy_set_buffer(buf: &mut Vec<u8>, start: usize, size: usize, data: Vec<u8>) -> Status {
    if start == 0 {
        if size == 0 {
            buf.splice(0..0, data);
            Status::Ok
        } else if size >= buf.len() {
            *buf = data;
            Status::Ok
        } else {
            Status::BadArgument
        }
    } else if start >= buf.len() {
        buf.extend_from_slice(&data);
        Status::Ok
    } else {
        Status::BadArgument
    }
}

fn decode_headers(bytes: &[u8]) -> Result<Headers, Status> {
    let pairs = decode_pairs(bytes).ok_or(Status::BadArgument)?;
    let mut h = Headers::new();
    for (k, v) in pairs {
        h.add(&String::from_utf8_lossy(&k), &v);
    }
    Ok(h)
}

/// Registers every host function on `linker`. WASI preview 1 must already be there;
/// shadowing must be allowed (two WASI functions are replaced).
pub(crate) fn add_to_linker(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    // ---- logging, clock, timer ------------------------------------------------------
    l.func_wrap(
        "env",
        "proxy_log",
        |mut c: C<'_>, level: i32, ptr: i32, len: i32| -> Ret {
            let Some(level) = LogLevel::from_code(level) else {
                return Ok(Status::BadArgument.code());
            };
            let msg = h!(read_str(&mut c, "proxy_log", ptr, len));
            c.data_mut().log(level, msg);
            Ok(0)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_log_level",
        |mut c: C<'_>, ret: i32| -> Ret {
            let level = c.data().log_level as u32;
            h!(write_u32(&mut c, "proxy_get_log_level", ret, level));
            Ok(0)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: C<'_>, ret: i32| -> Ret {
            let now = c.data().now_nanos;
            h!(write_u64(
                &mut c,
                "proxy_get_current_time_nanoseconds",
                ret,
                now
            ));
            Ok(0)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: C<'_>, period: i32| -> Ret {
            c.data_mut().tick_period_ms = period as u32;
            Ok(0)
        },
    )?;

    // ---- context lifecycle -------------------------------------------------------
    l.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut c: C<'_>, id: i32| -> Ret {
            let id = id as u32;
            let s = c.data_mut();
            if id == s.root_context || s.streams.contains_key(&id) {
                s.effective_context = id;
                Ok(0)
            } else {
                Ok(Status::BadArgument.code())
            }
        },
    )?;
    l.func_wrap("env", "proxy_done", |mut c: C<'_>| -> Ret {
        c.data_mut().done_called = true;
        Ok(0)
    })?;

    // ---- buffers -----------------------------------------------------------------
    l.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: C<'_>, t: i32, start: i32, max: i32, ret_ptr: i32, ret_size: i32| -> Ret {
            const CALL: &str = "proxy_get_buffer_bytes";
            let bytes = {
                let buf = match buffer_ref(c.data_mut(), t) {
                    Ok(b) => b,
                    Err(s) => return Ok(s.code()),
                };
                let start = start as u32 as usize;
                if start > buf.len() {
                    return Ok(Status::BadArgument.code());
                }
                let end = start.saturating_add(max as u32 as usize).min(buf.len());
                buf.get(start..end).map(<[u8]>::to_vec).unwrap_or_default()
            };
            h!(copy_out(&mut c, CALL, &bytes, ret_ptr, ret_size));
            Ok(0)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_buffer_status",
        |mut c: C<'_>, t: i32, ret_size: i32, ret_flags: i32| -> Ret {
            const CALL: &str = "proxy_get_buffer_status";
            let len = match buffer_ref(c.data_mut(), t) {
                Ok(b) => u32::try_from(b.len()).unwrap_or(u32::MAX),
                Err(s) => return Ok(s.code()),
            };
            h!(write_u32(&mut c, CALL, ret_size, len));
            h!(write_u32(&mut c, CALL, ret_flags, 0));
            Ok(0)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut c: C<'_>, t: i32, start: i32, size: i32, ptr: i32, len: i32| -> Ret {
            let data = h!(read(&mut c, "proxy_set_buffer_bytes", ptr, len));
            if matches!(
                t,
                buffer::VM_CONFIGURATION
                    | buffer::PLUGIN_CONFIGURATION
                    | buffer::FOREIGN_FUNCTION_ARGUMENTS
                    | buffer::HTTP_CALL_RESPONSE_BODY
            ) {
                return Ok(Status::BadArgument.code());
            }
            let buf = match buffer_ref(c.data_mut(), t) {
                Ok(b) => b,
                Err(s) => return Ok(s.code()),
            };
            if t == buffer::GRPC_CALL_MESSAGE {
                let start = (start as u32 as usize).min(buf.len());
                let end = start.saturating_add(size as u32 as usize).min(buf.len());
                buf.splice(start..end, data);
                return Ok(0);
            }
            Ok(envoy_set_buffer(buf, start as u32 as usize, size as u32 as usize, data).code())
        },
    )?;

    // ---- header maps -------------------------------------------------------------
    l.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: C<'_>, t: i32, ret_ptr: i32, ret_size: i32| -> Ret {
            let bytes = match header_map(c.data_mut(), t) {
                Ok(h) => encode_pairs(h.pairs()),
                Err(s) => return Ok(s.code()),
            };
            h!(copy_out(
                &mut c,
                "proxy_get_header_map_pairs",
                &bytes,
                ret_ptr,
                ret_size
            ));
            Ok(0)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_size",
        |mut c: C<'_>, t: i32, ret_size: i32| -> Ret {
            let size = match header_map(c.data_mut(), t) {
                Ok(h) => encode_pairs(h.pairs()).len(),
                Err(s) => return Ok(s.code()),
            };
            let size = u32::try_from(size).unwrap_or(u32::MAX);
            h!(write_u32(
                &mut c,
                "proxy_get_header_map_size",
                ret_size,
                size
            ));
            Ok(0)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut c: C<'_>, t: i32, ptr: i32, len: i32| -> Ret {
            let bytes = h!(read(&mut c, "proxy_set_header_map_pairs", ptr, len));
            let new = match decode_headers(&bytes) {
                Ok(h) => h,
                Err(s) => return Ok(s.code()),
            };
            match header_map(c.data_mut(), t) {
                Ok(h) => {
                    *h = new;
                    request_headers_changed(c.data_mut(), t);
                    Ok(0)
                }
                Err(s) => Ok(s.code()),
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: C<'_>, t: i32, kp: i32, kl: i32, ret_ptr: i32, ret_size: i32| -> Ret {
            const CALL: &str = "proxy_get_header_map_value";
            let key = h!(read_str(&mut c, CALL, kp, kl));
            let value = match header_map(c.data_mut(), t) {
                Ok(h) => match h.get_bytes(&key) {
                    Some(v) => v.to_vec(),
                    None => return Ok(Status::NotFound.code()),
                },
                Err(s) => return Ok(s.code()),
            };
            h!(copy_out(&mut c, CALL, &value, ret_ptr, ret_size));
            Ok(0)
        },
    )?;
    for (name, op) in [
        ("proxy_add_header_map_value", MapOp::Add),
        ("proxy_replace_header_map_value", MapOp::Replace),
    ] {
        l.func_wrap(
            "env",
            name,
            move |mut c: C<'_>, t: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> Ret {
                let key = h!(read_str(&mut c, name, kp, kl));
                let value = h!(read(&mut c, name, vp, vl));
                match header_map(c.data_mut(), t) {
                    Ok(h) => {
                        match op {
                            MapOp::Add => h.add(&key, &value),
                            MapOp::Replace => h.replace(&key, &value),
                        }
                        request_headers_changed(c.data_mut(), t);
                        Ok(0)
                    }
                    Err(s) => Ok(s.code()),
                }
            },
        )?;
    }
    l.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: C<'_>, t: i32, kp: i32, kl: i32| -> Ret {
            let key = h!(read_str(&mut c, "proxy_remove_header_map_value", kp, kl));
            match header_map(c.data_mut(), t) {
                Ok(h) => {
                    h.remove(&key);
                    request_headers_changed(c.data_mut(), t);
                    Ok(0)
                }
                Err(s) => Ok(s.code()),
            }
        },
    )?;

    // ---- properties --------------------------------------------------------------
    l.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: C<'_>, pp: i32, pl: i32, ret_ptr: i32, ret_size: i32| -> Ret {
            const CALL: &str = "proxy_get_property";
            let path = h!(read(&mut c, CALL, pp, pl));
            let Some(value) = property(c.data_mut(), &property_key(&path)) else {
                return Ok(Status::NotFound.code());
            };
            h!(copy_out(&mut c, CALL, &value, ret_ptr, ret_size));
            Ok(0)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_property",
        |mut c: C<'_>, pp: i32, pl: i32, vp: i32, vl: i32| -> Ret {
            let path = h!(read(&mut c, "proxy_set_property", pp, pl));
            let value = h!(read(&mut c, "proxy_set_property", vp, vl));
            let key = property_key(&path);
            let s = c.data_mut();
            match s.stream() {
                Some(st) => {
                    st.properties.insert(key, value);
                }
                None => {
                    s.properties.insert(key, value);
                }
            }
            Ok(0)
        },
    )?;

    // ---- streams -----------------------------------------------------------------
    for (name, close) in [
        ("proxy_continue_stream", false),
        ("proxy_close_stream", true),
    ] {
        l.func_wrap("env", name, move |mut c: C<'_>, t: i32| -> Ret {
            let Some(t) = StreamType::from_code(t) else {
                return Ok(Status::BadArgument.code());
            };
            match c.data_mut().stream() {
                Some(st) => {
                    if close {
                        st.closed.push(t);
                    } else {
                        st.continued.push(t);
                        match t {
                            StreamType::HttpRequest => st.resume_request = true,
                            StreamType::HttpResponse => st.resume_response = true,
                            _ => {}
                        }
                    }
                    Ok(0)
                }
                None => Ok(Status::NotFound.code()),
            }
        })?;
    }
    // ABI 0.1.0's names for continuing one direction.
    for (name, t) in [
        ("proxy_continue_request", StreamType::HttpRequest),
        ("proxy_continue_response", StreamType::HttpResponse),
    ] {
        l.func_wrap("env", name, move |mut c: C<'_>| -> Ret {
            match c.data_mut().stream() {
                Some(st) => {
                    st.continued.push(t);
                    if t == StreamType::HttpRequest {
                        st.resume_request = true;
                    } else {
                        st.resume_response = true;
                    }
                    Ok(0)
                }
                None => Ok(Status::NotFound.code()),
            }
        })?;
    }
    l.func_wrap("env", "proxy_clear_route_cache", |mut c: C<'_>| -> Ret {
        match c.data_mut().stream() {
            Some(st) => {
                st.route_cache_cleared = st.route_cache_cleared.saturating_add(1);
                st.route_stale = true;
                Ok(0)
            }
            None => Ok(Status::NotFound.code()),
        }
    })?;
    // ABI 0.1.0: the plugin configuration, read in `proxy_on_configure`.
    l.func_wrap(
        "env",
        "proxy_get_configuration",
        |mut c: C<'_>, ret_ptr: i32, ret_size: i32| -> Ret {
            let bytes = c.data().plugin_configuration.clone();
            h!(copy_out(
                &mut c,
                "proxy_get_configuration",
                &bytes,
                ret_ptr,
                ret_size
            ));
            Ok(0)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: C<'_>,
         status: i32,
         dp: i32,
         dl: i32,
         bp: i32,
         bl: i32,
         hp: i32,
         hl: i32,
         grpc: i32|
         -> Ret {
            const CALL: &str = "proxy_send_local_response";
            let details = h!(read_str(&mut c, CALL, dp, dl));
            let body = h!(read(&mut c, CALL, bp, bl));
            let headers = h!(read(&mut c, CALL, hp, hl));
            let headers = match decode_headers(&headers) {
                Ok(h) => h,
                Err(s) => return Ok(s.code()),
            };
            match c.data_mut().stream() {
                // Envoy sends one local reply per stream; a second is refused.
                Some(st) if st.local_reply.is_some() => Ok(Status::BadArgument.code()),
                Some(st) => {
                    st.local_reply_pending = true;
                    st.local_reply = Some(LocalReply {
                        status: status as u32,
                        details,
                        body,
                        headers,
                        grpc_status: grpc as u32,
                    });
                    Ok(0)
                }
                None => Ok(Status::NotFound.code()),
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_status",
        |mut c: C<'_>, code_ptr: i32, msg_ptr: i32, msg_size: i32| -> Ret {
            const CALL: &str = "proxy_get_status";
            let (code, message) = match &c.data().callout.status {
                Some((code, message)) => (*code, message.clone()),
                None => (
                    c.data()
                        .http_call_response
                        .as_ref()
                        .and_then(|r| r.0.get(":status"))
                        .and_then(|s| s.parse::<u32>().ok())
                        .unwrap_or(0),
                    Vec::new(),
                ),
            };
            h!(write_u32(&mut c, CALL, code_ptr, code));
            h!(copy_out(&mut c, CALL, &message, msg_ptr, msg_size));
            Ok(0)
        },
    )?;

    // ---- HTTP and gRPC calls -----------------------------------------------------
    l.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: C<'_>,
         up: i32,
         ul: i32,
         hp: i32,
         hl: i32,
         bp: i32,
         bl: i32,
         tp: i32,
         tl: i32,
         timeout: i32,
         ret_token: i32|
         -> Ret {
            const CALL: &str = "proxy_http_call";
            let upstream = h!(read_str(&mut c, CALL, up, ul));
            let headers = h!(read(&mut c, CALL, hp, hl));
            let body = h!(read(&mut c, CALL, bp, bl));
            let trailers = h!(read(&mut c, CALL, tp, tl));
            let (headers, trailers) = match (decode_headers(&headers), decode_headers(&trailers)) {
                (Ok(h), Ok(t)) => (h, t),
                _ => return Ok(Status::BadArgument.code()),
            };
            if [":authority", ":method", ":path"]
                .iter()
                .any(|k| !headers.contains(k))
            {
                return Ok(Status::BadArgument.code());
            }
            let token = c.data().next_token;
            h!(write_u32(&mut c, CALL, ret_token, token));
            let s = c.data_mut();
            s.next_token = s.next_token.wrapping_add(1).max(1);
            let context_id = s.effective_context;
            s.http_calls.push(HttpCall {
                token,
                context_id,
                upstream,
                headers,
                body,
                trailers,
                timeout_ms: timeout as u32,
            });
            Ok(0)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_grpc_call",
        |mut c: C<'_>,
         sp: i32,
         sl: i32,
         np: i32,
         nl: i32,
         mp: i32,
         ml: i32,
         hp: i32,
         hl: i32,
         rp: i32,
         rl: i32,
         timeout: i32,
         ret_token: i32|
         -> Ret {
            const CALL: &str = "proxy_grpc_call";
            let service = h!(read(&mut c, CALL, sp, sl));
            let service_name = h!(read_str(&mut c, CALL, np, nl));
            let method = h!(read_str(&mut c, CALL, mp, ml));
            let metadata = h!(read(&mut c, CALL, hp, hl));
            let request = h!(read(&mut c, CALL, rp, rl));
            let Ok(initial_metadata) = decode_headers(&metadata) else {
                return Ok(Status::BadArgument.code());
            };
            let token = c.data().next_token;
            h!(write_u32(&mut c, CALL, ret_token, token));
            let s = c.data_mut();
            s.next_token = s.next_token.wrapping_add(1).max(1);
            let context_id = s.effective_context;
            s.grpc_calls.push(GrpcCall {
                token,
                context_id,
                service,
                service_name,
                method,
                initial_metadata,
                messages: vec![request],
                timeout_ms: timeout as u32,
                streaming: false,
                half_closed: true,
                finished: false,
            });
            Ok(0)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_grpc_stream",
        |mut c: C<'_>,
         sp: i32,
         sl: i32,
         np: i32,
         nl: i32,
         mp: i32,
         ml: i32,
         hp: i32,
         hl: i32,
         ret_token: i32|
         -> Ret {
            const CALL: &str = "proxy_grpc_stream";
            let service = h!(read(&mut c, CALL, sp, sl));
            let service_name = h!(read_str(&mut c, CALL, np, nl));
            let method = h!(read_str(&mut c, CALL, mp, ml));
            let metadata = h!(read(&mut c, CALL, hp, hl));
            let Ok(initial_metadata) = decode_headers(&metadata) else {
                return Ok(Status::BadArgument.code());
            };
            let token = c.data().next_token;
            h!(write_u32(&mut c, CALL, ret_token, token));
            let s = c.data_mut();
            s.next_token = s.next_token.wrapping_add(1).max(1);
            let context_id = s.effective_context;
            s.grpc_calls.push(GrpcCall {
                token,
                context_id,
                service,
                service_name,
                method,
                initial_metadata,
                messages: Vec::new(),
                timeout_ms: 0,
                streaming: true,
                half_closed: false,
                finished: false,
            });
            Ok(0)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_grpc_send",
        |mut c: C<'_>, token: i32, mp: i32, ml: i32, end: i32| -> Ret {
            let message = h!(read(&mut c, "proxy_grpc_send", mp, ml));
            let token = token as u32;
            match c
                .data_mut()
                .grpc_calls
                .iter_mut()
                .find(|g| g.token == token && g.streaming && !g.finished)
            {
                Some(g) if g.half_closed => Ok(Status::BadArgument.code()),
                Some(g) => {
                    g.messages.push(message);
                    g.half_closed = end != 0;
                    Ok(0)
                }
                None => Ok(Status::NotFound.code()),
            }
        },
    )?;
    for (name, cancel) in [("proxy_grpc_cancel", true), ("proxy_grpc_close", false)] {
        l.func_wrap("env", name, move |mut c: C<'_>, token: i32| -> Ret {
            let token = token as u32;
            match c
                .data_mut()
                .grpc_calls
                .iter_mut()
                .find(|g| g.token == token && !g.finished)
            {
                Some(g) => {
                    // Envoy: cancel drops the call (no more callbacks); close half-closes
                    // a stream (the remote may still answer).
                    if cancel || !g.streaming {
                        g.finished = true;
                    }
                    g.half_closed = true;
                    Ok(0)
                }
                None => Ok(Status::NotFound.code()),
            }
        })?;
    }

    // ---- shared data and queues --------------------------------------------------
    l.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: C<'_>, kp: i32, kl: i32, ret_ptr: i32, ret_size: i32, ret_cas: i32| -> Ret {
            const CALL: &str = "proxy_get_shared_data";
            let key = h!(read_str(&mut c, CALL, kp, kl));
            let Some((value, cas)) = c.data().shared_data.get(&key).cloned() else {
                return Ok(Status::NotFound.code());
            };
            h!(copy_out(&mut c, CALL, &value, ret_ptr, ret_size));
            h!(write_u32(&mut c, CALL, ret_cas, cas));
            Ok(0)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: C<'_>, kp: i32, kl: i32, vp: i32, vl: i32, cas: i32| -> Ret {
            const CALL: &str = "proxy_set_shared_data";
            let key = h!(read_str(&mut c, CALL, kp, kl));
            let value = h!(read(&mut c, CALL, vp, vl));
            let cas = cas as u32;
            let data = &mut c.data_mut().shared_data;
            let current = data.get(&key).map_or(0, |(_, c)| *c);
            if cas != 0 && cas != current {
                return Ok(Status::CasMismatch.code());
            }
            data.insert(key, (value, current.wrapping_add(1).max(1)));
            Ok(0)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_register_shared_queue",
        |mut c: C<'_>, np: i32, nl: i32, ret_id: i32| -> Ret {
            const CALL: &str = "proxy_register_shared_queue";
            let name = h!(read_str(&mut c, CALL, np, nl));
            let s = c.data_mut();
            let owner = s.root_context;
            let index = match s.queues.iter().position(|(n, _)| *n == name) {
                Some(i) => i,
                None => {
                    s.queues.push((name, Default::default()));
                    s.queue_owner.push(owner);
                    s.queues.len() - 1
                }
            };
            let id = u32::try_from(index + 1).unwrap_or(u32::MAX);
            h!(write_u32(&mut c, CALL, ret_id, id));
            Ok(0)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |mut c: C<'_>, vp: i32, vl: i32, np: i32, nl: i32, ret_id: i32| -> Ret {
            const CALL: &str = "proxy_resolve_shared_queue";
            let _vm = h!(read(&mut c, CALL, vp, vl));
            let name = h!(read_str(&mut c, CALL, np, nl));
            let Some(index) = c.data().queues.iter().position(|(n, _)| *n == name) else {
                return Ok(Status::NotFound.code());
            };
            let id = u32::try_from(index + 1).unwrap_or(u32::MAX);
            h!(write_u32(&mut c, CALL, ret_id, id));
            Ok(0)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        |mut c: C<'_>, id: i32, vp: i32, vl: i32| -> Ret {
            let value = h!(read(&mut c, "proxy_enqueue_shared_queue", vp, vl));
            let index = (id as u32 as usize).wrapping_sub(1);
            let s = c.data_mut();
            match s.queues.get_mut(index) {
                Some((_, q)) => {
                    q.push_back(value);
                    // The registering root context hears of it (after this callback).
                    if let Some(owner) = s.queue_owner.get(index).copied() {
                        s.queue_ready.push((owner, id as u32));
                    }
                    Ok(0)
                }
                None => Ok(Status::NotFound.code()),
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        |mut c: C<'_>, id: i32, ret_ptr: i32, ret_size: i32| -> Ret {
            let index = (id as u32 as usize).wrapping_sub(1);
            let value = match c.data_mut().queues.get_mut(index) {
                Some((_, q)) => match q.pop_front() {
                    Some(v) => v,
                    None => return Ok(Status::Empty.code()),
                },
                None => return Ok(Status::NotFound.code()),
            };
            h!(copy_out(
                &mut c,
                "proxy_dequeue_shared_queue",
                &value,
                ret_ptr,
                ret_size
            ));
            Ok(0)
        },
    )?;

    // ---- metrics -----------------------------------------------------------------
    l.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: C<'_>, kind: i32, np: i32, nl: i32, ret_id: i32| -> Ret {
            const CALL: &str = "proxy_define_metric";
            let Some(kind) = MetricKind::from_code(kind) else {
                return Ok(Status::BadArgument.code());
            };
            let name = h!(read_str(&mut c, CALL, np, nl));
            let id = c.data_mut().metrics.define(kind, &name);
            h!(write_u32(&mut c, CALL, ret_id, id));
            Ok(0)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_metric",
        |mut c: C<'_>, id: i32, ret: i32| -> Ret {
            let value = match c.data_mut().metrics.by_id(id as u32) {
                Some(m) if m.kind == MetricKind::Histogram => return Ok(Status::BadArgument.code()),
                Some(m) => m.value,
                None => return Ok(Status::NotFound.code()),
            };
            h!(write_u64(&mut c, "proxy_get_metric", ret, value));
            Ok(0)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_record_metric",
        |mut c: C<'_>, id: i32, value: i64| -> Ret {
            let Some(m) = c.data_mut().metrics.by_id(id as u32) else {
                return Ok(Status::NotFound.code());
            };
            let value = value as u64;
            match m.kind {
                MetricKind::Counter | MetricKind::Gauge => m.value = value,
                MetricKind::Histogram => {
                    m.samples.push(value);
                    m.value = m.samples.len() as u64;
                }
            }
            Ok(0)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_increment_metric",
        |mut c: C<'_>, id: i32, delta: i64| -> Ret {
            let Some(m) = c.data_mut().metrics.by_id(id as u32) else {
                return Ok(Status::NotFound.code());
            };
            match m.kind {
                MetricKind::Counter if delta < 0 => Ok(Status::BadArgument.code()),
                MetricKind::Counter => {
                    m.value = m.value.saturating_add(delta as u64);
                    Ok(0)
                }
                MetricKind::Gauge => {
                    m.value = if delta < 0 {
                        m.value.saturating_sub(delta.unsigned_abs())
                    } else {
                        m.value.saturating_add(delta as u64)
                    };
                    Ok(0)
                }
                MetricKind::Histogram => Ok(Status::BadArgument.code()),
            }
        },
    )?;

    // ---- foreign functions -------------------------------------------------------
    l.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |mut c: C<'_>, np: i32, nl: i32, ap: i32, al: i32, ret_ptr: i32, ret_size: i32| -> Ret {
            const CALL: &str = "proxy_call_foreign_function";
            let name = h!(read_str(&mut c, CALL, np, nl));
            let arguments = h!(read(&mut c, CALL, ap, al));
            let s = c.data_mut();
            let context_id = s.effective_context;
            s.foreign_calls.push(ForeignCall {
                context_id,
                name: name.clone(),
                arguments: arguments.clone(),
            });
            match name.as_str() {
                "set_envoy_filter_state" => {
                    let Some(args) = SetEnvoyFilterStateArguments::decode(&arguments) else {
                        return Ok(Status::BadArgument.code());
                    };
                    // Envoy: a key needs an object factory (else NOT_FOUND), and the
                    // factory must accept the value (addresses must parse).
                    if !s.filter_state_keys.contains(&args.path) {
                        return Ok(Status::NotFound.code());
                    }
                    let bad_address = match args.path.as_str() {
                        "envoy.network.ip" => args.value.parse::<std::net::IpAddr>().is_err(),
                        "envoy.network.transport_socket.original_dst_address" => {
                            args.value.parse::<std::net::SocketAddr>().is_err()
                        }
                        _ => false,
                    };
                    if bad_address {
                        return Ok(Status::BadArgument.code());
                    }
                    match s.stream() {
                        Some(st) => {
                            st.filter_state.insert(args.path, args.value);
                        }
                        None => return Ok(Status::NotFound.code()),
                    }
                }
                "clear_route_cache" => {
                    if let Some(st) = s.stream() {
                        st.route_cache_cleared = st.route_cache_cleared.saturating_add(1);
                        st.route_stale = true;
                    }
                }
                "declare_property" => {}
                _ => return Ok(Status::NotFound.code()),
            }
            // No results: (0, 0).
            h!(copy_out(&mut c, CALL, b"", ret_ptr, ret_size));
            Ok(0)
        },
    )?;

    // ---- WASI functions with a proxy meaning -------------------------------------
    l.func_wrap(
        "wasi_snapshot_preview1",
        "fd_write",
        |mut c: C<'_>, fd: i32, iovs: i32, iovs_len: i32, nwritten: i32| -> Ret {
            const CALL: &str = "fd_write";
            const FAULT: i32 = 21;
            const BADF: i32 = 8;
            let level = match fd {
                1 => LogLevel::Info,
                2 => LogLevel::Error,
                _ => return Ok(BADF),
            };
            let Some(table_len) = (iovs_len as u32).checked_mul(8) else {
                return Ok(FAULT);
            };
            let Ok(table) = read(&mut c, CALL, iovs, table_len as i32) else {
                return Ok(FAULT);
            };
            let mut text = Vec::new();
            for iov in table.chunks_exact(8) {
                let (Some(p), Some(n)) = (iov.get(0..4), iov.get(4..8)) else {
                    return Ok(FAULT);
                };
                let p = u32::from_le_bytes(p.try_into().unwrap_or_default());
                let n = u32::from_le_bytes(n.try_into().unwrap_or_default());
                let Ok(chunk) = read(&mut c, CALL, p as i32, n as i32) else {
                    return Ok(FAULT);
                };
                text.extend_from_slice(&chunk);
            }
            let written = u32::try_from(text.len()).unwrap_or(u32::MAX);
            if write_u32(&mut c, CALL, nwritten, written).is_err() {
                return Ok(FAULT);
            }
            let message = String::from_utf8_lossy(text.strip_suffix(b"\n").unwrap_or(&text));
            if !message.is_empty() {
                c.data_mut().log(level, message.into_owned());
            }
            Ok(0)
        },
    )?;
    l.func_wrap(
        "wasi_snapshot_preview1",
        "clock_time_get",
        |mut c: C<'_>, id: i32, _precision: i64, ret: i32| -> Ret {
            let now = match id {
                0 => c.data().now_nanos,
                1 => c.data().monotonic_nanos,
                2 | 3 => return Ok(58), // NOTSUP
                _ => return Ok(28),     // INVAL
            };
            if write_u64(&mut c, "clock_time_get", ret, now).is_err() {
                return Ok(21); // FAULT
            }
            Ok(0)
        },
    )?;
    Ok(())
}

#[derive(Clone, Copy)]
enum MapOp {
    Add,
    Replace,
}
