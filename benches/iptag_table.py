"""The `ip_tagging` table with exact MAPS semantics, for `bench_envoy.py`'s `iptag`
configuration (issue 11).

MAPS answers an address with its longest matching registered prefix; Envoy's
`ip_tagging` adds the tags of *every* matching prefix. So nested prefixes whose
outcomes differ cannot be handed to `ip_tagging` as they are: the table is flattened
here into disjoint address ranges, each carrying the outcome of its longest match,
then written as CIDRs. Only the flattening is done here; the outcome of every prefix
(its class, edge and backup) comes from `mapsctl classify`, asked about one address
whose longest match that prefix is, so no decision logic is repeated in Python.

    table = build(mapsctl, policy_path, host)     # IptagTable
    table.cidrs      {tag: [(family, network int, length), ...]}
    table.lookup(a)  the tag an address gets from the table (None: no tag)
    check(mapsctl, policy_path, host, table, extra_addresses)   # mapsctl agrees?

A tag is the routing outcome of a `maps` decision, `<edge>><backup>` (the pair that
names the plugin's Envoy cluster `maps_<edge>_<backup>`); every other class is left
untagged (the catch-all route), exactly as the plugin leaves it without a MAPS route.
"""

from __future__ import annotations

import base64
import bisect
import ipaddress
import json
import random
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# Envoy's LC trie (ip_tagging) refuses a table of more CIDR ranges than this:
# "LC-Trie can only support '262144' CIDR ranges with the specified fill factor".
IPTAG_MAX_RANGES = 1 << 18

WIDTH = {4: 32, 6: 128}


def _packed_prefixes(text: str) -> list[tuple[int, int, int]]:
    """(family, network, length) of every record of a packed `prefix_table`.

    The format is policy-core's (packed.rs): `MAPT`, version 1, then per record a
    LEB128 registration index, a flags byte (bit 4: IPv6), the prefix length and the
    network's ceil(len/8) significant bytes. Only the networks are read; validation of
    the records is mapsctl's (a policy that does not validate never gets here)."""
    raw = base64.b64decode(text.strip())
    if raw[:5] != b"MAPT\x01":
        raise ValueError("prefix_table does not start with MAPT version 1 "
                         "(a newer packed format? update benches/iptag_table.py)")
    out = []
    i, n = 5, len(raw)
    while i < n:
        while raw[i] & 0x80:  # registration index (LEB128), not needed here
            i += 1
        i += 1
        flags, length = raw[i], raw[i + 1]
        i += 2
        nbytes = (length + 7) // 8
        fam = 6 if flags & 0x10 else 4
        width = WIDTH[fam]
        net = int.from_bytes(raw[i:i + nbytes], "big") << (width - 8 * nbytes) if nbytes else 0
        i += nbytes
        out.append((fam, net, length))
    return out


def policy_prefixes(policy_path: Path) -> list[tuple[int, int, int]]:
    """Every registered prefix of the policy: those listed in its registrations and
    those of its packed `prefix_table`, as (family, network, length), deduplicated."""
    doc = json.loads(policy_path.read_text())
    out = []
    for reg in doc.get("registrations", []):
        for p in reg.get("prefixes", []):
            net = ipaddress.ip_network(p["prefix"], strict=False)
            out.append((net.version, int(net.network_address), net.prefixlen))
    if doc.get("prefix_table"):
        out += _packed_prefixes(doc["prefix_table"])
    return sorted(set(out))


