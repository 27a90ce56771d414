#!/usr/bin/env bash
# Compile-time cost of the attributes: `cargo check` of a crate of N functions (default 1,000)
# with `#[count_usage]` on each, with `#[timed]` on each, and with no attribute, all three
# depending on telemetry-core by path and calling it once outside the functions (as an
# application does to report), so all three load its metadata and the difference is the
# attributes alone. Two function bodies: "small" (two lines of arithmetic, the worst case for
# the ratio) and "typical" (thirteen lines: parsing, a loop, a map, `format!`, `?`).
# Dependencies are checked once first, so each timing is the crate alone: `touch src/lib.rs`,
# `cargo check`, best of R runs (default 3). Two modes: "incremental" is the default edit loop
# (rustc reuses its incremental cache for unchanged items, but always re-runs the macros);
# "full" sets CARGO_INCREMENTAL=0, so the whole crate is expanded and checked again.
#
#   scripts/compile-time.sh [--functions N] [--runs R] [--body small|typical|both] [--keep]
#                           [--instructions]
#
# --instructions also counts the instructions rustc executes for each full check (needs
# valgrind): unlike wall time, that count repeats on a busy machine.
#
# The crates are generated under target/compile-time/ (never committed) and share one target
# directory there, so the workspace's own target/ is not touched. Prints a Markdown table and
# the ratio to the plain crate; the target of the issue is <= 1.3x.
set -euo pipefail

functions=1000
runs=3
bodies=(small typical)
keep=0
count_instructions=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --functions) functions="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --body) if [[ "$2" == both ]]; then bodies=(small typical); else bodies=("$2"); fi; shift 2 ;;
        --keep) keep=1; shift ;;
        --instructions) count_instructions=1; shift ;;
        -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$root/target/compile-time"
export CARGO_TARGET_DIR="$work/target"
variants=(plain count_usage timed)

# One function of the given body shape, numbered $2.
function_source() {
    local body="$1" i="$2"
    if [[ "$body" == small ]]; then
        printf 'pub fn f%04d(x: u64, y: u64) -> u64 {\n' "$i"
        printf '    let z = x.wrapping_mul(%d).rotate_left(%d);\n' "$((i + 1))" "$((i % 63 + 1))"
        printf '    if z > y { z - y } else { y ^ %d }\n}\n' "$i"
    else
        printf 'pub fn f%04d(input: &str, store: &mut HashMap<String, u64>) -> Result<u64, String> {\n' "$i"
        printf '    let key = input.trim().to_lowercase();\n'
        printf '    if key.is_empty() {\n'
        printf '        return Err(format!("empty key in request %d"));\n' "$i"
        printf '    }\n'
        printf "    let parts: Vec<&str> = key.split(',').collect();\n"
        printf '    let mut total = 0u64;\n'
        printf '    for part in &parts {\n'
        printf '        let n: u64 = part.parse().map_err(|e| format!("bad number {part}: {e}"))?;\n'
        printf '        total = total.wrapping_add(n * %d);\n' "$i"
        printf '    }\n'
        printf '    let entry = store.entry(key).or_insert(0);\n'
        printf '    *entry += total;\n'
        printf '    Ok(*entry)\n}\n'
    fi
}

# Writes the crate target/compile-time/$1-$2 (variant, body).
generate() {
    local variant="$1" body="$2" dir="$work/$1-$2" attr=""
    case "$variant" in
        count_usage) attr="#[count_usage]" ;;
        timed) attr="#[timed]" ;;
    esac
    rm -rf "$dir"
    mkdir -p "$dir/src"
    cat >"$dir/Cargo.toml" <<EOF
[package]
name = "compile_time_${variant}_$body"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
telemetry-core = { path = "$root/telemetry-core" }

# Not a member of the repository's workspace.
[workspace]
EOF
    # The repository's lock file, so the dependencies are the versions the workspace uses.
    cp "$root/Cargo.lock" "$dir/Cargo.lock"
    {
        echo "//! $functions functions with $body bodies, attribute: ${attr:-none}."
        echo "#![allow(dead_code)]"
        echo "use std::collections::HashMap;"
        [[ -n "$attr" ]] && echo "use telemetry_core::$variant;"
        echo
        echo "/// The application reports its telemetry."
        echo "pub fn report() -> telemetry_core::Snapshot {"
        echo "    telemetry_core::snapshot()"
        echo "}"
        for ((i = 0; i < functions; i++)); do
            printf '\n/// Function number %d.\n' "$i"
            [[ -n "$attr" ]] && echo "$attr"
            function_source "$body" "$i"
        done
    } >"$dir/src/lib.rs"
}

check() {
    local dir="$1"
    if ! cargo check --offline --quiet --manifest-path "$dir/Cargo.toml" 2>/dev/null; then
        cargo check --quiet --manifest-path "$dir/Cargo.toml"
    fi
}

