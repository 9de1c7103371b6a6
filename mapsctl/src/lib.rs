//! # mapsctl: the MAPS edge policy command line
//!
//! Every decision is `policy-core`'s; this crate is the command line around it and the
//! two pieces that sit between a policy and a proxy:
//!
//! | module | what |
//! |---|---|
//! | [`envoy_config`] | `mapsctl envoy-config`: the Envoy bootstrap and ECDS files for a policy |
//! | [`rollout`] | `mapsctl rollout`: one policy to a fleet of Envoys, canary first (the logic without I/O) |
//! | [`replay`] | `mapsctl classify --engine plugin`: trace lines through the built proxy-wasm plugin, run in `host-harness` |
//! | `cli` | argument parsing, exit codes, one module per subcommand |
//!
//! Feature `cli` (on by default) is the command line and [`replay`] (host-harness,
//! clap, ureq); without it the library is [`envoy_config`] and [`rollout`]'s logic only,
//! as the `envoy_config` fuzz target builds it (no wasmtime to instrument).
//!
//! Exit codes: 0 success (warnings alone included), 1 the policy has errors, 2 a file
//! could not be read or an argument is wrong.

pub mod envoy_config;
#[cfg(feature = "cli")]
pub mod replay;
pub mod rollout;

#[cfg(feature = "cli")]
mod cli;

#[cfg(feature = "cli")]
pub use cli::run;
