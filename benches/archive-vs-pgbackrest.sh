#!/usr/bin/env bash
# archive_command cost, barman-rs against pgBackRest, on the same real 16 MiB WAL segments.
#
# What it measures: the wall time of ONE archive_command call per segment (process start,
# config read, optional compression, write, fsync), the mean over 8 segments, for
#   - `cp SEG DIR/ && sync DIR/SEG`                          (the floor: copy + fsync)
#   - barman-rs `barman -q -c CONF put-wal pg SEG`           compression none|lz4|zstd|gzip
#   - pgBackRest `pgbackrest --stanza=bench --compress-type=none|lz4|zst|gz archive-push SEG`
# Levels: pgBackRest's defaults (gz 6, lz4 1, zst 3); barman-rs's default `medium`
# (gzip 6, zstd 4, lz4: lz4_flex's single speed, like `lz4 -1`).
#
# How: pgBackRest only accepts WAL of its stanza's cluster, so the segments come from a
# throwaway PostgreSQL 15 made here: initdb (16 MiB segments), archive_mode=on with an
# archive_command copying each segment into $tmp/archive (cp to a temp name + mv),
# pgbench -i -s 10, pgbench -c 2 -T 15, pg_switch_wal until 8 complete segments past the
# first two are archived. A stanza is created on that cluster (`stanza-create`, one
# pgbackrest.conf in the temp dir, archive-async=n), then the server is stopped so it
# does not compete for the 2 cores. Each compression gets a fresh copy of the freshly
# created repo (pgBackRest) or a fresh barman_home (barman-rs), so every call really
# writes. Segments are read once beforehand so all tools find them in the page cache.
# pgBackRest's file log is off (log-level-file=off): barman-rs writes no log file either.
#
# When run as root the script builds barman-rs if needed, then re-executes itself as the
# postgres OS user: PostgreSQL, pgBackRest, barman-rs and cp all run as postgres, and no
# runuser start-up lands in the timings. Any failing command aborts with its stderr.
# Needs: PostgreSQL 15 binaries ($PGBIN), pgbackrest (Debian's), cargo if the barman
# binary is missing or older than the sources. Loopback only: unix socket in the temp dir.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/.." && pwd -P)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
barman="$root/target/release/barman"
N=8 # segments timed per configuration

if [[ -z ${BENCH_REEXEC:-} ]]; then
    command -v pgbackrest >/dev/null || { echo "pgbackrest is not installed (apt-get install pgbackrest)" >&2; exit 1; }
    [[ -x $PGBIN/initdb ]] || { echo "no PostgreSQL binaries in $PGBIN (set PGBIN)" >&2; exit 1; }
    if [[ ! -x $barman ]] || [[ -n $(find "$root/crates" "$root/Cargo.toml" "$root/Cargo.lock" -newer "$barman" -type f -print -quit) ]]; then
        cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p barman-cli
    fi
    if ((EUID == 0)); then
        cd /
        exec runuser -u postgres -- env BENCH_REEXEC=1 bash "$here/$(basename -- "${BASH_SOURCE[0]}")" "$@"
    fi
