//! Loading a module ([`Harness`]) and running one configured instance of it ([`Plugin`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime::{
    Config, Engine, ExternType, Instance, InstancePre, Linker, Module, Store, StoreLimitsBuilder,
    TypedFunc, WasmParams, WasmResults,
};
use wasmtime_wasi::WasiCtxBuilder;

use crate::abi::LogLevel;
use crate::error::{describe, Error};
use crate::hostcalls;
use crate::state::{
    CalloutData, ForeignCall, GrpcCall, Headers, HostState, HttpCall, LogEntry, Metrics, Routes,
    StreamKind, StreamState, ENVOY_FILTER_STATE_KEYS,
};

/// The proxy-wasm ABI version a module declares (its `proxy_abi_version_*` export).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AbiVersion {
    /// `proxy_abi_version_0_1_0`: the header callbacks have no end-of-stream argument;
    /// streams continue with `proxy_continue_request` / `proxy_continue_response`.
    V0_1_0,
    /// `proxy_abi_version_0_2_0`.
    V0_2_0,
    /// `proxy_abi_version_0_2_1`.
    V0_2_1,
}

impl AbiVersion {
    /// Whether Envoy (1.40, measured) links hostcall `name` for modules of this version:
    /// `proxy_get_configuration`, `proxy_continue_request`, `proxy_continue_response` and
    /// `proxy_clear_route_cache` only for 0.1.0; `proxy_continue_stream` and
    /// `proxy_close_stream` only for 0.2.x; `proxy_get_log_level` only for 0.2.1; every
    /// other hostcall for all three. (A module importing one its version does not get
    /// fails to load in Envoy, and is refused here.)
    pub fn provides(self, name: &str) -> bool {
        match name {
            "proxy_get_configuration"
            | "proxy_continue_request"
            | "proxy_continue_response"
            | "proxy_clear_route_cache" => self == AbiVersion::V0_1_0,
            "proxy_continue_stream" | "proxy_close_stream" => self != AbiVersion::V0_1_0,
            "proxy_get_log_level" => self == AbiVersion::V0_2_1,
            _ => true,
        }
    }
}

impl std::fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AbiVersion::V0_1_0 => "0.1.0",
            AbiVersion::V0_2_0 => "0.2.0",
            AbiVersion::V0_2_1 => "0.2.1",
        })
    }
}

/// How often the background thread advances wasmtime's epoch (the timeout granularity).
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// One engine for the process, with a thread that advances its epoch so that a callback
/// that runs too long is interrupted instead of hanging the host.
fn engine() -> Result<&'static Engine, Error> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.epoch_interruption(true);
            let engine = Engine::new(&config).map_err(|e| describe(&e))?;
            let weak = engine.weak();
            std::thread::Builder::new()
                .name("wasm-epoch".into())
                .spawn(move || loop {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(e) => e.increment_epoch(),
                        None => break,
                    }
                })
                .map_err(|e| format!("cannot start the epoch thread: {e}"))?;
            Ok(engine)
        })
        .as_ref()
        .map_err(|e| Error::Compile(e.clone()))
}

/// A compiled proxy-wasm module and the settings new instances get. Cheap to keep around;
/// [`Harness::configure`] makes as many [`Plugin`] instances as you like.
///
/// ```no_run
/// use host_harness::Harness;
/// let plugin = Harness::load("target/wasm32-wasip1/plugin/maps_plugin.wasm")?
///     .configure(std::fs::read("fixtures/demo/policy.json")?)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A file that is not there gives [`Error::Read`]:
///
/// ```
/// use host_harness::{Error, Harness};
/// assert!(matches!(Harness::load("no/such/plugin.wasm"), Err(Error::Read { .. })));
/// ```
#[derive(Clone)]
pub struct Harness {
    pre: InstancePre<HostState>,
    abi: AbiVersion,
    root_id: String,
    plugin_name: String,
    vm_id: String,
    vm_configuration: Vec<u8>,
    properties: BTreeMap<String, Vec<u8>>,
    log_level: LogLevel,
    timeout: Duration,
    memory_limit: usize,
    routes: Option<Routes>,
    filter_state_keys: Vec<String>,
    random_seed: Option<u64>,
}

