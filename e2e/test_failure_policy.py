"""What Envoy does with traffic when a proxy-wasm VM traps, for each failure policy
(issue 12): a real Envoy 1.40, the test-only filter e2e/trap-filter (it traps on a
request carrying `x-trap: 1`), two upstream servers on 127.0.0.1.

The filter stands in for the MAPS plugin (which never traps on any input: that is
fuzzed) and routes like it: it removes the client's own `x-route` header and sets
`x-route: filtered`; the route sends requests with that header to cluster `filtered`
(the MAPS route) and everything else to cluster `default` (the internet path). So
"which cluster served it" says whether the filter ran, and `x-vm-id` (the VM's start
time, set by the filter) says which VM ran it.

For each setting of `envoy.extensions.wasm.v3.PluginConfig` -- `failure_policy:
FAIL_CLOSED`, `FAIL_OPEN`, `FAIL_RELOAD`, and the deprecated `fail_open: false` / `true`
with no `failure_policy` (what Envoy Gateway generates for `failOpen`) -- one Envoy (`--concurrency 1`: one
worker, one VM serving requests) gets, over fresh connections:

  before   5 normal requests
  trap     1 request with `x-trap: 1`
  after    5 normal requests, at once
  spoof    1 request carrying the client's own `x-route: filtered`
  later    5 normal requests after the reload backoff (FAIL_RELOAD: 1 s base)

and the test records each answer (status, cluster, VM id), Envoy's `wasm.*` and
`wasmcustom.*` stats, and asserts what Envoy documents for the setting (where the
documentation says nothing, what Envoy 1.40 was measured to do, marked "measured"):

  FAIL_CLOSED  the trapping request and every request after it are refused (503, no
               upstream); the VM stays dead
  FAIL_OPEN    the filter is skipped: requests go upstream on the default path, and a
               client's own `x-route` reaches the route
  FAIL_RELOAD  a new VM serves the next requests (a new `x-vm-id`)
  fail_open: false (unset failure_policy): as FAIL_CLOSED
  fail_open: true (deprecated; unset failure_policy): as FAIL_OPEN, except that
               (measured) the trapping request itself continues, unfiltered, to the
               default path

Every process it starts is stopped by PID; bounded (well under a minute).

    ENVOY=.venv/bin/envoy TRAP_WASM=target/wasm32-wasip1/plugin/trap_filter.wasm \
        python3 e2e/test_failure_policy.py
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from envoy import Envoy, EnvoyError  # noqa: E402
from links import Link, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TRAP_WASM = os.environ.get("TRAP_WASM", str(ROOT / "target/wasm32-wasip1/plugin/trap_filter.wasm"))
ENVOY_BIN = os.environ.get("ENVOY", str(ROOT / ".venv/bin/envoy"))

# The plugin's name: Envoy's reload stats are wasm.<name>.vm_reload_*.
PLUGIN = "trap-plugin"

# name, the PluginConfig fields it sets
SETTINGS: list[tuple[str, dict]] = [
    ("FAIL_CLOSED", {"failure_policy": "FAIL_CLOSED"}),
    ("FAIL_OPEN", {"failure_policy": "FAIL_OPEN"}),
    ("FAIL_RELOAD", {"failure_policy": "FAIL_RELOAD"}),
    # Envoy Gateway's `failOpen: false` sets the deprecated `fail_open: false` and no
    # `failure_policy`: the same as setting neither.
    ("unset (fail_open: false)", {"fail_open": False}),
    # Envoy Gateway's `failOpen: true`: the deprecated field, no `failure_policy`.
    ("fail_open: true", {"fail_open": True}),
]


class OneWorkerEnvoy(Envoy):
    """e2e's Envoy with one worker thread: one VM serves every request, so a trap
    reaches the VM the next requests meet."""

    concurrency = 1
    component_log_levels = "wasm:debug"


def bootstrap(listen: int, admin: int, upstreams: dict[str, int], fields: dict, access_log: Path) -> dict:
    plugin = {
        "name": PLUGIN,
        "root_id": "trap",
        "vm_config": {
            "vm_id": "trap-vm",
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": TRAP_WASM}},
        },
        **fields,
    }
    route = {
        "name": "local",
        "virtual_hosts": [{
            "name": "all",
            "domains": ["*"],
            "routes": [
                {"name": "filtered",
                 "match": {"prefix": "/", "headers": [{"name": "x-route", "string_match": {"exact": "filtered"}}]},
                 "route": {"cluster": "filtered"}},
                {"name": "default", "match": {"prefix": "/"}, "route": {"cluster": "default"}},
            ],
        }],
    }
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        "route_config": route,
        "access_log": [{"name": "file", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": str(access_log),
            "log_format": {"json_format": {
                "id": "%REQ(x-test-id)%", "status": "%RESPONSE_CODE%", "flags": "%RESPONSE_FLAGS%",
                "details": "%RESPONSE_CODE_DETAILS%", "cluster": "%UPSTREAM_CLUSTER%"}}}}],
        "http_filters": [
            {"name": "trap", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm", "config": plugin}},
            {"name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
        ],
    }
    clusters = [
        {"name": name, "type": "STATIC", "connect_timeout": "1s",
         "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
             {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}}
        for name, port in upstreams.items()
    ]
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {
            "listeners": [{
                "name": "http",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen}},
                "filter_chains": [{"filters": [{"name": "hcm", "typed_config": hcm}]}],
            }],
            "clusters": clusters,
        },
    }


def send(port: int, test_id: str, headers: dict[str, str] | None = None) -> dict:
    """One GET on a fresh connection: status, the upstream that answered, the VM id."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", "/", headers={"x-test-id": test_id, **(headers or {})})
        resp = c.getresponse()
        body = resp.read()
        link = resp.getheader("x-link") or ""
        seen: dict = {}
        if link and body:
            try:
                seen = json.loads(body).get("headers", {})
            except ValueError:
                seen = {}
        return {"id": test_id, "status": resp.status, "cluster": link or "-", "vm": seen.get("x-vm-id", "-")}
    except (OSError, http.client.HTTPException) as err:
        return {"id": test_id, "status": 0, "cluster": "-", "vm": "-", "error": f"{type(err).__name__}: {err}"}
    finally:
        c.close()


