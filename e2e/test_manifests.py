"""The Istio and Envoy Gateway examples are what `mapsctl manifests` generates, and they
are valid against those projects' published CRD schemas (issue 12).

- examples/istio/wasmplugin.yaml and examples/envoy-gateway/envoyextensionpolicy.yaml
  are byte for byte what `mapsctl manifests` writes for examples/envoy/policy.json
  (`make manifests` regenerates them), and embed that policy.
- Every resource validates against the CRD copied into fixtures/crds/ (see its README):
  the served version's `openAPIV3Schema`, made as strict as `kubectl apply
  --validate=strict` (unknown fields rejected where the schema lists properties and
  does not preserve unknown fields; `x-kubernetes-int-or-string`; `nullable`), plus the
  CRD's CEL rules (`x-kubernetes-validations`) on the nodes our resources use, one Python
  function per rule. A rule the test does not know, on a node we use, fails the test.
- The validator is strict: a misspelt field, a wrong type, a value outside an enum, an
  unknown metadata field, a broken CEL rule are each rejected.
- The plugin accepts what each control plane hands it: istiod serialises the
  `pluginConfig` Struct (every number a float64) and Envoy Gateway the stored JSON,
  both compact with sorted keys, into a StringValue the plugin reads as its policy.
  That text, emulated here, gives the real plugin (`mapsctl classify --engine plugin`,
  the .wasm in the wasmtime harness) the same decisions as the native core on the
  original file, for the demo policy and its packed form.

    MAPSCTL=target/release/mapsctl .venv/bin/python3 e2e/test_manifests.py [--regenerate]
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

try:  # the .venv has them (make test-manifests); test_examples.py imports EXAMPLES only
    import jsonschema
    import yaml
except ImportError:  # pragma: no cover
    jsonschema = yaml = None  # type: ignore[assignment]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, tool_paths  # noqa: E402

POLICY = ROOT / "examples/envoy/policy.json"
CRDS = ROOT / "fixtures/crds"
IMAGE = "oci://registry.example.net/maps/maps-plugin:0.1.0"
# What `make manifests` runs (paths relative to the repository root, so the header of
# each file is the same on every machine).
EXAMPLES: dict[str, list[str]] = {
    "examples/istio/wasmplugin.yaml": [
        "--platform", "istio", "--image", IMAGE, "--namespace", "istio-system",
        "--selector", "istio=ingressgateway",
    ],
    "examples/envoy-gateway/envoyextensionpolicy.yaml": [
        "--platform", "envoy-gateway", "--image", IMAGE.removeprefix("oci://"),
        "--namespace", "maps", "--target-ref", "Gateway/maps-edge",
    ],
}


def mapsctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([tool_paths()["mapsctl"], *args], capture_output=True, text=True, cwd=ROOT, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f"mapsctl {' '.join(args)}: exit {r.returncode}\n{r.stderr}")
    return r


def generate(rel: str, out: Path, policy: str = "examples/envoy/policy.json") -> None:
    mapsctl("manifests", "--policy", policy, *EXAMPLES[rel], "--out", str(out))


# ---- the API server's view of a CRD ---------------------------------------------------

def load_crds() -> dict[tuple[str, str], dict]:
    """{(apiVersion, kind): {"schema": openAPIV3Schema, "crd": name}} of served versions."""
    out = {}
    for f in sorted(CRDS.glob("*.yaml")):
        for crd in yaml.safe_load_all(f.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for v in crd["spec"]["versions"]:
                if v.get("served"):
                    out[(f"{group}/{v['name']}", kind)] = {
                        "schema": v["schema"]["openAPIV3Schema"], "crd": crd["metadata"]["name"]}
    return out


DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# The part of ObjectMeta a client sends (strict: anything else is an unknown field).
OBJECT_META = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": DNS_SUBDOMAIN},
        "namespace": {"type": "string", "maxLength": 63, "pattern": DNS_LABEL},
        "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 63}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}


def strict(node: object) -> object:
    """A structural schema as JSON Schema, as strict as the API server."""
    if isinstance(node, list):
        return [strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    s = {k: strict(v) if k in ("items", "additionalProperties", "not") else v for k, v in node.items()}
    for key in ("properties", "patternProperties"):
        if key in s:
            s[key] = {k: strict(v) for k, v in s[key].items()}
    for key in ("allOf", "anyOf", "oneOf"):
        if key in s:
            s[key] = [strict(v) for v in s[key]]
    s.pop("x-kubernetes-validations", None)
    if s.get("x-kubernetes-int-or-string") and "anyOf" not in s:
        s["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if s.get("nullable") and isinstance(s.get("type"), str):
        s["type"] = [s["type"], "null"]
    if "properties" in s and not s.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in s:
        s["additionalProperties"] = False
    return s


def root_schema(api_version: str, kind: str, schema: dict) -> dict:
    s = strict(schema)
    props = dict(s.get("properties", {}))
    props["apiVersion"] = {"const": api_version}
    props["kind"] = {"const": kind}
    props["metadata"] = OBJECT_META
    s["properties"] = props
    s["required"] = sorted(set(s.get("required", [])) | {"apiVersion", "kind", "metadata"})
    s["additionalProperties"] = False
    return s


# ---- the CRDs' CEL rules on the nodes our resources use ---------------------------------

EG_KINDS = ["Gateway", "ListenerSet", "HTTPRoute", "GRPCRoute", "UDPRoute", "TCPRoute", "TLSRoute"]
ROUTE_KINDS = ["HTTPRoute", "GRPCRoute", "UDPRoute", "TCPRoute", "TLSRoute"]


def url_scheme_ok(u: str) -> bool:
    # isURL(self) ? url(self).getScheme() in [...] : (isURL("http://" + self) && ...):
    # a URL with a scheme must use an allowed one; a bare reference is read as http.
    allowed = {"", "http", "https", "oci", "file"}
    if "://" in u:
        scheme = u.split("://", 1)[0]
        return scheme in allowed
    return bool(urllib.parse.urlparse("http://" + u).netloc)


def has(d: dict, k: str) -> bool:
    return isinstance(d, dict) and k in d


RULES = {
    # Istio WasmPlugin
    '!self.contains("*")': lambda s: "*" not in s,
    'self.all(key, !key.contains("*"))': lambda s: all("*" not in k for k in s),
    "self.all(key, key.size() != 0)": lambda s: all(len(k) for k in s),
    "self.size() == 0": lambda s: len(s) == 0,
    'isURL(self) ? (url(self).getScheme() in ["", "http", "https", "oci", "file"]) : (isURL("http://" + self) && '
    'url("http://" + self).getScheme() in ["", "http", "https", "oci", "file"])': url_scheme_ok,
    "(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1":
        lambda s: sum(has(s, k) for k in ("selector", "targetRef", "targetRefs")) <= 1,
    # Envoy Gateway EnvoyExtensionPolicy
    "(has(self.targetRef) && !has(self.targetRefs)) || (!has(self.targetRef) && has(self.targetRefs)) || "
    "(has(self.targetSelectors) && self.targetSelectors.size() > 0)":
        lambda s: (has(s, "targetRef") != has(s, "targetRefs")) or bool(s.get("targetSelectors")),
    "has(self.targetRef) ? self.targetRef.group == 'gateway.networking.k8s.io' : true":
        lambda s: not has(s, "targetRef") or s["targetRef"].get("group") == "gateway.networking.k8s.io",
    "has(self.targetRef) ? self.targetRef.kind in ['Gateway', 'ListenerSet', 'HTTPRoute', 'GRPCRoute', "
    "'UDPRoute', 'TCPRoute', 'TLSRoute'] : true":
        lambda s: not has(s, "targetRef") or s["targetRef"].get("kind") in EG_KINDS,
    "has(self.targetRefs) ? self.targetRefs.all(ref, ref.group == 'gateway.networking.k8s.io') : true":
        lambda s: not has(s, "targetRefs") or all(r.get("group") == "gateway.networking.k8s.io" for r in s["targetRefs"]),
    "has(self.targetRefs) ? self.targetRefs.all(ref, ref.kind in ['Gateway', 'ListenerSet', 'HTTPRoute', "
    "'GRPCRoute', 'UDPRoute', 'TCPRoute', 'TLSRoute']) : true":
        lambda s: not has(s, "targetRefs") or all(r.get("kind") in EG_KINDS for r in s["targetRefs"]),
    "!has(self.mergeType) || ((!has(self.targetRef) || self.targetRef.kind in ['HTTPRoute', 'GRPCRoute', "
    "'UDPRoute', 'TCPRoute', 'TLSRoute']) && (!has(self.targetRefs) || self.targetRefs.all(ref, ref.kind in "
    "['HTTPRoute', 'GRPCRoute', 'UDPRoute', 'TCPRoute', 'TLSRoute'])) && (!has(self.targetSelectors) || "
    "self.targetSelectors.all(sel, sel.kind in ['HTTPRoute', 'GRPCRoute', 'UDPRoute', 'TCPRoute', 'TLSRoute'])))":
        lambda s: not has(s, "mergeType") or (
            (not has(s, "targetRef") or s["targetRef"].get("kind") in ROUTE_KINDS)
            and (not has(s, "targetRefs") or all(r.get("kind") in ROUTE_KINDS for r in s["targetRefs"]))
            and (not has(s, "targetSelectors") or all(t.get("kind") in ROUTE_KINDS for t in s["targetSelectors"]))),
    "self.type == 'HTTP' ? has(self.http) : !has(self.http)":
        lambda s: has(s, "http") == (s.get("type") == "HTTP"),
    "self.type == 'Image' ? has(self.image) : !has(self.image)":
        lambda s: has(s, "image") == (s.get("type") == "Image"),
}


def norm(rule: str) -> str:
    return " ".join(rule.split()).strip()


RULES = {norm(k): v for k, v in RULES.items()}


def cel_errors(schema: dict, value: object, path: str, unknown: list[str]) -> list[str]:
    """The CEL rules of `schema`'s nodes that `value` uses: broken ones (messages);
    rules this test cannot evaluate go to `unknown`."""
    errs: list[str] = []
    for v in schema.get("x-kubernetes-validations", []):
        fn = RULES.get(norm(v["rule"]))
        if fn is None:
            unknown.append(f"{path}: {norm(v['rule'])}")
        elif not fn(value):
            errs.append(f"{path}: {v.get('message', v['rule'])}")
    if isinstance(value, dict):
        for k, sub in value.items():
            if k in schema.get("properties", {}):
                errs += cel_errors(schema["properties"][k], sub, f"{path}.{k}", unknown)
            elif isinstance(schema.get("additionalProperties"), dict):
                errs += cel_errors(schema["additionalProperties"], sub, f"{path}[{k}]", unknown)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, sub in enumerate(value):
            errs += cel_errors(schema["items"], sub, f"{path}[{i}]", unknown)
    return errs


class Validator:
    def __init__(self) -> None:
        self.crds = load_crds()

    def errors(self, obj: dict) -> list[str]:
        """Why the API server (strict validation) would refuse `obj`; [] when it accepts."""
        if not isinstance(obj, dict):
            return ["not an object"]
        key = (obj.get("apiVersion"), obj.get("kind"))
        crd = self.crds.get(key)  # type: ignore[arg-type]
        if crd is None:
            return [f"no served CRD for apiVersion {key[0]!r} kind {key[1]!r}"]
        schema = root_schema(key[0], key[1], crd["schema"])  # type: ignore[arg-type]
        v = jsonschema.Draft7Validator(schema)
        errs = [f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in v.iter_errors(obj)]
        unknown: list[str] = []
        errs += cel_errors(crd["schema"], obj, "", unknown)
        errs += [f"CEL rule not evaluated by this test (add it to RULES): {u}" for u in unknown]
        return errs


# ---- what the control planes hand the plugin --------------------------------------------

def go_float(x: float) -> str:
    """A float64 as Go's protojson writes a Struct number (shortest; 'f' form below 1e21)."""
    if math.isfinite(x) and x == int(x) and abs(x) < 1e21:
        return str(int(x))
    if abs(x) >= 1e21 or (x != 0 and abs(x) < 1e-6):
        return re.sub(r"e([+-])0?(\d)", r"e\g<1>\2", f"{x!r}")
    return repr(x)


