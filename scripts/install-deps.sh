#!/usr/bin/env bash
# Installs what building and testing Weft needs on a Debian 12 machine, idempotently:
# Debian packages (Open vSwitch, etcd, protoc and the well-known .proto files etcd-client
# compiles against, iproute2, test tools) and a Rust toolchain.
set -euo pipefail

packages=(
  build-essential pkg-config ca-certificates curl
  protobuf-compiler libprotobuf-dev
  openvswitch-switch
  etcd-server etcd-client
  iproute2 iputils-ping netcat-openbsd tcpdump iperf3 busybox-static
  podman runc containernetworking-plugins docker.io iptables  # iptables: the reference portmap plugin (weft-cni chaining tests)
  nftables  # nft: tests only observe what the agent's own nf_tables code installs (hostgw)
  chromium  # headless: netmaster's web view is tested in it (systemtests/tests/web_view.rs); the demo's screenshot
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (it installs Debian packages, and Weft's tests create network namespaces)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Debian packages start no daemons we rely on: every test and the demo start their own
# Open vSwitch and etcd instances in their own directories and namespaces.

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || {
    echo "install-deps: installing a stable Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  }
fi
