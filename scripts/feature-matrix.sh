#!/usr/bin/env bash
# The builds a user's feature choice can make, the way metrics' CI checks them:
# - telemetry-core with each feature alone, with no feature and with all (cargo hack), and its
#   own lints and unit tests with its default features and with none (the workspace's tests
#   unify more);
# - the docs as docs.rs builds them (every feature, each gated item marked with its feature);
# - the tests with the newest linkme 0.3.x (Cargo.lock holds the lowest one allowed), since the
#   macros rely on linkme's section protocol (tests/registry.rs: never-run sites are listed);
# - the declared MSRV against every dependency's `rust-version` (scripts/msrv-check.py; clippy's
#   `incompatible_msrv` checks the std APIs we use). A build with that older toolchain itself
#   needs a second toolchain, which this CI cannot fetch.
#
# Installs cargo-hack from crates.io if it is missing. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo hack --version >/dev/null 2>&1; then
    echo "feature-matrix: installing cargo-hack"
    cargo install cargo-hack --locked
fi

echo "== telemetry-core: each feature alone, no feature, all features"
cargo hack check -p telemetry-core --each-feature --no-dev-deps

echo "== telemetry-core alone, with its default features: lints and unit tests"
cargo clippy -p telemetry-core --all-targets -- -D warnings
cargo test -p telemetry-core --lib --quiet
echo "== telemetry-core alone, with no feature: lints and unit tests"
cargo clippy -p telemetry-core --no-default-features --all-targets -- -D warnings
cargo test -p telemetry-core --lib --no-default-features --quiet

echo "== docs as docs.rs builds them"
RUSTC_BOOTSTRAP=1 RUSTDOCFLAGS="--cfg docsrs -D warnings" \
    cargo doc -p telemetry-core --all-features --no-deps --quiet

echo "== the declared MSRV against the dependency graph"
python3 scripts/msrv-check.py

echo "== the newest linkme 0.3.x"
lock=$(mktemp)
cp Cargo.lock "$lock"
trap 'cp "$lock" Cargo.lock; rm -f "$lock"' EXIT
cargo update -p linkme --quiet
cargo tree -p telemetry-core -i linkme --depth 0
cargo test --test registry --test macro_shapes --quiet
