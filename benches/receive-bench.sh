#!/usr/bin/env bash
# WAL streaming: barman-rs `receive-wal` against `pg_receivewal --synchronous`, on one
# throwaway PostgreSQL 15 cluster, alternating, best and median of REPS (default 3).
#
# 1. Commit latency added in synchronous mode: `pgbench -n -c 4 -j 2 -T $SECS` (simple
#    TPC-B-like, default 15 s) with `synchronous_standby_names` naming the receiver,
#    against the same run with no synchronous standby (the baseline). Reports TPS,
#    average latency and the latency added over the baseline.
# 2. Throughput: $WAL_MB MiB of WAL (default 1024) written while no receiver runs, held
#    by a fresh physical slot; then the receiver starts from the slot and the time until
#    its reported flush position reaches the end is measured (MiB/s).
#
# Both receivers fsync what they receive before reporting it (pg_receivewal with
# --synchronous), write into the same file system, and connect over the unix socket.
# As root the script builds barman-rs if needed and re-executes itself as postgres.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/.." && pwd -P)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
SCALE=${SCALE:-10}
SECS=${SECS:-15}
REPS=${REPS:-3}
WAL_MB=${WAL_MB:-1024}
barman="$root/target/release/barman"

if [[ -z ${BENCH_REEXEC:-} ]]; then
    [[ -x $PGBIN/pg_receivewal ]] || { echo "no PostgreSQL binaries in $PGBIN (set PGBIN)" >&2; exit 1; }
    if [[ ! -x $barman ]] || [[ -n $(find "$root/crates" "$root/Cargo.toml" "$root/Cargo.lock" -newer "$barman" -type f -print -quit) ]]; then
        cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p barman-cli
    fi
    if ((EUID == 0)); then
        cd /
        runuser -u postgres -- env BENCH_REEXEC=1 SCALE="$SCALE" SECS="$SECS" REPS="$REPS" WAL_MB="$WAL_MB" \
            bash "$here/$(basename -- "${BASH_SOURCE[0]}")" "$@"
        exit
    fi
fi

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/barman-receive-bench.XXXXXX")
chmod 700 "$tmp"
receiver_pid=""
stop_receiver() {
    if [[ -n $receiver_pid ]]; then
        kill -TERM "$receiver_pid" 2>/dev/null || true
        wait "$receiver_pid" 2>/dev/null || true
        receiver_pid=""
    fi
}
cleanup() {
    stop_receiver
    "$PGBIN/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
psql() { "$PGBIN/psql" -h "$tmp" -U postgres -d postgres -qAtX -v ON_ERROR_STOP=1 -c "$1"; }

"$PGBIN/initdb" -D "$tmp/data" -U postgres -A trust --no-sync >/dev/null
cat >>"$tmp/data/postgresql.auto.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$tmp'
port = 5432
max_wal_size = 4GB
max_wal_senders = 10
max_replication_slots = 10
synchronous_commit = on
CONF
"$PGBIN/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w start >/dev/null
conninfo="host=$tmp port=5432 user=postgres dbname=postgres"
cat >"$tmp/rs.conf" <<CONF
[barman]
barman_home = $tmp/rs
log_file = $tmp/rs.log
[rs]
conninfo = $conninfo
streaming_conninfo = $conninfo
backup_method = postgres
archiver = off
streaming_archiver = on
streaming_archiver_name = benchrecv
slot_name = bench
create_slot = manual
CONF
echo "loading pgbench scale $SCALE..." >&2
"$PGBIN/pgbench" -h "$tmp" -U postgres -i -s "$SCALE" -q postgres >/dev/null 2>&1
psql "CHECKPOINT"

# start_receiver TOOL: streams from slot `bench` as application `benchrecv`.
start_receiver() {
    case $1 in
    barman-rs)
        rm -rf "$tmp/rs/rs/streaming"
        "$barman" -q -c "$tmp/rs.conf" receive-wal rs >"$tmp/receiver.log" 2>&1 &
        ;;
    pg_receivewal)
        rm -rf "$tmp/pgrw" && mkdir "$tmp/pgrw"
        "$PGBIN/pg_receivewal" -D "$tmp/pgrw" -S bench --synchronous -n \
            -d "$conninfo application_name=benchrecv" >"$tmp/receiver.log" 2>&1 &
        ;;
    esac
    receiver_pid=$!
}
fresh_slot() {
    # The slot of a receiver just stopped is released when its WAL sender exits.
    for _ in $(seq 100); do
        [[ $(psql "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'bench' AND active") == 0 ]] && break
        sleep 0.1
    done
    psql "SELECT pg_drop_replication_slot('bench') FROM pg_replication_slots WHERE slot_name = 'bench'" >/dev/null
    psql "SELECT pg_create_physical_replication_slot('bench', true)" >/dev/null
}
wait_streaming() {
    for _ in $(seq 300); do
        [[ $(psql "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'benchrecv'") == 1 ]] && return
        sleep 0.1
    done
    echo "the receiver did not connect:" >&2
    cat "$tmp/receiver.log" >&2
    exit 1
}
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
best_min() { sort -g | head -n 1; }
best_max() { sort -g | tail -n 1; }