impl Harness {
    /// Reads and compiles a `.wasm` file.
    pub fn load(path: impl AsRef<Path>) -> Result<Harness, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Harness::from_binary(&bytes)
    }

    /// Compiles a module from its binary form and checks that it is a proxy-wasm plugin
    /// this host can link: the ABI marker, an exported memory and allocator, and every
    /// import known.
    pub fn from_binary(bytes: &[u8]) -> Result<Harness, Error> {
        let engine = engine()?;
        let module = Module::new(engine, bytes).map_err(|e| Error::Compile(describe(&e)))?;
        let has = |name: &str| module.exports().any(|e| e.name() == name);
        let abi = if has("proxy_abi_version_0_2_1") {
            AbiVersion::V0_2_1
        } else if has("proxy_abi_version_0_2_0") {
            AbiVersion::V0_2_0
        } else if has("proxy_abi_version_0_1_0") {
            AbiVersion::V0_1_0
        } else {
            return Err(Error::Abi(
                "it exports no `proxy_abi_version_0_2_1` (or 0_2_0, 0_1_0) marker".into(),
            ));
        };
        if let Some(name) = module
            .imports()
            .filter(|i| i.module() == "env")
            .map(|i| i.name())
            .find(|name| !abi.provides(name))
        {
            return Err(Error::Abi(format!(
                "it imports `env.{name}`, which Envoy does not provide to ABI {abi} modules"
            )));
        }
        if !module
            .exports()
            .any(|e| e.name() == "memory" && matches!(e.ty(), ExternType::Memory(_)))
        {
            return Err(Error::Abi(
                "it exports no linear memory named `memory`".into(),
            ));
        }
        if !has("proxy_on_memory_allocate") && !has("malloc") {
            return Err(Error::Abi(
                "it exports neither `proxy_on_memory_allocate` nor `malloc`, so the host \
                 cannot hand it data"
                    .into(),
            ));
        }
        let mut linker: Linker<HostState> = Linker::new(engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut HostState| &mut s.wasi)
            .map_err(|e| Error::Abi(describe(&e)))?;
        linker.allow_shadowing(true);
        hostcalls::add_to_linker(&mut linker).map_err(|e| Error::Abi(describe(&e)))?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| Error::Abi(describe(&e)))?;
        Ok(Harness {
            pre,
            abi,
            root_id: String::new(),
            plugin_name: "maps".into(),
            vm_id: String::new(),
            vm_configuration: Vec::new(),
            properties: BTreeMap::new(),
            log_level: LogLevel::Trace,
            timeout: Duration::from_secs(10),
            memory_limit: 256 << 20,
            routes: None,
            filter_state_keys: ENVOY_FILTER_STATE_KEYS
                .iter()
                .map(|k| (*k).to_string())
                .collect(),
            random_seed: None,
        })
    }

    /// The ABI version the module declares.
    pub fn abi_version(&self) -> AbiVersion {
        self.abi
    }

    /// The plugin's root id (Envoy: `config.root_id`; property `plugin_root_id`).
    pub fn root_id(mut self, root_id: &str) -> Harness {
        self.root_id = root_id.to_string();
        self
    }

    /// The plugin's name (property `plugin_name`).
    pub fn plugin_name(mut self, name: &str) -> Harness {
        self.plugin_name = name.to_string();
        self
    }

    /// The VM id (property `plugin_vm_id`).
    pub fn vm_id(mut self, vm_id: &str) -> Harness {
        self.vm_id = vm_id.to_string();
        self
    }

    /// The VM configuration buffer handed to `proxy_on_vm_start`.
    pub fn vm_configuration(mut self, bytes: impl AsRef<[u8]>) -> Harness {
        self.vm_configuration = bytes.as_ref().to_vec();
        self
    }

    /// A property every context of new instances can read (`key` with `.` separators).
    pub fn property(mut self, key: &str, value: impl AsRef<[u8]>) -> Harness {
        self.properties
            .insert(key.to_string(), value.as_ref().to_vec());
        self
    }

    /// The level `proxy_get_log_level` reports (all logs are kept regardless).
    pub fn log_level(mut self, level: LogLevel) -> Harness {
        self.log_level = level;
        self
    }

    /// The longest a single callback may run before it is interrupted (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Harness {
        self.timeout = timeout;
        self
    }

    /// A route table, standing in for Envoy's route configuration: `routes(headers)` names
    /// the route a request with these headers takes. The route is chosen when the request
    /// headers arrive and again, from the current headers, when they go upstream after
    /// the plugin cleared the route cache or changed a request header (Envoy's Wasm filter
    /// clears the route cache on every request header change). The plugin reads it as
    /// `xds.route_name`; a test reads it with [`crate::HttpStream::route_name`] to decide
    /// what answers the request.
    pub fn routes(
        mut self,
        routes: impl Fn(&Headers) -> Option<String> + Send + Sync + 'static,
    ) -> Harness {
        self.routes = Some(std::sync::Arc::new(routes));
        self
    }

    /// Accepts one more filter state key in `set_envoy_filter_state` (the default list is
    /// [`crate::state::ENVOY_FILTER_STATE_KEYS`], Envoy 1.40's keys with an object
    /// factory; Envoy refuses any other key with `NOT_FOUND`, as the harness does).
    pub fn filter_state_key(mut self, key: &str) -> Harness {
        self.filter_state_keys.push(key.to_string());
        self
    }

    /// Makes the guest's WASI randomness (`random_get`: the seeds of a Rust guest's
    /// hash maps, for one) a fixed sequence from `seed`, so that two runs execute the
    /// same instructions (instruction-count benchmarks). By default it is random, as
    /// in Envoy.
    pub fn random_seed(mut self, seed: u64) -> Harness {
        self.random_seed = Some(seed);
        self
    }

    /// The most linear memory an instance may grow to (default 256 MiB).
    pub fn memory_limit(mut self, bytes: usize) -> Harness {
        self.memory_limit = bytes;
        self
    }

    /// Starts a new instance and configures it: runs `_initialize` (and `main`) or
    /// `_start`, creates the root context, then `proxy_on_vm_start` and
    /// `proxy_on_configure` with `configuration` as the plugin configuration.
    /// A `false` from either gives [`Error::Rejected`] with the plugin's logs.
    pub fn configure(&self, configuration: impl AsRef<[u8]>) -> Result<Plugin, Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let limits = crate::state::Limits {
            inner: StoreLimitsBuilder::new()
                .memory_size(self.memory_limit)
                .instances(1)
                .build(),
            refused_memory: None,
            memory_limit: self.memory_limit,
        };
        let mut wasi = WasiCtxBuilder::new();
        if let Some(seed) = self.random_seed {
            use rand::SeedableRng as _;
            wasi.secure_random(rand::rngs::StdRng::seed_from_u64(seed))
                .insecure_random(rand::rngs::StdRng::seed_from_u64(seed ^ 1))
                .insecure_random_seed(u128::from(seed));
        }
        let mut state = HostState::new(wasi.build_p1(), limits, now);
        state.properties = self.properties.clone();
        for (key, value) in [
            ("plugin_root_id", &self.root_id),
            ("plugin_name", &self.plugin_name),
            ("plugin_vm_id", &self.vm_id),
        ] {
            state
                .properties
                .entry(key.to_string())
                .or_insert_with(|| value.as_bytes().to_vec());
        }
        state.vm_configuration = self.vm_configuration.clone();
        state.routes = self.routes.clone();
        state.filter_state_keys = self.filter_state_keys.iter().cloned().collect();
        state.log_level = self.log_level;
        let deadline = (self.timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;

        let mut store = Store::new(self.pre.module().engine(), state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(deadline);
        let instance = self.pre.instantiate(&mut store).map_err(|e| Error::Trap {
            callback: "instantiation",
            message: describe(&e),
        })?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| Error::Abi("no memory export".into()))?;
        let alloc = match instance.get_func(&mut store, "proxy_on_memory_allocate") {
            Some(f) => f.typed::<i32, i32>(&store),
            None => instance.get_typed_func::<i32, i32>(&mut store, "malloc"),
        }
        .map_err(|e| {
            Error::Abi(format!(
                "allocator has the wrong signature: {}",
                describe(&e)
            ))
        })?;
        store.data_mut().memory = Some(memory);
        store.data_mut().alloc = Some(alloc);
        let callbacks = Callbacks::resolve(&instance, &mut store, self.abi)?;

        let mut plugin = Plugin {
            store,
            abi: self.abi,
            draining: false,
            cb: callbacks,
            root_context: 1,
            next_context: 2,
            poisoned: None,
            deadline,
        };
        plugin.store.data_mut().root_context = plugin.root_context;
        plugin.start()?;
        let root = plugin.root_context;
        plugin.call::<(i32, i32), ()>(
            "proxy_on_context_create",
            Cb::ContextCreate,
            root,
            (root as i32, 0),
        )?;
        let vm_size = plugin.store.data().vm_configuration.len() as i32;
        let started = plugin.call::<(i32, i32), i32>(
            "proxy_on_vm_start",
            Cb::VmStart,
            root,
            (root as i32, vm_size),
        )?;
        if started == Some(0) {
            return Err(Error::Rejected {
                callback: "proxy_on_vm_start",
                logs: plugin.store.data().logs.clone(),
            });
        }
        if !plugin.configure_root(configuration.as_ref())? {
            return Err(Error::Rejected {
                callback: "proxy_on_configure",
                logs: plugin.store.data().logs.clone(),
            });
        }
        Ok(plugin)
    }
}

