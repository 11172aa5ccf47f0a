#!/usr/bin/env bash
# The main job: sets up what Weft needs and shows what it can do today.
#   scripts/demo.sh        build, start a simulated host's Open vSwitch, program it, show it
#   scripts/demo.sh down   remove everything the demo made
# Today that is the OpenFlow layer (ofproto) against a real switch; the demo grows into the
# multi-host one (netmaster, simulated hosts, containers on two tenants) as the issues land.
set -euo pipefail
cd "$(dirname "$0")/.."

state=/tmp/weft-demo
ns=weft-demo-host1

down() {
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
  ip netns del "$ns" >/dev/null 2>&1 || true
  rm -rf "$state"
}

if [ "${1:-}" = "down" ]; then
  down
  echo "demo: removed $state and namespace $ns"
  exit 0
fi

bash scripts/install-deps.sh
# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
echo "== building =="
cargo build --release --locked -q -p ofproto --examples
bin=target/release/examples

down
mkdir -p "$state"
echo "== simulated host: its own network namespace and Open vSwitch (userspace datapath) =="
ip netns add "$ns"
export OVS_RUNDIR="$state" OVS_LOGDIR="$state" OVS_DBDIR="$state"
ovsdb-tool create "$state/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ip netns exec "$ns" ovsdb-server "$state/conf.db" --remote="punix:$state/db.sock" \
  --unixctl="$state/ovsdb-server.ctl" --pidfile="$state/ovsdb-server.pid" --log-file="$state/ovsdb-server.log" --detach 2>/dev/null
vsctl() { ovs-vsctl --db="unix:$state/db.sock" --timeout=10 "$@"; }
vsctl --no-wait init
ip netns exec "$ns" ovs-vswitchd "unix:$state/db.sock" --unixctl="$state/ovs-vswitchd.ctl" \
  --pidfile="$state/ovs-vswitchd.pid" --log-file="$state/ovs-vswitchd.log" --detach 2>/dev/null
vsctl add-br br-int -- set bridge br-int datapath_type=netdev protocols=OpenFlow13 fail_mode=secure
for i in 1 2 3; do
  vsctl add-port br-int "p$i" -- set interface "p$i" type=internal ofport_request="$i"
done
for _ in $(seq 50); do [ -S "$state/br-int.mgmt" ] && break; sleep 0.1; done

echo
echo "== Weft's OpenFlow session programs br-int: two networks, one atomic bundle =="
"$bin/push-flows" "$state/br-int.mgmt"

echo
echo "== what Open vSwitch itself says it holds (ovs-ofctl dump-flows) =="
ovs-ofctl -O OpenFlow13 --no-stats dump-flows "unix:$state/br-int.mgmt"

echo
echo "== isolation, traced by OVS: port 3 is in network 2, 10.1.0.3 lives only in network 1 =="
trace() { ovs-appctl -t "$state/ovs-vswitchd.ctl" ofproto/trace br-int "$1" | grep -E "^Datapath actions" ; }
echo -n "  port 1 -> 10.1.0.3 (same network):      "; trace "in_port=1,ip,nw_dst=10.1.0.3"
echo -n "  port 3 -> 10.1.0.3 (other network):     "; trace "in_port=3,ip,nw_dst=10.1.0.3"

echo
echo "== decoding captures: ofp-print =="
"$bin/ofp-print" 04000010000000010001000800000010
echo "  a truncated message is refused with the reason:"
"$bin/ofp-print" 040e0090000000020000 || true

echo
echo "The switch is still running. Look inside with:"
echo "  ovs-ofctl -O OpenFlow13 dump-flows unix:$state/br-int.mgmt"
echo "  ovs-appctl -t $state/ovs-vswitchd.ctl ofproto/trace br-int in_port=1,ip,nw_dst=10.1.0.2"
echo "Remove it all with: scripts/demo.sh down"
