#!/usr/bin/env bash
# One run that compares barman-rs codecs with the C tools on the same real WAL segments:
# builds the corpus if needed, measures the C tools, then our codecs, and prints the
# side-by-side table.
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
bash "$here/make-wal-corpus.sh"
bash "$here/compare-c-tools.sh"
cargo run --quiet --release --manifest-path "$here/../Cargo.toml" -p barman-benches --bin codec-table