now() { echo "${EPOCHREALTIME/,/.}"; }

declare -A best
for body in "${bodies[@]}"; do
    for variant in "${variants[@]}"; do
        generate "$variant" "$body"
        echo "warming $variant-$body (dependencies)..." >&2
        check "$work/$variant-$body"
    done
done
for mode in incremental full; do
    if [[ "$mode" == full ]]; then export CARGO_INCREMENTAL=0; else unset CARGO_INCREMENTAL; fi
    for body in "${bodies[@]}"; do
        for variant in "${variants[@]}"; do
            check "$work/$variant-$body" # once in this mode, untimed
        done
        # Rounds interleave the variants, so that a slow stretch of a shared machine slows
        # all of them rather than one.
        for ((r = 0; r < runs; r++)); do
            for variant in "${variants[@]}"; do
                dir="$work/$variant-$body"
                touch "$dir/src/lib.rs"
                start=$(now)
                check "$dir"
                end=$(now)
                t=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }')
                echo "$mode $variant-$body run $((r + 1)): ${t} s" >&2
                key="$mode/$variant-$body"
                if [[ -z "${best[$key]:-}" ]] || awk -v a="$t" -v b="${best[$key]}" 'BEGIN { exit !(a < b) }'; then
                    best[$key]="$t"
                fi
            done
        done
    done
done

# Instructions executed by rustc for each full check (callgrind), which repeat to within 0.1%
# on a busy machine where wall times vary by 10-20%.
declare -A instructions
if [[ "$count_instructions" == 1 ]]; then
    wrapper="$work/count-instructions.sh"
    cat >"$wrapper" <<'WRAPPER'
#!/usr/bin/env bash
# RUSTC_WRAPPER: runs rustc under callgrind for the generated crates only.
rustc="$1"; shift
name=""; prev=""
for a in "$@"; do [[ "$prev" == "--crate-name" ]] && name="$a"; prev="$a"; done
if [[ "$name" == compile_time_* ]]; then
    exec valgrind --tool=callgrind --callgrind-out-file="$COMPILE_TIME_WORK/$name.callgrind" -q "$rustc" "$@"
fi
exec "$rustc" "$@"
WRAPPER
    chmod +x "$wrapper"
    export CARGO_INCREMENTAL=0 COMPILE_TIME_WORK="$work"
    for body in "${bodies[@]}"; do
        for variant in "${variants[@]}"; do
            dir="$work/$variant-$body"
            touch "$dir/src/lib.rs"
            RUSTC_WRAPPER="$wrapper" cargo check --offline --quiet --manifest-path "$dir/Cargo.toml" 2>/dev/null
            out="$work/compile_time_${variant}_$body.callgrind"
            instructions[$variant-$body]=$(awk '/^(summary|totals):/ { print $2; exit }' "$out")
            rm -f "$out"
        done
    done
fi

# The table label of a variant.
label() {
    if [[ "$1" == plain ]]; then echo "no attribute"; else echo "\`#[$1]\` on every function"; fi
}

ratio() { awk -v a="${best[$1/$2-$3]}" -v b="${best[$1/plain-$3]}" 'BEGIN { printf "%.2f", a / b }'; }
echo "| Crate ($functions functions) | body | incremental re-check | ratio | full check (CARGO_INCREMENTAL=0) | ratio |"
echo "|---|---|--:|--:|--:|--:|"
for body in "${bodies[@]}"; do
    for variant in "${variants[@]}"; do
        echo "| $(label "$variant") | $body | ${best[incremental/$variant-$body]} s | $(ratio incremental "$variant" "$body")x" \
            "| ${best[full/$variant-$body]} s | $(ratio full "$variant" "$body")x |"
    done
done
echo
echo "\`cargo check\` wall time, best of $runs (rounds interleave the variants), after \`touch src/lib.rs\`;"
echo "target of the issue: <= 1.3x."
if [[ "$count_instructions" == 1 ]]; then
    echo
    echo "| Crate ($functions functions) | body | rustc instructions, full check | ratio |"
    echo "|---|---|--:|--:|"
    for body in "${bodies[@]}"; do
        for variant in "${variants[@]}"; do
            n="${instructions[$variant-$body]}"
            r=$(awk -v a="$n" -v b="${instructions[plain-$body]}" 'BEGIN { printf "%.2f", a / b }')
            echo "| $(label "$variant") | $body | $(awk -v n="$n" 'BEGIN { printf "%.2f G", n / 1e9 }') | ${r}x |"
        done
    done
fi

if [[ "$keep" == 0 ]]; then
    for body in "${bodies[@]}"; do
        for variant in "${variants[@]}"; do rm -rf "${work:?}/$variant-$body"; done
    done
fi
