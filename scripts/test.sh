#!/usr/bin/env bash
# The test command of barman-rs: formatting, lints, every test and doctest, benches and
# fuzz targets compiled, and the dependency boundaries of the sans-IO crates.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all features, all targets)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "cargo clippy barman-wal without default features"
cargo clippy -p barman-wal --no-default-features --locked -- -D warnings

step "sans-IO crates do not depend on tokio or other barman crates"
for c in barman-wal barman-catalog; do
    if cargo tree -p "$c" -e normal --locked --prefix none | grep -E '^(tokio|async-trait|object_store|barman-transport|barman-core) ' ; then
        echo "$c must stay sans-IO" >&2
        exit 1
    fi
done

step "cargo test (unit, integration and doc tests)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --all-features --locked 2>&1 | tee "$log"
totals=$(awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed", p, f }' "$log")

step "docs build without warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked --quiet

step "benches compile"
cargo bench --workspace --no-run --locked

step "fuzz targets compile"
cargo check --manifest-path crates/barman-wal/fuzz/Cargo.toml --bins

echo
echo "all checks passed"
echo "tests: $totals"
