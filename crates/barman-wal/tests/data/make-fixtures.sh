#!/usr/bin/env bash
# Regenerate the real PostgreSQL 15 WAL fixtures used by barman-wal's tests.
#
# Usage: make-fixtures.sh [OUTPUT_DIR]
#   OUTPUT_DIR defaults to "<directory of this script>/pg15".
#
# Environment:
#   PGBIN        PostgreSQL 15 binaries   (default /usr/lib/postgresql/15/bin)
#   PG_OS_USER   OS user that runs the server when this script runs as root
#                (default postgres; PostgreSQL refuses to run as root)
#
# What it does (see README.md next to this script for the full story):
#   1. initdb a throwaway cluster in a mktemp dir, wal_level=replica,
#      archive_mode=on, archive_command copying into <tmp>/archive,
#      unix socket in the temp dir only (listen_addresses='').
#   2. Generate WAL with a few pg_switch_wal() calls, create a tablespace whose
#      path contains a space, take a non-exclusive backup with
#      pg_backup_start/pg_backup_stop in one psql session (captures
#      backup_label + tablespace_map, archives <seg>.<off>.backup).
#   3. pg_create_restore_point('before the "mistake"'), make "the mistake",
#      switch + archive, stop; put the file copy taken during the backup in
#      place (with backup_label, tablespace_map, empty pg_wal), add
#      recovery.signal with restore_command + recovery_target_name +
#      recovery_target_action=promote and start: recovery replays from the
#      archive, stops at the restore point and promotes to timeline 2, which
#      archives 00000002.history. (A crash-stop of the original cluster does
#      not work: crash recovery is only consistent at the end of WAL, so
#      PostgreSQL refuses to stop at an earlier restore point.)
#   4. Copy the small artefacts into OUTPUT_DIR.
# The server is stopped and the temp dir removed on exit, even on failure.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_OS_USER=${PG_OS_USER:-postgres}
SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
OUT_DIR=${1:-"$SCRIPT_DIR/pg15"}
mkdir -p -- "$OUT_DIR"
OUT_DIR=$(cd -- "$OUT_DIR" && pwd -P)

RESTORE_POINT='before the "mistake"'
BACKUP_LABEL_TEXT='barman-rs fixture backup'
MAX_WALDUMP_LINES=200
MAX_GZ_BYTES=$((200 * 1024))

