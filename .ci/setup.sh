#!/usr/bin/env bash
# Installs what the gateway builds and tests with: Debian packages (only those missing)
# and a Python venv in .venv with the test clients of Tests/requirements.txt.
# usage: .ci/setup.sh [--bench]   (--bench adds wrk and nginx-light)
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(libssl-dev zlib1g-dev libsqlite3-dev openssl curl gzip ca-certificates python3-venv)
[ "${1:-}" = "--bench" ] && packages+=(wrk nginx-light)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
stamp=.venv/.requirements
if ! cmp -s Tests/requirements.txt "$stamp" 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r Tests/requirements.txt
  cp Tests/requirements.txt "$stamp"
fi
