#!/usr/bin/env bash
# The main job: sets up what Weft needs and shows what it can do today.
# `scripts/demo.sh` runs it; `scripts/demo.sh down` removes what it made.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "down" ]; then
  echo "demo: nothing running to tear down yet (the multi-host demo is not built yet)"
  exit 0
fi

bash scripts/install-deps.sh
# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo build --workspace --release --examples --bins --locked -q

echo "== Weft demo =="
echo "What exists today: the OpenFlow 1.3 codec (ofproto) and its debugging tool, ofp-print."
echo
echo "-- A flow-mod as Weft's agent would send it, decoded by ofp-print:"
ofp=target/release/examples/ofp-print
hex="040e00900000000200000000000000000000000000000000010000000000ffffffffffffffffffffffffffff001f0000000100428000000400000001800008065054000000068000060650540000000580000a02080680000c02000080002a02000280002c04c0a8000280002e04c0a80001000000000000000400180000000000000010000000030000000000000000"
"$ofp" "$hex"
echo
echo "-- A HELLO offering OpenFlow 1.3:"
"$ofp" 04000010000000010001000800000010
echo
echo "-- A truncated message is refused with a reason:"
"$ofp" 040e0090000000020000 || echo "(exit status $?, as expected)"