def wasm_stats(envoy: Envoy) -> dict[str, int]:
    out = {}
    for k, v in envoy.stats("^wasm").items():
        try:
            out[k] = int(v)
        except ValueError:
            continue
    return out


PHASES = ["before", "trap", "after", "spoof", "later"]


def run_setting(name: str, fields: dict, scratch: Path, upstreams: dict[str, int]) -> dict:
    listen, admin = free_port(), free_port()
    stem = "".join(ch if ch.isalnum() else "_" for ch in name)
    cfg = scratch / f"{stem}.json"
    access = scratch / f"{stem}.access.log"
    cfg.write_text(json.dumps(bootstrap(listen, admin, upstreams, fields, access), indent=1))
    envoy = OneWorkerEnvoy(ENVOY_BIN, cfg, admin, scratch / f"{stem}.log")
    out: dict = {"name": name, "fields": fields}
    try:
        envoy.start()
        out["before"] = [send(listen, f"before-{i}") for i in range(5)]
        out["stats_before"] = wasm_stats(envoy)
        out["trap"] = [send(listen, "trap", {"x-trap": "1"})]
        out["after"] = [send(listen, f"after-{i}") for i in range(5)]
        out["spoof"] = [send(listen, "spoof", {"x-route": "filtered"})]
        time.sleep(2.5)  # past FAIL_RELOAD's default backoff (1 s base interval)
        out["later"] = [send(listen, f"later-{i}") for i in range(5)]
        out["stats_after"] = wasm_stats(envoy)
        out["running"] = envoy.running()
        # The access log is flushed every second or so: wait for the last request's line.
        try:
            envoy.wait_for("the access log", lambda: access.exists() and '"later-4"' in access.read_text(), 10)
        except EnvoyError:
            pass  # the table shows "-" for what is missing
        details = {}
        for line in access.read_text().splitlines() if access.exists() else []:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            details[rec.get("id")] = rec
        for phase in PHASES:
            for r in out[phase]:
                rec = details.get(r["id"], {})
                r["details"] = rec.get("details") or "-"
                r["flags"] = rec.get("flags") or "-"
    except EnvoyError as err:
        out["error"] = f"{err}\n{envoy.log_tail(60)}"
    finally:
        envoy.stop()
    return out


def refused(r: dict) -> bool:
    """Answered by Envoy itself with 503: no upstream saw it."""
    return r["status"] == 503 and r["cluster"] == "-"