log() { printf '[make-fixtures] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for tool in initdb pg_ctl psql pg_waldump pg_controldata; do
    [[ -x "$PGBIN/$tool" ]] || die "$PGBIN/$tool not found (set PGBIN)"
done
for tool in od gzip stat; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

# Run a PostgreSQL tool as the right OS user.
if ((EUID == 0)); then
    id -u "$PG_OS_USER" >/dev/null 2>&1 || die "OS user $PG_OS_USER does not exist"
    run_pg() { runuser -u "$PG_OS_USER" -- "$@"; }
else
    run_pg() { "$@"; }
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/barman-rs-fixtures.XXXXXX")
PGDATA="$TMP/data"
ARCHIVE="$TMP/archive"
SOCKDIR="$TMP"
TBLSPC_DIR="$TMP/tablespace dir"
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
# Every server tool runs with a cwd the server user can enter.
cd "$TMP"

# The server only listens on a unix socket inside $TMP, so any port number is
# free; pick one that is unlikely to collide with anything anyway.
PORT=${PGPORT_FIXTURES:-$((20000 + RANDOM % 20000))}

run_pg mkdir -p "$ARCHIVE" "$TBLSPC_DIR"

psql_() {
    run_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$PORT" \
        -U postgres -d postgres -At "$@"
}
sql() { psql_ -c "$1"; }

pg_start() {
    run_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$SERVER_LOG" -w -t 120 start >/dev/null
    SERVER_STARTED=1
}

# wait_for CMD... : retry a command for up to 60 seconds.
wait_for() {
    local i
    for ((i = 0; i < 600; i++)); do
        if "$@"; then return 0; fi
        sleep 0.1
    done
    return 1
}
archived() { [[ -f "$ARCHIVE/$1" ]]; }
not_in_recovery() { [[ "$(sql 'SELECT pg_is_in_recovery()')" == f ]]; }

# Read little-endian unsigned integers out of a file.
le_u16() { od -An -v -tx2 --endian=little -j "$2" -N 2 -- "$1" | tr -d ' \n'; }
le_u32() { od -An -v -tu4 --endian=little -j "$2" -N 4 -- "$1" | tr -d ' \n'; }
le_u64() { od -An -v -tu8 --endian=little -j "$2" -N 8 -- "$1" | tr -d ' \n'; }

log "temp dir: $TMP (port $PORT)"

# ---------------------------------------------------------------- initdb ---
run_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust --no-locale -E UTF8 \
    --no-sync >"$TMP/initdb.log" 2>&1 || { cat "$TMP/initdb.log" >&2; die "initdb failed"; }

run_pg tee -a "$PGDATA/postgresql.conf" >/dev/null <<EOF

# ---- barman-rs fixture settings ----
listen_addresses = ''
port = $PORT
unix_socket_directories = '$SOCKDIR'
max_connections = 10
shared_buffers = 16MB
max_wal_senders = 2
max_replication_slots = 2
wal_level = replica
archive_mode = on
archive_command = 'cp "%p" "$ARCHIVE/%f"'
archive_timeout = 0
checkpoint_timeout = 1h
max_wal_size = 256MB
min_wal_size = 32MB
fsync = off
autovacuum = off
EOF

pg_start
PG_VERSION_NUM=$(sql 'SHOW server_version_num')
log "server up, server_version_num=$PG_VERSION_NUM"
[[ "$PG_VERSION_NUM" == 15* ]] || die "expected PostgreSQL 15, got $PG_VERSION_NUM"

# ------------------------------------------------------------ some WAL ----
sql "CREATE TABLE fixture (id int PRIMARY KEY, payload text)"
sql "INSERT INTO fixture SELECT g, repeat('x', 50) FROM generate_series(1, 100) g"
sql "SELECT pg_switch_wal()" >/dev/null
# First segment written after the first pg_switch_wal().
sql "INSERT INTO fixture SELECT g, 'after switch' FROM generate_series(101, 120) g"
SEG_AFTER_SWITCH=$(sql "SELECT pg_walfile_name(pg_current_wal_insert_lsn())")
sql "SELECT pg_switch_wal()" >/dev/null

# ----------------------------------------------------------- tablespace ---
TBLSPC_DIR_SQL=${TBLSPC_DIR//\'/\'\'}
sql "CREATE TABLESPACE fixture_ts LOCATION '$TBLSPC_DIR_SQL'"
sql "CREATE TABLE in_ts (id int) TABLESPACE fixture_ts"
sql "INSERT INTO in_ts SELECT generate_series(1, 10)"
TBLSPC_OID=$(sql "SELECT oid FROM pg_tablespace WHERE spcname = 'fixture_ts'")
sql "SELECT pg_switch_wal()" >/dev/null

# ------------------------------------------------- non-exclusive backup ---
# pg_backup_start and pg_backup_stop must run in the same session; the file
# copy of the data directory and of the tablespace happens in between (via
# psql's \!, i.e. as the server's OS user). The label and map are written
# NUL-terminated so they can be split back out exactly as returned.
log "running pg_backup_start / copy / pg_backup_stop"
BB_DATA="$TMP/basebackup"
BB_TBLSPC="$TMP/basebackup-tablespace"
psql_ >/dev/null <<EOF
SELECT pg_backup_start('$BACKUP_LABEL_TEXT', true);
\! cp -a "$PGDATA" "$BB_DATA" && cp -a "$TBLSPC_DIR" "$BB_TBLSPC"
INSERT INTO fixture SELECT g, 'during backup' FROM generate_series(121, 130) g;
\pset format unaligned
\pset tuples_only on
\pset fieldsep_zero
\pset recordsep_zero
\o $TMP/backup_stop.out
SELECT labelfile, spcmapfile FROM pg_backup_stop(true);
\o
EOF
[[ -f "$BB_DATA/global/pg_control" && -d "$BB_TBLSPC" ]] || die "file copy of the backup failed"
{
    IFS= read -r -d '' LABEL_FILE
    IFS= read -r -d '' SPCMAP_FILE
} <"$TMP/backup_stop.out" || die "could not parse pg_backup_stop output"
[[ "$LABEL_FILE" == *"LABEL: $BACKUP_LABEL_TEXT"* ]] || die "unexpected backup_label: $LABEL_FILE"
[[ -n "$SPCMAP_FILE" ]] || die "pg_backup_stop returned an empty tablespace_map"

# -------------------------------------------- restore point, "mistake" ----
sql "INSERT INTO fixture SELECT g, 'after backup' FROM generate_series(131, 140) g"
sql "SELECT pg_switch_wal()" >/dev/null
sql "INSERT INTO fixture SELECT g, 'kept' FROM generate_series(141, 150) g"
RP_SQL=${RESTORE_POINT//\'/\'\'}
RESTORE_POINT_LSN=$(sql "SELECT pg_create_restore_point('$RP_SQL')")
sql "DELETE FROM fixture"   # the mistake
sql "INSERT INTO fixture VALUES (999, 'lost after PITR')"
RP_SEG=$(sql "SELECT pg_walfile_name(pg_current_wal_insert_lsn())")
sql "SELECT pg_switch_wal()" >/dev/null
wait_for archived "$RP_SEG" || die "$RP_SEG (restore point segment) was not archived"
log "restore point at $RESTORE_POINT_LSN ($RP_SEG); stopping the server"
run_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
SERVER_STARTED=0

# Put the base backup in place of the old cluster, the way a restore does:
# data files, backup_label and tablespace_map, tablespace contents, empty
# pg_wal (everything is replayed from the archive).
run_pg mv "$PGDATA" "$TMP/data-before-pitr"
run_pg mv "$BB_DATA" "$PGDATA"
run_pg rm -rf "$TBLSPC_DIR"
run_pg mv "$BB_TBLSPC" "$TBLSPC_DIR"
run_pg rm -f "$PGDATA/postmaster.pid" "$PGDATA/postmaster.opts"
run_pg find "$PGDATA/pg_wal" -mindepth 1 -maxdepth 1 -type f -delete
run_pg find "$PGDATA/pg_wal/archive_status" -mindepth 1 -type f -delete
printf '%s' "$LABEL_FILE" | run_pg tee "$PGDATA/backup_label" >/dev/null
printf '%s' "$SPCMAP_FILE" | run_pg tee "$PGDATA/tablespace_map" >/dev/null

# ---------------------------------------------- PITR -> timeline 2 -------
run_pg tee -a "$PGDATA/postgresql.conf" >/dev/null <<EOF

restore_command = 'cp "$ARCHIVE/%f" "%p"'
recovery_target_name = '$RP_SQL'
recovery_target_action = 'promote'
EOF
run_pg touch "$PGDATA/recovery.signal"
pg_start
wait_for not_in_recovery || die "server did not leave recovery"
ROWS_AFTER_PITR=$(sql "SELECT count(*) FROM fixture")
[[ "$ROWS_AFTER_PITR" == 150 ]] || die "expected 150 rows after PITR, got $ROWS_AFTER_PITR"
TLI=$(sql "SELECT timeline_id FROM pg_control_checkpoint()")
[[ "$TLI" == 2 ]] || die "expected timeline 2 after promotion, got $TLI"
wait_for archived 00000002.history || die "00000002.history was not archived"

# The timeline-2 segment that contains the switch point.
SWITCH_LSN=$(awk -F'\t' 'NF >= 2 { lsn = $2 } END { print lsn }' "$ARCHIVE/00000002.history")
SEG_TL2=$(sql "SELECT pg_walfile_name('$SWITCH_LSN'::pg_lsn + 1)")
sql "INSERT INTO fixture SELECT g, 'timeline 2' FROM generate_series(1001, 1010) g"
sql "SELECT pg_switch_wal()" >/dev/null
wait_for archived "$SEG_TL2" || die "$SEG_TL2 was not archived"
run_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
SERVER_STARTED=0
run_pg "$PGBIN/pg_controldata" -D "$PGDATA" >"$TMP/controldata.txt"

# ------------------------------------------------------ pick segments ----
SEG_TL1_FIRST=$(find "$ARCHIVE" -maxdepth 1 -type f -name '00000001????????????????' \
    -printf '%f\n' | LC_ALL=C sort | head -n 1)
[[ -n "$SEG_TL1_FIRST" ]] || die "no timeline-1 segment in the archive"
for seg in "$SEG_TL1_FIRST" "$SEG_AFTER_SWITCH" "$SEG_TL2"; do
    archived "$seg" || die "segment $seg not in archive"
done
[[ "$SEG_TL1_FIRST" != "$SEG_AFTER_SWITCH" ]] || die "first and after-switch segments coincide"

# ------------------------------------------------------------- output ----
log "writing fixtures to $OUT_DIR"
# Remove artefacts of a previous run (only the kinds this script writes).
find "$OUT_DIR" -maxdepth 1 -type f \( -name '*.page0' -o -name '*.gz' \
    -o -name '*.waldump.txt' -o -name '*.backup' -o -name '*.history' \
    -o -name backup_label -o -name tablespace_map -o -name controldata.txt \
    -o -name facts.env \) -delete

cp -- "$ARCHIVE/00000002.history" "$OUT_DIR/"
BACKUP_FILES=()
while IFS= read -r f; do
    cp -- "$ARCHIVE/$f" "$OUT_DIR/"
    BACKUP_FILES+=("$f")
done < <(find "$ARCHIVE" -maxdepth 1 -type f -name '*.backup' -printf '%f\n' | LC_ALL=C sort)
((${#BACKUP_FILES[@]} > 0)) || die "no .backup file in the archive"
printf '%s' "$LABEL_FILE" >"$OUT_DIR/backup_label"
printf '%s' "$SPCMAP_FILE" >"$OUT_DIR/tablespace_map"
cp -- "$TMP/controldata.txt" "$OUT_DIR/controldata.txt"

for seg in "$SEG_TL1_FIRST" "$SEG_AFTER_SWITCH" "$SEG_TL2"; do
    head -c 8192 -- "$ARCHIVE/$seg" >"$OUT_DIR/$seg.page0"
done

# The segment whose gzip -9 is smallest gets shipped whole.
SEG_GZ='' GZ_SIZE=0
for seg in "$SEG_TL1_FIRST" "$SEG_AFTER_SWITCH" "$SEG_TL2"; do
    gzip -9 -n -c -- "$ARCHIVE/$seg" >"$TMP/$seg.gz"
    size=$(stat -c %s -- "$TMP/$seg.gz")
    log "gzip -9 $seg: $size bytes"
    if [[ -z "$SEG_GZ" ]] || ((size < GZ_SIZE)); then
        SEG_GZ=$seg GZ_SIZE=$size
    fi
done
((GZ_SIZE <= MAX_GZ_BYTES)) || die "smallest compressed segment is $GZ_SIZE bytes (> $MAX_GZ_BYTES)"
cp -- "$TMP/$SEG_GZ.gz" "$OUT_DIR/$SEG_GZ.gz"

# pg_waldump of exactly that one segment (alone in a directory, so it does
# not run on into the next one). It exits non-zero at the end of valid WAL.
WD_DIR="$TMP/waldump"
run_pg mkdir -p "$WD_DIR"
run_pg cp -- "$ARCHIVE/$SEG_GZ" "$WD_DIR/$SEG_GZ"
run_pg "$PGBIN/pg_waldump" "$WD_DIR/$SEG_GZ" >"$TMP/waldump.full" 2>"$TMP/waldump.err" || true
RECORDS=$(wc -l <"$TMP/waldump.full")
((RECORDS > 0)) || { cat "$TMP/waldump.err" >&2; die "pg_waldump printed no record"; }
{
    head -n "$MAX_WALDUMP_LINES" -- "$TMP/waldump.full"
    if ((RECORDS > MAX_WALDUMP_LINES)); then
        printf '# ... %d more records trimmed\n' $((RECORDS - MAX_WALDUMP_LINES))
    fi
    sed 's/^/# stderr: /' -- "$TMP/waldump.err"
    printf '# records: %d\n' "$RECORDS"
} >"$OUT_DIR/$SEG_GZ.waldump.txt"

# ------------------------------------------------------------ facts.env ---
SYSTEM_ID=$(sed -n 's/^Database system identifier: *//p' "$TMP/controldata.txt")
[[ "$SYSTEM_ID" =~ ^[0-9]+$ ]] || die "could not read the system identifier"
PAGE_MAGIC=0x$(le_u16 "$ARCHIVE/$SEG_TL1_FIRST" 0 | tr 'a-f' 'A-F')

page_facts() { # VAR_PREFIX FILE
    local p=$1 f=$2 magic sysid segsz blcksz hi lo
    magic=0x$(le_u16 "$f" 0 | tr 'a-f' 'A-F')
    [[ "$magic" == "$PAGE_MAGIC" ]] || die "$f: page magic $magic != $PAGE_MAGIC"
    sysid=$(le_u64 "$f" 24)
    [[ "$sysid" == "$SYSTEM_ID" ]] || die "$f: xlp_sysid $sysid != $SYSTEM_ID"
    segsz=$(le_u32 "$f" 32)
    [[ "$segsz" == 16777216 ]] || die "$f: xlp_seg_size $segsz"
    blcksz=$(le_u32 "$f" 36)
    [[ "$blcksz" == 8192 ]] || die "$f: xlp_xlog_blcksz $blcksz"
    lo=$(le_u32 "$f" 8)
    hi=$(le_u32 "$f" 12)
    printf '%s_PAGE0_INFO=0x%04X\n' "$p" "0x$(le_u16 "$f" 2)"
    printf '%s_PAGE0_TLI=%s\n' "$p" "$(le_u32 "$f" 4)"
    printf '%s_PAGE0_PAGEADDR=%X/%X\n' "$p" "$hi" "$lo"
    printf '%s_PAGE0_REM_LEN=%s\n' "$p" "$(le_u32 "$f" 16)"
}

# "tli:count" of xlp_tli over all 2048 page headers of a whole segment.
page_tlis() {
    od -An -v -tu4 --endian=little -w8192 -- "$1" |
        awk '{ n[$2]++ } END { for (t in n) print t ":" n[t] }' |
        LC_ALL=C sort -n | paste -sd ' ' -
}

{
    echo "# Generated by make-fixtures.sh; shell syntax (source it)."
    echo "SYSTEM_ID=$SYSTEM_ID"
    echo "WAL_SEG_SIZE=16777216"
    echo "BLOCK_SIZE=8192"
    echo "PG_VERSION_NUM=$PG_VERSION_NUM"
    echo "PAGE_MAGIC=$PAGE_MAGIC"
    echo "SEG_TL1_FIRST=$SEG_TL1_FIRST"
    echo "SEG_AFTER_SWITCH=$SEG_AFTER_SWITCH"
    echo "SEG_TL2=$SEG_TL2"
    echo "SEG_GZ=$SEG_GZ"
    echo "SEG_GZ_RECORDS=$RECORDS"
    echo "HISTORY_FILE=00000002.history"
    echo "TL2_SWITCH_LSN=$SWITCH_LSN"
    echo "BACKUP_FILES='${BACKUP_FILES[*]}'"
    echo "TABLESPACE_OID=$TBLSPC_OID"
    echo "RESTORE_POINT_NAME='$RESTORE_POINT'"
    echo "RESTORE_POINT_LSN=$RESTORE_POINT_LSN"
    page_facts SEG_TL1_FIRST "$ARCHIVE/$SEG_TL1_FIRST"
    page_facts SEG_AFTER_SWITCH "$ARCHIVE/$SEG_AFTER_SWITCH"
    page_facts SEG_TL2 "$ARCHIVE/$SEG_TL2"
    echo "# xlp_tli:page-count over all 2048 pages of the whole segment (only page0"
    echo "# is shipped for SEG_TL2); tli 0 = all-zero page after the XLOG SWITCH."
    echo "SEG_TL2_PAGE_TLIS='$(page_tlis "$ARCHIVE/$SEG_TL2")'"
    echo "SEG_AFTER_SWITCH_PAGE_TLIS='$(page_tlis "$ARCHIVE/$SEG_AFTER_SWITCH")'"
    echo "# Archive listing at the end of the run (for reference):"
    find "$ARCHIVE" -maxdepth 1 -type f -printf '#   %f\n' | LC_ALL=C sort
} >"$OUT_DIR/facts.env"

chmod 644 -- "$OUT_DIR"/*
log "done:"
ls -l -- "$OUT_DIR" >&2
