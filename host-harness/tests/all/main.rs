//! All integration tests of host-harness, in one binary.
//!
//! - `guest`: the harness against tiny WAT guests (ABI plumbing, refusing broken modules).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod guest;
