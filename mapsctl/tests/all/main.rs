//! Integration tests of mapsctl, in one binary.
//!
//! - `cli`: the `mapsctl` binary (exit codes, formats, envoy-config);
//! - `engine_cli`: `mapsctl classify --engine plugin`;
//! - `plugin`: the real MAPS plugin (built by `make plugin`) in the harness;
//! - `property`: random policies and flows, plugin vs native core;
//! - `rollout`: `mapsctl rollout`'s refusals before it reaches an Envoy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod cli;
mod common;
mod compare;
mod engine_cli;
mod imports;
mod manifests;
mod plugin;
mod property;
mod rollout;
mod scenarios;
