#!/usr/bin/env bash
# Kept for habit: full and incremental backups, restores and the RTO of a point-in-time recovery is now a measurement of barman-bench (benches/bench.sh).
exec "$(dirname "${BASH_SOURCE[0]}")/bench.sh" --only backup,incremental,restore "$@"
