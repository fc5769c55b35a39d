#!/usr/bin/env bash
# Installs the Debian packages the gateway builds and tests with, if any are missing.
# usage: scripts/setup-debian.sh [--bench]   (--bench adds wrk, nginx-light, linux-perf)
set -euo pipefail
packages=(libssl-dev zlib1g-dev libsqlite3-dev openssl curl gzip ca-certificates python3-venv)
[ "${1:-}" = "--bench" ] && packages+=(wrk nginx-light)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
