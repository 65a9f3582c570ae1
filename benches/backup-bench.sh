#!/usr/bin/env bash
# Full and incremental base backup wall time, barman-rs against pg_basebackup, pgBackRest
# and Barman, on one throwaway PostgreSQL 15 cluster (`pgbench -i -s $SCALE`, default 100,
# about 1.5 GB).
#
# Full backups, each into a fresh repository, no compression anywhere, fsync on:
#   - barman-rs `backup_method = local-rsync` with -j 1 and -j 2 (our parallel copier)
#   - barman-rs `backup_method = postgres` (drives pg_basebackup)
#   - `pg_basebackup -Fp -X none -c fast`
#   - pgBackRest `backup --type=full` with process-max 1 and 2, compress-type=none
#   - Barman from PyPI (`BARMAN_PY`, a venv's `barman`), backup_method = postgres
# Compressed: barman-rs postgres method with backup_compression lz4 and zstd (2 workers)
# against pgBackRest compress-type lz4 and zst at process-max 1 and 2 (MiB stored too).
# Then restores (barman-rs recover -j 1/-j 2, pgBackRest restore process-max 1/2, Barman
# recover). The replay of WAL through barman-wal-restore is benches/replay-bench.sh.
# Incremental after `pgbench -T 20`: barman-rs local-rsync `--reuse-backup=link` on top of
# its -j 2 full backup, against pgBackRest `--type=incr`; the table gives time and the
# bytes actually written (deduplicated size / pgBackRest's repo growth).
#
# As root the script builds barman-rs if needed and re-executes itself as postgres, so
# no runuser start-up lands in the timings. Loopback only: unix socket in the temp dir.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/.." && pwd -P)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
SCALE=${SCALE:-100}
barman="$root/target/release/barman"
BARMAN_PY=${BARMAN_PY:-/tmp/barman-venv/bin/barman}

if [[ -z ${BENCH_REEXEC:-} ]]; then
    [[ -x $PGBIN/initdb ]] || { echo "no PostgreSQL binaries in $PGBIN (set PGBIN)" >&2; exit 1; }
    if [[ ! -x $barman ]] || [[ -n $(find "$root/crates" "$root/Cargo.toml" "$root/Cargo.lock" -newer "$barman" -type f -print -quit) ]]; then
        cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p barman-cli
    fi
    if ((EUID == 0)); then
        cd /
        runuser -u postgres -- env BENCH_REEXEC=1 BARMAN_PY="$BARMAN_PY" SCALE="$SCALE" \
            bash "$here/$(basename -- "${BASH_SOURCE[0]}")" "$@"
        exit
    fi
