#!/usr/bin/env bash
# The one entry point of the benchmarks: builds barman and barman-bench (release) and
# runs the bench; arguments go to barman-bench (see its --help). OUT (default
# /tmp/barman-bench-report) is where report.md and the charts go when --out is not given.
#
#   bash benches/bench.sh                      # pgbench -s 100, 3 repetitions
#   bash benches/bench.sh --quick              # scale 1, one repetition
#   bash benches/bench.sh --only archive       # one measurement
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cargo build --quiet --release --manifest-path "$root/Cargo.toml" \
    -p barman-cli -p barman-benches --bin barman --bin barman-bench
args=("$@")
if [[ " $* " != *" --out "* ]]; then
    args+=(--out "${OUT:-/tmp/barman-bench-report}")
fi
exec "${CARGO_TARGET_DIR:-$root/target}/release/barman-bench" "${args[@]}"
