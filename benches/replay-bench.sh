#!/usr/bin/env bash
# WAL delivery in get-wal mode: the replay of about WAL_MB MiB (default 1024) of archived
# WAL from a local copy (`barman recover` copies it into barman_wal/, restore_command
# cp) against the same recovery fetching every segment through `barman-wal-restore -p
# PARALLEL` (default 4) over a real sshd on 127.0.0.1; the ratio is the second over the
# first (the issue's target: at most 1.2). Crash recovery from pg_wal/ (what a recovery
# without a target does) is timed too, for reference.
#
# Small cluster (`pgbench -i -s $SCALE`, default 10) so the time goes to the WAL, written
# by `pgbench -c 2` after a base backup and archived by `barman put-wal`. ROUNDS (default
# 2) alternates local and get-wal replays and reports each and the best of each.
# WAL_COMPRESSION=lz4 (or another codec) archives compressed. VARIANTS lists the get-wal
# set-ups to compare, separated by `;`, each `barman-wal-restore options|ssh options`
# (default: one, `|`, the defaults), e.g.
#   VARIANTS='|;--prefetch-compression lz4|;|-c chacha20-poly1305@openssh.com'
# A third field names a directory with another build's barman-wal-restore and barman,
# e.g. `||/tmp/old/target/release`, to compare versions.
# TRACE=1 times each restore_command call and lists the slow ones.
#
# Both ends run on this machine: the Barman side (sshd, `barman get-wal`) takes CPU from
# the replay that a separate Barman host would not. As root the script runs as postgres.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/.." && pwd -P)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
barman="$root/target/release/barman"
restore="$root/target/release/barman-wal-restore"

if [[ -z ${BENCH_REEXEC:-} ]]; then
    [[ -x $PGBIN/initdb ]] || { echo "no PostgreSQL binaries in $PGBIN (set PGBIN)" >&2; exit 1; }
    if [[ ! -x $barman || ! -x $restore ]] || [[ -n $(find "$root/crates" "$root/Cargo.toml" "$root/Cargo.lock" -newer "$restore" -type f -print -quit) ]]; then
        cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p barman-cli
    fi
    source "$here/lib/sshd.sh"
    start_bench_sshd
    trap 'eval "${BENCH_SSHD_CLEANUP:-}"' EXIT
    [[ -n ${SSH_PORT:-} ]] || { echo "no sshd: nothing to compare" >&2; exit 1; }
    if ((EUID == 0)); then
        cd /
        runuser -u postgres -- env BENCH_REEXEC=1 SSH_PORT="$SSH_PORT" SSH_USER="$SSH_USER" SSH_KEY="$SSH_KEY" \
            SCALE="${SCALE:-}" WAL_MB="${WAL_MB:-}" ROUNDS="${ROUNDS:-}" PARALLEL="${PARALLEL:-}" \
            WAL_COMPRESSION="${WAL_COMPRESSION:-}" VARIANTS="${VARIANTS:-|}" TRACE="${TRACE:-}" \
            bash "$here/$(basename -- "${BASH_SOURCE[0]}")" "$@"
        exit
    fi
