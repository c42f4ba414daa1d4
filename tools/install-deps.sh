#!/usr/bin/env bash
# Installs the Debian packages clens needs to build and test, idempotently:
# packages already present (dpkg -s) are skipped, `apt-get update` runs at most
# once, and network steps are retried. Safe to run on every `make`.
# --build-only: only what building build/clens needs (`make demo` on a fresh
# machine: no torch, no npm, no test libraries).
set -euo pipefail

PKGS=(gcc clang make pkg-config libdnnl-dev libopenblas-dev libpcre2-dev
      libutf8proc-dev libjansson-dev libcmocka-dev libclang-rt-14-dev
      libomp-14-dev liblinear-dev libgsl-dev
      python3 python3-torch python3-numpy python3-jinja2
      python3-pytest python3-pip python3-setuptools chromium slurm-wlm munge)
# Node may come from another source that bundles npm (Debian's nodejs then
# conflicts with npm): install Debian's only when there is no node at all.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)
if [ "${1:-}" = "--build-only" ]; then
  PKGS=(gcc make libdnnl-dev libopenblas-dev libpcre2-dev libutf8proc-dev libjansson-dev
        liblinear-dev libgsl-dev)
fi


missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
for try in 1 2 3; do
  $SUDO apt-get update -q && break
  echo "install-deps: apt-get update failed (try $try)" >&2; sleep 5
done
for try in 1 2 3; do
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" && exit 0
  echo "install-deps: apt-get install failed (try $try)" >&2; sleep 5
done
exit 1
