#!/usr/bin/env bash
# Runs Weft's whole test suite: installs what it needs, builds the benchmarks (so that one that
# stops compiling fails the run), then runs every crate's unit, integration and
# real-Open-vSwitch/etcd tests. Must run as root (tests create network namespaces).
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p ofproto`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
# Snapshot tests (expect-test) rewrite their expectations when this is set: a run of the suite
# must judge the snapshots, never update them.
unset UPDATE_EXPECT

# The pure crates stay pure: no async runtime anywhere in what they depend on.
boundary_status=0
for crate in ofproto weft-policy; do
  tree=$(cargo tree --locked -p "$crate" -e normal --prefix none)
  if grep -q '^tokio ' <<<"$tree"; then
    echo "$crate depends on tokio (see: cargo tree -p $crate -i tokio); the pure crates must not" >&2
    boundary_status=1
  fi
done

# Every dependency a crate declares is one it uses (a grep of its sources; see the script).
deps_status=0
bash scripts/unused-deps.sh || deps_status=1

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
if [ $# -eq 0 ]; then set -- --workspace; fi
# The benchmarks are built, not run (`cargo bench` measures; that is not a test).
cargo test --locked --no-run --benches "$@"
bench_status=$?
# --no-fail-fast: one failing test binary must not hide the results of the others.
cargo test --locked --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run: cargo prints a summary per test binary, the last of which
# is often an empty doc-test run. A binary that was killed (a signal, the OOM killer, an abort)
# prints no summary: every binary cargo started ("Running …", "Doc-tests …") without a
# "test result:" line counts as a failure.
awk -v bench="$bench_status" '
     /^test result:/ { results++; for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     /^ +Running .*\(.*\)$/ || /^ +Doc-tests / { started++ }
     END {
       died = started - results; if (died < 0) died = 0
       printf "TOTAL: %d passed, %d failed, %d test binaries died without a result%s\n", p, f + died, died, (bench != 0 ? ", benchmarks do not build" : "")
     }' "$log"
if [ "$bench_status" -ne 0 ] && [ "$status" -eq 0 ]; then
  status=$bench_status
fi
if [ "$boundary_status" -ne 0 ] && [ "$status" -eq 0 ]; then
  echo "a pure crate depends on tokio (above)" >&2
  status=$boundary_status
fi
if [ "$deps_status" -ne 0 ] && [ "$status" -eq 0 ]; then
  echo "a crate declares a dependency it does not use (above)" >&2
  status=$deps_status
fi
exit "$status"
