//! `wasm-runner [--no-epoch] MODULE.wasm [ARGS...]`: runs a WASI preview 1 command in
//! wasmtime with the engine configuration of `host-harness` (Cranelift, default
//! optimisation, epoch interruption on, as the harness runs the plugin), passing ARGS
//! and the standard streams through. `--no-epoch` leaves the epoch checks out (to
//! measure what they cost). Exits with the module's exit code; the module's compile
//! time goes to standard error.

use std::process::ExitCode;
use std::time::Instant;

use wasmtime::{Config, Engine, Linker, Module, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};

fn run(path: &str, args: &[String], epoch: bool) -> wasmtime::Result<i32> {
    let mut config = Config::new();
    // As host-harness: every loop checks the epoch (the harness's timeouts).
    config.epoch_interruption(epoch);
    let engine = Engine::new(&config)?;
    let t0 = Instant::now();
    let module = Module::from_file(&engine, path)?;
    eprintln!(
        "wasm-runner: compiled {path} in {:.0} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s| s)?;
    let name = std::path::Path::new(path)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("module")
        .to_string();
    let wasi = WasiCtxBuilder::new()
        .args(
            &std::iter::once(name)
                .chain(args.iter().cloned())
                .collect::<Vec<_>>(),
        )
        .inherit_stdout()
        .inherit_stderr()
        .build_p1();
    let mut store = Store::new(&engine, wasi);
    if epoch {
        // No ticker thread: the deadline is never reached, but the checks are compiled in.
        store.set_epoch_deadline(u64::MAX / 2);
    }
    let instance = linker.instantiate(&mut store, &module)?;
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
    match start.call(&mut store, ()) {
        Ok(()) => Ok(0),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(exit.0),
            None => Err(e),
        },
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let epoch = match args.first().map(String::as_str) {
        Some("--no-epoch") => {
            args.remove(0);
            false
        }
        _ => true,
    };
    let Some((path, rest)) = args.split_first() else {
        eprintln!("usage: wasm-runner [--no-epoch] MODULE.wasm [ARGS...]");
        return ExitCode::from(2);
    };
    match run(path, rest, epoch) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("wasm-runner: {e:#}");
            ExitCode::from(1)
        }
    }
}
