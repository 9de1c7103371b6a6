//! The harness's one error type.
//!
//! Every variant says what went wrong in terms of the plugin and what the caller should do.
//! Nothing in the harness panics on what a module does: a trap, a bad pointer or a refusal
//! all arrive here.

use std::fmt;
use std::path::PathBuf;

use crate::state::LogEntry;

/// What went wrong while loading or running a proxy-wasm module.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The `.wasm` file could not be read. Check the path (and that the module is built).
    Read {
        /// The path that was tried.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The bytes are not a WebAssembly module wasmtime can compile (or not valid WAT text).
    /// The file is damaged or is not WebAssembly at all.
    Compile(String),
    /// The module is WebAssembly but not a proxy-wasm ABI v0.2.x plugin this host can run:
    /// a marker, the memory, the allocator or an import is missing, or an exported callback
    /// has the wrong signature. The message names the culprit; rebuild the plugin against a
    /// proxy-wasm SDK for ABI v0.2.1.
    Abi(String),
    /// The module trapped (or ran past its time budget) in a callback. The instance is
    /// unusable afterwards (as in Envoy, whose VM is marked failed); create a new `Plugin`.
    Trap {
        /// The callback the host was running, e.g. `proxy_on_request_headers`.
        callback: &'static str,
        /// wasmtime's account of the trap, including the wasm backtrace when there is one.
        message: String,
    },
    /// The module handed a hostcall a pointer/length outside its linear memory (or its
    /// allocator returned such a block). The hostcall returned `INVALID_MEMORY_ACCESS` to
    /// the module, and the harness refuses the module from then on: it is broken.
    InvalidMemoryAccess {
        /// The hostcall that was given the bad range.
        hostcall: &'static str,
        /// Start of the range, in guest memory.
        offset: u64,
        /// Length of the range.
        len: u64,
        /// Size of the guest memory at the time, in bytes.
        memory_size: u64,
    },
    /// The plugin refused: `proxy_on_vm_start` or `proxy_on_configure` returned false. Its
    /// logs (which usually say why) are attached; fix the configuration.
    Rejected {
        /// `proxy_on_vm_start` or `proxy_on_configure`.
        callback: &'static str,
        /// Everything the plugin logged while loading, oldest first.
        logs: Vec<LogEntry>,
    },
    /// An earlier trap or memory fault left this instance unusable; the message is that
    /// earlier error. Create a new `Plugin`.
    Poisoned(String),
    /// The harness was asked for something that cannot be done, e.g. an address that does
    /// not parse; the message says which argument.
    Usage(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Read { path, source } => {
                write!(f, "cannot read wasm module {}: {source}", path.display())
            }
            Error::Compile(msg) => write!(f, "not a loadable WebAssembly module: {msg}"),
            Error::Abi(msg) => write!(
                f,
                "not a proxy-wasm plugin this host can run (ABI 0.1.0, 0.2.0, 0.2.1): {msg}"
            ),
            Error::Trap { callback, message } => {
                write!(f, "plugin trapped in {callback}: {message}")
            }
            Error::InvalidMemoryAccess {
                hostcall,
                offset,
                len,
                memory_size,
            } => write!(
                f,
                "plugin passed {hostcall} an out-of-bounds range: {len} bytes at offset {offset} \
                 (guest memory is {memory_size} bytes); module refused"
            ),
            Error::Rejected { callback, logs } => {
                write!(
                    f,
                    "plugin refused its configuration ({callback} returned false)"
                )?;
                for entry in logs {
                    write!(f, "\n  {entry}")?;
                }
                Ok(())
            }
            Error::Poisoned(msg) => {
                write!(f, "plugin instance unusable after earlier error: {msg}")
            }
            Error::Usage(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Renders a wasmtime error with its whole cause chain on one line.
pub(crate) fn describe(err: &wasmtime::Error) -> String {
    let mut out = String::new();
    for (i, cause) in err.chain().enumerate() {
        if i > 0 {
            out.push_str(": ");
        }
        out.push_str(&cause.to_string());
    }
    out
}