def istio_text(v: object) -> str:
    """istiod: pluginConfig is a google.protobuf.Struct (every number a float64),
    written as JSON (sorted keys, compact) into a StringValue."""
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k) + ":" + istio_text(v[k]) for k in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ",".join(istio_text(x) for x in v) + "]"
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    return go_float(float(v))


def eg_text(v: object) -> str:
    """Envoy Gateway: `config` as the API server stored it (apiextensionsv1.JSON: Go
    encoding/json, sorted keys, compact, integers as integers), its Raw bytes into a
    StringValue."""
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def decisions(policy: Path, trace: Path, engine: str) -> list[dict]:
    args = ["classify", "--policy", str(policy), "--trace", str(trace), "--engine", engine]
    if engine == "plugin":
        args += ["--plugin", tool_paths()["plugin"]]
    out = mapsctl(*args).stdout
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def main() -> int:
    if "--regenerate" in sys.argv:
        for rel in EXAMPLES:
            generate(rel, ROOT / rel)
            print(f"regenerated {rel}")
        return 0
    if jsonschema is None or yaml is None:
        print("FAIL manifests: Python jsonschema and PyYAML are missing (make test-manifests installs them into .venv)")
        return 1
    passed = failed = 0

    def check(name: str, fn) -> None:  # type: ignore[no-untyped-def]
        nonlocal passed, failed
        try:
            fn()
            passed += 1
            print(f"PASS manifests::{name}")
        except Exception as err:  # noqa: BLE001
            failed += 1
            print(f"FAIL manifests::{name}: {err}")

    scratch = Path(tempfile.mkdtemp(prefix="maps-manifests-"))  # removed at the end
    validator = Validator()

    def docs(path: Path) -> list[dict]:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]

    def examples_are_generated() -> None:
        for rel in EXAMPLES:
            out = scratch / Path(rel).name
            generate(rel, out)
            want, have = out.read_text(), (ROOT / rel).read_text()
            if want != have:
                diff = "\n".join(list(difflib.unified_diff(
                    have.splitlines(), want.splitlines(), rel, "generated", lineterm=""))[:40])
                raise AssertionError(f"{rel} is stale (make manifests):\n{diff}")
            # JSON is YAML: the same text parses as the same resources in both readers
            # (the policy part is JSON; the whole file is YAML).
            assert docs(out), f"{rel}: no resource"

    def examples_validate() -> None:
        want = json.loads(POLICY.read_text())
        for rel in EXAMPLES:
            resources = docs(ROOT / rel)
            kinds = [r.get("kind") for r in resources]
            assert kinds in (["WasmPlugin", "WasmPlugin"], ["EnvoyExtensionPolicy"]), f"{rel}: {kinds}"
            for r in resources:
                errs = validator.errors(r)
                assert not errs, f"{rel} {r['metadata']['name']}: " + "; ".join(errs)
                spec = r["spec"]
                embedded = spec["pluginConfig"] if r["kind"] == "WasmPlugin" else spec["wasm"][0]["config"]
                assert embedded == want, f"{rel}: the embedded policy differs from {POLICY.relative_to(ROOT)}"
            print(f"  {rel}: {len(resources)} resource(s) valid against "
                  f"{', '.join(sorted({validator.crds[(r['apiVersion'], r['kind'])]['crd'] for r in resources}))}")

    def validator_is_strict() -> None:
        istio = docs(ROOT / "examples/istio/wasmplugin.yaml")[0]
        eg = docs(ROOT / "examples/envoy-gateway/envoyextensionpolicy.yaml")[0]

        def mutated(obj: dict, fn) -> dict:  # type: ignore[no-untyped-def]
            o = copy.deepcopy(obj)
            fn(o)
            return o

        def rename(d: dict, old: str, new: str) -> None:
            d[new] = d.pop(old)

        bad = {
            "istio: misspelt spec field (failStrategey)": mutated(istio, lambda o: rename(o["spec"], "failStrategy", "failStrategey")),
            "istio: misspelt nested field (selector.matchLabel)": mutated(istio, lambda o: rename(o["spec"]["selector"], "matchLabels", "matchLabel")),
            "istio: wrong type (priority: \"high\")": mutated(istio, lambda o: o["spec"].__setitem__("priority", "high")),
            "istio: value outside the enum (failStrategy: FAIL_SOMETIMES)": mutated(istio, lambda o: o["spec"].__setitem__("failStrategy", "FAIL_SOMETIMES")),
            "istio: sha256 not 64 hex": mutated(istio, lambda o: o["spec"].__setitem__("sha256", "abc")),
            "istio: unknown metadata field (metadata.lables)": mutated(istio, lambda o: o["metadata"].__setitem__("lables", {"a": "b"})),
            "istio: unknown top-level field (specs)": mutated(istio, lambda o: o.__setitem__("specs", {})),
            "istio: wrong apiVersion (v1beta9)": mutated(istio, lambda o: o.__setitem__("apiVersion", "extensions.istio.io/v1beta9")),
            "istio: CEL, selector and targetRefs together": mutated(istio, lambda o: o["spec"].__setitem__("targetRefs", [{"kind": "Gateway", "name": "x", "group": "gateway.networking.k8s.io"}])),
            "istio: CEL, url scheme ftp": mutated(istio, lambda o: o["spec"].__setitem__("url", "ftp://x/y.wasm")),
            "eg: misspelt field (wasm[0].rootId)": mutated(eg, lambda o: rename(o["spec"]["wasm"][0], "rootID", "rootId")),
            "eg: wrong type (failOpen: \"no\")": mutated(eg, lambda o: o["spec"]["wasm"][0].__setitem__("failOpen", "no")),
            "eg: misspelt code field (code.imgae)": mutated(eg, lambda o: rename(o["spec"]["wasm"][0]["code"], "image", "imgae")),
            "eg: CEL, type HTTP without http": mutated(eg, lambda o: o["spec"]["wasm"][0]["code"].__setitem__("type", "HTTP")),
            "eg: CEL, targetRefs kind Service": mutated(eg, lambda o: o["spec"]["targetRefs"][0].__setitem__("kind", "Service")),
            "eg: targetRefs without group (required)": mutated(eg, lambda o: o["spec"]["targetRefs"][0].pop("group")),
        }
        for what, obj in bad.items():
            errs = validator.errors(obj)
            assert errs, f"the validator accepted: {what}"
            print(f"  rejected {what}: {errs[0][:110]}")
        # The policy stays free-form: an unknown key inside it is the plugin's to refuse.
        ok = mutated(istio, lambda o: o["spec"]["pluginConfig"].__setitem__("anything", 1))
        assert not validator.errors(ok), validator.errors(ok)

    def plugin_accepts_control_plane_text() -> None:
        plugin = Path(tool_paths()["plugin"])
        assert plugin.is_file(), f"{plugin} missing (make plugin)"
        trace = ROOT / "fixtures/demo/trace.jsonl"
        for src in ["fixtures/demo/policy.json", "fixtures/packed/policy.json"]:
            native = decisions(ROOT / src, trace, "native")
            for platform, rel in [("istio", "examples/istio/wasmplugin.yaml"),
                                  ("envoy-gateway", "examples/envoy-gateway/envoyextensionpolicy.yaml")]:
                out = scratch / f"{platform}.yaml"
                generate(rel, out, policy=src)
                r = docs(out)[0]
                assert not validator.errors(r), validator.errors(r)
                embedded = r["spec"]["pluginConfig"] if platform == "istio" else r["spec"]["wasm"][0]["config"]
                text = istio_text(embedded) if platform == "istio" else eg_text(embedded)
                handed = scratch / f"{platform}-handed.json"
                handed.write_text(text)
                got = decisions(handed, trace, "plugin")
                assert got == native, f"{src} through {platform}: the plugin decides differently ({len(got)} vs {len(native)} lines)"
                print(f"  {src} as {platform} hands it ({len(text)} bytes of JSON): "
                      f"{len(got)} decisions of the plugin = native")

    def refusals() -> None:
        # Exit codes of the subcommand (the Rust CLI tests check the messages).
        r = mapsctl("manifests", "--policy", "fixtures/invalid/prefixes.json", *EXAMPLES["examples/istio/wasmplugin.yaml"], check=False)
        assert r.returncode == 1 and not r.stdout, (r.returncode, r.stdout[:200])
        r = mapsctl("manifests", "--policy", str(POLICY), "--platform", "istio", "--image", IMAGE, "--namespace", "istio-system", check=False)
        assert r.returncode == 2 and "--selector" in r.stderr, r.stderr

    check("examples_are_what_mapsctl_generates", examples_are_generated)
    check("examples_validate_against_the_published_crds", examples_validate)
    check("the_validator_rejects_misspelt_fields_wrong_types_and_broken_rules", validator_is_strict)
    check("the_plugin_accepts_what_istio_and_envoy_gateway_hand_it", plugin_accepts_control_plane_text)
    check("mapsctl_manifests_refusals", refusals)
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"manifests: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
