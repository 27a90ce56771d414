#!/usr/bin/env bash
# Runs a command with a throwaway ClickHouse server on loopback: installs Debian's
# `clickhouse-server` if it is missing, writes a minimal configuration into a temporary
# directory (listen 127.0.0.1 only, free ports, data under the directory), starts the server,
# waits until its HTTP interface answers, exports TELEMETRY_COLLECTOR_TEST_CLICKHOUSE_URL for
# the command, then stops the server and removes the directory, whatever the command did.
#
#   scripts/with-clickhouse.sh cargo test -p telemetry-collector
set -euo pipefail

if ! command -v clickhouse-server >/dev/null 2>&1; then
    echo "with-clickhouse: installing clickhouse-server with apt-get"
    SUDO=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    apt-cache show clickhouse-server >/dev/null 2>&1 || $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends clickhouse-server
    # Debian's package may start a system service; the tests use their own server only.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet clickhouse-server 2>/dev/null; then
        $SUDO systemctl stop clickhouse-server || true
    fi
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

dir="$(mktemp -d -t clickhouse-test.XXXXXX)"
http_port="$(free_port)"
tcp_port="$(free_port)"
mkdir -p "$dir/data" "$dir/tmp" "$dir/log" "$dir/user_files" "$dir/format_schemas"
cat >"$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$dir/log/clickhouse-server.log</log>
        <errorlog>$dir/log/clickhouse-server.err.log</errorlog>
        <console>0</console>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$http_port</http_port>
    <tcp_port>$tcp_port</tcp_port>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>268435456</mark_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
XML
cat >"$dir/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default></default></quotas>
</yandex>
XML

clickhouse-server --config-file="$dir/config.xml" >"$dir/log/stdout.log" 2>&1 &
server=$!
stop() {
    kill "$server" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$server" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$server" 2>/dev/null || true
    rm -rf "$dir"
}
trap stop EXIT

url="http://127.0.0.1:$http_port"
for _ in $(seq 1 300); do
    if curl -fsS "$url/ping" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$server" 2>/dev/null; then
        echo "with-clickhouse: clickhouse-server stopped at start:" >&2
        tail -n 30 "$dir/log/stdout.log" "$dir/log/clickhouse-server.err.log" >&2 || true
        exit 1
    fi
    sleep 0.1
done
curl -fsS "$url/ping" >/dev/null || { echo "with-clickhouse: no answer from $url after 30 s" >&2; exit 1; }
echo "with-clickhouse: clickhouse-server $(curl -fsS --data-binary 'SELECT version()' "$url/") on $url"

export TELEMETRY_COLLECTOR_TEST_CLICKHOUSE_URL="$url"
status=0
"$@" || status=$?
exit "$status"
