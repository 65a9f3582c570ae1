#!/usr/bin/env bash
# Kept for habit: our codecs against the C tools is now a measurement of barman-bench (benches/bench.sh).
exec "$(dirname "${BASH_SOURCE[0]}")/bench.sh" --only codecs "$@"