def check(res: dict) -> list[str]:
    """What Envoy documents for the setting; the list of violations."""
    bad: list[str] = []
    name = res["name"]
    if "error" in res:
        return [res["error"]]
    before = res["before"]
    vms = {r["vm"] for r in before}
    if not all(r["status"] == 200 and r["cluster"] == "filtered" for r in before) or len(vms) != 1 or "-" in vms:
        bad.append(f"before the trap, every request goes through the filter to `filtered`, one VM: {before}")
    old_vm = next(iter(vms)) if vms else "-"
    trap = res["trap"][0]
    if name == "fail_open: true":
        # Measured: with the deprecated field the trapping request itself continues
        # past the filter (FAIL_OPEN answers it 503).
        if not (trap["status"] == 200 and trap["cluster"] == "default" and trap["vm"] == "-"):
            bad.append(f"the trapping request itself skips the filter, to the default path: {trap}")
    elif not refused(trap):
        bad.append(f"the trapping request itself is answered 503 by Envoy: {trap}")
    a, b = res["stats_before"], res["stats_after"]
    custom = "wasmcustom.trap_filter.requests"
    after_all = res["after"] + res["spoof"] + res["later"]
    if name == "FAIL_RELOAD":
        later = res["later"]
        new_vms = {r["vm"] for r in later}
        if not all(r["status"] == 200 and r["cluster"] == "filtered" for r in later) or len(new_vms) != 1 or old_vm in new_vms:
            bad.append(f"after the backoff, a new VM serves every request: {later}")
        # Within the backoff Envoy fails closed; a request never skips the filter and
        # never meets the dead VM.
        for r in res["after"] + res["spoof"]:
            if not (refused(r) or (r["cluster"] == "filtered" and r["vm"] not in ("-", old_vm))):
                bad.append(f"during the reload, a request is refused or served by the new VM: {r}")
        if b.get(f"wasm.{PLUGIN}.vm_reload_success", 0) < 1:
            bad.append(f"wasm.{PLUGIN}.vm_reload_success rises: {b}")
        if b.get(custom, 0) != a.get(custom, 0) + len(later) + sum(1 for r in res["after"] + res["spoof"] if not refused(r)):
            bad.append(f"{custom} counts the requests the new VM served ({a.get(custom)} -> {b.get(custom)})")
    elif name in ("FAIL_OPEN", "fail_open: true"):
        for r in res["after"] + res["later"]:
            if not (r["status"] == 200 and r["cluster"] == "default" and r["vm"] == "-"):
                bad.append(f"with the VM dead, requests skip the filter and take the default path: {r}")
        sp = res["spoof"][0]
        if not (sp["status"] == 200 and sp["cluster"] == "filtered" and sp["vm"] == "-"):
            bad.append(f"with the filter skipped, the client's own x-route reaches the route: {sp}")
        if b.get(custom) != a.get(custom):
            bad.append(f"no VM runs after the trap: {custom} stays ({a.get(custom)} -> {b.get(custom)})")
    else:  # FAIL_CLOSED, and the unset policy (fail_open: false) documented as FAIL_CLOSED
        for r in after_all:
            if not refused(r):
                bad.append(f"every request after the trap is refused (503, no upstream), the VM stays dead: {r}")
        if b.get(custom) != a.get(custom):
            bad.append(f"no VM runs after the trap: {custom} stays ({a.get(custom)} -> {b.get(custom)})")
        if b.get(f"wasm.{PLUGIN}.vm_reload_success", 0):
            bad.append(f"no reload: {b}")
    if not res.get("running"):
        bad.append("Envoy itself keeps running")
    return bad


def summary(rs: list[dict], old_vm: str) -> str:
    """`n x status cluster [vm]` groups, in order."""
    parts: list[str] = []
    for r in rs:
        vm = "" if r["vm"] == "-" else (" old VM" if r["vm"] == old_vm else " new VM")
        text = f"{r['status']} {r['cluster']}{vm}"
        if r["status"] == 503 and r.get("details", "-") != "-":
            text += f" ({r['details']})"
        if parts and parts[-1].split("x ", 1)[1] == text:
            n = int(parts[-1].split("x ", 1)[0]) + 1
            parts[-1] = f"{n}x {text}"
        else:
            parts.append(f"1x {text}")
    return ", ".join(parts)


def table(results: list[dict]) -> str:
    rows = [["setting", "phase", "answers (status, cluster that served it, which VM)"]]
    for res in results:
        if "error" in res:
            rows.append([res["name"], "-", "Envoy did not start"])
            continue
        old_vm = res["before"][0]["vm"]
        for phase in PHASES:
            rows.append([res["name"] if phase == "before" else "", phase, summary(res[phase], old_vm)])
        a, b = res["stats_before"], res["stats_after"]
        changed = [f"{k} {a.get(k, 0)}->{v}" for k, v in sorted(b.items()) if v != a.get(k, 0)]
        rows.append(["", "stats", ", ".join(changed) or "no wasm.* / wasmcustom.* stat changed"])
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = []
    for i, r in enumerate(rows):
        lines.append(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}")
        if i == 0:
            lines.append(f"{'-' * widths[0]}  {'-' * widths[1]}  {'-' * 50}")
    return "\n".join(lines)


def main() -> int:
    if not Path(TRAP_WASM).is_file():
        print(f"FAIL failure_policy: {TRAP_WASM} missing (make trap-filter)")
        return 1
    scratch = Path(tempfile.mkdtemp(prefix="maps-failure-policy-"))
    links = {"filtered": Link("filtered").start(), "default": Link("default").start()}
    results = []
    try:
        upstreams = {k: v.port for k, v in links.items()}
        for name, fields in SETTINGS:
            results.append(run_setting(name, fields, scratch, upstreams))
    finally:
        for l in links.values():
            l.stop()
    print(f"Envoy {ENVOY_BIN} --concurrency 1; trap filter {TRAP_WASM}")
    print("phases: before = 5 requests; trap = 1 with x-trap: 1; after = 5 at once; spoof = 1 with the")
    print("client's own x-route: filtered; later = 5 after 2.5 s (FAIL_RELOAD backoff: 1 s base)\n")
    print(table(results))
    print()
    failed = 0
    for res in results:
        bad = check(res)
        if bad:
            failed += 1
            print(f"FAIL failure_policy::{res['name']}:")
            for b in bad:
                print(f"  - {b}")
        else:
            print(f"PASS failure_policy::{res['name']}")
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"failure policy: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
