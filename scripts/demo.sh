#!/usr/bin/env bash
# The main job: sets up what Weft needs and shows what it does.
#   scripts/demo.sh        build; start a fabric (the "physical network") with netmaster on it,
#                          two simulated hosts (each its own namespace, Open vSwitch and
#                          netplugin), containers of two tenants whose subnets overlap on both
#                          hosts; print who reaches whom; then a policy (groups, a default-deny,
#                          rules) and what it lets through; then containers beyond their network
#                          (routing between a tenant's networks, host access, egress)
#   scripts/demo.sh down   remove everything the demo made
set -euo pipefail
cd "$(dirname "$0")/.."

state=/tmp/weft-demo
hosts="host1 host2"
# container:host:tenant:address
containers="red-a:host1:red:10.30.0.10 red-b:host2:red:10.30.0.11 green-a:host1:green:10.30.0.20 green-b:host2:green:10.30.0.21"
mgmt=192.168.231.254

stop_pid() {
  local pid
  pid=$(cat "$1" 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  kill "$pid" >/dev/null 2>&1 || true
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" >/dev/null 2>&1 || true
}

down() {
  for h in $hosts; do stop_pid "$state/$h/netplugin.pid"; done
  stop_pid "$state/netmaster.pid"
  stop_pid "$state/nc.pid"
  for d in "$state"/*/; do
    [ -d "$d" ] || continue
    for p in ovs-vswitchd ovsdb-server; do
      ovs-appctl -t "$d/$p.ctl" exit >/dev/null 2>&1 || true
      stop_pid "$d/$p.pid"
    done
  done
  for c in $containers green-c: red-web: red-db: blue-web: blue-back:; do ip netns del "weft-demo-${c%%:*}" >/dev/null 2>&1 || true; done
  for n in fabric $hosts; do ip netns del "weft-demo-$n" >/dev/null 2>&1 || true; done
  rm -rf "$state"
}

if [ "${1:-}" = "down" ]; then
  down
  echo "demo: removed $state, the fabric, the hosts and the containers"
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

# An Open vSwitch (userspace datapath) in namespace weft-demo-$1, with its files in $state/$1.
start_ovs() {
  local d="$state/$1" ns="weft-demo-$1"
  mkdir -p "$d"
  ip netns add "$ns"
  ip netns exec "$ns" ip link set lo up
  # The userspace datapath leaves frames on bridge ports to the kernel too: answer ARP only on
  # the interface that has the address, or the fabric learns a VTEP at the wrong port's MAC.
  ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1
  ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  OVS_RUNDIR="$d" OVS_LOGDIR="$d" OVS_DBDIR="$d" ip netns exec "$ns" ovsdb-server "$d/conf.db" \
    --remote="punix:$d/db.sock" --unixctl="$d/ovsdb-server.ctl" --pidfile="$d/ovsdb-server.pid" \
    --log-file="$d/ovsdb-server.log" --detach 2>/dev/null
  ovs-vsctl --db="unix:$d/db.sock" --timeout=10 --no-wait init
  OVS_RUNDIR="$d" OVS_LOGDIR="$d" OVS_DBDIR="$d" ip netns exec "$ns" ovs-vswitchd "unix:$d/db.sock" \
    --unixctl="$d/ovs-vswitchd.ctl" --pidfile="$d/ovs-vswitchd.pid" --log-file="$d/ovs-vswitchd.log" \
    --detach 2>/dev/null
}
vsctl() { local d="$state/$1"; shift; ovs-vsctl --db="unix:$d/db.sock" --timeout=10 "$@"; }

echo "== the fabric: a switch standing for the physical network, netmaster on $mgmt =="
start_ovs fabric
vsctl fabric add-br fabric -- set bridge fabric datapath_type=netdev
vsctl fabric add-port fabric mgmt -- set interface mgmt type=internal
ip netns exec weft-demo-fabric ip addr add "$mgmt/24" dev mgmt
ip netns exec weft-demo-fabric ip link set mgmt up
ip netns exec weft-demo-fabric "$bin/netmaster" --data-dir "$state/netmaster" \
  --listen "$mgmt:9999" --grpc-listen "$mgmt:9998" >"$state/netmaster.log" 2>&1 &
echo $! >"$state/netmaster.pid"
netctl() { ip netns exec weft-demo-fabric "$bin/netctl" --netmaster "http://$mgmt:9999" "$@"; }
for _ in $(seq 100); do netctl node ls >/dev/null 2>&1 && break; sleep 0.1; done

i=0
for h in $hosts; do
  i=$((i + 1))
  echo "== $h: namespace, Open vSwitch, underlay (VTEP 192.168.231.$i on br-phy), uplink, netplugin =="
  start_ovs "$h"
  for pair in "f$i:u$i" "g$i:v$i"; do
    f=${pair%%:*} v=${pair##*:}
    ip netns exec weft-demo-fabric ip link add "$f" type veth peer name "$v"
    ip netns exec weft-demo-fabric ip link set "$v" netns "weft-demo-$h"
    ip netns exec weft-demo-fabric ip link set "$f" up
    vsctl fabric add-port fabric "$f"
    ip netns exec "weft-demo-$h" ip link set "$v" up
  done
  vsctl "$h" add-br br-phy -- set bridge br-phy datapath_type=netdev
  vsctl "$h" add-port br-phy "u$i"
  ip netns exec "weft-demo-$h" ip addr add "192.168.231.$i/24" dev br-phy
  ip netns exec "weft-demo-$h" ip link set br-phy up
  RUST_LOG=info ip netns exec "weft-demo-$h" "$bin/netplugin" --host "$h" --datapath netdev \
    --ovsdb "unix:$state/$h/db.sock" --ovs-rundir "$state/$h" --socket "$state/$h/netplugin.sock" \
    --netmaster "http://$mgmt:9998" --vtep-ip "192.168.231.$i" --uplink "v$i" \
    >"$state/$h/netplugin.log" 2>&1 &
  echo $! >"$state/$h/netplugin.pid"
  for _ in $(seq 100); do
    "$bin/netctl" --agent-socket "$state/$h/netplugin.sock" endpoint local >/dev/null 2>&1 && break
    sleep 0.1
  done
done
netctl node ls

echo
echo "== intent: examples/two-tenants-overlapping.json (red and green, both VXLAN on 10.30.0.0/24) =="
netctl apply -f examples/two-tenants-overlapping.json
netctl net ls

echo
echo "== containers (network namespaces) attached through each host's netplugin =="
attach() { # container host tenant address [extra args]; NET=name for another network than "net"
  local c=$1 h=$2 t=$3 a=$4
  shift 4
  ip netns add "weft-demo-$c"
  "$bin/netctl" --agent-socket "$state/$h/netplugin.sock" endpoint attach "$c" \
    --netns "/var/run/netns/weft-demo-$c" -t "$t" -n "${NET:-net}" --ip "$a" "$@"
}
for spec in $containers; do
  IFS=: read -r c h t a <<<"$spec"
  attach "$c" "$h" "$t" "$a"
done
netctl endpoint ls

echo
echo "== who reaches whom (ping from row to column) =="
printf "%-9s" ""
for spec in $containers; do IFS=: read -r c h _ a <<<"$spec"; printf "%-26s" "$c@$h $a"; done
echo
for s in $containers; do
  IFS=: read -r sc _ _ _ <<<"$s"
  printf "%-9s" "$sc"
  for d in $containers; do
    IFS=: read -r dc _ _ da <<<"$d"
    if [ "$sc" = "$dc" ]; then printf "%-26s" "-"; continue; fi
    ok=no
    for _ in 1 2 3; do
      if ip netns exec "weft-demo-$sc" ping -c 1 -W 1 "$da" >/dev/null 2>&1; then ok=reaches; break; fi
      [ "${sc%-*}" = "${dc%-*}" ] || break # across tenants one try is enough
    done
    printf "%-26s" "$ok"
  done
  echo
done
echo "(same tenant, also across hosts over VXLAN: reaches; across tenants: no, though both use 10.30.0.0/24)"

echo
echo "== the same address in both tenants: green-c on host2 gets 10.30.0.10, red-a's address =="
attach green-c host2 green 10.30.0.10 --mac 02:00:00:00:0c:0c
for s in red-b green-a; do
  r="does not reach"
  for _ in 1 2 3; do ip netns exec "weft-demo-$s" ping -c 1 -W 1 10.30.0.10 >/dev/null 2>&1 && { r=reaches; break; }; done
  mac=$(ip netns exec "weft-demo-$s" ip neigh show 10.30.0.10 | awk '{print $5}')
  echo "  $s $r 10.30.0.10 at $mac"
done
mac_of() { ip netns exec "weft-demo-$1" cat /sys/class/net/eth0/address; }
echo "  (red-a's MAC is $(mac_of red-a) on host1, green-c's is $(mac_of green-c) on host2)"

echo
echo "== policy: examples/red-policy.json (red's group db is default-deny; it admits TCP 5432 and ICMP from group web) =="
netctl apply -f examples/red-policy.json
attach red-web host1 red 10.30.0.20 -g web
attach red-db host2 red 10.30.0.21 -g db
ip netns exec weft-demo-red-db nc -k -l -p 5432 >/dev/null 2>&1 &
echo $! >"$state/nc.pid"
sleep 0.5
probe() { # from, what, command...
  local from=$1 what=$2
  shift 2
  local r="refused"
  for _ in 1 2 3; do ip netns exec "weft-demo-$from" "$@" >/dev/null 2>&1 && { r=allowed; break; }; done
  printf "  %-8s %-28s %s\n" "$from" "$what" "$r"
}
probe red-web "ping red-db" ping -c 1 -W 1 10.30.0.21
probe red-web "tcp red-db:5432" nc -z -w 2 10.30.0.21 5432
probe red-a "ping red-db (no group)" ping -c 1 -W 1 10.30.0.21
probe red-a "tcp red-db:5432 (no group)" nc -z -w 2 10.30.0.21 5432
probe red-db "ping red-web (db starts)" ping -c 1 -W 1 10.30.0.20
probe red-a "ping red-web" ping -c 1 -W 1 10.30.0.20
echo "(red-web on host1, red-db on host2: the rules hold across hosts; replies pass by conntrack;"
echo " db may start nothing, being default-deny; groups without policy talk freely)"

echo
echo "== beyond the network: examples/host-access.json (blue: web with hostAccess and external, backend) =="
netctl apply -f examples/host-access.json
NET=web attach blue-web host1 blue 10.30.1.10
NET=backend attach blue-back host2 blue 10.30.2.10
sleep 0.5
reach() { # what, namespace, address
  local r="does not reach" ttl
  for _ in 1 2 3; do
    if out=$(ip netns exec "$2" ping -c 1 -W 1 "$3" 2>/dev/null); then
      ttl=$(grep -o 'ttl=[0-9]*' <<<"$out"); r="reaches ($ttl)"; break
    fi
  done
  printf "  %-52s %s\n" "$1" "$r"
}
reach "blue-web (host1) → its host 192.168.231.1" weft-demo-blue-web 192.168.231.1
reach "blue-web (host1) → the other host 192.168.231.2" weft-demo-blue-web 192.168.231.2
reach "host1 → blue-web 10.30.1.10" weft-demo-host1 10.30.1.10
reach "host2 → blue-web 10.30.1.10 (on host1)" weft-demo-host2 10.30.1.10
reach "blue-web → blue-back 10.30.2.10 (network backend, host2)" weft-demo-blue-web 10.30.2.10
reach "blue-web → $mgmt (outside: the fabric, no route back)" weft-demo-blue-web "$mgmt"
reach "blue-back → $mgmt (backend is not external)" weft-demo-blue-back "$mgmt"
reach "blue-back → its host 192.168.231.2 (no hostAccess)" weft-demo-blue-back 192.168.231.2
reach "red-a → blue-back 10.30.2.10 (another tenant)" weft-demo-red-a 10.30.2.10
echo "(routed between a tenant's networks: one hop, so ttl=63; hosts reach host-access containers and"
echo " they reach every host, without NAT; external traffic leaves as its host's address, 192.168.231.1;"
echo " each host's gateway port: ip -n weft-demo-host1 route | grep weft-gw)"

echo
echo "== host1's switch: flows per table =="
ovs-ofctl -O OpenFlow13 dump-flows "unix:$state/host1/br-int.mgmt" | grep -o "table=[0-9]*" | sort -t= -k2 -n | uniq -c

echo
echo "== the web view: http://$mgmt:9999/ui/ (hosts and endpoints, each tenant's policy matrix, a trace) =="
shot="$state/webview.png"
if ip netns exec weft-demo-fabric timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run \
  --user-data-dir="$state/chromium" --virtual-time-budget=5000 --window-size=1280,900 \
  --screenshot="$shot" "http://$mgmt:9999/ui/?src=red/red-web&dst=red/red-db&proto=tcp&dport=5432" \
  >"$state/chromium.log" 2>&1 && [ -s "$shot" ]; then
  echo "  screenshot of the web view (with the trace red-web → red-db tcp/5432): $shot"
else
  echo "  no screenshot: chromium failed (see $state/chromium.log; scripts/install-deps.sh installs chromium)"
fi

echo
echo "Everything is still running. Look inside with:"
echo "  ip netns exec weft-demo-fabric $bin/netctl --netmaster http://$mgmt:9999 endpoint ls"
echo "  $bin/netctl --agent-socket $state/host2/netplugin.sock endpoint local"
echo "  ovs-ofctl -O OpenFlow13 dump-flows unix:$state/host1/br-int.mgmt   # the pipeline (docs/pipeline.md)"
echo "  ip netns exec weft-demo-red-a ping 10.30.0.11"
echo "  less $state/host1/netplugin.log"
echo "  the web view: ip netns exec weft-demo-fabric chromium --headless --no-sandbox --screenshot=F.png http://$mgmt:9999/ui/"
echo "Remove it all with: scripts/demo.sh down"
