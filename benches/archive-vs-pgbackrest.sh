#!/usr/bin/env bash
# Kept for habit: archive_command: barman-rs put-wal against cp + sync, pgBackRest archive-push and Barman's put-wal is now a measurement of barman-bench (benches/bench.sh).
exec "$(dirname "${BASH_SOURCE[0]}")/bench.sh" --only archive "$@"
