//! All integration tests of host-harness, in one binary.
//!
//! - `guest`: the harness against tiny WAT guests (ABI plumbing, refusing broken modules);
//! - `plugin`: the real MAPS plugin (built by `make plugin`) in the harness;
//! - `property`: random policies and flows, plugin vs native core.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod cli;
mod common;
mod engine_cli;
mod guest;
mod plugin;
mod property;
