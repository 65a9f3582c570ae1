#!/usr/bin/env bash
# The disaster drill (the README's first command): on a fresh machine, installs
# PostgreSQL 15 if it is missing (as root, from Debian's packages), builds barman-rs,
# then runs examples/disaster-drill.rs: a throwaway cluster archiving through
# `barman put-wal`, a base backup, an UPDATE without WHERE and a DROP DATABASE, and
# recoveries to the moment before each mistake by time, xid, restore point and LSN,
# each started and compared by content with what was committed. Exit 0 when every
# recovered copy matches. Extra arguments go to the drill (`--keep` keeps its files).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "PostgreSQL's server programs are missing: run as root to install postgresql-15, or set PG_BIN" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-client-15 util-linux
fi
command -v cargo >/dev/null || { echo "cargo is not installed" >&2; exit 1; }
cargo build --release --quiet -p barman-cli --bins
cargo build --release --quiet -p barman-examples --example disaster-drill
exec ./target/release/examples/disaster-drill "$@"