fi
started=$EPOCHREALTIME

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/barman-vs-pgbackrest.XXXXXX")
chmod 700 "$tmp"
cleanup() {
    if [[ -f $tmp/data/postmaster.pid ]]; then
        "$PGBIN/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# run CMD...: run quietly; on a non-zero exit print the command, its stdout and stderr, abort.
run() {
    local rc=0
    "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    if ((rc != 0)); then
        {
            echo "FAILED (exit $rc): $*"
            cat "$tmp/out" "$tmp/err"
        } >&2
        exit 1
    fi
}
usec() { local t=${1//[!0-9]/}; echo $((10#$t)); } # EPOCHREALTIME -> microseconds
seg_re='.*/[0-9A-F]{24}'
count_segs() { find "$1" -regextype posix-extended -regex "$seg_re" | wc -l; }

# 1. A cluster and its WAL.
mkdir -p "$tmp/archive" "$tmp/log" "$tmp/lock"
run "$PGBIN/initdb" -D "$tmp/data" -U postgres -A trust --wal-segsize=16 --no-sync
cat >>"$tmp/data/postgresql.auto.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$tmp'
port = 5432
archive_mode = on
archive_command = 'cp %p $tmp/archive/%f.tmp && mv $tmp/archive/%f.tmp $tmp/archive/%f'
max_wal_size = 1GB
CONF
run "$PGBIN/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w start
pg() { run "$PGBIN/$1" -h "$tmp" -p 5432 -U postgres "${@:2}"; }
pg pgbench -i -s 10 -q postgres
pg pgbench -c 2 -T 15 postgres
# N complete segments past the first two, plus one: the last may be a switch (mostly zeros).
need=$((N + 3))
for ((round = 0; ; round++)); do
    pg psql -qAtc "SELECT pg_switch_wal()" postgres
    for ((i = 0; i < 30 && $(count_segs "$tmp/archive") < need; i++)); do sleep 1; done
    (($(count_segs "$tmp/archive") >= need)) && break
    ((round < 5)) || { echo "only $(count_segs "$tmp/archive") segments archived, want $need" >&2; exit 1; }
    pg pgbench -c 2 -T 5 postgres
done
mapfile -t segs < <(find "$tmp/archive" -regextype posix-extended -regex "$seg_re" | sort | sed -n "3,$((N + 2))p")
input_bytes=$(cat "${segs[@]}" | wc -c)
((input_bytes == N * 16 * 1024 * 1024)) || { echo "segments are not 16 MiB each ($input_bytes bytes)" >&2; exit 1; }

# 2. The stanza, created once on the running cluster; each compression starts from a copy.
cat >"$tmp/pgbackrest.conf" <<CONF
[global]
repo1-path=$tmp/repo
log-path=$tmp/log
lock-path=$tmp/lock
log-level-console=warn
log-level-file=off
archive-async=n
start-fast=y

[bench]
pg1-path=$tmp/data
pg1-socket-path=$tmp
pg1-port=5432
CONF
run pgbackrest --config="$tmp/pgbackrest.conf" --stanza=bench stanza-create
run "$PGBIN/pg_ctl" -D "$tmp/data" -w stop

# Warm-up, untimed: segments and binaries into the page cache.
cat "${segs[@]}" >/dev/null
run pgbackrest version
run "$barman" --version

declare -A ms size
# time_calls LABEL CMD...: CMD SEG once per segment, each call timed alone; mean ms per call.
time_calls() {
    local label=$1 total=0 s t0 t1
    shift
    for s in "${segs[@]}"; do
        t0=$EPOCHREALTIME
        run "$@" "$s"
        t1=$EPOCHREALTIME
        total=$((total + $(usec "$t1") - $(usec "$t0")))
    done
    ms[$label]=$(awk -v t="$total" -v n="$N" 'BEGIN { printf "%.1f", t / n / 1000 }')
}
# stored LABEL DIR...: stored/input byte ratio of the WAL directories, after checking that
# exactly N segment files were written there.
stored() {
    local label=$1 files bytes
    shift
    files=$(find "$@" -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}[^/]*' | wc -l)
    ((files == N)) || { echo "$label stored $files segment files, expected $N" >&2; exit 1; }
    bytes=$(du -sbc "$@" | tail -n1 | cut -f1)
    size[$label]=$(awk -v b="$bytes" -v i="$input_bytes" 'BEGIN { printf "%.3f", b / i }')
}

# 3-5. cp + sync, then pgBackRest and barman-rs at each compression, interleaved.
mkdir "$tmp/cp"
cp_sync() { cp -- "$1" "$tmp/cp/" && sync -- "$tmp/cp/${1##*/}"; }
time_calls cp cp_sync
stored cp "$tmp/cp"

comps=(none lz4 zst gz)
declare -A ours=([none]=none [lz4]=lz4 [zst]=zstd [gz]=gzip)
cp -a "$tmp/repo" "$tmp/repo.created"
for c in "${comps[@]}"; do
    repo="$tmp/repo-$c"
    cp -a "$tmp/repo.created" "$repo"
    time_calls "pgbackrest $c" pgbackrest --config="$tmp/pgbackrest.conf" --repo1-path="$repo" \
        --stanza=bench --compress-type="$c" archive-push
    stored "pgbackrest $c" "$repo"/archive/bench/*/[0-9A-F]*

    home="$tmp/barman-$c"
    mkdir "$home"
    {
        printf '[barman]\nbarman_home = %s\nbarman_user = %s\n' "$home" "$(id -un)"
        printf '[pg]\nconninfo = host=localhost\nbackup_method = postgres\narchiver = on\n'
        [[ $c == none ]] || printf 'compression = %s\n' "${ours[$c]}"
    } >"$tmp/barman-$c.conf"
    time_calls "barman $c" "$barman" -q -c "$tmp/barman-$c.conf" put-wal pg
    stored "barman $c" "$home"/pg/wals/[0-9A-F]*
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "| archive_command | compression | mean ms / segment | vs cp+sync | vs pgBackRest (same compression) | stored / input |"
echo "|---|---|---|---|---|---|"
echo "| cp + sync | none | ${ms[cp]} | 1.00 | | ${size[cp]} |"
for c in "${comps[@]}"; do
    p=${ms["pgbackrest $c"]}
    echo "| pgBackRest archive-push | $c | $p | $(ratio "$p" "${ms[cp]}") | 1.00 | ${size["pgbackrest $c"]} |"
done
for c in "${comps[@]}"; do
    b=${ms["barman $c"]}
    echo "| barman-rs put-wal | ${ours[$c]} | $b | $(ratio "$b" "${ms[cp]}") | $(ratio "$b" "${ms["pgbackrest $c"]}") | ${size["barman $c"]} |"
done
echo
echo "Mean of $N real 16 MiB segments (${segs[0]##*/} .. ${segs[-1]##*/}) from pgbench, one call"
echo "each, run as $(id -un). $(pgbackrest version) at its default levels (lz4 1, zst 3, gz 6),"
echo "file log off; barman-rs $("$barman" --version | awk '{print $NF}') at 'medium' (lz4_flex single speed, zstd 4, gzip 6)."
echo "stored / input: du -b of the stored WAL directories over $input_bytes input bytes."
echo "Took $(awk -v a="$(usec "$started")" -v b="$(usec "$EPOCHREALTIME")" 'BEGIN { printf "%.0f", (b - a) / 1e6 }') s (this run, after the build)."
