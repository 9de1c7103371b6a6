#!/usr/bin/env bash
# Copies the seeds into fuzz/corpus/<target>/ (idempotent; the corpora themselves are
# not committed): the policies and traces under fixtures/, the packed fixture's decoded
# prefix_table, and the few small seeds under fuzz/seeds/<target>/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
F=$ROOT/fixtures
C=$ROOT/fuzz/corpus
mkdir -p "$C"/{policy,packed,compiled,trace,plugin_request,envoy_config}

# Every policy document under fixtures/ (valid and invalid; not the golden reports,
# nor the large imported source lists).
for p in "$F"/*/policy.json "$F"/invalid/*.json "$F"/diff/new-policy.json "$F"/imports/base-policy.json; do
  case $p in *.golden.json) continue ;; esac
  [ -f "$p" ] || continue
  cp -f "$p" "$C/policy/fixture-$(basename "$(dirname "$p")")-$(basename "$p")"
done
# The packed table itself (raw bytes, as the `packed` target takes its input).
python3 - "$F/packed/policy.json" "$C/packed/fixture-packed.bin" <<'PY'
import base64, json, sys
doc = json.load(open(sys.argv[1]))
open(sys.argv[2], "wb").write(base64.b64decode(doc["prefix_table"]))
PY
for t in "$F"/*/trace.jsonl; do
  cp -f "$t" "$C/trace/fixture-$(basename "$(dirname "$t")")-trace.jsonl"
done
for t in policy packed trace plugin_request envoy_config; do
  if [ -d "$ROOT/fuzz/seeds/$t" ]; then
    cp -f "$ROOT/fuzz/seeds/$t"/* "$C/$t/" 2>/dev/null || true
  fi
done
echo "seeded: $(for t in policy packed trace plugin_request envoy_config; do printf '%s=%s ' "$t" "$(ls "$C/$t" | wc -l)"; done)"
