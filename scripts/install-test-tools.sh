#!/usr/bin/env bash
# Installs the real tools the exporter tests run against, if they are missing:
#   - `prometheus` and `promtool` (Debian package `prometheus`),
#   - `prometheus-pushgateway` (Debian package `prometheus-pushgateway`),
#   - the Python `opentelemetry-proto` package (brings `protobuf`), an independent decoder of
#     the OTLP payloads.
# Idempotent: installs nothing when everything is present. Needs root (or sudo) for apt.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive

# apt-get install, refreshing the package lists first only when apt does not know the packages.
apt_install() {
    if ! apt-cache show "$@" >/dev/null 2>&1; then
        $SUDO apt-get update -q
    fi
    # --no-install-recommends: the programs only; the tests start their own instances.
    $SUDO apt-get install -y -q --no-install-recommends "$@"
}

apt_packages=()
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
    apt_packages+=(prometheus)
fi
if ! command -v prometheus-pushgateway >/dev/null 2>&1; then
    apt_packages+=(prometheus-pushgateway)
fi

if [ "${#apt_packages[@]}" -gt 0 ]; then
    echo "install-test-tools: installing ${apt_packages[*]} with apt-get"
    apt_install "${apt_packages[@]}"
    # Debian's packages start system services where an init system runs; the tests need none.
    for service in prometheus prometheus-pushgateway; do
        if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
            $SUDO systemctl stop "$service" || true
        fi
    done
fi

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "install-test-tools: installing python3 with apt-get"
    apt_install python3 python3-pip
fi
if ! "$PYTHON" -c 'import opentelemetry.proto.collector.metrics.v1.metrics_service_pb2' >/dev/null 2>&1; then
    if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
        echo "install-test-tools: installing pip with apt-get"
        apt_install python3-pip
    fi
    echo "install-test-tools: installing the Python package opentelemetry-proto with pip"
    pip_install=("$PYTHON" -m pip install --quiet --disable-pip-version-check opentelemetry-proto)
    # A Debian system Python refuses user packages (PEP 668) unless told otherwise; the package
    # only serves the tests as an independent protobuf decoder.
    "${pip_install[@]}" || "${pip_install[@]}" --break-system-packages
fi

# Fail here, with the reason, rather than in the tests.
for tool in prometheus promtool prometheus-pushgateway; do
    command -v "$tool" >/dev/null 2>&1 || { echo "install-test-tools: $tool is still missing" >&2; exit 1; }
done
"$PYTHON" -c 'import opentelemetry.proto.collector.metrics.v1.metrics_service_pb2' \
    || { echo "install-test-tools: the Python package opentelemetry-proto is still missing" >&2; exit 1; }
echo "install-test-tools: prometheus, promtool, prometheus-pushgateway and Python opentelemetry-proto are installed"
