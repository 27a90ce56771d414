#!/usr/bin/env bash
# The collector's load figures (docs/COLLECTOR.md): a release build of the load example, the
# docstore example's real manifest and report, then a bounded run against SQLite and one
# against a throwaway ClickHouse, all on loopback.
#
#   scripts/collector-load.sh [REPORTS] [SECONDS] [CLIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
reports="${1:-20000}"
seconds="${2:-60}"
clients="${3:-16}"
work="$(mktemp -d -t collector-load.XXXXXX)"
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet --example docstore
cargo build --release --quiet -p telemetry-collector --example collector_load
target="${CARGO_TARGET_DIR:-target}/release"
"$target/examples/docstore" --manifest-json 1000 >"$work/manifest.json" 2>/dev/null
"$target/examples/docstore" --anonymized 1000 >"$work/report.json" 2>/dev/null
load=("$target/examples/collector_load" --manifest "$work/manifest.json" --report "$work/report.json"
      --reports "$reports" --seconds "$seconds" --clients "$clients")
"${load[@]}" --backend sqlite
scripts/with-clickhouse.sh "${load[@]}" --backend clickhouse