/// The callbacks a module may export, resolved once per instance. A callback a module
/// does not export is skipped, as the ABI says.
pub(crate) struct Callbacks {
    initialize: Option<TypedFunc<(), ()>>,
    main: Option<TypedFunc<(i32, i32), i32>>,
    start: Option<TypedFunc<(), ()>>,
    context_create: Option<TypedFunc<(i32, i32), ()>>,
    vm_start: Option<TypedFunc<(i32, i32), i32>>,
    configure: Option<TypedFunc<(i32, i32), i32>>,
    tick: Option<TypedFunc<i32, ()>>,
    done: Option<TypedFunc<i32, i32>>,
    log: Option<TypedFunc<i32, ()>>,
    delete: Option<TypedFunc<i32, ()>>,
    request_headers: Option<TypedFunc<(i32, i32, i32), i32>>,
    request_headers_01: Option<TypedFunc<(i32, i32), i32>>,
    response_headers_01: Option<TypedFunc<(i32, i32), i32>>,
    request_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    request_trailers: Option<TypedFunc<(i32, i32), i32>>,
    response_headers: Option<TypedFunc<(i32, i32, i32), i32>>,
    response_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    response_trailers: Option<TypedFunc<(i32, i32), i32>>,
    new_connection: Option<TypedFunc<i32, i32>>,
    downstream_data: Option<TypedFunc<(i32, i32, i32), i32>>,
    upstream_data: Option<TypedFunc<(i32, i32, i32), i32>>,
    downstream_close: Option<TypedFunc<(i32, i32), ()>>,
    upstream_close: Option<TypedFunc<(i32, i32), ()>>,
    http_call_response: Option<TypedFunc<I32x5, ()>>,
    foreign_function: Option<TypedFunc<(i32, i32, i32), ()>>,
    queue_ready: Option<TypedFunc<(i32, i32), ()>>,
    grpc_receive_initial_metadata: Option<TypedFunc<(i32, i32, i32), ()>>,
    grpc_receive: Option<TypedFunc<(i32, i32, i32), ()>>,
    grpc_receive_trailing_metadata: Option<TypedFunc<(i32, i32, i32), ()>>,
    grpc_close: Option<TypedFunc<(i32, i32, i32), ()>>,
}

