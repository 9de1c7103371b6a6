#!/usr/bin/env bash
# Usage: fuzz/envoy_validate.sh [N]
# The `envoy_config` fuzz target's inputs (up to N of fuzz/corpus/envoy_config, default
# 20, spread over the corpus) replayed with $MAPS_FUZZ_ENVOY_OUT set: each generated
# configuration is written out, then checked by `envoy --mode validate`. Fails when
# Envoy refuses any of them (its message and the input are printed).
set -euo pipefail
N=${1:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENVOY=${ENVOY:-$ROOT/.venv/bin/envoy}
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
BIN=$ROOT/fuzz/target/$TRIPLE/release/envoy_config
CORPUS=$ROOT/fuzz/corpus/envoy_config
[ -x "$BIN" ] || { echo "envoy_validate: $BIN not built (make fuzz-build)" >&2; exit 2; }
[ -x "$ENVOY" ] || { echo "envoy_validate: no Envoy at $ENVOY (make envoy)" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/cfg"
mapfile -t all < <(find "$CORPUS" -type f -size +0 | sort)
total=${#all[@]}
files=()
if [ "$total" -gt 0 ]; then
  step=$(( (total + N - 1) / N ))
  for ((i = 0; i < total; i += step)); do files+=("${all[$i]}"); done
fi
[ "${#files[@]}" -gt 0 ] || { echo "envoy_validate: empty corpus ($CORPUS)"; exit 0; }
# One input at a time, so that each configuration is known by its input.
fail=0
checked=0
for f in "${files[@]}"; do
  before=$(ls "$out/cfg" | wc -l)
  if ! MAPS_FUZZ_ENVOY_OUT=$out/cfg "$BIN" "$f" >"$out/log" 2>&1; then
    [ -f "$f" ] || continue   # a running fuzzer reduced it away meanwhile
    echo "the envoy_config target failed on $f:"; tail -20 "$out/log"
    fail=1
    continue
  fi
  after=$(ls "$out/cfg" | wc -l)
  [ "$after" -gt "$before" ] || continue   # the policy did not load or generate refused
  dir=$out/cfg/$(printf '%05d' "$before")
  checked=$((checked + 1))
  if ! r=$("$ENVOY" --mode validate -c "$dir/envoy.json" --use-dynamic-base-id --log-level warning 2>&1) \
      || ! grep -q OK <<<"$r"; then
    echo "envoy --mode validate refused the configuration of $f:"
    echo "$r" | tail -20
    fail=1
  fi
done
echo "envoy_validate: ${#files[@]} inputs, $checked configurations validated by Envoy, $([ $fail = 0 ] && echo 'all accepted' || echo 'SOME REFUSED')"
exit $fail
