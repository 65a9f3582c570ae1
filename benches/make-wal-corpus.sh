#!/usr/bin/env bash
# Build a corpus of real, full-size PostgreSQL 15 WAL segments for the
# compression benchmarks (the Criterion benches in benches/benches/wal.rs and
# barman-bench makes its own corpus from its cluster).
#
# Usage: make-wal-corpus.sh [OUT_DIR] [N_SEGMENTS]
#   OUT_DIR     default ${BARMAN_BENCH_WAL_DIR:-<repo>/benches/.cache/wal}
#               (benches/.cache is git-ignored)
#   N_SEGMENTS  default 8
#
# Environment:
#   PGBIN        PostgreSQL 15 binaries   (default /usr/lib/postgresql/15/bin)
#   PG_OS_USER   OS user that runs the server when this script runs as root
#                (default postgres; PostgreSQL refuses to run as root)
#   BENCH_SECONDS  duration of each pgbench round (default 20)
#
# If OUT_DIR already holds N segments, nothing is done. Otherwise a throwaway
# cluster (unix socket in a temp dir only, archive_mode=on, full_page_writes=on,
# wal_compression=off) runs `pgbench -i -s 20` and then `pgbench -c 2 -j 2 -T 20`
# after a CHECKPOINT, so the WAL is a realistic mix of full-page images and small
# records. N consecutive archived segments are copied to OUT_DIR, starting with
# the first one written entirely by the pgbench run (never the first 2 segments,
# which hold initdb's WAL, nor the last one, which is padded after the switch).
# The server is stopped and the temp dir removed on exit, even on failure.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_OS_USER=${PG_OS_USER:-postgres}
BENCH_SECONDS=${BENCH_SECONDS:-20}
SEG_SIZE=16777216
SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
OUT_DIR=${1:-${BARMAN_BENCH_WAL_DIR:-"$SCRIPT_DIR/.cache/wal"}}
N=${2:-8}