fn typed<P: WasmParams, R: WasmResults>(
    instance: &Instance,
    store: &mut Store<HostState>,
    name: &str,
) -> Result<Option<TypedFunc<P, R>>, Error> {
    match instance.get_func(&mut *store, name) {
        None => Ok(None),
        Some(f) => f.typed::<P, R>(&*store).map(Some).map_err(|e| {
            Error::Abi(format!(
                "export `{name}` has the wrong signature for its ABI version: {}",
                describe(&e)
            ))
        }),
    }
}

impl Callbacks {
    fn resolve(
        i: &Instance,
        s: &mut Store<HostState>,
        abi: AbiVersion,
    ) -> Result<Callbacks, Error> {
        let v01 = abi == AbiVersion::V0_1_0;
        Ok(Callbacks {
            initialize: typed(i, s, "_initialize")?,
            main: typed(i, s, "main")?,
            start: typed(i, s, "_start")?,
            context_create: typed(i, s, "proxy_on_context_create")?,
            vm_start: typed(i, s, "proxy_on_vm_start")?,
            configure: typed(i, s, "proxy_on_configure")?,
            tick: typed(i, s, "proxy_on_tick")?,
            done: typed(i, s, "proxy_on_done")?,
            log: typed(i, s, "proxy_on_log")?,
            delete: typed(i, s, "proxy_on_delete")?,
            request_headers: if v01 {
                None
            } else {
                typed(i, s, "proxy_on_request_headers")?
            },
            request_headers_01: if v01 {
                typed(i, s, "proxy_on_request_headers")?
            } else {
                None
            },
            response_headers_01: if v01 {
                typed(i, s, "proxy_on_response_headers")?
            } else {
                None
            },
            request_body: typed(i, s, "proxy_on_request_body")?,
            request_trailers: typed(i, s, "proxy_on_request_trailers")?,
            response_headers: if v01 {
                None
            } else {
                typed(i, s, "proxy_on_response_headers")?
            },
            response_body: typed(i, s, "proxy_on_response_body")?,
            response_trailers: typed(i, s, "proxy_on_response_trailers")?,
            new_connection: typed(i, s, "proxy_on_new_connection")?,
            downstream_data: typed(i, s, "proxy_on_downstream_data")?,
            upstream_data: typed(i, s, "proxy_on_upstream_data")?,
            downstream_close: typed(i, s, "proxy_on_downstream_connection_close")?,
            upstream_close: typed(i, s, "proxy_on_upstream_connection_close")?,
            http_call_response: typed(i, s, "proxy_on_http_call_response")?,
            foreign_function: typed(i, s, "proxy_on_foreign_function")?,
            queue_ready: typed(i, s, "proxy_on_queue_ready")?,
            grpc_receive_initial_metadata: typed(i, s, "proxy_on_grpc_receive_initial_metadata")?,
            grpc_receive: typed(i, s, "proxy_on_grpc_receive")?,
            grpc_receive_trailing_metadata: typed(i, s, "proxy_on_grpc_receive_trailing_metadata")?,
            grpc_close: typed(i, s, "proxy_on_grpc_close")?,
        })
    }
}

/// `proxy_on_http_call_response`'s parameters.
type I32x5 = (i32, i32, i32, i32, i32);

/// Selects a callback from [`Callbacks`] (a tiny enum keeps `Plugin::call` generic without
/// borrowing the callbacks and the store at once).
#[derive(Clone, Copy)]
pub(crate) enum Cb {
    Initialize,
    Main,
    Start,
    ContextCreate,
    VmStart,
    Configure,
    Tick,
    Done,
    Log,
    Delete,
    RequestHeaders,
    RequestBody,
    RequestTrailers,
    ResponseHeaders,
    ResponseBody,
    NewConnection,
    DownstreamData,
    UpstreamData,
    DownstreamClose,
    UpstreamClose,
    HttpCallResponse,
    RequestHeaders01,
    ResponseHeaders01,
    ResponseTrailers,
    ForeignFunction,
    QueueReady,
    GrpcReceiveInitialMetadata,
    GrpcReceive,
    GrpcReceiveTrailingMetadata,
    GrpcClose,
}

