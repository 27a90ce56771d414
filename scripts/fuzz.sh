#!/usr/bin/env bash
# Fuzzes every target in fuzz/fuzz_targets/ for a bounded time (cargo fuzz, libFuzzer).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      default 10; CI passes a small number, people a
#                                             large one (e.g. 600) before a release
#
# Environment:
#   FUZZ_JOBS=N        targets fuzzed at once (default: the number of CPUs)
#   FUZZ_TARGETS="a b" only these targets (default: all)
#   TELEMETRY_FUZZ_KNOWN_BUGS=tag,tag   skip the checks with these tags (see docs/FUZZING.md)
#
# Installs cargo-fuzz if it is missing (`cargo install cargo-fuzz --locked`, from crates.io).
# The fuzz targets need the compiler's unstable flags (-Z sanitizer coverage); RUSTC_BOOTSTRAP=1
# lets the stable toolchain accept them, and no sanitizer is used (`-s none`): the fuzzed code
# is safe Rust, where panics and the checks' assertions find the bugs.
#
# The seeds in fuzz/seeds/<target>/ start each run; new inputs go to fuzz/corpus/<target>/ and
# failing ones to fuzz/artifacts/<target>/ (both ignored by git; move a failing input into
# fuzz/regressions/<target>/ to keep it as a test). Prints executions and crashes per target,
# then `fuzz: N targets, E executions, C crashes`; exits non-zero if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET]" >&2
    exit 2
fi
jobs="${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    targets=()
    for file in fuzz/fuzz_targets/*.rs; do
        name="${file##*/}"
        targets+=("${name%.rs}")
    done
fi

# One build for all targets (release, debug assertions and overflow checks on). The targets
# then run from that build (not through `cargo fuzz run`, which would rebuild a target whose
# sources changed meanwhile), so every target fuzzes the same code.
cargo fuzz build -s none
triple="$(rustc -vV | sed -n 's/^host: //p')"
bin="fuzz/target/$triple/release"

logs="fuzz/target/fuzz-logs"
mkdir -p "$logs"

run_one() {
    local target="$1" dict=() status=0
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    if [[ -f "fuzz/dicts/$target.dict" ]]; then
        dict=("-dict=fuzz/dicts/$target.dict")
    fi
    # The caller reads the status and the statistics back from these files.
    # FUZZ_SEED and FUZZ_RUNS make a run repeatable (CI): the same inputs in the same order,
    # stopping after that many executions.
    local repeatable=()
    if [[ -n "${FUZZ_SEED:-}" ]]; then repeatable+=("-seed=$FUZZ_SEED"); fi
    if [[ -n "${FUZZ_RUNS:-}" ]]; then repeatable+=("-runs=$FUZZ_RUNS"); fi
    "$bin/$target" -artifact_prefix="fuzz/artifacts/$target/" -max_total_time="$seconds" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" "${repeatable[@]}" \
        "fuzz/corpus/$target" "fuzz/seeds/$target" >"$logs/$target.log" 2>&1 || status=$?
    echo "$status" >"$logs/$target.status"
}

running=0
for target in "${targets[@]}"; do
    rm -f "$logs/$target.status"
    run_one "$target" &
    running=$((running + 1))
    if ((running >= jobs)); then
        wait -n || true
        running=$((running - 1))
    fi
done
wait || true

total_execs=0
total_crashes=0
for target in "${targets[@]}"; do
    log="$logs/$target.log"
    status="$(cat "$logs/$target.status" 2>/dev/null || echo 1)"
    execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || true)"
    crashes="$(grep -c 'Test unit written to' "$log" || true)"
    execs="${execs:-0}"
    if [[ "$status" != 0 && "$crashes" == 0 ]]; then
        crashes=1 # it failed without an artifact (build error, libFuzzer error): show the log
    fi
    printf 'fuzz: %-16s %10d executions, %d crashes\n' "$target" "$execs" "$crashes"
    if [[ "$crashes" != 0 ]]; then
        grep -E "panicked at|^\[|Test unit written to|^error" "$log" | sed 's/^/    /' | head -n 20 || true
        echo "    full output: $log"
    fi
    total_execs=$((total_execs + execs))
    total_crashes=$((total_crashes + crashes))
done

echo "fuzz: ${#targets[@]} targets, $total_execs executions, $total_crashes crashes"
if ((total_crashes > 0)); then
    exit 1
fi
