#!/usr/bin/env bash
# Runs Weft's whole test suite: installs what it needs, then every crate's unit, integration
# and real-Open-vSwitch/etcd tests. Must run as root (tests create network namespaces).
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p ofproto`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
if [ $# -eq 0 ]; then set -- --workspace; fi
# --no-fail-fast: one failing test binary must not hide the results of the others.
cargo test --locked --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run: cargo prints a summary per test binary, the last of which
# is often an empty doc-test run.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "TOTAL: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