def flatten(prefixes: list[tuple[int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Disjoint ranges (family, first, last, index of the longest matching prefix in
    `prefixes`), in address order; addresses no prefix covers are left out.

    `prefixes` must be sorted as `policy_prefixes` returns them (by network, then
    shorter first), so an enclosing prefix comes before those nested in it: a sweep
    with a stack of the prefixes open at the current address."""
    out: list[tuple[int, int, int, int]] = []
    for fam in (4, 6):
        width = WIDTH[fam]
        stack: list[tuple[int, int]] = []  # (last address, prefix index), innermost last
        cur = 0  # first address not yet assigned to a range
        for idx, (f, net, length) in enumerate(prefixes):
            if f != fam:
                continue
            first, last = net, net + (1 << (width - length)) - 1
            # Close the prefixes that end before this one starts.
            while stack and stack[-1][0] < first:
                end, p = stack.pop()
                if cur <= end:
                    out.append((fam, cur, end, p))
                    cur = end + 1
            if stack and cur < first:
                out.append((fam, cur, first - 1, stack[-1][1]))
            stack.append((last, idx))
            cur = first
        while stack:
            end, p = stack.pop()
            if cur <= end:
                out.append((fam, cur, end, p))
                cur = end + 1
    return out


def cidrs_of(first: int, last: int, width: int) -> list[tuple[int, int]]:
    """The fewest CIDRs (network, length) covering exactly first..last."""
    out = []
    while first <= last:
        # The largest block aligned at `first` that does not pass `last`.
        size = (first & -first) if first else 1 << width
        while size > last - first + 1:
            size >>= 1
        out.append((first, width - size.bit_length() + 1))
        first += size
    return out


def _address(fam: int, value: int) -> str:
    if fam == 4:  # the common case, ten times faster than ipaddress
        return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"
    return str(ipaddress.IPv6Address(value))


# The fields of a decision line used here (a line is a flat JSON object but for the
# `failover` list, which comes after them): cheaper than parsing a million lines.
_FIELD = {k: re.compile(rf'"{k}":(?:"([^"]*)"|null)') for k in ("class", "prefix", "edge", "backup")}


def _fields(line: str) -> dict:
    out = {}
    for k, rx in _FIELD.items():
        m = rx.search(line)
        if m:
            out[k] = m.group(1)
    return out


def classify(mapsctl: str, policy_path: Path, host: str,
             addresses: list[str]) -> list[dict]:
    """`mapsctl classify` (native) of one flow per address to `host`, in order: each
    decision's class, prefix, edge and backup."""
    flow = json.dumps(host)
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as t:
        t.writelines(f'{{"src":"{a}","host":{flow}}}\n' for a in addresses)
        trace = t.name
    try:
        r = subprocess.run([mapsctl, "classify", "--policy", str(policy_path), "--trace", trace,
                            "--fail-on-error"], capture_output=True, text=True, timeout=1800)
    finally:
        Path(trace).unlink(missing_ok=True)
    if r.returncode != 0:
        raise RuntimeError(f"mapsctl classify --policy {policy_path} failed "
                           f"(exit {r.returncode}): {r.stderr.strip()[:2000]}")
    lines = [_fields(line) for line in r.stdout.splitlines() if line]
    if len(lines) != len(addresses):
        raise RuntimeError(f"mapsctl classify answered {len(lines)} lines for "
                           f"{len(addresses)} flows")
    return lines


def tag_of(decision: dict) -> str | None:
    """The routing outcome of a decision line: `<edge>><backup>` for `maps`, else None."""
    if decision.get("class") != "maps":
        return None
    return f"{decision['edge']}>{decision.get('backup') or ''}"


@dataclass
class IptagTable:
    prefixes: int = 0  # registered prefixes in the policy
    intervals: int = 0  # disjoint ranges of constant longest match
    classified: int = 0  # addresses mapsctl classified to get the outcomes
    # tag -> [(family, network, length)]
    cidrs: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)
    build_s: float = 0.0
    # for lookup(): per family, sorted (first, last, tag) of every CIDR in `cidrs`
    _ranges: dict[int, list[tuple[int, int, str]]] = field(default_factory=dict)

    @property
    def ranges(self) -> int:
        """The CIDR ranges `ip_tagging` would be given (its limit counts these)."""
        return sum(len(v) for v in self.cidrs.values())

    @property
    def fits(self) -> bool:
        return self.ranges <= IPTAG_MAX_RANGES

    def lookup(self, address: str) -> str | None:
        ip = ipaddress.ip_address(address)
        rs = self._ranges.get(ip.version, [])
        v = int(ip)
        i = bisect.bisect_right(rs, (v, float("inf"), "")) - 1
        if i >= 0 and rs[i][0] <= v <= rs[i][1]:
            return rs[i][2]
        return None

    def envoy_ip_tags(self) -> list[dict]:
        """The `ip_tags` field of an `envoy.filters.http.ip_tagging` configuration."""
        return [{"ip_tag_name": tag,
                 "ip_list": [{"address_prefix": _address(fam, net), "prefix_len": length}
                             for fam, net, length in nets]}
                for tag, nets in sorted(self.cidrs.items())]

    def summary(self) -> dict:
        return {"prefixes": self.prefixes, "intervals": self.intervals,
                "classified": self.classified, "tags": len(self.cidrs),
                "ranges": self.ranges, "max_ranges": IPTAG_MAX_RANGES, "fits": self.fits,
                "build_s": round(self.build_s, 2)}


def build(mapsctl: str, policy_path: Path, host: str) -> IptagTable:
    """The flattened table of a policy, for flows to `host`."""
    t0 = time.monotonic()
    prefixes = policy_prefixes(policy_path)
    intervals = flatten(prefixes)
    # One address per prefix that is the longest match somewhere: the first address
    # of its first range (the outcome depends on the matched prefix only).
    rep: dict[int, str] = {}
    for fam, first, _, p in intervals:
        if p not in rep:
            rep[p] = _address(fam, first)
    order = list(rep)
    decisions = classify(mapsctl, policy_path, host, [rep[p] for p in order])
    tag: dict[int, str | None] = {}
    for p, d in zip(order, decisions):
        fam, net, length = prefixes[p]
        # mapsctl must have matched the very prefix the flattening says is longest:
        # otherwise the flattening (or the decoding of the table) is wrong.
        want = f"{_address(fam, net)}/{length}"
        if d.get("prefix") != want:
            raise RuntimeError(f"flattening disagrees with mapsctl: {rep[p]} matches {want} "
                               f"here, {d.get('prefix')!r} in mapsctl")
        tag[p] = tag_of(d)
    # Tagged ranges only (untagged addresses take the catch-all route), adjacent ranges
    # of the same tag merged, then cut into CIDRs.
    table = IptagTable(prefixes=len(prefixes), intervals=len(intervals), classified=len(order))
    merged: list[tuple[int, int, int, str]] = []
    for fam, first, last, p in intervals:
        t = tag[p]
        if t is None:
            continue
        if merged and merged[-1][0] == fam and merged[-1][2] + 1 == first and merged[-1][3] == t:
            merged[-1] = (fam, merged[-1][1], last, t)
        else:
            merged.append((fam, first, last, t))
    for fam, first, last, t in merged:
        table.cidrs.setdefault(t, []).extend(
            (fam, net, length) for net, length in cidrs_of(first, last, WIDTH[fam]))
    # lookup() and check() read the CIDRs themselves: what Envoy is given.
    for t, nets in table.cidrs.items():
        for fam, net, length in nets:
            table._ranges.setdefault(fam, []).append(
                (net, net + (1 << (WIDTH[fam] - length)) - 1, t))
    for rs in table._ranges.values():
        rs.sort()
    table.build_s = time.monotonic() - t0
    return table


def check(mapsctl: str, policy_path: Path, host: str, table: IptagTable,
          addresses: list[str], samples: int = 5000, seed: int = 11) -> dict:
    """Compares the table's tag with mapsctl's decision for `addresses` plus, for up to
    `samples` random CIDRs of the table, their first and last addresses and the
    addresses just outside them. Returns the counts; raises on the first disagreement."""
    rng = random.Random(seed)
    probe = list(addresses)
    spans = [(fam, a, b) for fam, rs in table._ranges.items() for a, b, _ in rs]
    for fam, a, b in rng.sample(spans, min(samples, len(spans))):
        top = (1 << WIDTH[fam]) - 1
        probe += [_address(fam, x) for x in (a, b, a - 1, b + 1) if 0 <= x <= top]
    decisions = classify(mapsctl, policy_path, host, probe)
    tagged = 0
    for a, d in zip(probe, decisions):
        want, got = tag_of(d), table.lookup(a)
        if want != got:
            raise RuntimeError(f"ip_tagging table disagrees with mapsctl for {a}: "
                               f"table {got!r}, mapsctl {want!r} ({d})")
        tagged += want is not None
    return {"addresses": len(probe), "tagged": tagged}
