#!/usr/bin/env bash
# `barman cron` with many servers: SERVERS servers (default 200), each with WALS WAL
# segments (default 2, of 1 MiB, from one throwaway PostgreSQL 15 cluster) waiting in
# incoming/. Measured: the time from starting cron until every server's incoming/ is
# empty (every segment validated, compressed and in xlog.db), for
#   - barman-rs, servers 8 at a time (the default);
#   - barman-rs, one after another (BARMAN_RS_CRON_JOBS=1, Barman's cron loop);
#   - Barman itself (a python with barman importable in $BARMAN_ORACLE_PYTHON), whose
#     cron starts one background `archive-wal` process per server.
# Median, min and max of REPS runs (default 3), each on fresh repositories.
# As root the script re-executes itself as postgres (PostgreSQL refuses root).
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/.." && pwd -P)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
SERVERS=${SERVERS:-200}
WALS=${WALS:-2}
REPS=${REPS:-3}
barman="$root/target/release/barman"

if [[ -z ${BENCH_REEXEC:-} ]]; then
    [[ -x $PGBIN/initdb ]] || { echo "no PostgreSQL binaries in $PGBIN (set PGBIN)" >&2; exit 1; }
    cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p barman-cli
    if ((EUID == 0)); then
        cd /
        runuser -u postgres -- env BENCH_REEXEC=1 SERVERS="$SERVERS" WALS="$WALS" REPS="$REPS" \
            BARMAN_ORACLE_PYTHON="${BARMAN_ORACLE_PYTHON:-}" PGBIN="$PGBIN" \
            bash "$here/$(basename -- "${BASH_SOURCE[0]}")" "$@"
        exit
    fi
fi

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/barman-cron-bench.XXXXXX")
chmod 700 "$tmp"
cleanup() {
    "$PGBIN/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# The WAL: WALS completed 1 MiB segments of a real cluster.
"$PGBIN/initdb" -D "$tmp/data" -U postgres -A trust --no-sync --wal-segsize=1 >/dev/null
printf "listen_addresses = ''\nunix_socket_directories = '%s'\n" "$tmp" >>"$tmp/data/postgresql.auto.conf"
"$PGBIN/pg_ctl" -D "$tmp/data" -l "$tmp/pg.log" -w start >/dev/null
psql() { "$PGBIN/psql" -h "$tmp" -U postgres -d postgres -qAtX -v ON_ERROR_STOP=1 -c "$1"; }
psql "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g"
mkdir "$tmp/wal"
for _ in $(seq "$WALS"); do
    name=$(psql "SELECT pg_walfile_name(pg_current_wal_lsn())")
    psql "INSERT INTO t SELECT g FROM generate_series(1, 10000) g"
    psql "SELECT pg_switch_wal()" >/dev/null
    cp "$tmp/data/pg_wal/$name" "$tmp/wal/"
done
"$PGBIN/pg_ctl" -D "$tmp/data" -m fast -w stop >/dev/null

# A configuration of SERVERS servers, their incoming/ filled (hard links to the corpus).
setup() { # HOME_DIR CONF [EXTRA_GLOBAL]
    rm -rf "$1"
    mkdir -p "$1"
    {
        printf '[barman]\nbarman_home = %s\nlog_file = %s/barman.log\ncompression = gzip\n%s\n' "$1" "$1" "${3:-}"
        for i in $(seq -w "$SERVERS"); do
            printf '[s%s]\nconninfo = host=%s user=postgres\nbackup_method = postgres\narchiver = on\n' "$i" "$tmp"
            mkdir -p "$1/s$i/incoming"
            ln "$tmp"/wal/* "$1/s$i/incoming/"
        done
    } >"$2"
}
waiting() { find "$1" -path '*/incoming/*' -type f | wc -l; }
now_ms() { date +%s%3N; }
measure() { # LABEL HOME CMD...
    local label=$1 home=$2
    shift 2
    local t0 t
    t0=$(now_ms)
    "$@" >/dev/null 2>&1 || true
    while (($(waiting "$home") > 0)); do sleep 0.05; done
    t=$(($(now_ms) - t0))
    echo "$label $t" >>"$tmp/times"
}

user=$(id -un)
oracle=${BARMAN_ORACLE_PYTHON:-}
for r in $(seq "$REPS"); do
    setup "$tmp/h-par" "$tmp/par.conf"
    measure "barman-rs" "$tmp/h-par" env -u BARMAN_RS_CRON_JOBS "$barman" -q -c "$tmp/par.conf" cron
    setup "$tmp/h-ser" "$tmp/ser.conf"
    measure "barman-rs-serial" "$tmp/h-ser" env BARMAN_RS_CRON_JOBS=1 "$barman" -q -c "$tmp/ser.conf" cron
    if [[ -n $oracle ]]; then
        setup "$tmp/h-py" "$tmp/py.conf" "barman_user = $user"
        measure "barman" "$tmp/h-py" "$(dirname "$oracle")/barman" -q -c "$tmp/py.conf" cron
    fi
    echo "run $r done" >&2
done

total=$((SERVERS * WALS))
echo "cron with $SERVERS servers, $WALS WAL segments (1 MiB, gzip) each: $total segments; $REPS runs"
echo
echo "| cron | seconds until every incoming/ is empty, median (min-max) | segments/s |"
echo "|---|---|---|"
for label in barman-rs barman-rs-serial barman; do
    mapfile -t ts < <(awk -v l="$label" '$1 == l { print $2 }' "$tmp/times" | sort -n)
    ((${#ts[@]} > 0)) || { echo "| $label | not run (no BARMAN_ORACLE_PYTHON) | |"; continue; }
    med=${ts[$(((${#ts[@]} - 1) / 2))]}
    awk -v l="$label" -v m="$med" -v lo="${ts[0]}" -v hi="${ts[-1]}" -v n="$total" \
        'BEGIN { printf "| %s | %.2f (%.2f-%.2f) | %.0f |\n", l, m / 1000, lo / 1000, hi / 1000, n / (m / 1000) }'
done
