#!/usr/bin/env bash
# Installs what the collector's tests run against, if it is missing: Debian's `chromium`
# (the chart page's screenshot test) and `clickhouse-server` (the ClickHouse backend, started
# by scripts/with-clickhouse.sh). Idempotent; needs root (or sudo) for apt.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

packages=()
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
command -v clickhouse-server >/dev/null 2>&1 || packages+=(clickhouse-server)
if [ "${#packages[@]}" -gt 0 ]; then
    echo "install-collector-tools: installing ${packages[*]} with apt-get"
    if ! apt-cache show "${packages[@]}" >/dev/null 2>&1; then
        $SUDO apt-get update -q
    fi
    # --no-install-recommends: the programs only; the tests start their own instances.
    $SUDO apt-get install -y -q --no-install-recommends "${packages[@]}"
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet clickhouse-server 2>/dev/null; then
        $SUDO systemctl stop clickhouse-server || true
    fi
fi
for tool in chromium clickhouse-server; do
    command -v "$tool" >/dev/null 2>&1 || { echo "install-collector-tools: $tool is still missing" >&2; exit 1; }
done
echo "install-collector-tools: chromium and clickhouse-server are installed"