declare -A lat tps mibs
tools=(barman-rs pg_receivewal)
for rep in $(seq "$REPS"); do
    # Baseline: no synchronous standby.
    psql "ALTER SYSTEM SET synchronous_standby_names = ''" >/dev/null
    psql "SELECT pg_reload_conf()" >/dev/null
    out=$("$PGBIN/pgbench" -h "$tmp" -U postgres -n -c 4 -j 2 -T "$SECS" postgres 2>/dev/null)
    lat[none]+="$(awk '/latency average/ { print $4 }' <<<"$out") "
    tps[none]+="$(awk '/^tps/ { print $3 }' <<<"$out") "
    echo "rep $rep: no synchronous standby: latency $(awk '{ print $NF }' <<<"${lat[none]}") ms" >&2
    for tool in "${tools[@]}"; do
        fresh_slot
        start_receiver "$tool"
        wait_streaming
        psql "ALTER SYSTEM SET synchronous_standby_names = 'benchrecv'" >/dev/null
        psql "SELECT pg_reload_conf()" >/dev/null
        synced=""
        for _ in $(seq 100); do
            [[ $(psql "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'benchrecv'") == sync ]] && synced=1 && break
            sleep 0.1
        done
        [[ -n $synced ]] || { echo "$tool never became the synchronous standby" >&2; exit 1; }
        out=$("$PGBIN/pgbench" -h "$tmp" -U postgres -n -c 4 -j 2 -T "$SECS" postgres 2>/dev/null)
        lat[$tool]+="$(awk '/latency average/ { print $4 }' <<<"$out") "
        tps[$tool]+="$(awk '/^tps/ { print $3 }' <<<"$out") "
        psql "ALTER SYSTEM SET synchronous_standby_names = ''" >/dev/null
        psql "SELECT pg_reload_conf()" >/dev/null
        stop_receiver
        echo "rep $rep: $tool synchronous: latency $(awk '{ print $NF }' <<<"${lat[$tool]}") ms" >&2

        # Throughput: WAL written with no receiver, held by the slot, then caught up.
        fresh_slot
        start=$(psql "SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'bench'")
        psql "DROP TABLE IF EXISTS filler" >/dev/null
        psql "CREATE TABLE filler (id int, pad text)" >/dev/null
        rows=$((WAL_MB * 1024 * 1024 / 600))
        psql "INSERT INTO filler SELECT g, repeat('x', 500) FROM generate_series(1, $rows) g" >/dev/null
        psql "SELECT pg_switch_wal()" >/dev/null
        end=$(psql "SELECT pg_current_wal_flush_lsn()")
        bytes=$(psql "SELECT '$end'::pg_lsn - '$start'::pg_lsn")
        t0=$EPOCHREALTIME
        start_receiver "$tool"
        while [[ $(psql "SELECT coalesce(bool_or(flush_lsn >= '$end'), false) FROM pg_stat_replication WHERE application_name = 'benchrecv'") != t ]]; do
            sleep 0.02
        done
        t1=$EPOCHREALTIME
        stop_receiver
        mibs[$tool]+="$(awk -v b="$bytes" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.1f", b / 1048576 / (c - a) }') "
        echo "rep $rep: $tool caught up on $((bytes / 1048576)) MiB: $(awk '{ print $NF }' <<<"${mibs[$tool]}") MiB/s" >&2
        psql "DROP TABLE filler" >/dev/null
        psql "CHECKPOINT" >/dev/null
    done
done
psql "SELECT pg_drop_replication_slot('bench')" >/dev/null

printf '\n%s\n' "PostgreSQL $("$PGBIN/postgres" --version | awk '{ print $3 }'), pgbench -s $SCALE -c 4 -j 2 -T $SECS, $REPS repetitions, $(nproc) cores"
echo
echo "| receiver | TPS (median) | latency ms (median; min-max) | added latency ms (median) | catch-up MiB/s (median; min-max) |"
echo "|---|---|---|---|---|"
base=$(tr ' ' '\n' <<<"${lat[none]}" | grep . | median)
echo "| none (asynchronous) | $(tr ' ' '\n' <<<"${tps[none]}" | grep . | median) | $base | - | - |"
for tool in "${tools[@]}"; do
    l=$(tr ' ' '\n' <<<"${lat[$tool]}" | grep . | median)
    echo "| $tool | $(tr ' ' '\n' <<<"${tps[$tool]}" | grep . | median) | $l ($(tr ' ' '\n' <<<"${lat[$tool]}" | grep . | best_min)-$(tr ' ' '\n' <<<"${lat[$tool]}" | grep . | best_max)) | $(awk -v a="$l" -v b="$base" 'BEGIN { printf "%.3f", a - b }') | $(tr ' ' '\n' <<<"${mibs[$tool]}" | grep . | median) ($(tr ' ' '\n' <<<"${mibs[$tool]}" | grep . | best_min)-$(tr ' ' '\n' <<<"${mibs[$tool]}" | grep . | best_max)) |"
done
