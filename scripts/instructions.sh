#!/usr/bin/env bash
# Instructions per call of the hot paths, counted by callgrind: unlike wall time, the count
# repeats on a busy machine, so it shows whether a change touched the hot path at all.
#
#   scripts/instructions.sh [--against REV] [--calls N]
#
# Builds a small program (generated under target/instructions/, never committed) against this
# tree's telemetry-core, release profile without LTO as a user's crate is built, and runs each
# path N and 2N times (default N = 200,000); the difference divided by N is the cost of one
# call, loop included. `#[timed]` is counted as the inclusive cost of its record function, since
# the clock's one-time calibration varies from run to run. With --against REV the same program
# is also built against that revision (a temporary git worktree) and both columns are printed.
# Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

against=""
calls=200000
while [[ $# -gt 0 ]]; do
    case "$1" in
        --against) against="$2"; shift 2 ;;
        --calls) calls="$2"; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
command -v valgrind >/dev/null || { echo "instructions: valgrind is needed (apt-get install valgrind)" >&2; exit 1; }

work="$root/target/instructions"
mkdir -p "$work"

# Writes the program into $1, depending on the telemetry-core at $2.
program() {
    mkdir -p "$1/src"
    cat >"$1/Cargo.toml" <<TOML
[package]
name = "instructions"
version = "0.0.0"
edition = "2024"
publish = false
[workspace]
[dependencies]
telemetry-core = { path = "$2" }
[profile.release]
debug = 1
TOML
    cat >"$1/src/main.rs" <<'RUST'
use std::hint::black_box;
use telemetry_core::{LabelValue, count_usage, counter, histogram, timed};

#[derive(LabelValue, Clone, Copy, PartialEq)]
enum Backend { Postgres, Sqlite }

#[count_usage(name = "ic.labeled", labels(backend = backend, ok = ok))]
#[inline(never)]
fn labeled(backend: Backend, ok: bool) -> bool { ok && backend == Backend::Sqlite }

#[count_usage(name = "ic.counted")]
#[inline(never)]
fn counted(x: u64) -> u64 { x }

#[timed(name = "ic.timed")]
#[inline(never)]
fn timed_fn(x: u64) -> u64 { x }

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let path = std::env::args().nth(2).unwrap_or_default();
    let labeled_handle = counter!("ic.labeled_handle", labels(backend: Backend, ok: bool)).unwrap();
    let plain = counter!("ic.counter").unwrap();
    let hist = histogram!("ic.histogram").unwrap();
    for i in 0..n {
        match path.as_str() {
            "count_usage_fn" => { black_box(counted(black_box(i))); }
            "timed_fn" => { black_box(timed_fn(black_box(i))); }
            "counter_handle" => plain.increment(),
            "histogram_record" => hist.record(black_box(i & 0xffff)),
            "labeled_count_usage_fn" => {
                let backend = if i & 1 == 0 { Backend::Postgres } else { Backend::Sqlite };
                black_box(labeled(black_box(backend), black_box(true)));
            }
            "labeled_counter_from_values" => labeled_handle.increment(black_box((Backend::Sqlite, i & 1 == 0))),
            _ => {}
        }
    }
    black_box(telemetry_core::snapshot());
}
RUST
    (cd "$1" && CARGO_TARGET_DIR="$1/target" cargo build --release --quiet)
}

total() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }

# Instructions per call of path $2 in the program built in $1.
per_call() {
    local bin="$1/target/release/instructions"
    if [[ "$2" == timed_fn ]]; then
        valgrind --tool=callgrind --callgrind-out-file="$1/timed.out" "$bin" "$calls" timed_fn >/dev/null 2>&1
        callgrind_annotate --inclusive=yes "$1/timed.out" | grep 'record_owned_since \[' | head -1 |
            awk -v n="$calls" '{gsub(",", "", $1); printf "%.1f", $1 / n}'
        return
    fi
    local one two
    one=$(total "$bin" "$calls" "$2")
    two=$(total "$bin" "$((2 * calls))" "$2")
    awk -v a="$one" -v b="$two" -v n="$calls" 'BEGIN { printf "%.1f", (b - a) / n }'
}

paths=(count_usage_fn timed_fn counter_handle histogram_record labeled_count_usage_fn labeled_counter_from_values)

program "$work/now" "$root/telemetry-core"
if [[ -n "$against" ]]; then
    rm -rf "$work/against-tree"
    git worktree add --force --detach "$work/against-tree" "$against" >/dev/null
    trap 'git worktree remove --force "$work/against-tree" >/dev/null 2>&1 || true' EXIT
    program "$work/against" "$work/against-tree/telemetry-core"
    echo "| path | $against | this tree |"
    echo "|---|--:|--:|"
else
    echo "| path | this tree |"
    echo "|---|--:|"
fi
for path in "${paths[@]}"; do
    if [[ -n "$against" ]]; then
        echo "| \`$path\` | $(per_call "$work/against" "$path") | $(per_call "$work/now" "$path") |"
    else
        echo "| \`$path\` | $(per_call "$work/now" "$path") |"
    fi
done
echo "(instructions per call, loop included; timed_fn: its record, clock reads included)"
