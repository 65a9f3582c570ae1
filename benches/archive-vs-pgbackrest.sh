#!/usr/bin/env bash
# archive_command cost on the same real 16 MiB WAL segments: cp + sync, barman-rs
# `barman put-wal` and pgBackRest `archive-push`, at equal compression.
#
# pgBackRest only accepts WAL of its stanza's cluster, so this script makes its own
# segments: a throwaway PostgreSQL 15 (as the postgres user when run as root) runs
# pgbench, its archive_command copies segments aside, a stanza is created on it, then
# every tool archives the same 8 segments, one call per segment, as archive_command
# would. Prints the mean wall time per segment (process start included; every call,
# cp included, goes through runuser when run as root, which adds the same ~25 ms).
# Needs: PostgreSQL 15 binaries, pgbackrest (Debian's), cargo.
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
N=8
command -v pgbackrest >/dev/null || { echo "pgbackrest is not installed (apt-get install pgbackrest)" >&2; exit 1; }
cargo build --quiet --release --manifest-path "$here/../Cargo.toml" -p barman-cli
barman="$here/../target/release/barman"

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/barman-vs-pgbackrest.XXXXXX")
if ((EUID == 0)); then
    chown postgres: "$tmp"
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi
chmod 755 "$tmp"
cleanup() {
    as_pg "$PGBIN/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

as_pg mkdir -p "$tmp/segs"
as_pg "$PGBIN/initdb" -D "$tmp/data" -U postgres -A trust --no-sync >/dev/null
cat >> "$tmp/data/postgresql.auto.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$tmp'
port = 5432
archive_mode = on
archive_command = 'cp %p $tmp/segs/%f.tmp && mv $tmp/segs/%f.tmp $tmp/segs/%f'
max_wal_size = 256MB
CONF
as_pg "$PGBIN/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w start >/dev/null
as_pg "$PGBIN/pgbench" -h "$tmp" -U postgres -i -s 10 -q postgres >/dev/null 2>&1
until (( $(find "$tmp/segs" -regextype posix-extended -regex '.*/[0-9A-F]{24}' | wc -l) >= N + 3 )); do
    as_pg "$PGBIN/pgbench" -h "$tmp" -U postgres -c 2 -T 5 postgres >/dev/null 2>&1
    as_pg "$PGBIN/psql" -h "$tmp" -U postgres -qAtc "SELECT pg_switch_wal()" postgres >/dev/null
done
mapfile -t segs < <(find "$tmp/segs" -regextype posix-extended -regex '.*/[0-9A-F]{24}' | sort | sed -n "3,$((N + 2))p")

cat > "$tmp/pgbackrest.conf" <<CONF
[global]
repo1-path=$tmp/repo
log-path=$tmp/log
lock-path=$tmp/lock
log-level-console=error
log-level-file=off
archive-async=n
start-fast=y

[bench]
pg1-path=$tmp/data
pg1-socket-path=$tmp
pg1-port=5432
CONF
chmod 644 "$tmp/pgbackrest.conf"

now_ns() { date +%s%N; }
declare -A ms
time_calls() { # label command... (run once per segment, segment appended)
    local label=$1; shift
    local t0; t0=$(now_ns)
    for s in "${segs[@]}"; do "$@" "$s"; done
    ms[$label]=$(awk -v t="$(($(now_ns) - t0))" -v n="$N" 'BEGIN { printf "%.1f", t / n / 1e6 }')
}

as_pg mkdir -p "$tmp/cp"
# shellcheck disable=SC2016 # expanded by the inner shell
cp_sync() { as_pg sh -c 'cp "$1" "$2/" && sync "$2/$(basename "$1")"' sh "$1" "$tmp/cp"; }
time_calls "cp + sync" cp_sync

for c in none lz4 zst gz; do
    as_pg rm -rf "$tmp/repo" "$tmp/lock"
    as_pg mkdir -p "$tmp/repo" "$tmp/log" "$tmp/lock"
    as_pg pgbackrest --config="$tmp/pgbackrest.conf" --stanza=bench stanza-create >/dev/null
    time_calls "pgBackRest $c" as_pg pgbackrest --config="$tmp/pgbackrest.conf" --stanza=bench --compress-type="$c" archive-push
done

declare -A ours=([none]=none [lz4]=lz4 [zst]=zstd [gz]=gzip)
for c in none lz4 zst gz; do
    home="$tmp/barman-$c"
    as_pg mkdir -p "$home"
    comp=""
    [[ $c != none ]] && comp="compression = ${ours[$c]}"
    printf '[barman]\nbarman_home = %s\n[pg]\nconninfo = host=%s\nbackup_method = postgres\narchiver = on\n%s\n' "$home" "$tmp" "$comp" > "$tmp/barman-$c.conf"
    chmod 644 "$tmp/barman-$c.conf"
    time_calls "barman-rs $c" as_pg "$barman" -q -c "$tmp/barman-$c.conf" put-wal pg
done

echo "| compression | cp + sync ms | pgBackRest archive-push ms | barman-rs put-wal ms | barman-rs / pgBackRest | barman-rs / cp+sync |"
echo "|---|---|---|---|---|---|"
for c in none lz4 zst gz; do
    p=${ms["pgBackRest $c"]}; b=${ms["barman-rs $c"]}; k=${ms["cp + sync"]}
    awk -v c="$c" -v k="$k" -v p="$p" -v b="$b" 'BEGIN { printf "| %s | %s | %s | %s | %.2f | %.2f |\n", c, k, p, b, b / p, b / k }'
done
echo
echo "(mean of $N real 16 MiB segments from one pgbench run; $(pgbackrest version); pgBackRest default levels: lz4 1, zst 3, gz 6; barman-rs 'medium': lz4 single speed, zstd 4, gzip 6)"
