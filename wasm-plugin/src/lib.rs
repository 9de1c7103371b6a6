//! MAPS edge policy as WebAssembly: thin adapters over `policy-core`.
//!
//! - feature `proxy`: the proxy-wasm plugin (target `wasm32-wasip1`) for Envoy and
//!   other proxy-wasm hosts;
//! - feature `web`: the wasm-bindgen module (target `wasm32-unknown-unknown`) for
//!   browsers and Node.

#[cfg(feature = "proxy")]
mod proxy;
#[cfg(feature = "web")]
mod web;
