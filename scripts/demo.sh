#!/usr/bin/env bash
# The main job: sets up what Weft needs and shows what it does.
#   scripts/demo.sh        build; start netmaster, a simulated host (its own namespace, Open
#                          vSwitch and netplugin) and containers of two tenants whose subnets
#                          overlap; print who reaches whom
#   scripts/demo.sh down   remove everything the demo made
# Today: one simulated host. The multi-host demo (VXLAN between hosts) comes with issue 5.
set -euo pipefail
cd "$(dirname "$0")/.."

state=/tmp/weft-demo
ns=weft-demo-host1
containers="red-a red-b green-a green-b"
all_containers="$containers green-c"

down() {
  for p in netplugin netmaster; do
    pid=$(cat "$state/$p.pid" 2>/dev/null || true)
    if [ -n "$pid" ]; then
      kill "$pid" >/dev/null 2>&1 || true
      for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" >/dev/null 2>&1 || true
    fi
  done
  if [ -d "$state" ]; then
    for d in ovs-vswitchd ovsdb-server; do
      pid=$(cat "$state/$d.pid" 2>/dev/null || true)
      ovs-appctl -t "$state/$d.ctl" exit >/dev/null 2>&1 || true
      if [ -n "$pid" ]; then
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" >/dev/null 2>&1 || true
      fi
    done
  fi
  for c in $all_containers; do ip netns del "weft-demo-$c" >/dev/null 2>&1 || true; done
  ip netns del "$ns" >/dev/null 2>&1 || true
  rm -rf "$state"
}

if [ "${1:-}" = "down" ]; then
  down
  echo "demo: removed $state, the host namespace $ns and the containers"
  exit 0
fi

bash scripts/install-deps.sh
# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
echo "== building =="
cargo build --release --locked -q -p weft-controller -p weft-agent -p netctl
bin=$PWD/target/release

down
mkdir -p "$state"
echo "== simulated host1: its own network namespace and Open vSwitch (userspace datapath) =="
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
export OVS_RUNDIR="$state" OVS_LOGDIR="$state" OVS_DBDIR="$state"
ovsdb-tool create "$state/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ip netns exec "$ns" ovsdb-server "$state/conf.db" --remote="punix:$state/db.sock" \
  --unixctl="$state/ovsdb-server.ctl" --pidfile="$state/ovsdb-server.pid" --log-file="$state/ovsdb-server.log" --detach 2>/dev/null
ovs-vsctl --db="unix:$state/db.sock" --timeout=10 --no-wait init
ip netns exec "$ns" ovs-vswitchd "unix:$state/db.sock" --unixctl="$state/ovs-vswitchd.ctl" \
  --pidfile="$state/ovs-vswitchd.pid" --log-file="$state/ovs-vswitchd.log" --detach 2>/dev/null

# netmaster and netctl run in the host's namespace too, so that 127.0.0.1 is the same for all.
inhost() { ip netns exec "$ns" "$@"; }
netctl() { inhost "$bin/netctl" --agent-socket "$state/netplugin.sock" "$@"; }

echo "== netmaster (embedded store) and netplugin =="
ip netns exec "$ns" "$bin/netmaster" --data-dir "$state/netmaster" >"$state/netmaster.log" 2>&1 &
echo $! >"$state/netmaster.pid"
for _ in $(seq 100); do inhost curl -sf http://127.0.0.1:9999/healthz >/dev/null 2>&1 && break; sleep 0.1; done
RUST_LOG=info ip netns exec "$ns" "$bin/netplugin" --host host1 --datapath netdev --ovsdb "unix:$state/db.sock" \
  --ovs-rundir "$state" --socket "$state/netplugin.sock" --netmaster http://127.0.0.1:9998 \
  >"$state/netplugin.log" 2>&1 &
echo $! >"$state/netplugin.pid"
for _ in $(seq 100); do netctl endpoint local >/dev/null 2>&1 && break; sleep 0.1; done

echo
echo "== intent: examples/two-tenants-overlapping.json (red and green, both 10.30.0.0/24) =="
netctl apply -f examples/two-tenants-overlapping.json
netctl net ls

echo
echo "== containers (network namespaces) attached through netplugin's endpoint service =="
declare -A ip
addr() { case $1 in red-a) echo 10.30.0.10;; red-b) echo 10.30.0.11;; green-a) echo 10.30.0.20;; green-b) echo 10.30.0.21;; esac; }
for c in $containers; do
  ip netns add "weft-demo-$c"
  tenant=${c%-*}
  netctl endpoint attach "$c" --netns "/var/run/netns/weft-demo-$c" -t "$tenant" -n net --ip "$(addr "$c")"
  ip[$c]=$(addr "$c")
done
netctl endpoint local

echo
echo "== who reaches whom (ping from row to column) =="
printf "%-9s" ""
for d in $containers; do printf "%-20s" "$d ${ip[$d]}"; done
echo
for s in $containers; do
  printf "%-9s" "$s"
  for d in $containers; do
    if [ "$s" = "$d" ]; then printf "%-20s" "-"; continue; fi
    if ip netns exec "weft-demo-$s" ping -c 1 -W 1 "${ip[$d]}" >/dev/null 2>&1; then
      printf "%-20s" "reaches"
    else
      printf "%-20s" "no"
    fi
  done
  echo
done
echo "(same tenant: reaches; across tenants: no, although both use 10.30.0.0/24)"

echo
echo "== the same address in both tenants: green-c gets 10.30.0.10, red-a's address =="
ip netns add weft-demo-green-c
netctl endpoint attach green-c --netns /var/run/netns/weft-demo-green-c -t green -n net --ip 10.30.0.10 --mac 02:00:00:00:0c:0c
for s in red-b green-a; do
  ip netns exec "weft-demo-$s" ping -c 1 -W 1 10.30.0.10 >/dev/null 2>&1 && r=reaches || r="does not reach"
  mac=$(ip netns exec "weft-demo-$s" ip neigh show 10.30.0.10 | awk '{print $5}')
  echo "  $s $r 10.30.0.10 at $mac"
done
echo "  (red-b finds red-a's MAC 02:00:0a:1e:00:0a, green-a finds green-c's 02:00:00:00:0c:0c)"

echo
echo "== the switch: flows per table, as Open vSwitch reports them =="
ovs-ofctl -O OpenFlow13 dump-flows "unix:$state/br-int.mgmt" | grep -o "table=[0-9]*" | sort -t= -k2 -n | uniq -c

echo
echo "Everything is still running. Look inside with:"
echo "  ip netns exec $ns $bin/netctl endpoint ls                 # netmaster's endpoints"
echo "  ip netns exec $ns $bin/netctl --agent-socket $state/netplugin.sock endpoint local"
echo "  ovs-ofctl -O OpenFlow13 dump-flows unix:$state/br-int.mgmt   # the pipeline (docs/pipeline.md)"
echo "  ip netns exec weft-demo-red-a ping 10.30.0.11"
echo "  less $state/netplugin.log"
echo "Remove it all with: scripts/demo.sh down"