log() { printf '[make-wal-corpus] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "N_SEGMENTS must be a positive integer, got '$N'"
mkdir -p -- "$OUT_DIR"
OUT_DIR=$(cd -- "$OUT_DIR" && pwd -P)

# Names of the WAL segment files (24 hex digits) in a directory, sorted.
segments_in() {
    find "$1" -maxdepth 1 -type f -printf '%f\n' | grep -E '^[0-9A-Fa-f]{24}$' | LC_ALL=C sort || true
}

HAVE=$(segments_in "$OUT_DIR" | wc -l)
if ((HAVE >= N)); then
    log "$OUT_DIR already holds $HAVE WAL segments (>= $N): cached, nothing to do"
    exit 0
fi

for tool in initdb pg_ctl psql pgbench; do
    [[ -x "$PGBIN/$tool" ]] || die "$PGBIN/$tool not found (set PGBIN)"
done

# Run a PostgreSQL tool as the right OS user.
if ((EUID == 0)); then
    id -u "$PG_OS_USER" >/dev/null 2>&1 || die "OS user $PG_OS_USER does not exist"
    run_pg() { runuser -u "$PG_OS_USER" -- "$@"; }
else
    run_pg() { "$@"; }
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/barman-rs-walcorpus.XXXXXX")
PGDATA="$TMP/data"
ARCHIVE="$TMP/archive"
SERVER_LOG="$TMP/server.log"
SERVER_STARTED=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if ((SERVER_STARTED)) && [[ -f "$PGDATA/postmaster.pid" ]]; then
        run_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if ((rc != 0)) && [[ -f "$SERVER_LOG" ]]; then
        log "failed (exit $rc); last lines of the server log:"
        tail -n 40 -- "$SERVER_LOG" >&2 || true
    fi
    rm -rf -- "$TMP"
    rm -f -- "$OUT_DIR"/*.partial
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ((EUID == 0)); then
    chown "$PG_OS_USER": "$TMP"
    run_pg test -x "$TMP" || die "$PG_OS_USER cannot reach $TMP (set TMPDIR)"
fi
chmod 700 "$TMP"
cd "$TMP" # every server tool runs with a cwd the server user can enter

# Unix socket inside $TMP only, so any port number is free.
PORT=${PGPORT_WALCORPUS:-$((20000 + RANDOM % 20000))}
run_pg mkdir -p "$ARCHIVE"
log "temp dir: $TMP (port $PORT); building $N segments into $OUT_DIR"

sql() {
    run_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$TMP" -p "$PORT" \
        -U postgres -d postgres -At -c "$1"
}
pgbench_() {
    # (subshell: a trap firing meanwhile must not inherit the redirection)
    (run_pg "$PGBIN/pgbench" -h "$TMP" -p "$PORT" -U postgres "$@" postgres) \
        >>"$TMP/pgbench.log" 2>&1 || { tail -n 20 "$TMP/pgbench.log" >&2; die "pgbench $* failed"; }
}
wait_archived() { # up to 120 s
    local i
    for ((i = 0; i < 1200; i++)); do
        [[ -f "$ARCHIVE/$1" ]] && return 0
        sleep 0.1
    done
    return 1
}

(run_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust --no-locale -E UTF8 \
    --wal-segsize=16 --no-sync) >"$TMP/initdb.log" 2>&1 || { cat "$TMP/initdb.log" >&2; die "initdb failed"; }

run_pg tee -a "$PGDATA/postgresql.conf" >/dev/null <<EOF

# ---- barman-rs WAL corpus settings ----
listen_addresses = ''
port = $PORT
unix_socket_directories = '$TMP'
max_connections = 10
wal_level = replica
archive_mode = on
archive_command = 'cp "%p" "$ARCHIVE/%f"'
full_page_writes = on
wal_compression = off
max_wal_size = 128MB
min_wal_size = 32MB
fsync = off
EOF

run_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$SERVER_LOG" -w -t 120 start >/dev/null
SERVER_STARTED=1
[[ "$(sql 'SHOW server_version_num')" == 15* ]] || die "expected PostgreSQL 15"

log "pgbench -i -s 20"
pgbench_ -i -s 20 -q
sql 'CHECKPOINT'
# First segment written entirely by the pgbench run below.
RUN_START_LSN=$(sql 'SELECT pg_current_wal_insert_lsn()')
FIRST_SEG=$(sql "SELECT pg_walfile_name('$RUN_START_LSN'::pg_lsn + $SEG_SIZE)")
# Keep running until the run has filled N segments after FIRST_SEG's start.
for ((round = 1; round <= 20; round++)); do
    log "pgbench -c 2 -j 2 -T $BENCH_SECONDS (round $round)"
    pgbench_ -c 2 -j 2 -T "$BENCH_SECONDS"
    done_segs=$(sql "SELECT ((pg_current_wal_insert_lsn() - '$RUN_START_LSN') / $SEG_SIZE)::int")
    if ((done_segs >= N + 1)); then break; fi
done
sql 'CHECKPOINT'
LAST_SEG=$(sql 'SELECT pg_walfile_name(pg_switch_wal())')
wait_archived "$LAST_SEG" || die "$LAST_SEG was not archived"
log "archived $(segments_in "$ARCHIVE" | wc -l) segments; pgbench run starts in $FIRST_SEG"

# N consecutive segments from FIRST_SEG (shifted back if the run was short),
# never the first 2 (initdb) nor the last (padded after the switch).
mapfile -t ALL < <(segments_in "$ARCHIVE")
((${#ALL[@]} >= N + 3)) || die "only ${#ALL[@]} segments archived, need $((N + 3))"
ELIGIBLE=("${ALL[@]:2:${#ALL[@]}-3}")
START=0
for i in "${!ELIGIBLE[@]}"; do
    [[ "${ELIGIBLE[i]}" == "$FIRST_SEG" ]] && START=$i
done
((START + N <= ${#ELIGIBLE[@]})) || START=$((${#ELIGIBLE[@]} - N))
CHOSEN=("${ELIGIBLE[@]:START:N}")

# Replace any previous corpus; copy via *.partial so no half file has a segment name.
segments_in "$OUT_DIR" | while IFS= read -r f; do rm -f -- "${OUT_DIR:?}/$f"; done
for seg in "${CHOSEN[@]}"; do
    size=$(stat -c %s -- "$ARCHIVE/$seg")
    ((size == SEG_SIZE)) || die "$seg is $size bytes, expected $SEG_SIZE"
    magic=$(od -An -tx2 --endian=little -N 2 -- "$ARCHIVE/$seg" | tr -d ' ')
    [[ "$magic" == d110 ]] || die "$seg: page magic 0x$magic, expected 0xd110 (PostgreSQL 15)"
    cp -- "$ARCHIVE/$seg" "$OUT_DIR/$seg.partial"
    chmod 644 -- "$OUT_DIR/$seg.partial"
    mv -- "$OUT_DIR/$seg.partial" "$OUT_DIR/$seg"
done

log "done in ${SECONDS}s; corpus in $OUT_DIR:"
(cd "$OUT_DIR" && stat -c '%n %s' -- "${CHOSEN[@]}")
TOTAL=$((N * SEG_SIZE))
GZ=$(cd "$OUT_DIR" && cat -- "${CHOSEN[@]}" | gzip -1 -c | wc -c)
awk -v t="$TOTAL" -v g="$GZ" \
    'BEGIN { printf "total %d bytes, gzip -1: %d bytes (ratio %.3f)\n", t, g, g / t }'