fi

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/barman-backup-bench.XXXXXX")
chmod 700 "$tmp"
cleanup() {
    "$PGBIN/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
run() {
    local rc=0
    "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    if ((rc != 0)); then
        { echo "FAILED (exit $rc): $*"; tail -n 5 "$tmp/out" "$tmp/err"; } >&2
        return 1
    fi
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
declare -A took wrote

run "$PGBIN/initdb" -D "$tmp/data" -U postgres -A trust --no-sync
mkdir -p "$tmp/wal"
cat >>"$tmp/data/postgresql.auto.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$tmp'
port = 5432
archive_mode = on
archive_command = 'cp %p $tmp/wal/%f && $barman -q -c $tmp/rs.conf put-wal rs %p'
max_wal_size = 4GB
max_wal_senders = 10
CONF
conninfo="host=$tmp port=5432 user=postgres dbname=postgres"
cat >"$tmp/rs.conf" <<CONF
[barman]
barman_home = $tmp/rs
[rs]
conninfo = $conninfo
streaming_conninfo = $conninfo
backup_method = local-rsync
archiver = on
immediate_checkpoint = true
[rspg]
conninfo = $conninfo
streaming_conninfo = $conninfo
backup_method = postgres
archiver = on
immediate_checkpoint = true
CONF
run "$PGBIN/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w start
echo "loading pgbench scale $SCALE..." >&2
run "$PGBIN/pgbench" -h "$tmp" -U postgres -i -s "$SCALE" -q postgres
run "$PGBIN/psql" -h "$tmp" -U postgres -qAtc "CHECKPOINT" postgres
size=$(du -sb "$tmp/data/base" | cut -f1)
echo "cluster: $((size / 1024 / 1024)) MiB in base/" >&2

# timed LABEL CMD...: wall time of CMD.
timed() {
    local label=$1 t0 t1
    shift
    t0=$EPOCHREALTIME
    if run "$@"; then
        t1=$EPOCHREALTIME
        took[$label]=$(secs "$t0" "$t1")
    else
        took[$label]=failed
    fi
    echo "$label: ${took[$label]} s" >&2
}
fresh_rs() { rm -rf "$tmp/rs/rs/base" "$tmp/rs/rs/meta" "$tmp/rs/rspg/base" "$tmp/rs/rspg/meta"; }

sync
fresh_rs
timed "barman-rs local-rsync -j 1" "$barman" -q -c "$tmp/rs.conf" backup rs -j 1
fresh_rs
timed "barman-rs local-rsync -j 2" "$barman" -q -c "$tmp/rs.conf" backup rs -j 2
timed "barman-rs postgres (pg_basebackup)" "$barman" -q -c "$tmp/rs.conf" backup rspg
rm -rf "$tmp/rs/rspg/base"
timed "pg_basebackup -Fp" "$PGBIN/pg_basebackup" -h "$tmp" -U postgres -D "$tmp/pgbb" -Fp -X none -c fast
rm -rf "$tmp/pgbb"

if command -v pgbackrest >/dev/null; then
    for p in 1 2; do
        cat >"$tmp/pgbackrest$p.conf" <<CONF
[global]
repo1-path=$tmp/pgbr$p
log-path=$tmp
lock-path=$tmp
log-level-console=warn
log-level-file=off
start-fast=y
compress-type=none
process-max=$p
archive-check=n
[bench]
pg1-path=$tmp/data
pg1-socket-path=$tmp
pg1-port=5432
CONF
        run pgbackrest --config="$tmp/pgbackrest$p.conf" --stanza=bench --no-online stanza-create || true
        timed "pgBackRest full process-max $p" pgbackrest --config="$tmp/pgbackrest$p.conf" --stanza=bench --type=full backup
    done
else
    echo "pgbackrest not installed: skipped" >&2
fi

# Compressed full backups: barman-rs postgres method (pg_basebackup tar format,
# client-side compression) against pgBackRest at the same codec.
for c in lz4 zstd; do
    extra=""
    [[ $c == zstd ]] && extra="backup_compression_workers = 2"
    cat >>"$tmp/rs.conf" <<CONF
[rs$c]
conninfo = $conninfo
streaming_conninfo = $conninfo
backup_method = postgres
archiver = on
immediate_checkpoint = true
backup_compression = $c
$extra
CONF
    timed "barman-rs postgres $c" "$barman" -q -c "$tmp/rs.conf" backup "rs$c"
    wrote["barman-rs postgres $c"]=$(( $(du -sb "$tmp/rs/rs$c/base" | cut -f1) / 1024 / 1024 ))
    rm -rf "$tmp/rs/rs$c/base"
done
if command -v pgbackrest >/dev/null; then
    for c in lz4 zst; do
        for p in 1 2; do
            sed -e "s/^compress-type=none/compress-type=$c/" -e "s|^repo1-path=.*|repo1-path=$tmp/pgbr-$c$p|" \
                "$tmp/pgbackrest$p.conf" >"$tmp/pgbackrest-$c$p.conf"
            run pgbackrest --config="$tmp/pgbackrest-$c$p.conf" --stanza=bench --no-online stanza-create || true
            timed "pgBackRest full $c process-max $p" pgbackrest --config="$tmp/pgbackrest-$c$p.conf" --stanza=bench --type=full backup
            wrote["pgBackRest full $c process-max $p"]=$(( $(du -sb "$tmp/pgbr-$c$p/backup" | cut -f1) / 1024 / 1024 ))
            rm -rf "$tmp/pgbr-$c$p"
        done
    done
fi

if [[ -x $BARMAN_PY ]]; then
    mkdir -p "$tmp/py"
    cat >"$tmp/py.conf" <<CONF
[barman]
barman_home = $tmp/py
barman_user = $(id -un)
log_file = $tmp/py/barman.log
[py]
conninfo = $conninfo
streaming_conninfo = $conninfo
backup_method = postgres
archiver = on
streaming_archiver = off
CONF
    mkdir -p "$tmp/py/py/incoming"
    cp "$tmp"/wal/* "$tmp/py/py/incoming/" 2>/dev/null || true
    run "$BARMAN_PY" -c "$tmp/py.conf" archive-wal py || true
    timed "Barman 3.19 postgres" "$BARMAN_PY" -c "$tmp/py.conf" backup py
else
    echo "Barman (BARMAN_PY) not installed: skipped" >&2
fi

# Incremental: some changed blocks, then a backup on top of the last full one.
run "$PGBIN/pgbench" -h "$tmp" -U postgres -c 2 -T 20 postgres
run "$PGBIN/psql" -h "$tmp" -U postgres -qAtc "CHECKPOINT" postgres
fresh_rs
run "$barman" -q -c "$tmp/rs.conf" backup rs -j 2
sleep 1
run "$PGBIN/pgbench" -h "$tmp" -U postgres -c 2 -T 10 postgres
timed "barman-rs incremental (reuse link) -j 2" "$barman" -q -c "$tmp/rs.conf" backup rs -j 2 --reuse-backup=link
info=$(ls -t "$tmp"/rs/rs/meta/*-backup.info | head -1)
wrote["barman-rs incremental (reuse link) -j 2"]=$(( $(grep '^deduplicated_size=' "$info" | cut -d= -f2) / 1024 / 1024 ))
if command -v pgbackrest >/dev/null; then
    before=$(du -sb "$tmp/pgbr2" | cut -f1)
    timed "pgBackRest incr process-max 2" pgbackrest --config="$tmp/pgbackrest2.conf" --stanza=bench --type=incr backup
    wrote["pgBackRest incr process-max 2"]=$(( ($(du -sb "$tmp/pgbr2" | cut -f1) - before) / 1024 / 1024 ))
fi

# Restores of the last backup of each tool into an empty directory.
restore_dir=$tmp/restore
timed "barman-rs recover -j 1" "$barman" -q -c "$tmp/rs.conf" recover rs latest "$restore_dir" -j 1
rm -rf "$restore_dir"
timed "barman-rs recover -j 2" "$barman" -q -c "$tmp/rs.conf" recover rs latest "$restore_dir" -j 2
rm -rf "$restore_dir"
if command -v pgbackrest >/dev/null; then
    for p in 1 2; do
        timed "pgBackRest restore process-max $p" pgbackrest --config="$tmp/pgbackrest$p.conf" --stanza=bench --pg1-path="$restore_dir" restore
        rm -rf "$restore_dir"
    done
fi
if [[ -x $BARMAN_PY ]] && [[ ${took["Barman 3.19 postgres"]:-failed} != failed ]]; then
    timed "Barman 3.19 recover" "$BARMAN_PY" -c "$tmp/py.conf" recover py latest "$restore_dir"
    rm -rf "$restore_dir"
fi

echo
printf '%-42s %10s %12s\n' "backup ($((size / 1024 / 1024)) MiB cluster)" "seconds" "MiB written"
for k in "barman-rs local-rsync -j 1" "barman-rs local-rsync -j 2" "barman-rs postgres (pg_basebackup)" \
    "pg_basebackup -Fp" "pgBackRest full process-max 1" "pgBackRest full process-max 2" "Barman 3.19 postgres" \
    "barman-rs postgres lz4" "pgBackRest full lz4 process-max 1" "pgBackRest full lz4 process-max 2" \
    "barman-rs postgres zstd" "pgBackRest full zst process-max 1" "pgBackRest full zst process-max 2" \
    "barman-rs incremental (reuse link) -j 2" "pgBackRest incr process-max 2"; do
    [[ -n ${took[$k]:-} ]] && printf '%-42s %10s %12s\n' "$k" "${took[$k]}" "${wrote[$k]:-}"
done
echo
printf '%-50s %10s\n' "restore" "seconds"
for k in "barman-rs recover -j 1" "barman-rs recover -j 2" "pgBackRest restore process-max 1" \
    "pgBackRest restore process-max 2" "Barman 3.19 recover"; do
    [[ -n ${took[$k]:-} ]] && printf '%-50s %10s\n' "$k" "${took[$k]}"
done
