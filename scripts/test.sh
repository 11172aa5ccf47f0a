#!/usr/bin/env bash
# Runs Weft's whole test suite: installs what it needs, then every crate's unit, integration
# and real-Open-vSwitch/etcd tests. Must run as root (tests create network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

cargo build --workspace --all-targets --locked 2>&1 | grep -v -E '^\s*(Compiling|Checking|Downloaded|Downloading)' || true
cargo test --workspace --locked "$@"
