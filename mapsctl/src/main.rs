//! `mapsctl`: validate MAPS edge policies, classify traffic, explain decisions, and
//! run the proxy-wasm plugin in the wasmtime harness. The work is done by
//! `policy-core` and `host_harness`; this file only hands over to the CLI module.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
