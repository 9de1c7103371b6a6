"""The examples in examples/ stay what the tested generator produces (`make e2e`), and
`make examples` regenerates them.

- examples/envoy: `mapsctl envoy-config` output for examples/envoy/policy.json (the
  static bootstrap, the two ECDS files and plan.json, the names scripts read), byte
  for byte, and Envoy accepts it
  (`envoy --mode validate`). The e2e test (test_envoy.py) runs the same generator in a
  real Envoy.
- `mapsctl envoy-config` refuses what it must: a policy with errors (exit 1, nothing
  written), links without an address (exit 2, all named), a `--link` given twice or a
  `--health-path` that is no request path (exit 2, nothing written), and with
  `--ecds-only` a policy that needs a cluster the bootstrap lacks (exit 1, ECDS files
  untouched). The example has no `--internet`: Envoy validates its ORIGINAL_DST default
  path with the `original_dst` listener filter on the HTTP listener.
- examples/istio and examples/envoy-gateway: not runnable here (no Kubernetes); they
  are byte for byte what `mapsctl manifests` generates for examples/envoy/policy.json
  (`make manifests` regenerates them). Their validation against the published CRDs
  and the plugin fed what each control plane hands it: e2e/test_manifests.py
  (`make test-manifests`).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, tool_paths  # noqa: E402

EXAMPLE = ROOT / "examples/envoy"
POLICY = EXAMPLE / "policy.json"
FILES = ["envoy.json", "plan.json", "xds/maps-http.json", "xds/maps-tcp.json"]


def generate(out: Path, xds_dir: str = "/etc/envoy/xds") -> None:
    tools = tool_paths()
    args = [
        tools["mapsctl"], "envoy-config",
        "--policy", str(POLICY.relative_to(ROOT)),
        "--out", str(out),
        "--plugin", "/etc/envoy/maps_plugin.wasm",
        "--xds-dir", xds_dir,
        "--listen", "0.0.0.0:10000",
        "--listen-l4", "0.0.0.0:10001",
    ]
    r = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"mapsctl envoy-config failed: {r.stdout}{r.stderr}")


def main() -> int:
    if "--regenerate" in sys.argv:
        generate(EXAMPLE)
        print(f"regenerated {', '.join(str(EXAMPLE / f) for f in FILES)}")
        return 0
    passed = failed = 0

    def check(name: str, fn) -> None:  # type: ignore[no-untyped-def]
        nonlocal passed, failed
        try:
            fn()
            passed += 1
            print(f"PASS examples::{name}")
        except Exception as err:  # noqa: BLE001
            failed += 1
            print(f"FAIL examples::{name}: {err}")

    scratch = Path(tempfile.mkdtemp(prefix="maps-examples-"))  # removed at the end
    tmp = scratch / "generated"

    def same_as_generator() -> None:
        generate(tmp)
        for f in FILES:
            want = (tmp / f).read_text().splitlines()
            have = (EXAMPLE / f).read_text().splitlines()
            if want != have:
                diff = "\n".join(list(difflib.unified_diff(have, want, f"examples/envoy/{f}", "generated", lineterm=""))[:40])
                raise AssertionError(f"examples/envoy/{f} is stale (make examples):\n{diff}")

    def envoy_accepts() -> None:
        # Envoy insists that the ECDS files exist: the same bootstrap, with the ECDS
        # directory where the files really are (the only difference).
        local = scratch / "local"
        generate(local, xds_dir=str(local / "xds"))
        a = json.loads((EXAMPLE / "envoy.json").read_text().replace("/etc/envoy/xds", str(local / "xds")))
        assert a == json.loads((local / "envoy.json").read_text()), "bootstraps differ beyond the ECDS path"
        r = subprocess.run(
            [tool_paths()["envoy"], "--mode", "validate", "-c", str(local / "envoy.json"),
             "--use-dynamic-base-id", "--log-level", "warning"],
            capture_output=True, text=True, timeout=120,
        )
        if r.returncode != 0 or "OK" not in r.stdout + r.stderr:
            raise AssertionError(f"envoy --mode validate refused it:\n{r.stdout}{r.stderr}")

    def control_plane_examples() -> None:
        # The generator's arguments live in test_manifests.py (make manifests uses them).
        from test_manifests import EXAMPLES
        from test_manifests import generate as generate_manifests

        for rel in EXAMPLES:
            out = scratch / Path(rel).name
            generate_manifests(rel, out)
            if out.read_text() != (ROOT / rel).read_text():
                raise AssertionError(f"{rel} is stale: not what mapsctl manifests generates (make manifests)")
        r = subprocess.run([tool_paths()["mapsctl"], "validate", str(POLICY)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr

    def refusals() -> None:
        mapsctl = tool_paths()["mapsctl"]
        out = scratch / "refuse"
        generate(out)
        http = (out / "xds/maps-http.json").read_text()
        pol = json.loads(POLICY.read_text())
        # A policy whose pair (sea, ash) has no cluster in the bootstrap: --ecds-only
        # refuses (exit 1) and leaves the running ECDS files alone.
        pol["registrations"][0]["backup_edge"] = "ash"
        p = out / "new-pair.json"
        p.write_text(json.dumps(pol))
        # The cluster that pair routes to, as `mapsctl explain` names it (for an address
        # of that registration bound for a Microsoft domain of the policy).
        reg = pol["registrations"][0]
        src = str(ipaddress.ip_network(reg["prefixes"][0]["prefix"])[10])
        host = pol["destinations"][0]["domains"][0]
        e = subprocess.run([mapsctl, "explain", "--policy", str(p), "--host", host, "--format", "json", src],
                           capture_output=True, text=True, timeout=60)
        cluster = json.loads(e.stdout)["cluster"]
        boot = json.loads((out / "envoy.json").read_text())
        assert cluster and cluster not in {c["name"] for c in boot["static_resources"]["clusters"]}, (cluster, e.stderr)
        r = subprocess.run([mapsctl, "envoy-config", "--policy", str(p), "--out", str(out), "--ecds-only"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and cluster in r.stderr, (r.returncode, cluster, r.stderr)
        assert (out / "xds/maps-http.json").read_text() == http, "ECDS file changed"
        # Links without an address: exit 2, every one named.
        for e in pol["edges"]:
            for link in e["links"]:
                link.pop("address", None)
        p.write_text(json.dumps(pol))
        r = subprocess.run([mapsctl, "envoy-config", "--policy", str(p), "--out", str(out / "x"),
                            "--link", "sea-1=127.0.0.1:1"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "sea-2" in r.stderr and "ash-2" in r.stderr and "sea-1," not in r.stderr, r.stderr
        # Issue 13, finding 7: a link given twice is an error naming it (not last-wins);
        # a health-check path with CR/LF or without a leading / is refused (before: a
        # configuration Envoy rejects). Nothing is written.
        for extra, said in [
            (["--link", "sea-1=127.0.0.1:1", "--link", "sea-1=127.0.0.1:2"], "--link sea-1"),
            (["--health-path", "/healthz\r\nHost: x"], "--health-path"),
            (["--health-path", "healthz"], "--health-path"),
        ]:
            r = subprocess.run([mapsctl, "envoy-config", "--policy", str(POLICY), "--out", str(out / "z"), *extra],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 2 and said in r.stderr and not (out / "z").exists(), (extra, r.returncode, r.stderr)
        # An invalid policy: exit 1, nothing written.
        pol["version"] = 2
        p.write_text(json.dumps(pol))
        r = subprocess.run([mapsctl, "envoy-config", "--policy", str(p), "--out", str(out / "y")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and not (out / "y").exists(), (r.returncode, r.stderr)

    check("envoy_static_ecds_is_generated", same_as_generator)
    check("envoy_config_refusals", refusals)
    check("envoy_accepts_the_example", envoy_accepts)
    check("istio_and_envoy_gateway_are_generated", control_plane_examples)
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"examples: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
