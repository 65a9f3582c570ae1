#!/usr/bin/env bash
# Measure the C command-line compressors on the WAL corpus built by
# make-wal-corpus.sh, as a baseline for barman-rs's own codecs.
#
# Usage: compare-c-tools.sh [WAL_DIR]
#   WAL_DIR  default ${BARMAN_BENCH_WAL_DIR:-<repo>/benches/.cache/wal}
# Environment:
#   RUNS     timed runs per measurement, the best one counts (default 3)
#
# For each codec+level, every segment is compressed file -> stdout, one process
# per file, single-threaded, input warm in the page cache:
#   compress MB/s    total uncompressed bytes / wall time, output to /dev/null
#   decompress MB/s  total uncompressed bytes / wall time, output to /dev/null
#   ratio            total compressed bytes / total uncompressed bytes
# MB = 10^6 bytes. Prints a markdown table and writes the same rows as TSV
# (codec level comp_mbps decomp_mbps ratio, with a header line) to
# <repo>/benches/.cache/c-tools.tsv. Missing tools are skipped with a warning.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
WAL_DIR=${1:-${BARMAN_BENCH_WAL_DIR:-"$SCRIPT_DIR/.cache/wal"}}
TSV="$SCRIPT_DIR/.cache/c-tools.tsv"
RUNS=${RUNS:-3}

log() { printf '[compare-c-tools] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ -d "$WAL_DIR" ]] || die "$WAL_DIR does not exist; run benches/make-wal-corpus.sh first"
mapfile -t FILES < <(find "$WAL_DIR" -maxdepth 1 -type f -printf '%p\n' |
    grep -E '/[0-9A-Fa-f]{24}$' | LC_ALL=C sort || true)
((${#FILES[@]} > 0)) || die "no WAL segment (24 hex digit name) in $WAL_DIR; run benches/make-wal-corpus.sh first"
TOTAL=$(cat -- "${FILES[@]}" | wc -c)

# Compressed copies live in RAM (tmpfs) so decompression reads no disk.
SHM=/dev/shm
[[ -d "$SHM" && -w "$SHM" ]] || SHM=${TMPDIR:-/tmp}
TMP=$(mktemp -d "$SHM/barman-rs-ctools.XXXXXX")
trap 'rm -rf -- "$TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# codec level compress-command (reads FILE, writes stdout); decompress is "<tool> -d -c".
CODECS=(
    "gzip 1 gzip -1 -n -c"
    "gzip 6 gzip -6 -n -c"
    "zstd 1 zstd -1 -T1 -q -c"
    "zstd 3 zstd -3 -T1 -q -c"
    "lz4 1 lz4 -1 -q -c"
    "bzip2 9 bzip2 -9 -c"
    "xz 3 xz -3 -T1 -c"
)

# best_ns CMD... : best wall time in ns over RUNS runs of "CMD FILE >/dev/null" for every FILE.
best_ns() {
    local best=0 run t0 t1 f
    for ((run = 0; run < RUNS; run++)); do
        t0=$(date +%s%N)
        for f in "${INPUTS[@]}"; do "$@" "$f" >/dev/null; done
        t1=$(date +%s%N)
        if ((best == 0 || t1 - t0 < best)); then best=$((t1 - t0)); fi
    done
    echo "$best"
}
mbps() { awk -v b="$1" -v ns="$2" 'BEGIN { printf "%.1f", b * 1000 / ns }'; }

log "${#FILES[@]} segments, $TOTAL bytes, from $WAL_DIR; best of $RUNS runs"
cat -- "${FILES[@]}" >/dev/null # warm the page cache

ROWS=()
for spec in "${CODECS[@]}"; do
    read -r codec level tool args <<<"$spec"
    read -ra args <<<"$args"
    if ! command -v "$tool" >/dev/null; then
        log "WARNING: $tool not found, skipping $codec -$level"
        continue
    fi
    # Compressed copies (for the ratio and as decompression input) + round-trip check.
    CFILES=()
    for f in "${FILES[@]}"; do
        c="$TMP/$(basename -- "$f").$codec"
        "$tool" "${args[@]}" "$f" >"$c"
        CFILES+=("$c")
    done
    "$tool" -d -c "${CFILES[0]}" | cmp -s - "${FILES[0]}" || die "$codec -$level: round trip mismatch"
    COMP=$(cat -- "${CFILES[@]}" | wc -c)

    INPUTS=("${FILES[@]}")
    comp_ns=$(best_ns "$tool" "${args[@]}")
    cat -- "${CFILES[@]}" >/dev/null
    INPUTS=("${CFILES[@]}")
    decomp_ns=$(best_ns "$tool" -d -c)
    rm -f -- "${CFILES[@]}"

    ratio=$(awk -v c="$COMP" -v t="$TOTAL" 'BEGIN { printf "%.3f", c / t }')
    ROWS+=("$codec	$level	$(mbps "$TOTAL" "$comp_ns")	$(mbps "$TOTAL" "$decomp_ns")	$ratio")
    log "$codec -$level done"
done
((${#ROWS[@]} > 0)) || die "none of the tools is installed"

mkdir -p -- "$(dirname -- "$TSV")"
{
    printf 'codec\tlevel\tcomp_mbps\tdecomp_mbps\tratio\n'
    printf '%s\n' "${ROWS[@]}"
} >"$TSV"

echo "| codec | level | compress MB/s | decompress MB/s | ratio |"
echo "|-------|------:|--------------:|----------------:|------:|"
printf '%s\n' "${ROWS[@]}" | awk -F'\t' '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }'
log "TSV written to $TSV"
