//! The harness against tiny hand-written guests (WAT), so that every host behaviour is
//! checked without the real plugin: the ABI plumbing, and refusing broken modules.

use std::time::Duration;

use host_harness::http::Verdict;
use host_harness::{Action, Error, Harness, Headers, LogLevel};

/// Imports, memory, ABI marker and a bump allocator shared by the test guests. Data
/// strings live below 1024; the allocator hands out memory from 4096 up.
const PRELUDE: &str = r#"
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value" (func $replace_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_remove_header_map_value" (func $remove_header (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_pairs" (func $get_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_define_metric" (func $define_metric (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $increment_metric (param i32 i64) (result i32)))
  (import "env" "proxy_record_metric" (func $record_metric (param i32 i64) (result i32)))
  (import "env" "proxy_get_metric" (func $get_metric (param i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $local_response (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $set_tick (param i32) (result i32)))
  (import "env" "proxy_call_foreign_function" (func $foreign (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
"#;

fn guest(body: &str) -> Harness {
    let text = format!("(module {PRELUDE} {body})");
    let wasm = wat::parse_str(&text).unwrap();
    Harness::from_binary(&wasm).unwrap()
}

const CONFIGURE_OK: &str = r#"
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
"#;

#[test]
fn refuses_a_module_that_passes_an_out_of_bounds_pointer() {
    // proxy_log with a message pointer far past the single 64 KiB page.
    let h = guest(&format!(
        r#"{CONFIGURE_OK}
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (drop (call $log (i32.const 2) (i32.const 0x7fff0000) (i32.const 100)))
          (i32.const 0))"#
    ));
    let mut plugin = h.configure(b"").unwrap();
    let err = plugin.http_request().send().unwrap_err();
    match &err {
        Error::InvalidMemoryAccess {
            hostcall,
            offset,
            len,
            memory_size,
        } => {
            assert_eq!(*hostcall, "proxy_log");
            assert_eq!(*offset, 0x7fff_0000);
            assert_eq!(*len, 100);
            assert_eq!(*memory_size, 65536);
        }
        other => panic!("expected InvalidMemoryAccess, got {other:?}"),
    }
    assert!(err.to_string().contains("out-of-bounds"), "{err}");
    // The instance is refused from then on.
    assert!(plugin.is_poisoned());
    assert!(matches!(
        plugin.http_request().send(),
        Err(Error::Poisoned(_))
    ));
}

#[test]
fn refuses_a_module_whose_return_pointer_is_out_of_bounds() {
    // get_header with a return-pointer slot outside memory: the host must not write there.
    let h = guest(&format!(
        r#"{CONFIGURE_OK}
        (data (i32.const 16) ":path")
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (drop (call $get_header (i32.const 0) (i32.const 16) (i32.const 5)
                                  (i32.const 65534) (i32.const 100)))
          (i32.const 0))"#
    ));
    let mut plugin = h.configure(b"").unwrap();
    match plugin.http_request().send() {
        Err(Error::InvalidMemoryAccess { hostcall, .. }) => {
            assert_eq!(hostcall, "proxy_get_header_map_value")
        }
        other => panic!("expected InvalidMemoryAccess, got {other:?}"),
    }
}

#[test]
fn a_wasm_level_out_of_bounds_load_is_a_trap_not_a_crash() {
    let h = guest(&format!(
        r#"{CONFIGURE_OK}
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (i32.load (i32.const 0x7ffffff0)))"#
    ));
    let mut plugin = h.configure(b"").unwrap();
    match plugin.http_request().send() {
        Err(Error::Trap { callback, message }) => {
            assert_eq!(callback, "proxy_on_request_headers");
            assert!(message.contains("out of bounds"), "{message}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn an_endless_callback_is_interrupted() {
    let h = guest(&format!(
        r#"{CONFIGURE_OK}
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (loop $forever (br $forever))
          (i32.const 0))"#
    ))
    .timeout(Duration::from_millis(200));
    let mut plugin = h.configure(b"").unwrap();
    let started = std::time::Instant::now();
    match plugin.http_request().send() {
        Err(Error::Trap { callback, message }) => {
            assert_eq!(callback, "proxy_on_request_headers");
            assert!(message.contains("interrupt"), "{message}");
        }
        other => panic!("expected an interrupt, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Regression: a module that ran into the memory limit trapped as "wasm 'unreachable'
/// instruction executed" with no word of memory (an allocator aborts when
/// `memory.grow` fails).
#[test]
fn a_trap_after_a_refused_memory_growth_says_so() {
    let h = guest(&format!(
        r#"{CONFIGURE_OK}
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (if (i32.eq (memory.grow (i32.const 64)) (i32.const -1)) (then unreachable))
          (i32.const 0))"#
    ))
    .memory_limit(2 << 20);
    let mut plugin = h.configure(b"").unwrap();
    match plugin.http_request().send() {
        Err(Error::Trap { message, .. }) => {
            assert!(message.contains("unreachable"), "{message}");
            assert!(
                message.contains("refused to grow linear memory")
                    && message.contains(&format!("the limit is {} bytes", 2 << 20)),
                "{message}"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn refuses_modules_that_are_not_proxy_wasm_plugins() {
    let not_wasm = Harness::from_binary(b"definitely not wasm");
    assert!(
        matches!(not_wasm, Err(Error::Compile(_))),
        "{:?}",
        not_wasm.err()
    );

    let bare = wat::parse_str("(module (memory (export \"memory\") 1))").unwrap();
    match Harness::from_binary(&bare) {
        Err(Error::Abi(msg)) => assert!(msg.contains("proxy_abi_version_0_2_1"), "{msg}"),
        other => panic!("expected an ABI error, got {:?}", other.err()),
    }

    let unknown_import = wat::parse_str(
        r#"(module
          (import "env" "proxy_teleport" (func (param i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "proxy_abi_version_0_2_1"))
          (func (export "malloc") (param i32) (result i32) (i32.const 0)))"#,
    )
    .unwrap();
    match Harness::from_binary(&unknown_import) {
        Err(Error::Abi(msg)) => assert!(msg.contains("proxy_teleport"), "{msg}"),
        other => panic!("expected an ABI error, got {:?}", other.err()),
    }

    let wrong_signature = wat::parse_str(format!(
        r#"(module {PRELUDE}
          (func (export "proxy_on_configure") (param i32) (result i32) (i32.const 1)))"#
    ))
    .unwrap();
    let h = Harness::from_binary(&wrong_signature).unwrap();
    match h.configure(b"") {
        Err(Error::Abi(msg)) => assert!(msg.contains("proxy_on_configure"), "{msg}"),
        other => panic!("expected an ABI error, got {:?}", other.err()),
    }
}

#[test]
fn a_false_on_configure_is_a_rejection_with_the_logs() {
    let h = guest(
        r#"
        (data (i32.const 16) "bad configuration")
        (func (export "proxy_on_configure") (param i32 i32) (result i32)
          (drop (call $log (i32.const 4) (i32.const 16) (i32.const 17)))
          (i32.const 0))"#,
    );
    match h.configure(b"whatever") {
        Err(Error::Rejected { callback, logs }) => {
            assert_eq!(callback, "proxy_on_configure");
            assert_eq!(logs.len(), 1);
            assert_eq!(logs[0].level, LogLevel::Error);
            assert_eq!(logs[0].message, "bad configuration");
            assert_eq!(logs[0].context_id, 1);
        }
        other => panic!("expected a rejection, got {:?}", other.err()),
    }
}

#[test]
fn the_plugin_configuration_buffer_reaches_the_guest() {
    // on_configure reads the whole configuration buffer and logs it.
    let h = guest(
        r#"
        (func (export "proxy_on_configure") (param $ctx i32) (param $size i32) (result i32)
          (drop (call $get_buffer (i32.const 7) (i32.const 0) (local.get $size)
                                  (i32.const 100) (i32.const 104)))
          (drop (call $log (i32.const 2) (i32.load (i32.const 100)) (i32.load (i32.const 104))))
          (i32.const 1))"#,
    );
    let plugin = h.configure(br#"{"version": 1}"#).unwrap();
    assert_eq!(plugin.logs()[0].message, r#"{"version": 1}"#);
    assert_eq!(plugin.logs()[0].level, LogLevel::Info);
}

#[test]
fn header_maps_get_add_replace_remove() {
    // Copies x-in to x-out (get + add), replaces :path, removes x-drop.
    let h = guest(&format!(
        r#"{CONFIGURE_OK}
        (data (i32.const 16) "x-in")
        (data (i32.const 32) "x-out")
        (data (i32.const 48) ":path")
        (data (i32.const 64) "/rewritten")
        (data (i32.const 80) "x-drop")
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (drop (call $get_header (i32.const 0) (i32.const 16) (i32.const 4)
                                  (i32.const 100) (i32.const 104)))
          (drop (call $add_header (i32.const 0) (i32.const 32) (i32.const 5)
                                  (i32.load (i32.const 100)) (i32.load (i32.const 104))))
          (drop (call $replace_header (i32.const 0) (i32.const 48) (i32.const 5)
                                      (i32.const 64) (i32.const 10)))
          (drop (call $remove_header (i32.const 0) (i32.const 80) (i32.const 6)))
          (i32.const 0))"#
    ));
    let mut plugin = h.configure(b"").unwrap();
    let out = plugin
        .http_request()
        .header("X-In", "hello")
        .header("x-drop", "1")
        .header("x-drop", "2")
        .send()
        .unwrap();
    assert_eq!(out.request_action, Action::Continue);
    assert_eq!(out.header("x-out"), Some("hello"));
    assert_eq!(out.header(":path"), Some("/rewritten"));
    assert!(!out.request_headers.contains("x-drop"));
    assert_eq!(out.request_headers.get_all(":path").len(), 1);
}

#[test]
fn header_pairs_use_the_abi_encoding() {
    // Fetches all pairs and logs the raw serialized bytes for the test to decode.
    let h = guest(&format!(
        r#"{CONFIGURE_OK}
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (drop (call $get_pairs (i32.const 0) (i32.const 100) (i32.const 104)))
          (drop (call $log (i32.const 1) (i32.load (i32.const 100)) (i32.load (i32.const 104))))
          (i32.const 0))"#
    ));
    let mut plugin = h.configure(b"").unwrap();
    let out = plugin.http_request().header("x-a", "1").send().unwrap();
    let raw = out.logs[0].message.as_bytes();
    let pairs = host_harness::abi::decode_pairs(raw).unwrap();
    let expected: Vec<(Vec<u8>, Vec<u8>)> = out
        .request_headers
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
        .collect();
    assert_eq!(pairs, expected);
    assert!(pairs.contains(&(b"x-a".to_vec(), b"1".to_vec())));
    // Envoy adds an x-request-id to a request that has none (after the client's headers).
    assert_eq!(pairs.last().unwrap().0, b"x-request-id".to_vec());
}

#[test]
fn properties_carry_addresses_with_ports() {
    // Copies source.address and destination.address into request headers.
    let h = guest(&format!(
        r#"{CONFIGURE_OK}
        (data (i32.const 16) "source\00address")
        (data (i32.const 32) "destination\00address")
        (data (i32.const 64) "x-src")
        (data (i32.const 80) "x-dst")
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (drop (call $get_property (i32.const 16) (i32.const 14) (i32.const 100) (i32.const 104)))
          (drop (call $add_header (i32.const 0) (i32.const 64) (i32.const 5)
                                  (i32.load (i32.const 100)) (i32.load (i32.const 104))))
          (drop (call $get_property (i32.const 32) (i32.const 19) (i32.const 100) (i32.const 104)))
          (drop (call $add_header (i32.const 0) (i32.const 80) (i32.const 5)
                                  (i32.load (i32.const 100)) (i32.load (i32.const 104))))
          (i32.const 0))"#
    ));
    let mut plugin = h.configure(b"").unwrap();
    let out = plugin
        .http_request()
        .source("[2001:db8::7]:443")
        .destination("13.107.6.152:443")
        .send()
        .unwrap();
    assert_eq!(out.header("x-src"), Some("[2001:db8::7]:443"));
    assert_eq!(out.header("x-dst"), Some("13.107.6.152:443"));
    assert_eq!(
        out.properties.get("source.port").unwrap(),
        &443i64.to_le_bytes().to_vec()
    );
}

#[test]
fn metrics_define_increment_record_get() {
    let h = guest(&format!(
        r#"{CONFIGURE_OK}
        (data (i32.const 16) "demo.requests")
        (data (i32.const 32) "demo.latency")
        (data (i32.const 48) "x-count")
        (global $counter (mut i32) (i32.const 0))
        (global $histogram (mut i32) (i32.const 0))
        (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
          (drop (call $define_metric (i32.const 0) (i32.const 16) (i32.const 13) (i32.const 100)))
          (global.set $counter (i32.load (i32.const 100)))
          (drop (call $define_metric (i32.const 2) (i32.const 32) (i32.const 12) (i32.const 100)))
          (global.set $histogram (i32.load (i32.const 100)))
          (i32.const 1))
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (drop (call $increment_metric (global.get $counter) (i64.const 2)))
          (drop (call $record_metric (global.get $histogram) (i64.const 42)))
          ;; A counter cannot go down: the host answers BAD_ARGUMENT (2), logged as level 2+status.
          (i32.store8 (i32.const 200)
            (i32.add (i32.const 48) (call $increment_metric (global.get $counter) (i64.const -1))))
          (drop (call $log (i32.const 2) (i32.const 200) (i32.const 1)))
          (i32.const 0))"#
    ));
    let mut plugin = h.configure(b"").unwrap();
    for _ in 0..3 {
        let out = plugin.http_request().send().unwrap();
        assert_eq!(
            out.logs[0].message, "2",
            "BAD_ARGUMENT for a negative counter delta"
        );
    }
    assert_eq!(plugin.metrics().counter("demo.requests"), Some(6));
    assert_eq!(
        plugin.metrics().histogram("demo.latency"),
        Some(&[42, 42, 42][..])
    );
    assert_eq!(plugin.metrics().len(), 2);
}

#[test]
fn local_reply_stops_the_request_and_runs_the_response_callbacks() {
    // Envoy runs a local reply through the encoder filters, the sender included: the
    // filter's on_response_headers sees `:status 403` (and marks the reply), and its
    // on_response_body sees the body. No request body callback runs afterwards, and the
    // upstream never answers.
    let h = guest(&format!(
        r#"{CONFIGURE_OK}
        (data (i32.const 16) "denied")
        (data (i32.const 32) "go away")
        (data (i32.const 48) ":status")
        (data (i32.const 64) "x-seen-status")
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (drop (call $local_response (i32.const 403) (i32.const 16) (i32.const 6)
                                      (i32.const 32) (i32.const 7) (i32.const 0) (i32.const 0)
                                      (i32.const -1)))
          (i32.const 1))
        (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
          (unreachable))
        (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
          (drop (call $get_header (i32.const 2) (i32.const 48) (i32.const 7)
                                  (i32.const 100) (i32.const 104)))
          (drop (call $add_header (i32.const 2) (i32.const 64) (i32.const 13)
                                  (i32.load (i32.const 100)) (i32.load (i32.const 104))))
          (i32.const 0))
        (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32)
          (drop (call $get_buffer (i32.const 1) (i32.const 0) (local.get 1)
                                  (i32.const 100) (i32.const 104)))
          (drop (call $log (i32.const 2) (i32.load (i32.const 100)) (i32.load (i32.const 104))))
          (i32.const 0))"#
    ));
    let mut plugin = h.configure(b"").unwrap();
    let out = plugin.http_request().body("ignored").send().unwrap();
    let reply = out.local_reply.clone().expect("a local reply");
    assert_eq!(reply.status, 403);
    assert_eq!(reply.details, "denied");
    assert_eq!(reply.body, b"go away");
    assert_eq!(out.request_action, Action::Pause);
    assert_eq!(out.response_header(":status"), Some("403"));
    assert_eq!(out.response_header("x-seen-status"), Some("403"));
    assert_eq!(out.response_header("content-length"), Some("7"));
    assert_eq!(out.response_body, b"go away");
    assert_eq!(out.logs.last().unwrap().message, "go away");
    assert!(!out.reached_upstream);
}

#[test]
fn ticks_follow_the_virtual_clock() {
    let h = guest(
        r#"
        (data (i32.const 16) "tick")
        (func (export "proxy_on_configure") (param i32 i32) (result i32)
          (drop (call $set_tick (i32.const 100)))
          (i32.const 1))
        (func (export "proxy_on_tick") (param i32)
          (drop (call $log (i32.const 1) (i32.const 16) (i32.const 4))))"#,
    );
    let mut plugin = h.configure(b"").unwrap();
    assert_eq!(plugin.tick_period(), Some(Duration::from_millis(100)));
    let before = plugin.now();
    assert_eq!(plugin.advance(Duration::from_millis(350)).unwrap(), 3);
    assert_eq!(
        plugin.logs().iter().filter(|l| l.message == "tick").count(),
        3
    );
    assert_eq!(
        plugin.now().duration_since(before).unwrap(),
        Duration::from_millis(350)
    );
}

#[test]
fn set_envoy_filter_state_is_recorded_for_the_connection() {
    // SetEnvoyFilterStateArguments{path: "envoy.tcp_proxy.cluster", value: "maps_sea", span: 2}
    let h = guest(&format!(
        r#"{CONFIGURE_OK}
        (data (i32.const 16) "set_envoy_filter_state")
        (data (i32.const 64) "\0a\17envoy.tcp_proxy.cluster\12\08maps_sea\18\02")
        (func (export "proxy_on_new_connection") (param i32) (result i32)
          (drop (call $foreign (i32.const 16) (i32.const 22) (i32.const 64) (i32.const 37)
                               (i32.const 200) (i32.const 204)))
          (i32.const 0))"#
    ));
    let mut plugin = h.configure(b"").unwrap();
    let out = plugin
        .tcp_connection("198.51.100.7:50000", "13.107.6.152:443")
        .unwrap();
    assert_eq!(
        out.filter_state("envoy.tcp_proxy.cluster"),
        Some("maps_sea")
    );
    assert_eq!(plugin.foreign_calls().len(), 1);
    assert_eq!(plugin.foreign_calls()[0].name, "set_envoy_filter_state");
}

#[test]
fn the_clock_moves_with_upstream_latency() {
    // Records (response time - request time) into a histogram.
    let h = guest(&format!(
        r#"{CONFIGURE_OK}
        (data (i32.const 16) "demo.upstream_ns")
        (global $hist (mut i32) (i32.const 0))
        (global $t0 (mut i64) (i64.const 0))
        (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
          (drop (call $define_metric (i32.const 2) (i32.const 16) (i32.const 16) (i32.const 100)))
          (global.set $hist (i32.load (i32.const 100)))
          (i32.const 1))
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (drop (call $now (i32.const 300)))
          (global.set $t0 (i64.load (i32.const 300)))
          (i32.const 0))
        (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
          (drop (call $now (i32.const 300)))
          (drop (call $record_metric (global.get $hist)
                      (i64.sub (i64.load (i32.const 300)) (global.get $t0))))
          (i32.const 0))"#
    ));
    let mut plugin = h.configure(b"").unwrap();
    let t0 = plugin.now();
    plugin
        .http_request()
        .upstream_latency(Duration::from_millis(25))
        .send()
        .unwrap();
    assert_eq!(
        plugin.metrics().histogram("demo.upstream_ns"),
        Some(&[25_000_000][..])
    );
    assert_eq!(
        plugin.now().duration_since(t0).unwrap(),
        Duration::from_millis(25)
    );
}

// ---- ABI versions -------------------------------------------------------------------

/// The test guest's prelude with another ABI marker and extra imports (imports must come
/// before the prelude's definitions).
fn guest_abi(marker: &str, imports: &str, body: &str) -> Harness {
    let prelude = PRELUDE
        .replace("proxy_abi_version_0_2_1", marker)
        .replace("(memory (export", &format!("{imports}\n  (memory (export"));
    let wasm = wat::parse_str(format!("(module {prelude} {body})")).unwrap();
    Harness::from_binary(&wasm).unwrap()
}

/// The same small filter for each ABI version, also loaded into Envoy by
/// `e2e/test_conformance.py` (written out by `abi_modules_for_envoy`): `proxy_on_configure`
/// accepts only a 3-byte plugin configuration (0.1.0 reads it with
/// `proxy_get_configuration`), the request headers callback answers with a local reply
/// `abi <version>` (0.2.x: plus ` eos=<end_of_stream>`).
fn abi_module(version: &str) -> String {
    let marker = format!("proxy_abi_version_{}", version.replace('.', "_"));
    // proxy_get_configuration exists for 0.1.0 modules only (Envoy refuses to load a
    // 0.2.x module that imports it).
    let imports = if version == "0.1.0" {
        r#"(import "env" "proxy_get_configuration" (func $get_configuration (param i32 i32) (result i32)))"#
    } else {
        r#"(import "env" "proxy_get_buffer_status" (func $buffer_status (param i32 i32 i32) (result i32)))"#
    };
    let prelude = PRELUDE
        .replace("proxy_abi_version_0_2_1", &marker)
        .replace("(memory (export", &format!("{imports}\n  (memory (export"));
    let configure = if version == "0.1.0" {
        r#"(drop (call $get_configuration (i32.const 100) (i32.const 104)))"#
    } else {
        r#"(drop (call $buffer_status (i32.const 7) (i32.const 104) (i32.const 108)))"#
    };
    let text = format!("abi {version} eos=?");
    let (params, len, eos) = if version == "0.1.0" {
        ("(param i32 i32)", 9, "")
    } else {
        (
            "(param i32 i32 i32)",
            text.len(),
            "(i32.store8 (i32.const 30) (i32.add (i32.const 48) (local.get 2)))",
        )
    };
    format!(
        r#"(module {prelude}
        (data (i32.const 0) "abi")
        (data (i32.const 16) "{text}")
        (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
        (func (export "proxy_on_configure") (param i32 i32) (result i32)
          {configure}
          (i32.eq (i32.load (i32.const 104)) (i32.const 3)))
        (func (export "proxy_on_request_headers") {params} (result i32)
          {eos}
          (drop (call $local_response (i32.const 200) (i32.const 0) (i32.const 3)
                                      (i32.const 16) (i32.const {len}) (i32.const 0) (i32.const 0)
                                      (i32.const -1)))
          (i32.const 1)))"#
    )
}

#[test]
fn each_abi_version_is_accepted_and_called_with_its_own_signatures() {
    use host_harness::plugin::AbiVersion;
    for (version, abi, body) in [
        ("0.1.0", AbiVersion::V0_1_0, "abi 0.1.0"),
        ("0.2.0", AbiVersion::V0_2_0, "abi 0.2.0 eos=1"),
        ("0.2.1", AbiVersion::V0_2_1, "abi 0.2.1 eos=1"),
    ] {
        let wasm = wat::parse_str(abi_module(version)).unwrap();
        let h = Harness::from_binary(&wasm).unwrap();
        assert_eq!(h.abi_version(), abi);
        // The configuration reaches on_configure (0.1.0: proxy_get_configuration).
        assert!(
            matches!(h.configure(b"toolong"), Err(Error::Rejected { .. })),
            "{version}"
        );
        let mut plugin = h.configure(b"cfg").unwrap();
        assert_eq!(plugin.abi_version(), abi);
        let out = plugin.http_request().send().unwrap();
        let reply = out.local_reply.expect("a local reply");
        assert_eq!(String::from_utf8_lossy(&reply.body), body, "{version}");
    }
}

/// Writes the `abi_module` filters to `$ABI_MODULES_DIR` (as `abi_<version>.wasm`) for the
/// Envoy run in `e2e/test_conformance.py`; does nothing without it.
#[test]
fn abi_modules_for_envoy() {
    let Some(dir) = std::env::var_os("ABI_MODULES_DIR") else {
        return;
    };
    std::fs::create_dir_all(&dir).unwrap();
    for version in ["0.1.0", "0.2.0", "0.2.1"] {
        let wasm = wat::parse_str(abi_module(version)).unwrap();
        let name = format!("abi_{}.wasm", version.replace('.', "_"));
        std::fs::write(std::path::Path::new(&dir).join(name), wasm).unwrap();
    }
}

#[test]
fn abi_0_1_0_header_callbacks_have_no_end_of_stream_and_continue_request_resumes() {
    // 0.1.0: proxy_on_request_headers(context, headers) and
    // proxy_on_response_headers(context, headers); a paused request resumes with
    // proxy_continue_request.
    let h = guest_abi(
        "proxy_abi_version_0_1_0",
        r#"(import "env" "proxy_continue_request" (func $continue_request (result i32)))"#,
        r#"
        (data (i32.const 16) "request_headers")
        (data (i32.const 32) "response_headers")
        (global $rq (mut i32) (i32.const 0))
        (global $rs (mut i32) (i32.const 0))
        (func (export "proxy_on_configure") (param i32 i32) (result i32)
          (drop (call $define_metric (i32.const 0) (i32.const 16) (i32.const 15) (i32.const 100)))
          (global.set $rq (i32.load (i32.const 100)))
          (drop (call $define_metric (i32.const 0) (i32.const 32) (i32.const 16) (i32.const 100)))
          (global.set $rs (i32.load (i32.const 100)))
          (i32.const 1))
        (func (export "proxy_on_request_headers") (param i32 i32) (result i32)
          (drop (call $increment_metric (global.get $rq) (i64.extend_i32_u (local.get 1))))
          (i32.const 1))
        (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
          (drop (call $continue_request))
          (i32.const 1))
        (func (export "proxy_on_response_headers") (param i32 i32) (result i32)
          (drop (call $increment_metric (global.get $rs) (i64.extend_i32_u (local.get 1))))
          (i32.const 0))"#,
    );
    let mut plugin = h.configure(b"").unwrap();
    let mut stream = plugin.http_stream().unwrap();
    let headers = Headers::from_pairs(&[(":method", "POST"), (":path", "/"), (":authority", "a")]);
    assert_eq!(
        stream.request_headers(headers, false).unwrap(),
        Verdict::Pause
    );
    assert!(!stream.request_forwarded());
    assert_eq!(stream.request_body(b"x", true).unwrap(), Verdict::Continue);
    assert!(stream.request_forwarded());
    stream
        .response_headers(Headers::from_pairs(&[(":status", "200")]), true)
        .unwrap();
    stream.finish().unwrap();
    // Four request headers: the three sent and Envoy's x-request-id.
    assert_eq!(plugin.metrics().counter("request_headers"), Some(4));
    assert_eq!(plugin.metrics().counter("response_headers"), Some(1));
}

#[test]
fn abi_0_2_0_header_callbacks_get_end_of_stream_and_continue_stream_resumes() {
    let h = guest_abi(
        "proxy_abi_version_0_2_0",
        r#"(import "env" "proxy_continue_stream" (func $continue_stream (param i32) (result i32)))"#,
        r#"
        (data (i32.const 16) "eos")
        (global $eos (mut i32) (i32.const 0))
        (func (export "proxy_on_configure") (param i32 i32) (result i32)
          (drop (call $define_metric (i32.const 0) (i32.const 16) (i32.const 3) (i32.const 100)))
          (global.set $eos (i32.load (i32.const 100)))
          (i32.const 1))
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (drop (call $increment_metric (global.get $eos) (i64.extend_i32_u (local.get 2))))
          (i32.eqz (local.get 2)))
        (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
          (drop (call $continue_stream (i32.const 0)))
          (i32.const 1))"#,
    );
    let mut plugin = h.configure(b"").unwrap();
    // With a body: end_of_stream 0, the filter pauses; the body resumes it.
    let mut stream = plugin.http_stream().unwrap();
    let headers = Headers::from_pairs(&[(":method", "POST"), (":path", "/"), (":authority", "a")]);
    assert_eq!(
        stream.request_headers(headers, false).unwrap(),
        Verdict::Pause
    );
    assert_eq!(stream.request_body(b"x", true).unwrap(), Verdict::Continue);
    stream.finish().unwrap();
    // Without: end_of_stream 1, the filter continues.
    let out = plugin.http_request().send().unwrap();
    assert_eq!(out.request_action, Action::Continue);
    assert_eq!(plugin.metrics().counter("eos"), Some(1));
}

#[test]
fn a_header_callback_with_another_versions_signature_is_refused() {
    // A 0.1.0 module with 0.2.x's three-argument request headers callback, and the reverse.
    for (marker, params) in [
        ("proxy_abi_version_0_1_0", "(param i32 i32 i32)"),
        ("proxy_abi_version_0_2_0", "(param i32 i32)"),
    ] {
        let h = guest_abi(
            marker,
            "",
            &format!(
                r#"{CONFIGURE_OK}
                (func (export "proxy_on_request_headers") {params} (result i32) (i32.const 0))"#
            ),
        );
        match h.configure(b"") {
            Err(Error::Abi(msg)) => assert!(msg.contains("proxy_on_request_headers"), "{msg}"),
            other => panic!("{marker}: expected an ABI error, got {:?}", other.err()),
        }
    }
}

/// Which ABI versions Envoy 1.40 provides each version-specific hostcall to (measured: a
/// module that imports one its version does not get fails to load in Envoy with "missing
/// import"). The other hostcalls are there for every version.
const VERSIONED_IMPORTS: &[(&str, &str, &[&str])] = &[
    (
        "proxy_get_configuration",
        "(param i32 i32) (result i32)",
        &["0_1_0"],
    ),
    ("proxy_continue_request", "(result i32)", &["0_1_0"]),
    ("proxy_continue_response", "(result i32)", &["0_1_0"]),
    ("proxy_clear_route_cache", "(result i32)", &["0_1_0"]),
    (
        "proxy_continue_stream",
        "(param i32) (result i32)",
        &["0_2_0", "0_2_1"],
    ),
    (
        "proxy_close_stream",
        "(param i32) (result i32)",
        &["0_2_0", "0_2_1"],
    ),
    (
        "proxy_get_log_level",
        "(param i32) (result i32)",
        &["0_2_1"],
    ),
    ("proxy_resume_http_request", "(result i32)", &[]),
    ("proxy_resume_http_response", "(result i32)", &[]),
    (
        "proxy_get_status",
        "(param i32 i32 i32) (result i32)",
        &["0_1_0", "0_2_0", "0_2_1"],
    ),
    (
        "proxy_call_foreign_function",
        "(param i32 i32 i32 i32 i32 i32) (result i32)",
        &["0_1_0", "0_2_0", "0_2_1"],
    ),
];

#[test]
fn each_abi_version_gets_the_hostcalls_envoy_gives_it() {
    for abi in ["0_1_0", "0_2_0", "0_2_1"] {
        for (name, sig, versions) in VERSIONED_IMPORTS {
            let text = format!(
                r#"(module
                  (import "env" "{name}" (func {sig}))
                  (memory (export "memory") 1)
                  (func (export "proxy_abi_version_{abi}"))
                  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 4096)))"#
            );
            let loaded = Harness::from_binary(&wat::parse_str(text).unwrap());
            if versions.contains(&abi) {
                assert!(loaded.is_ok(), "{abi} {name}: {:?}", loaded.err());
            } else {
                match loaded {
                    Err(Error::Abi(msg)) => assert!(msg.contains(name), "{abi} {name}: {msg}"),
                    other => panic!("{abi} {name}: expected an ABI error, got {:?}", other.err()),
                }
            }
        }
    }
}

// ---- gRPC streams, foreign functions --------------------------------------------------

const GRPC_IMPORTS: &str = r#"
  (import "env" "proxy_grpc_stream" (func $grpc_stream (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_grpc_send" (func $grpc_send (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_grpc_cancel" (func $grpc_cancel (param i32) (result i32)))
  (import "env" "proxy_grpc_close" (func $grpc_close (param i32) (result i32)))
  (import "env" "proxy_get_status" (func $get_status (param i32 i32 i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue_stream (param i32) (result i32)))"#;

/// Opens a gRPC stream (`cluster`, `svc.Echo`, `Chat`) at `$ret`, token in `$token`.
const GRPC_DATA: &str = r#"
  (data (i32.const 16) "cluster")
  (data (i32.const 32) "svc.Echo")
  (data (i32.const 48) "Chat")
  (data (i32.const 64) "ping")
  (data (i32.const 80) "x-md")
  (global $token (mut i32) (i32.const 0))"#;

#[test]
fn grpc_stream_messages_metadata_and_close_reach_the_stream_that_opened_it() {
    // The request waits for the gRPC stream: each callback logs what it can read (the
    // metadata value x-md, the message), the first message is answered with a last one
    // (end of stream), and the close status resumes the request.
    let h = guest_abi(
        "proxy_abi_version_0_2_1",
        GRPC_IMPORTS,
        &format!(
            r#"{CONFIGURE_OK} {GRPC_DATA}
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (drop (call $grpc_stream (i32.const 16) (i32.const 7) (i32.const 32) (i32.const 8)
                                   (i32.const 48) (i32.const 4) (i32.const 0) (i32.const 0)
                                   (i32.const 200)))
          (global.set $token (i32.load (i32.const 200)))
          (drop (call $grpc_send (global.get $token) (i32.const 64) (i32.const 4) (i32.const 0)))
          (i32.const 1))
        (func (export "proxy_on_grpc_receive_initial_metadata") (param i32 i32 i32)
          (drop (call $get_header (i32.const 4) (i32.const 80) (i32.const 4)
                                  (i32.const 100) (i32.const 104)))
          (drop (call $log (i32.const 2) (i32.load (i32.const 100)) (i32.load (i32.const 104)))))
        (func (export "proxy_on_grpc_receive") (param i32 i32 i32)
          (drop (call $get_buffer (i32.const 5) (i32.const 0) (local.get 2)
                                  (i32.const 100) (i32.const 104)))
          (drop (call $log (i32.const 2) (i32.load (i32.const 100)) (i32.load (i32.const 104))))
          (drop (call $grpc_send (local.get 1) (i32.const 64) (i32.const 4) (i32.const 1))))
        (func (export "proxy_on_grpc_receive_trailing_metadata") (param i32 i32 i32)
          (drop (call $get_header (i32.const 5) (i32.const 80) (i32.const 4)
                                  (i32.const 100) (i32.const 104)))
          (drop (call $log (i32.const 2) (i32.load (i32.const 100)) (i32.load (i32.const 104)))))
        (func (export "proxy_on_grpc_close") (param i32 i32 i32)
          (drop (call $get_status (i32.const 300) (i32.const 304) (i32.const 308)))
          (drop (call $log (i32.const 2) (i32.load (i32.const 304)) (i32.load (i32.const 308))))
          (drop (call $continue_stream (i32.const 0))))"#
        ),
    );
    let mut plugin = h.configure(b"").unwrap();
    let mut stream = plugin.http_stream().unwrap();
    let context = stream.context_id();
    let headers = Headers::from_pairs(&[(":method", "GET"), (":path", "/"), (":authority", "a")]);
    assert_eq!(
        stream.request_headers(headers, true).unwrap(),
        Verdict::Pause
    );
    let call = stream.plugin().grpc_calls()[0].clone();
    assert!(call.streaming);
    assert_eq!(call.context_id, context);
    assert_eq!(call.service, b"cluster");
    assert_eq!(call.service_name, "svc.Echo");
    assert_eq!(call.method, "Chat");
    assert_eq!(call.messages, vec![b"ping".to_vec()]);
    assert!(!call.half_closed);
    let token = call.token;

    let v = stream
        .deliver(|p| p.grpc_receive_initial_metadata(token, &[("x-md", "first")]))
        .unwrap();
    assert_eq!(v, Verdict::Pause);
    stream.deliver(|p| p.grpc_receive(token, b"pong")).unwrap();
    let call = stream.plugin().grpc_calls()[0].clone();
    assert_eq!(call.messages, vec![b"ping".to_vec(), b"ping".to_vec()]);
    assert!(call.half_closed, "the second send ended the stream");
    // The remote may still send after the plugin's end of stream.
    stream
        .deliver(|p| p.grpc_receive_trailing_metadata(token, &[("x-md", "last")]))
        .unwrap();
    let v = stream.deliver(|p| p.grpc_close(token, 0, "done")).unwrap();
    assert_eq!(v, Verdict::Continue, "the close resumed the request");
    assert!(stream.request_forwarded());
    // The stream is over: nothing more can be delivered on it.
    assert!(matches!(
        stream.plugin().grpc_receive(token, b"late"),
        Err(Error::Usage(_))
    ));
    let out = stream.finish().unwrap();
    let logs: Vec<&str> = out.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(logs, ["first", "pong", "last", "done"]);
    assert!(out.logs.iter().all(|l| l.context_id == context));
}

#[test]
fn grpc_close_half_closes_and_grpc_cancel_ends_a_stream() {
    // Two streams: the first half-closed by the plugin (proxy_grpc_close: the remote may
    // still answer), the second cancelled (proxy_grpc_cancel: no more callbacks).
    let h = guest_abi(
        "proxy_abi_version_0_2_1",
        GRPC_IMPORTS,
        &format!(
            r#"{CONFIGURE_OK} {GRPC_DATA}
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (drop (call $grpc_stream (i32.const 16) (i32.const 7) (i32.const 32) (i32.const 8)
                                   (i32.const 48) (i32.const 4) (i32.const 0) (i32.const 0)
                                   (i32.const 200)))
          (drop (call $grpc_close (i32.load (i32.const 200))))
          (drop (call $grpc_stream (i32.const 16) (i32.const 7) (i32.const 32) (i32.const 8)
                                   (i32.const 48) (i32.const 4) (i32.const 0) (i32.const 0)
                                   (i32.const 204)))
          (drop (call $grpc_cancel (i32.load (i32.const 204))))
          (i32.const 0))
        (func (export "proxy_on_grpc_receive") (param i32 i32 i32)
          (drop (call $get_buffer (i32.const 5) (i32.const 0) (local.get 2)
                                  (i32.const 100) (i32.const 104)))
          (drop (call $log (i32.const 2) (i32.load (i32.const 100)) (i32.load (i32.const 104)))))"#
        ),
    );
    let mut plugin = h.configure(b"").unwrap();
    let mut stream = plugin.http_stream().unwrap();
    let headers = Headers::from_pairs(&[(":method", "GET"), (":path", "/"), (":authority", "a")]);
    assert_eq!(
        stream.request_headers(headers, true).unwrap(),
        Verdict::Continue
    );
    let calls = stream.plugin().grpc_calls().to_vec();
    assert_eq!(calls.len(), 2);
    assert!(calls[0].half_closed && !calls[0].finished);
    assert!(calls[1].finished);
    stream
        .deliver(|p| p.grpc_receive(calls[0].token, b"after close"))
        .unwrap();
    assert!(matches!(
        stream
            .plugin()
            .grpc_receive(calls[1].token, b"after cancel"),
        Err(Error::Usage(_))
    ));
    let out = stream.finish().unwrap();
    assert_eq!(out.logs.last().unwrap().message, "after close");
}

#[test]
fn a_foreign_function_callback_reaches_the_root_context_with_its_arguments() {
    let h = guest(
        r#"
        (data (i32.const 16) "foreign_id")
        (global $id (mut i32) (i32.const 0))
        (func (export "proxy_on_configure") (param i32 i32) (result i32)
          (drop (call $define_metric (i32.const 0) (i32.const 16) (i32.const 10) (i32.const 100)))
          (global.set $id (i32.load (i32.const 100)))
          (i32.const 1))
        (func (export "proxy_on_foreign_function") (param i32 i32 i32)
          (drop (call $increment_metric (global.get $id) (i64.extend_i32_u (local.get 1))))
          (drop (call $get_buffer (i32.const 8) (i32.const 0) (local.get 2)
                                  (i32.const 100) (i32.const 104)))
          (drop (call $log (i32.const 2) (i32.load (i32.const 100)) (i32.load (i32.const 104)))))"#,
    );
    let mut plugin = h.configure(b"").unwrap();
    plugin.deliver_foreign_function(7, b"arguments").unwrap();
    assert_eq!(plugin.metrics().counter("foreign_id"), Some(7));
    let last = plugin.logs().last().unwrap().clone();
    assert_eq!(last.message, "arguments");
    assert_eq!(last.context_id, plugin.root_context_id());
}