/// Typed access to one callback slot.
pub(crate) trait Slot<P, R> {
    fn slot(cb: &Callbacks, which: Cb) -> Option<TypedFunc<P, R>>;
}

macro_rules! slots {
    ($p:ty, $r:ty => $($variant:ident : $field:ident),+) => {
        impl Slot<$p, $r> for Callbacks {
            fn slot(cb: &Callbacks, which: Cb) -> Option<TypedFunc<$p, $r>> {
                match which {
                    $(Cb::$variant => cb.$field.clone(),)+
                    _ => None,
                }
            }
        }
    };
}
slots!((), () => Initialize: initialize, Start: start);
slots!((i32, i32), i32 => Main: main, VmStart: vm_start, Configure: configure,
    RequestTrailers: request_trailers, ResponseTrailers: response_trailers,
    RequestHeaders01: request_headers_01, ResponseHeaders01: response_headers_01);
slots!((i32, i32), () => ContextCreate: context_create, DownstreamClose: downstream_close,
    UpstreamClose: upstream_close, QueueReady: queue_ready);
slots!((i32, i32, i32), () => ForeignFunction: foreign_function,
    GrpcReceiveInitialMetadata: grpc_receive_initial_metadata, GrpcReceive: grpc_receive,
    GrpcReceiveTrailingMetadata: grpc_receive_trailing_metadata, GrpcClose: grpc_close);
slots!(i32, () => Tick: tick, Log: log, Delete: delete);
slots!(i32, i32 => Done: done, NewConnection: new_connection);
slots!((i32, i32, i32), i32 => RequestHeaders: request_headers, RequestBody: request_body,
    ResponseHeaders: response_headers, ResponseBody: response_body,
    DownstreamData: downstream_data, UpstreamData: upstream_data);
slots!(I32x5, () => HttpCallResponse: http_call_response);

/// One running, configured instance of a plugin: its root context and everything it
/// logged, counted and sent. Requests and connections are sent one at a time.
pub struct Plugin {
    pub(crate) store: Store<HostState>,
    pub(crate) abi: AbiVersion,
    /// Delivering queued `proxy_on_queue_ready` notifications (not re-entered).
    draining: bool,
    cb: Callbacks,
    root_context: u32,
    next_context: u32,
    poisoned: Option<String>,
    deadline: u64,
}

