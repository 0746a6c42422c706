#!/usr/bin/env bash
# Installs what the benchmarks need on a Debian machine, skipping what is already there: the test
# dependencies (PostgreSQL server, psql, pgbench), the proxies `npm run bench:postgres` compares the
# sidecar with (pgbouncer, haproxy), and h2load (nghttp2-client), the HTTP/2 load generator of
# `npm run bench:webhook`. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh

missing=()
command -v pgbouncer >/dev/null 2>&1 || missing+=(pgbouncer)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # The packages start system-wide services of their own; the benchmark starts its own instances on
  # free ports, so the system ones only take memory and CPU away from the measurement.
  $SUDO service pgbouncer stop >/dev/null 2>&1 || true
  $SUDO service haproxy stop >/dev/null 2>&1 || true
fi