fi
SCALE=${SCALE:-10}
WAL_MB=${WAL_MB:-1024}
ROUNDS=${ROUNDS:-2}
PARALLEL=${PARALLEL:-4}

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/barman-replay-bench.XXXXXX")
chmod 700 "$tmp"
cleanup() {
    "$PGBIN/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
    "$PGBIN/pg_ctl" -D "$tmp/restore" -m immediate -w stop >/dev/null 2>&1 || true
    if [[ -n ${KEEP:-} ]]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
    eval "${BENCH_SSHD_CLEANUP:-}"
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
# wait_ready DATADIR: until the postmaster says "ready" (recovery over, promoted).
exec {nap}<> <(:)
wait_ready() {
    local lines=()
    while :; do
        mapfile -t lines <"$1/postmaster.pid" 2>/dev/null || true
        [[ ${lines[7]:-} == ready* ]] && return
        read -rt 0.01 -u "$nap" _ || true
    done
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

run "$PGBIN/initdb" -D "$tmp/data" -U postgres -A trust --no-sync
cat >>"$tmp/data/postgresql.auto.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$tmp'
port = 5432
archive_mode = on
archive_command = '$barman -q -c $tmp/rs.conf put-wal rs %p'
max_wal_size = 4GB
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
${WAL_COMPRESSION:+compression = $WAL_COMPRESSION}
CONF
run "$PGBIN/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w start
run "$PGBIN/pgbench" -h "$tmp" -U postgres -i -s "$SCALE" -q postgres
run "$barman" -q -c "$tmp/rs.conf" backup rs -j 2
xlogdb=$tmp/rs/rs/wals/rs-xlog.db
start_lines=$(wc -l <"$xlogdb")
echo "writing ${WAL_MB} MiB of WAL..." >&2
while (( ($(wc -l <"$xlogdb") - start_lines) * 16 < WAL_MB )); do
    run "$PGBIN/pgbench" -h "$tmp" -U postgres -c 2 -T 5 postgres
done
run "$PGBIN/psql" -h "$tmp" -U postgres -qAtc "SELECT pg_switch_wal()" postgres
want=$(( $(wc -l <"$xlogdb") + 1 ))
for _ in $(seq 600); do (( $(wc -l <"$xlogdb") >= want )) && break; sleep 0.1; done
run "$PGBIN/pg_ctl" -D "$tmp/data" -m fast -w stop
wal_mib=$(( ($(wc -l <"$xlogdb") - start_lines) * 16 ))
echo "archived ${wal_mib} MiB of WAL after the backup" >&2

ssh="ssh -p $SSH_PORT -i $SSH_KEY -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=error"
# replay MODE [RESTORE_OPTS SSH_OPTS]: recovers the backup into $tmp/restore, starts it
# and prints the seconds from pg_ctl start to the end of recovery. Modes: local, the WAL
# copied into barman_wal/ and read by restore_command = 'cp ...' (archive recovery, as
# Barman sets it up for a recovery target; here --target-tli latest); get-wal, the same
# recovery with restore_command = barman-wal-restore; pg_wal, no target: the WAL copied
# into pg_wal/ and replayed as crash recovery, without restore_command.
replay() {
    local mode=$1 opts=${2:-} sshopts=${3:-} bin=${4:-$root/target/release} t0 t1
    rm -rf "$tmp/restore" "$tmp/spool"
    if [[ $mode == local ]]; then
        run "$barman" -q -c "$tmp/rs.conf" recover rs latest "$tmp/restore" -j 2 --target-tli latest
    elif [[ $mode == pg_wal ]]; then
        run "$barman" -q -c "$tmp/rs.conf" recover rs latest "$tmp/restore" -j 2
    else
        run "$barman" -q -c "$tmp/rs.conf" recover rs latest "$tmp/restore" -j 2 --get-wal --target-tli latest
        echo "restore_command = '$trace$bin/barman-wal-restore -p $PARALLEL ${WAL_COMPRESSION:+--keep-compression} $opts --spool-dir $tmp/spool --ssh-command \"$ssh${sshopts:+ $sshopts}\" -U $SSH_USER -c $tmp/rs.conf --barman-command $bin/barman 127.0.0.1 rs %f %p'" >>"$tmp/restore/postgresql.auto.conf"
    fi
    cat >>"$tmp/restore/postgresql.auto.conf" <<CONF
port = 5433
unix_socket_directories = '$tmp'
archive_mode = off
hot_standby = off
CONF
    sync
    read -r _ u n sy _ <"/proc/stat"
    busy0=$((u + n + sy))
    t0=$EPOCHREALTIME
    run "$PGBIN/pg_ctl" -D "$tmp/restore" -l "$tmp/replay-$mode.log" -t 3600 -w start
    # The end of recovery, read from postmaster.pid's status line without starting a
    # process per look (a psql every few ms would take CPU from the replay).
    wait_ready "$tmp/restore"
    t1=$EPOCHREALTIME
    read -r _ u n sy _ <"/proc/stat"
    echo "  $mode: $(secs "$t0" "$t1") s, CPU busy $(awk -v j=$((u + n + sy - busy0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", j / hz }') s" >&2
    run "$PGBIN/pg_ctl" -D "$tmp/restore" -m immediate -w stop
    secs "$t0" "$t1"
}
# TRACE=1: each restore_command call is timed; the total time PostgreSQL waited in it is
# reported after each get-wal replay.
trace=""
if [[ -n ${TRACE:-} ]]; then
    cat >"$tmp/trace.sh" <<'SH'
#!/usr/bin/env bash
t0=$EPOCHREALTIME; rc=0; "$@" || rc=$?
echo "$t0 $EPOCHREALTIME $rc ${@: -2:1}" >>"${TRACE_LOG:?}"
exit $rc
SH
    chmod +x "$tmp/trace.sh"
    trace="TRACE_LOG=$tmp/trace.log $tmp/trace.sh "
fi
IFS=';' read -ra variants <<<"${VARIANTS:-|}"
declare -A best
# A variant is `OPTIONS|SSH OPTIONS[|BINDIR]`: BINDIR holds another build's
# barman-wal-restore and barman (both ends), to compare versions.
field() { local IFS='|' f; read -ra f <<<"$1"; echo "${f[$2]:-}"; }
label() {
    local opts sshopts bin
    opts=$(field "$1" 0) sshopts=$(field "$1" 1) bin=$(field "$1" 2)
    echo "barman-wal-restore -p $PARALLEL${WAL_COMPRESSION:+ --keep-compression}${opts:+ $opts}${sshopts:+, ssh $sshopts}${bin:+ ($bin)}"
}
keep_best() { best[$1]=$(awk -v a="$2" -v b="${best[$1]:-}" 'BEGIN { print (b == "" || a < b) ? a : b }'); }
for round in $(seq "$ROUNDS"); do
    t=$(replay pg_wal)
    echo "round $round: crash recovery from pg_wal/ ${t} s" >&2
    keep_best pg_wal "$t"
    t=$(replay local)
    echo "round $round: local copy ${t} s" >&2
    keep_best local "$t"
    for v in "${variants[@]}"; do
        t=$(replay get-wal "$(field "$v" 0)" "$(field "$v" 1)" "$(field "$v" 2)")
        echo "round $round: $(label "$v") ${t} s" >&2
        keep_best "$v" "$t"
        if [[ -n $trace ]]; then
            awk '{ d = $2 - $1; t += d; n++; if ($3 == 0 && d > 0.02) slow++; if (d > m) m = d }
                 END { printf "  restore_command: %d calls, %.2f s in all, max %.3f s, %d over 20 ms\n", n, t, m, slow }' "$tmp/trace.log" >&2
            awk 'NR == 1 { s = $1 } $2 - $1 > 0.02 { printf "    +%.2f s %s exit %d: %.3f s\n", $1 - s, $4, $3, $2 - $1 }' "$tmp/trace.log" >&2
            rm -f "$tmp/trace.log"
        fi
    done
done
echo
printf '%-72s %8s %6s\n' "replay of ${wal_mib} MiB WAL (best of $ROUNDS)" "seconds" "ratio"
printf '%-72s %8s\n' "crash recovery from pg_wal/ (no restore_command)" "${best[pg_wal]}"
printf '%-72s %8s\n' "local copy (barman_wal/, restore_command cp)" "${best[local]}"
for v in "${variants[@]}"; do
    printf '%-72s %8s %6s\n' "$(label "$v")" "${best[$v]}" "$(awk -v a="${best[local]}" -v b="${best[$v]}" 'BEGIN { printf "%.2f", b / a }')"
done