impl Plugin {
    /// Calls one exported callback with `context` active. `Ok(None)` when the module does
    /// not export it. A trap or a recorded memory fault becomes an error and poisons the
    /// instance.
    pub(crate) fn call<P, R>(
        &mut self,
        name: &'static str,
        which: Cb,
        context: u32,
        params: P,
    ) -> Result<Option<R>, Error>
    where
        P: WasmParams,
        R: WasmResults,
        Callbacks: Slot<P, R>,
    {
        if let Some(msg) = &self.poisoned {
            return Err(Error::Poisoned(msg.clone()));
        }
        let Some(func) = <Callbacks as Slot<P, R>>::slot(&self.cb, which) else {
            return Ok(None);
        };
        {
            let s = self.store.data_mut();
            s.active_context = context;
            s.effective_context = context;
        }
        self.store.set_epoch_deadline(self.deadline);
        let result = func.call(&mut self.store, params);
        let fault = self.store.data_mut().fault.take();
        let outcome = match (result, fault) {
            (Err(e), _) => {
                if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                    Err(Error::Trap {
                        callback: name,
                        message: format!("the module called proc_exit({})", exit.0),
                    })
                } else {
                    let mut message = describe(&e);
                    if let Some((asked, limit)) = self.store.data_mut().limits.refused_memory.take()
                    {
                        message.push_str(&format!(
                            " (after the host refused to grow linear memory to {asked} bytes: \
                             the limit is {limit} bytes, see Harness::memory_limit)"
                        ));
                    }
                    Err(Error::Trap {
                        callback: name,
                        message,
                    })
                }
            }
            (Ok(_), Some(f)) => Err(Error::InvalidMemoryAccess {
                hostcall: f.hostcall,
                offset: f.offset,
                len: f.len,
                memory_size: f.memory_size,
            }),
            (Ok(r), None) => Ok(Some(r)),
        };
        if let Err(e) = &outcome {
            self.poisoned = Some(e.to_string());
        }
        let outcome = outcome?;
        self.deliver_queue_ready()?;
        Ok(outcome)
    }

    /// Delivers `proxy_on_queue_ready` for every enqueue since the last callback (Envoy
    /// posts it to the registering root context's dispatcher: it runs after the callback
    /// that enqueued, never inside it).
    fn deliver_queue_ready(&mut self) -> Result<(), Error> {
        if self.draining {
            return Ok(());
        }
        self.draining = true;
        let mut delivered = 0u32;
        let result = loop {
            let next = {
                let q = &mut self.store.data_mut().queue_ready;
                (!q.is_empty()).then(|| q.remove(0))
            };
            let Some((owner, queue)) = next else {
                break Ok(());
            };
            delivered += 1;
            if delivered > 10_000 {
                break Err(Error::Usage(
                    "more than 10 000 queue notifications in a row (a queue_ready loop?)".into(),
                ));
            }
            if let Err(e) = self.call::<(i32, i32), ()>(
                "proxy_on_queue_ready",
                Cb::QueueReady,
                owner,
                (owner as i32, queue as i32),
            ) {
                break Err(e);
            }
        };
        self.draining = false;
        result
    }

    fn start(&mut self) -> Result<(), Error> {
        if self.cb.initialize.is_some() {
            self.call::<(), ()>("_initialize", Cb::Initialize, 0, ())?;
            self.call::<(i32, i32), i32>("main", Cb::Main, 0, (0, 0))?;
        } else if self.cb.start.is_some() {
            match self.call::<(), ()>("_start", Cb::Start, 0, ()) {
                // A WASI command that ends with proc_exit(0) started fine.
                Err(Error::Trap { message, .. }) if message == "the module called proc_exit(0)" => {
                    self.poisoned = None;
                }
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }

    fn configure_root(&mut self, configuration: &[u8]) -> Result<bool, Error> {
        self.store.data_mut().plugin_configuration = configuration.to_vec();
        let root = self.root_context;
        let size = i32::try_from(configuration.len())
            .map_err(|_| Error::Usage("configuration larger than 2 GiB".into()))?;
        let ok = self.call::<(i32, i32), i32>(
            "proxy_on_configure",
            Cb::Configure,
            root,
            (root as i32, size),
        )?;
        Ok(ok != Some(0))
    }

    /// Hands the root context a new plugin configuration (`proxy_on_configure` again, as
    /// a host does on a configuration update). Returns what the plugin answered: `false`
    /// means it refused the new configuration (see [`Plugin::logs`] for why).
    pub fn reconfigure(&mut self, configuration: impl AsRef<[u8]>) -> Result<bool, Error> {
        self.configure_root(configuration.as_ref())
    }

    /// Calls `proxy_on_tick` on the root context once.
    pub fn tick(&mut self) -> Result<(), Error> {
        let root = self.root_context;
        self.call::<i32, ()>("proxy_on_tick", Cb::Tick, root, root as i32)?;
        Ok(())
    }

    /// The tick period the plugin asked for, if any.
    pub fn tick_period(&self) -> Option<Duration> {
        let ms = self.store.data().tick_period_ms;
        (ms > 0).then(|| Duration::from_millis(u64::from(ms)))
    }

    /// Moves the virtual clock forward by `by`, calling `proxy_on_tick` once per elapsed
    /// tick period (at most 10 000 times). Returns the number of ticks delivered.
    pub fn advance(&mut self, by: Duration) -> Result<u32, Error> {
        let mut left = by;
        let mut ticks = 0u32;
        while let Some(period) = self.tick_period() {
            if left < period || ticks >= 10_000 {
                break;
            }
            left -= period;
            self.advance_clock(period);
            self.tick()?;
            ticks += 1;
        }
        self.advance_clock(left);
        Ok(ticks)
    }

    pub(crate) fn advance_clock(&mut self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let s = self.store.data_mut();
        s.now_nanos = s.now_nanos.saturating_add(nanos);
        s.monotonic_nanos = s.monotonic_nanos.saturating_add(nanos);
    }

    /// The virtual wall clock (it starts at the real time of `configure` and moves only
    /// with [`Plugin::advance`], [`Plugin::set_time`] and request latencies).
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.store.data().now_nanos)
    }

    /// Sets the virtual wall clock.
    pub fn set_time(&mut self, time: SystemTime) {
        self.store.data_mut().now_nanos = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Every log line so far, oldest first.
    pub fn logs(&self) -> &[LogEntry] {
        &self.store.data().logs
    }

    /// Takes (and clears) the log lines so far.
    pub fn take_logs(&mut self) -> Vec<LogEntry> {
        std::mem::take(&mut self.store.data_mut().logs)
    }

    /// The metrics the plugin defined, with their values.
    pub fn metrics(&self) -> &Metrics {
        &self.store.data().metrics
    }

    /// HTTP calls the plugin dispatched (`proxy_http_call`), oldest first.
    pub fn http_calls(&self) -> &[HttpCall] {
        &self.store.data().http_calls
    }

    /// Foreign function calls the plugin made, oldest first.
    pub fn foreign_calls(&self) -> &[ForeignCall] {
        &self.store.data().foreign_calls
    }

    /// Shared data (`proxy_set_shared_data`) under `key`.
    pub fn shared_data(&self, key: &str) -> Option<&[u8]> {
        self.store
            .data()
            .shared_data
            .get(key)
            .map(|(v, _)| v.as_slice())
    }

    /// The size of the guest's linear memory, in bytes.
    pub fn memory_size(&self) -> usize {
        self.store
            .data()
            .memory
            .map_or(0, |m| m.data_size(&self.store))
    }

    /// Whether an earlier trap or memory fault made this instance unusable.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// The root context's id.
    pub fn root_context_id(&self) -> u32 {
        self.root_context
    }

    /// Delivers the response of an HTTP call the plugin dispatched
    /// (`proxy_on_http_call_response` on the context that dispatched it, as Envoy does).
    /// A call whose stream has ended cannot be answered: Envoy cancels a context's
    /// callouts when it is destroyed ([`Error::Usage`]).
    pub fn respond_to_http_call(
        &mut self,
        token: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), Error> {
        self.deliver_http_call_response(
            token,
            crate::state::Headers::from_pairs(headers),
            body.to_vec(),
            crate::state::Headers::new(),
        )
    }

    pub(crate) fn deliver_http_call_response(
        &mut self,
        token: u32,
        headers: Headers,
        body: Vec<u8>,
        trailers: Headers,
    ) -> Result<(), Error> {
        let Some(call) = self
            .store
            .data()
            .http_calls
            .iter()
            .find(|c| c.token == token)
        else {
            return Err(Error::Usage(format!("no HTTP call has token {token}")));
        };
        let context = call.context_id;
        if context != self.root_context && !self.store.data().streams.contains_key(&context) {
            return Err(Error::Usage(format!(
                "HTTP call {token} was dispatched by stream {context}, which has ended \
                 (Envoy cancels a stream's callouts when it ends)"
            )));
        }
        let (n, len, nt) = (
            headers.len() as i32,
            body.len() as i32,
            trailers.len() as i32,
        );
        self.store.data_mut().http_call_response = Some((headers, body, trailers));
        let result = self.call::<(i32, i32, i32, i32, i32), ()>(
            "proxy_on_http_call_response",
            Cb::HttpCallResponse,
            context,
            (context as i32, token as i32, n, len, nt),
        );
        self.store.data_mut().http_call_response = None;
        result.map(|_| ())
    }

    /// gRPC calls and streams the plugin opened, oldest first.
    pub fn grpc_calls(&self) -> &[GrpcCall] {
        &self.store.data().grpc_calls
    }

    fn grpc_target(&self, token: u32) -> Result<u32, Error> {
        let Some(call) = self
            .store
            .data()
            .grpc_calls
            .iter()
            .find(|c| c.token == token)
        else {
            return Err(Error::Usage(format!("no gRPC call has token {token}")));
        };
        if call.finished {
            return Err(Error::Usage(format!(
                "gRPC call {token} is over (cancelled by the plugin, or closed)"
            )));
        }
        let context = call.context_id;
        if context != self.root_context && !self.store.data().streams.contains_key(&context) {
            return Err(Error::Usage(format!(
                "gRPC call {token} was opened by stream {context}, which has ended"
            )));
        }
        Ok(context)
    }

    fn grpc_callback(
        &mut self,
        name: &'static str,
        which: Cb,
        token: u32,
        data: CalloutData,
        arg: i32,
    ) -> Result<(), Error> {
        let context = self.grpc_target(token)?;
        self.store.data_mut().callout = data;
        let result = self.call::<(i32, i32, i32), ()>(
            name,
            which,
            context,
            (context as i32, token as i32, arg),
        );
        self.store.data_mut().callout = CalloutData::default();
        result.map(|_| ())
    }

    /// A gRPC stream's initial metadata arrives (`proxy_on_grpc_receive_initial_metadata`).
    pub fn grpc_receive_initial_metadata(
        &mut self,
        token: u32,
        metadata: &[(&str, &str)],
    ) -> Result<(), Error> {
        let md = Headers::from_pairs(metadata);
        let n = md.len() as i32;
        let data = CalloutData {
            initial_metadata: Some(md),
            ..CalloutData::default()
        };
        self.grpc_callback(
            "proxy_on_grpc_receive_initial_metadata",
            Cb::GrpcReceiveInitialMetadata,
            token,
            data,
            n,
        )
    }

    /// A message arrives on a gRPC stream, or a unary call succeeds with `message`
    /// (`proxy_on_grpc_receive`; for a unary call Envoy ends the call with it).
    pub fn grpc_receive(&mut self, token: u32, message: &[u8]) -> Result<(), Error> {
        let unary = self
            .store
            .data()
            .grpc_calls
            .iter()
            .any(|c| c.token == token && !c.streaming);
        let data = CalloutData {
            message: Some(message.to_vec()),
            ..CalloutData::default()
        };
        self.grpc_callback(
            "proxy_on_grpc_receive",
            Cb::GrpcReceive,
            token,
            data,
            message.len() as i32,
        )?;
        if unary {
            self.finish_grpc(token);
        }
        Ok(())
    }

    /// A gRPC stream's trailing metadata arrives (`proxy_on_grpc_receive_trailing_metadata`).
    pub fn grpc_receive_trailing_metadata(
        &mut self,
        token: u32,
        metadata: &[(&str, &str)],
    ) -> Result<(), Error> {
        let md = Headers::from_pairs(metadata);
        let n = md.len() as i32;
        let data = CalloutData {
            trailing_metadata: Some(md),
            ..CalloutData::default()
        };
        self.grpc_callback(
            "proxy_on_grpc_receive_trailing_metadata",
            Cb::GrpcReceiveTrailingMetadata,
            token,
            data,
            n,
        )
    }

    /// A gRPC call or stream ends with `status` (`proxy_on_grpc_close`; the plugin reads
    /// the status and `message` with `proxy_get_status`). For a unary call this is the
    /// failure path.
    pub fn grpc_close(&mut self, token: u32, status: u32, message: &str) -> Result<(), Error> {
        let data = CalloutData {
            status: Some((status, message.as_bytes().to_vec())),
            ..CalloutData::default()
        };
        let result = self.grpc_callback(
            "proxy_on_grpc_close",
            Cb::GrpcClose,
            token,
            data,
            status as i32,
        );
        self.finish_grpc(token);
        result
    }

    fn finish_grpc(&mut self, token: u32) {
        if let Some(c) = self
            .store
            .data_mut()
            .grpc_calls
            .iter_mut()
            .find(|c| c.token == token)
        {
            c.finished = true;
        }
    }

    /// Calls `proxy_on_foreign_function` on the root context, as a host function that
    /// answers asynchronously would; `arguments` is the FOREIGN_FUNCTION_ARGUMENTS buffer.
    pub fn deliver_foreign_function(
        &mut self,
        function_id: u32,
        arguments: &[u8],
    ) -> Result<(), Error> {
        self.store.data_mut().foreign_arguments = arguments.to_vec();
        let root = self.root_context;
        let result = self.call::<(i32, i32, i32), ()>(
            "proxy_on_foreign_function",
            Cb::ForeignFunction,
            root,
            (root as i32, function_id as i32, arguments.len() as i32),
        );
        self.store.data_mut().foreign_arguments.clear();
        result.map(|_| ())
    }

    /// The ABI version of the module.
    pub fn abi_version(&self) -> AbiVersion {
        self.abi
    }

    /// Creates a stream context (`proxy_on_context_create` with the root as parent).
    pub(crate) fn new_stream(&mut self, kind: StreamKind) -> Result<u32, Error> {
        let id = self.next_context;
        self.next_context = self.next_context.wrapping_add(1).max(2);
        let mut state = StreamState::new(kind);
        state.start_nanos = self.store.data().now_nanos;
        self.store.data_mut().streams.insert(id, state);
        let root = self.root_context;
        self.call::<(i32, i32), ()>(
            "proxy_on_context_create",
            Cb::ContextCreate,
            id,
            (id as i32, root as i32),
        )?;
        Ok(id)
    }

    /// Ends a stream context the way Envoy does and returns its host state. HTTP
    /// (`Context::log` runs with the access logs, before the filter chain is destroyed;
    /// `Context::onDestroy` then calls `onDone` and `onDelete`): `proxy_on_log`,
    /// `proxy_on_done`, `proxy_on_delete`. TCP (`Context::onCloseTCP`): `proxy_on_done`,
    /// `proxy_on_log`, `proxy_on_delete`. Envoy ignores what `proxy_on_done` returns.
    pub(crate) fn finish_stream(&mut self, id: u32) -> Result<Option<StreamState>, Error> {
        self.store.data_mut().done_called = false;
        let kind = self.store.data().streams.get(&id).map(|s| s.kind);
        if kind == Some(StreamKind::Tcp) {
            self.call::<i32, i32>("proxy_on_done", Cb::Done, id, id as i32)?;
            self.call::<i32, ()>("proxy_on_log", Cb::Log, id, id as i32)?;
        } else {
            self.store.data_mut().in_log = true;
            let logged = self.call::<i32, ()>("proxy_on_log", Cb::Log, id, id as i32);
            self.store.data_mut().in_log = false;
            logged?;
            self.call::<i32, i32>("proxy_on_done", Cb::Done, id, id as i32)?;
        }
        self.call::<i32, ()>("proxy_on_delete", Cb::Delete, id, id as i32)?;
        Ok(self.store.data_mut().streams.remove(&id))
    }

    pub(crate) fn stream_mut(&mut self, id: u32) -> Option<&mut StreamState> {
        self.store.data_mut().streams.get_mut(&id)
    }

    pub(crate) fn log_count(&self) -> usize {
        self.store.data().logs.len()
    }

    pub(crate) fn logs_since(&self, from: usize) -> Vec<LogEntry> {
        self.store
            .data()
            .logs
            .get(from..)
            .map(<[LogEntry]>::to_vec)
            .unwrap_or_default()
    }
}
