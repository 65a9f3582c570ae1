#!/usr/bin/env bash
# The test command of barman-rs: formatting, lints, every test and doctest, benches and
# fuzz targets compiled, the fuzz targets run for a bounded time, and the dependency
# boundaries of the sans-IO crates.
#
# BARMAN_FUZZ_SECONDS: wall-clock seconds of the fuzz run, all fuzz directories together
# (default 150; 0 feeds the seeds only). BARMAN_FUZZ_JOBS: targets run at
# once (default: the number of CPUs). BARMAN_FUZZ_SEED: seed of the mutations (default 0).
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

step "barman-client stays light: no PostgreSQL client, TLS or configuration reader"
if cargo tree -p barman-client -e normal --locked --prefix none | grep -E '^(tokio-postgres|postgres-protocol|rustls|aws-lc-rs|aws-lc-sys|barman-core|barman-catalog|object_store) ' ; then
    echo "barman-client must not depend on these (barman-wal-archive and barman-wal-restore run once per WAL segment)" >&2
    exit 1
fi

step "barman-core without its postgres feature: no PostgreSQL client or TLS"
cargo clippy -p barman-core --no-default-features --locked -- -D warnings
if cargo tree -p barman-core --no-default-features -e normal --locked --prefix none | grep -E '^(tokio-postgres|postgres-protocol|rustls|aws-lc-rs|aws-lc-sys) ' ; then
    echo "barman-core without the postgres feature must not depend on these (archive- and catalogue-only embedders)" >&2
    exit 1
fi

step "cargo test (unit, integration and doc tests)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --all-features --locked 2>&1 | tee "$log"
totals=$(awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed", p, f }' "$log")

step "docs build without warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked --quiet

step "benches compile"
cargo bench --workspace --no-run --locked

# Every fuzz directory: its own cargo workspace with the targets as functions of its
# library (src/lib.rs), libFuzzer binaries (fuzz_targets/), committed seeds (seeds/) and
# the stable runner (tests/seeds.rs). Add a directory here and it is compiled and run.
fuzz_dirs=(
    crates/barman-wal/fuzz
    crates/barman-catalog/fuzz
    crates/barman-core/fuzz
)
# One build directory for all of them: the crates they share are built once.
fuzz_target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"

step "fuzz targets compile (libFuzzer binaries)"
for d in "${fuzz_dirs[@]}"; do
    cargo check --manifest-path "$d/Cargo.toml" --target-dir "$fuzz_target_dir" --bins
done

# The runner (crates/barman-fuzz-runner) is a member of the workspace: its own tests ran
# above.
step "fuzz runners build (stable, optimised, with overflow checks)"
for d in "${fuzz_dirs[@]}"; do
    cargo test --release --no-default-features --manifest-path "$d/Cargo.toml" \
        --target-dir "$fuzz_target_dir" --test seeds --no-run
done

fuzz_seconds="${BARMAN_FUZZ_SECONDS:-150}"
fuzz_jobs="${BARMAN_FUZZ_JOBS:-$(nproc)}"
fuzz_targets=0
for d in "${fuzz_dirs[@]}"; do
    fuzz_targets=$((fuzz_targets + $(find "$d/fuzz_targets" -name '*.rs' | wc -l)))
done
# Each target gets an equal share of the wall-clock budget, fuzz_jobs targets at a time.
per_target=$(awk -v s="$fuzz_seconds" -v j="$fuzz_jobs" -v n="$fuzz_targets" \
    'BEGIN { printf "%.1f", s * j / n }')
step "fuzz targets run: seeds, then mutations for ${per_target}s each (${fuzz_targets} targets, ${fuzz_jobs} at a time, about ${fuzz_seconds}s)"
fuzz_start=$SECONDS
for d in "${fuzz_dirs[@]}"; do
    BARMAN_FUZZ_TARGET_SECONDS="$per_target" RUST_TEST_THREADS="$fuzz_jobs" \
        cargo test --release --no-default-features --manifest-path "$d/Cargo.toml" \
        --target-dir "$fuzz_target_dir" --test seeds -- --nocapture
done
echo "fuzz run: $((SECONDS - fuzz_start))s"

# The one benchmark command in its quick mode: a debug build, so its figures mean
# nothing; what is checked is that every measurement still runs and reports.
step "barman-bench --quick (the bench harness keeps working)"
cargo build --locked -p barman-cli -p barman-benches --bin barman --bin barman-bench
bench_out=$(mktemp -d)
"${CARGO_TARGET_DIR:-target}/debug/barman-bench" --quick --out "$bench_out"
for section in "WAL compression" "archive_command, per segment" "get-wal (restore_command), per segment" \
    "Full backup" "Incremental backup" "Restore" "Point-in-time recovery (RTO)" \
    "Synchronous streaming: commit latency" "Streaming: catch-up" "Catalogue at scale" "list-backups at scale" "Restore test (sandbox)"; do
    grep -q "^## $section" "$bench_out/report.md" || { echo "report.md has no '$section'" >&2; exit 1; }
done
rm -rf "$bench_out"

echo
echo "all checks passed"
echo "tests: $totals"
