//! `mapsctl`: validate MAPS edge policies, classify traffic, explain decisions, and
//! run the proxy-wasm plugin in the wasmtime harness. The work is done by
//! `policy-core` and `host-harness`; this file only hands over to the library.

fn main() -> std::process::ExitCode {
    mapsctl::run()
}
