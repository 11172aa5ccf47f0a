#!/usr/bin/env bash
# Provisions one node: packages, Weft built from /weft, systemd units. Args: INDEX COUNT.
set -euxo pipefail
i=$1
ip="192.168.56.$((10 + i))"
master="192.168.56.11"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y build-essential pkg-config curl protobuf-compiler openvswitch-switch \
  etcd-server iproute2 iputils-ping tcpdump
systemctl enable --now openvswitch-switch
if ! command -v cargo >/dev/null; then
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi
. "$HOME/.cargo/env"
cd /weft
cargo build --release --locked -p weft-controller -p weft-agent -p netctl
install -m 0755 target/release/netmaster target/release/netplugin target/release/netctl /usr/local/bin/
ip link set eth2 up

if [ "$i" = 1 ]; then
  systemctl stop etcd || true
  cat >/etc/default/etcd <<CONF
ETCD_NAME=node1
ETCD_DATA_DIR=/var/lib/etcd/weft
ETCD_LISTEN_CLIENT_URLS=http://$master:2379,http://127.0.0.1:2379
ETCD_ADVERTISE_CLIENT_URLS=http://$master:2379
ETCD_LISTEN_PEER_URLS=http://127.0.0.1:2380
ETCD_MAX_TXN_OPS=100000
CONF
  systemctl enable --now etcd
  cat >/etc/systemd/system/netmaster.service <<UNIT
[Unit]
Description=Weft netmaster
After=network-online.target etcd.service
[Service]
ExecStart=/usr/local/bin/netmaster --etcd http://$master:2379 --listen $master:9999 --grpc-listen $master:9998
Restart=always
[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable --now netmaster
fi

cat >/etc/systemd/system/netplugin.service <<UNIT
[Unit]
Description=Weft netplugin
After=network-online.target openvswitch-switch.service
[Service]
ExecStart=/usr/local/bin/netplugin --host node$i --netmaster http://$master:9998 --datapath system --vtep-ip $ip --uplink eth2
Restart=always
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now netplugin
echo "export NETMASTER=http://$master:9999" >/etc/profile.d/weft.sh
