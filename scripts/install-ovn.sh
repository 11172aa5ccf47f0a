#!/usr/bin/env bash
# Installs Debian's OVN (ovn-central, ovn-host) for the side-by-side benchmark
# (`cargo bench -p systemtests --bench ovn_compare`, which runs this when `ovn-nbctl` is missing),
# idempotently. Nothing else needs OVN: it is not part of scripts/install-deps.sh.
#
# The packages' own services (ovn-central: NB/SB ovsdb-servers and ovn-northd; ovn-host:
# ovn-controller) are kept from starting, and stopped and disabled if they run anyway: the
# benchmark starts private instances of its own, in its own directories and namespaces.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-ovn: run as root (it installs Debian packages)" >&2
  exit 1
fi

units=(ovn-central ovn-northd ovn-ovsdb-server-nb ovn-ovsdb-server-sb ovn-host ovn-controller)

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

if ! installed ovn-central || ! installed ovn-host; then
  echo "install-ovn: installing ovn-central ovn-host"
  # policy-rc.d exiting 101 tells invoke-rc.d and deb-systemd-invoke not to start services
  # during the install. Left alone if the machine already has one.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends ovn-central ovn-host >/dev/null
fi

# The packages ship systemd units only (no init scripts): on a machine booted with systemd, the
# units are stopped and not started at boot; elsewhere nothing of theirs runs.
if [ -d /run/systemd/system ]; then
  for u in "${units[@]}"; do
    if systemctl list-unit-files "$u.service" >/dev/null 2>&1; then
      systemctl stop "$u.service" >/dev/null 2>&1 || true
      systemctl disable "$u.service" >/dev/null 2>&1 || true
    fi
  done
  running=$(systemctl list-units --state=active --no-legend "${units[@]/%/.service}" 2>/dev/null || true)
  if [ -n "$running" ]; then
    echo "install-ovn: still active after stopping: $running" >&2
    exit 1
  fi
fi

command -v ovn-nbctl >/dev/null && command -v ovn-northd >/dev/null \
  && command -v ovn-controller >/dev/null || {
  echo "install-ovn: ovn-nbctl, ovn-northd or ovn-controller missing after the install" >&2
  exit 1
}
