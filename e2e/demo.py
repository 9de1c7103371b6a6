"""`make demo`: the demo policy in a real Envoy.

Starts one link server per PNI link of fixtures/demo/policy.json (and one for the
default internet path), generates the Envoy configuration with `mapsctl envoy-config`,
starts Envoy, sends requests from several customers (their address in
`x-forwarded-for`, one trusted hop) to Microsoft and other destinations, prints what
happened (each decision as Envoy's access log records it: no decision header leaves
Envoy), then the per-registration figures from Envoy's Prometheus endpoint, and stops
everything it started.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from envoy import prom_samples  # noqa: E402
from harness import ROOT, Edge  # noqa: E402
from traffic import request  # noqa: E402

POLICY = ROOT / "fixtures/demo/policy.json"

# (customer, source address, destination host)
CUSTOMERS = [
    ("Fabrikam (WA)", "20.33.1.10", "outlook.office365.com"),
    ("Fabrikam (WA)", "20.33.1.11", "contoso.sharepoint.com"),
    ("Fabrikam (WA), IPv6", "2603:10a0:400::10", "teams.microsoft.com"),
    ("Fabrikam (WA), pending /24", "20.33.16.5", "outlook.office365.com"),
    ("Fabrikam (WA)", "20.33.1.12", "www.example.org"),
    ("Tailspin (CA)", "23.96.64.20", "outlook.office365.com"),
    ("Wingtip (TX)", "40.112.8.7", "contoso.sharepoint.com"),
    ("Litware (IL)", "52.160.40.9", "teams.microsoft.com"),
    ("Adatum (VA), IPv6", "2620:1ec:800::7", "outlook.office.com"),
    ("Proseware (NY)", "65.52.96.3", "outlook.office365.com"),
    ("Fourth Coffee (UK)", "151.206.1.1", "outlook.office365.com"),
    ("Woodgrove (NL)", "157.55.160.8", "teams.microsoft.com"),
    ("Relecloud (FR)", "191.232.64.4", "outlook.office365.com"),
    ("Trey Research (SG)", "199.30.16.9", "contoso.sharepoint.com"),
    ("Wide World (AU)", "204.79.180.10", "outlook.office365.com"),
    ("Consolidated (MX), failed", "40.90.0.5", "outlook.office365.com"),
    ("not a customer", "198.18.0.1", "outlook.office365.com"),
]


def table(rows: list[list[str]], head: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


def main() -> int:
    edge = Edge(POLICY)
    try:
        edge.start()
        assert edge.envoy is not None
        print(
            f"Envoy (pid {edge.envoy.pid}) on 127.0.0.1:{edge.http_port} (HTTP) and "
            f":{edge.l4_port} (L4), admin :{edge.admin_port}; "
            f"{len(edge.links.links) - 1} link servers; config in {edge.outdir}\n"
        )
        answered = []
        for n, (_, src, host) in enumerate(CUSTOMERS):
            r = request(edge.http_port, src, host, path=f"/demo/customer/{n}")
            answered.append(f"{r.link}@{edge.edge_of(r.link)}" if r.link else f"HTTP {r.status}")
        # The decisions stay inside Envoy (no x-maps-* header goes upstream); they are in
        # its access log, written at each stream's end (bounded wait).
        def logged() -> dict[str, dict] | None:
            lines = {
                str(l.get("path")): l
                for l in edge.access_log()
                if str(l.get("path", "")).startswith("/demo/customer/")
            }
            return lines if len(lines) >= len(CUSTOMERS) else None

        log = edge.envoy.wait_for("access log lines", logged, timeout=15)
        rows = []
        for n, (name, src, host) in enumerate(CUSTOMERS):
            line = log.get(f"/demo/customer/{n}", {})
            try:
                d = json.loads(line.get("maps_decision") or "{}")
            except ValueError:
                d = {}
            rows.append(
                [
                    name, src, host, d.get("class", "?"), d.get("registration") or "-",
                    d.get("edge") or "-", d.get("backup") or "-", line.get("upstream_cluster", "-"),
                    answered[n],
                ]
            )
        print(table(rows, ["customer", "source", "destination", "class", "registration",
                           "edge", "backup", "Envoy cluster", "answered by"]))

        # A little more traffic, so that the figures below have some substance.
        sent = 0
        for i in range(12):
            for _, src, host in CUSTOMERS:
                request(edge.http_port, src, host, path=f"/demo/{i}")
                sent += 1
        # Histograms reach the admin endpoint at Envoy's stats flush (every 5 s): wait
        # until a flush after the last request has shown (the counts stop changing for
        # longer than a flush interval), at most 15 s.
        def samples(p: str) -> float:
            return sum(v for _, v in prom_samples(p, "maps_latency_ms_count"))

        deadline = time.monotonic() + 15
        prom = edge.envoy.prometheus()
        last, since = samples(prom), time.monotonic()
        while time.monotonic() < deadline and (last == 0 or time.monotonic() - since < 5.5):
            time.sleep(0.5)
            prom = edge.envoy.prometheus()
            if samples(prom) != last:
                last, since = samples(prom), time.monotonic()
        routed = prom_samples(prom, "maps_routed")
        count = {l["maps_registration"]: v for l, v in prom_samples(prom, "maps_latency_ms_count")}
        total = {l["maps_registration"]: v for l, v in prom_samples(prom, "maps_latency_ms_sum")}
        buckets: dict[str, list[tuple[float, float]]] = {}
        for l, v in prom_samples(prom, "maps_latency_ms_bucket"):
            le = float("inf") if l.get("le") == "+Inf" else float(l.get("le", "inf"))
            buckets.setdefault(l.get("maps_registration", "?"), []).append((le, v))

        def p95(reg: str) -> str:
            b = sorted(buckets.get(reg, []))
            n = count.get(reg, 0)
            for le, cum in b:
                if n and cum >= 0.95 * n:
                    return f"<= {le:g} ms"
            return "-"

        telemetry = {
            r["id"] for r in edge.policy.get("registrations", [])
            if any(p.get("telemetry") for p in r.get("prefixes", []))
        }
        rows = []
        for labels, v in sorted(routed, key=lambda x: (-x[1], x[0].get("maps_registration", ""))):
            reg = labels.get("maps_registration", "?")
            lat = (
                f"{count[reg]:.0f} samples, mean {total.get(reg, 0) / count[reg]:.1f} ms, p95 {p95(reg)}"
                if count.get(reg)
                else ("- (no samples yet)" if reg in telemetry else "- (no telemetry prefix)")
            )
            rows.append([reg, labels.get("maps_edge", "?"), f"{v:.0f}", lat])
        print(f"\nPer registration, from Envoy's /stats/prometheus (after {sent} more requests):")
        print(table(rows, ["registration", "edge", "maps_routed", "maps_latency_ms (requests from telemetry prefixes)"]))
        by_class = sorted(prom_samples(prom, "maps_requests"), key=lambda x: -x[1])
        print("\nmaps_requests by class: " + ", ".join(f"{l['maps_class']}={v:.0f}" for l, v in by_class))
        clusters = [
            (l.get("envoy_cluster_name", ""), v)
            for l, v in prom_samples(prom, "envoy_cluster_upstream_rq_completed")
            if v > 0
        ]
        print("upstream requests by Envoy cluster (the route's cluster): "
              + ", ".join(f"{c}={v:.0f}" for c, v in sorted(clusters)))
        return 0
    except Exception as err:  # noqa: BLE001
        print(f"demo failed: {err}")
        if edge.envoy is not None:
            print("---- Envoy log (last 100 lines) ----")
            print(edge.envoy.log_tail(100))
        return 1
    finally:
        edge.stop()
        print("\nstopped Envoy and the link servers")


if __name__ == "__main__":
    sys.exit(main())
