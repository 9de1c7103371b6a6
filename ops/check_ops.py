#!/usr/bin/env python3
"""Checks the operations files against the metrics the MAPS plugin and Envoy export.

    python3 ops/check_ops.py            # the checks below; exit 1 with the reasons
    python3 ops/check_ops.py --names    # the metric names the dashboard and rules use (JSON)

What it checks (`make test-ops` runs it, after `promtool check/test rules`):

- every PromQL expression of the Grafana dashboard (ops/grafana/maps-dashboard.json:
  panel targets and template-variable queries) and of the alert rules
  (ops/prometheus/maps-alerts.yml) names only metrics that exist: the plugin's, as its
  metric table says (wasm-plugin/src/proxy/metrics.rs, turned into Prometheus names the
  way Envoy's stats_tags and /stats/prometheus do), or the few Envoy metrics listed in
  ENVOY_METRICS; and every `maps_*` label it uses is a tag `mapsctl envoy-config`
  writes (mapsctl/src/envoy_config.rs, stats_tags);
- every alert has `for`, a severity label, summary and runbook annotations, and a
  promtool test (ops/prometheus/maps-alerts.test.yml) where it fires and one where it
  does not;
- the dashboard is a Grafana dashboard model (uid, title, unique panel ids, each panel
  with a grid position, a data source and at least one query).

`make e2e-prometheus` checks the same names against a real Prometheus scraping a real
Envoy (e2e/test_prometheus.py imports `used_metric_names` from here).

The PromQL reading is a small tokenizer, not a parser: strings, label matchers `{...}`,
ranges `[...]`, numbers, Grafana variables (`$x`, `${x}`) and keywords are skipped; an
identifier followed by `(` is a function (it must be one PromQL knows), as is an
aggregation operator (`sum by (x) (...)`), except `by`,
`without`, `on`, `ignoring`, `group_left`, `group_right`, whose parenthesised list holds
label names; any other identifier is a metric name.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "ops/grafana/maps-dashboard.json"
RULES = ROOT / "ops/prometheus/maps-alerts.yml"
RULE_TESTS = ROOT / "ops/prometheus/maps-alerts.test.yml"
METRICS_RS = ROOT / "wasm-plugin/src/proxy/metrics.rs"
ENVOY_CONFIG_RS = ROOT / "mapsctl/src/envoy_config.rs"

# Envoy's own metrics the dashboard and the alerts use (Envoy 1.40's Prometheus names;
# `make e2e-prometheus` checks each exists in a real scrape of the generated config).
ENVOY_METRICS = {
    "envoy_cluster_membership_healthy": "healthy hosts of a cluster (edge_<id>: the edge's links)",
    "envoy_cluster_membership_total": "hosts of a cluster",
    "envoy_cluster_upstream_rq_xx": "upstream responses by status class",
}

# Labels Envoy's default tag extraction gives the metrics above.
ENVOY_LABELS = {"envoy_cluster_name", "envoy_response_code_class"}

# PromQL (Prometheus 2.42): aggregation operators, functions, keywords.
AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile",
}
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
    "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
    "delta", "deriv", "exp", "floor", "histogram_quantile", "holt_winters", "hour", "idelta",
    "increase", "irate", "label_join", "label_replace", "last_over_time", "ln", "log10",
    "log2", "max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear",
    "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar",
    "sgn", "sin", "sinh", "sort", "sort_desc", "sqrt", "stddev_over_time",
    "stdvar_over_time", "sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year",
} | AGGREGATIONS
LABEL_LIST_CLAUSES = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "offset", "bool", "atan2", "inf", "nan", "start", "end"}

IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?[a-zA-Z]*")
GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*")
MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')")


class PromQLError(ValueError):
    pass


def _skip_string(expr: str, i: int) -> int:
    quote = expr[i]
    j = i + 1
    while j < len(expr):
        if expr[j] == "\\" and quote != "`":
            j += 2
            continue
        if expr[j] == quote:
            return j + 1
        j += 1
    raise PromQLError(f"unterminated string at {i}: {expr!r}")


def _closing(expr: str, i: int, open_: str, close: str) -> int:
    """The index after the `close` matching `expr[i] == open_`, strings skipped."""
    depth = 0
    j = i
    while j < len(expr):
        c = expr[j]
        if c in "\"'`":
            j = _skip_string(expr, j)
            continue
        if c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    raise PromQLError(f"unbalanced {open_!r} at {i}: {expr!r}")


def tokenize(expr: str) -> tuple[set[str], set[str], set[str]]:
    """(metric names, label names, functions) an expression uses."""
    text = GRAFANA_VAR.sub(" ", expr)
    metrics: set[str] = set()
    labels: set[str] = set()
    functions: set[str] = set()
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "\"'`":
            i = _skip_string(text, i)
        elif c == "{":
            end = _closing(text, i, "{", "}")
            body = text[i + 1 : end - 1]
            for name, op, value in MATCHER_LABEL.findall(body):
                if name == "__name__":
                    if op != "=":
                        raise PromQLError(f"a metric chosen by regex cannot be checked: {expr!r}")
                    metrics.add(value[1:-1])
                else:
                    labels.add(name)
            i = end
        elif c == "[":
            i = _closing(text, i, "[", "]")  # a range or subquery: durations only
        elif c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            m = NUMBER.match(text, i)
            i = m.end() if m else i + 1
        elif IDENT.match(text, i):
            m = IDENT.match(text, i)
            assert m is not None
            word = m.group(0)
            j = m.end()
            while j < n and text[j].isspace():
                j += 1
            follows_paren = j < n and text[j] == "("
            low = word.lower()
            if low in LABEL_LIST_CLAUSES:
                if follows_paren:
                    end = _closing(text, j, "(", ")")
                    labels.update(IDENT.findall(text[j + 1 : end - 1]))
                    i = end
                else:
                    i = j  # `group_left` without a list
            elif low in AGGREGATIONS:
                functions.add(low)  # `sum(...)`, or `sum by (...) (...)`
                i = j
            elif follows_paren:
                if low not in FUNCTIONS:
                    raise PromQLError(f"unknown function {word!r} in {expr!r}")
                functions.add(low)
                i = j
            elif low in KEYWORDS:
                i = j
            else:
                metrics.add(word)
                i = j
        else:
            i += 1  # operators, commas, parentheses, @
    return metrics, labels, functions


def grafana_variable_expr(query: str) -> str | None:
    """The PromQL inside a Grafana Prometheus variable query (None: names no metric)."""
    q = query.strip()
    m = re.fullmatch(r"label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)", q, re.S)
    if m:
        return m.group(1)
    if re.fullmatch(r"label_values\(\s*[A-Za-z_][A-Za-z0-9_]*\s*\)", q):
        return None
    m = re.fullmatch(r"(?:query_result|metrics)\((.*)\)", q, re.S)
    if m:
        return m.group(1)
    if q.startswith("label_names("):
        return None
    return q


# ---- what exists ------------------------------------------------------------------------

def plugin_metric_names(metrics_rs: Path = METRICS_RS) -> dict[str, str]:
    """{Prometheus name: plugin name} from the metric table of metrics.rs.

    `maps.class.<class>.requests` (counter) -> `maps_requests`: each `<tag>.<value>.`
    pair is taken out by the stats_tags, Envoy's Prometheus output drops the
    `wasmcustom.` namespace and writes `.` as `_`; a histogram is `_bucket`, `_sum` and
    `_count`."""
    out: dict[str, str] = {}
    for line in metrics_rs.read_text().splitlines():
        m = re.match(r"//!\s*\|(.*?)\|\s*(counter|gauge|histogram)\s*\|", line)
        if not m:
            continue
        for name in re.findall(r"`([^`]+)`", m.group(1)):
            tagged = re.sub(r"[a-z_]+\.<[^>]+>\.", "", name)
            base = tagged.replace(".", "_")
            if m.group(2) == "histogram":
                for suffix in ("_bucket", "_sum", "_count"):
                    out[base + suffix] = name
            else:
                out[base] = name
    if not out:
        raise SystemExit(f"no metric table found in {metrics_rs}")
    return out


def plugin_tag_names(envoy_config_rs: Path = ENVOY_CONFIG_RS) -> set[str]:
    """The tag names `mapsctl envoy-config` writes in stats_tags."""
    text = envoy_config_rs.read_text()
    start = text.find("pub fn stats_tags()")
    body = text[start : text.find("\n}\n", start)]
    tags = set(re.findall(r'"tag_name":\s*"([a-z_]+)"', body))
    if not tags:
        raise SystemExit(f"no stats_tags found in {envoy_config_rs}")
    return tags


# ---- what is used -----------------------------------------------------------------------

def dashboard_exprs(dashboard: dict) -> list[tuple[str, str]]:
    """[(where, PromQL)] of every panel target and template variable."""
    out: list[tuple[str, str]] = []

    def walk(panels: list[dict]) -> None:
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((f"panel {p.get('title')!r} target {t.get('refId')}", t["expr"]))
            walk(p.get("panels", []))

    walk(dashboard.get("panels", []))
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        expr = grafana_variable_expr(q)
        if expr:
            out.append((f"variable ${v.get('name')}", expr))
    return out


def load_yaml(path: Path):  # type: ignore[no-untyped-def]
    try:
        import yaml
    except ImportError:
        raise SystemExit(
            "check_ops.py needs PyYAML: run it with Debian's python3 (apt-get install "
            "python3-yaml), as `make test-ops` does"
        ) from None
    return yaml.safe_load(path.read_text())


def rule_exprs(rules: dict) -> list[tuple[str, str]]:
    out = []
    for g in rules.get("groups", []):
        for r in g.get("rules", []):
            name = r.get("alert") or r.get("record")
            out.append((f"rule {name}", r["expr"]))
    return out


def used_metric_names() -> dict[str, list[str]]:
    """{metric name: [where used]} for the dashboard and the alert rules."""
    used: dict[str, list[str]] = {}
    exprs = dashboard_exprs(json.loads(DASHBOARD.read_text())) + rule_exprs(load_yaml(RULES))
    for where, expr in exprs:
        for name in tokenize(expr)[0]:
            used.setdefault(name, []).append(where)
    return used


# ---- checks -----------------------------------------------------------------------------

def check_names(exprs: list[tuple[str, str]], known: set[str], tags: set[str]) -> list[str]:
    problems = []
    for where, expr in exprs:
        try:
            metrics, labels, _ = tokenize(expr)
        except PromQLError as e:
            problems.append(f"{where}: {e}")
            continue
        if not metrics:
            problems.append(f"{where}: no metric in {expr!r}")
        for name in sorted(metrics - known):
            problems.append(
                f"{where}: metric {name!r} is neither the plugin's (wasm-plugin/src/proxy/metrics.rs) "
                f"nor a listed Envoy metric (ENVOY_METRICS in ops/check_ops.py)"
            )
        for label in sorted(labels):
            if label.startswith("maps_") and label not in tags:
                problems.append(
                    f"{where}: label {label!r} is no stats_tag of mapsctl envoy-config ({sorted(tags)})"
                )
            if label.startswith("envoy_") and label not in ENVOY_LABELS:
                problems.append(f"{where}: label {label!r} is not in ENVOY_LABELS")
    return problems


def check_rules(rules: dict, tests: dict) -> list[str]:
    problems = []
    fires: dict[str, int] = {}
    silent: dict[str, int] = {}
    for t in tests.get("tests", []):
        for a in t.get("alert_rule_test", []):
            bucket = fires if a.get("exp_alerts") else silent
            bucket[a["alertname"]] = bucket.get(a["alertname"], 0) + 1
    if "maps-alerts.yml" not in tests.get("rule_files", []):
        problems.append(f"{RULE_TESTS.name} does not load maps-alerts.yml")
    alerts = [r for g in rules.get("groups", []) for r in g.get("rules", []) if "alert" in r]
    if not alerts:
        problems.append(f"{RULES.name}: no alert")
    for r in alerts:
        name = r["alert"]
        if not r.get("for"):
            problems.append(f"alert {name}: no `for`")
        if r.get("labels", {}).get("severity") not in ("warning", "critical"):
            problems.append(f"alert {name}: severity must be warning or critical")
        for key in ("summary", "runbook"):
            if not r.get("annotations", {}).get(key):
                problems.append(f"alert {name}: no {key} annotation")
        if not fires.get(name):
            problems.append(f"alert {name}: no promtool test where it fires")
        if not silent.get(name):
            problems.append(f"alert {name}: no promtool test where it must not fire")
    return problems


def check_dashboard(d: dict) -> list[str]:
    problems = []
    for key in ("uid", "title", "panels", "schemaVersion"):
        if key not in d:
            problems.append(f"dashboard: no {key!r}")
    ids: set[int] = set()

    def walk(panels: list[dict]) -> None:
        for p in panels:
            pid = p.get("id")
            if pid in ids:
                problems.append(f"dashboard: panel id {pid} twice")
            ids.add(pid)
            if "gridPos" not in p:
                problems.append(f"panel {p.get('title')!r}: no gridPos")
            if p.get("type") != "row":
                if not p.get("datasource"):
                    problems.append(f"panel {p.get('title')!r}: no datasource")
                if not any(t.get("expr") for t in p.get("targets", [])):
                    problems.append(f"panel {p.get('title')!r}: no query")
            walk(p.get("panels", []))

    walk(d.get("panels", []))
    return problems


def self_test() -> None:
    """The tokenizer on expressions whose answer is known (a wrong reading would make
    the name check pass or fail for the wrong reason)."""
    cases = {
        'sum by (maps_class) (rate(maps_requests{job="$job", instance=~"$instance"}[$__rate_interval]))':
            ({"maps_requests"}, {"maps_class", "job", "instance"}),
        "histogram_quantile(0.95, sum by (job, le) (rate(maps_latency_ms_bucket[5m]))) > 300":
            ({"maps_latency_ms_bucket"}, {"job", "le"}),
        'count(count_values("version", maps_policy_version)) > 1':
            ({"maps_policy_version"}, set()),
        "a == 0 and on (job) sum(b) by (x) > 0 unless c offset 5m or vector(0)":
            ({"a", "b", "c"}, {"job", "x"}),
        'x / ignoring(le) group_left(maps_edge) y{__name__="z"} @ 1609746000':
            ({"x", "y", "z"}, {"le", "maps_edge"}),
        "sum(rate(m[5m:1m])) without (instance) * 1e3 + 0x1f":
            ({"m"}, {"instance"}),
    }
    for expr, (metrics, labels) in cases.items():
        got_m, got_l, _ = tokenize(expr)
        assert (got_m, got_l) == (metrics, labels), f"tokenize({expr!r}) = {got_m}, {got_l}"
    for bad in ["not_a_function(x)", 'x{__name__=~"maps_.*"}', 'x{a="b}']:
        try:
            tokenize(bad)
        except PromQLError:
            continue
        raise AssertionError(f"tokenize({bad!r}) did not refuse")
    assert check_names([("t", "maps_requestz")], {"maps_requests"}, set()), "an unknown name passed"
    assert grafana_variable_expr("label_values(maps_routed{job=\"$job\"}, maps_registration)") == 'maps_routed{job="$job"}'


def main(argv: list[str]) -> int:
    self_test()
    if "--names" in argv:
        print(json.dumps(sorted(used_metric_names())))
        return 0
    plugin = plugin_metric_names()
    tags = plugin_tag_names()
    known = set(plugin) | set(ENVOY_METRICS)
    dashboard = json.loads(DASHBOARD.read_text())
    rules = load_yaml(RULES)
    tests = load_yaml(RULE_TESTS)
    d_exprs = dashboard_exprs(dashboard)
    r_exprs = rule_exprs(rules)
    problems = (
        check_names(d_exprs + r_exprs, known, tags)
        + check_rules(rules, tests)
        + check_dashboard(dashboard)
    )
    used = used_metric_names()
    if problems:
        print("check_ops: FAILED")
        for p in problems:
            print("  " + p)
        return 1
    print(
        f"check_ops: {len(d_exprs)} dashboard and {len(r_exprs)} rule expressions name "
        f"{len(used)} metrics, all exported ({len(set(used) & set(plugin))} of the plugin's "
        f"{len(plugin)}, {len(set(used) & set(ENVOY_METRICS))} of Envoy's); maps_* labels "
        f"within the stats_tags {sorted(tags)}; every alert has for, severity, summary, runbook "
        "and a promtool test firing and one silent"
    )
    unused = sorted(set(plugin) - set(used))
    if unused:
        print(f"check_ops: plugin metrics no panel or rule uses: {', '.join(unused)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
