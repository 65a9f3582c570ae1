#!/usr/bin/env bash
# Per-segment wall time of one archive_command call on real 16 MiB WAL segments:
# `barman put-wal` (barman-rs) with compression none/lz4/zstd/gzip, against `cp` + `sync`
# and, when available, Barman's own put-wal (a Python with barman importable in
# $BARMAN_ORACLE_PYTHON, fed the tar-with-SHA256SUMS stream barman-wal-archive sends).
# Also the fixed cost of a call on an already-archived identical segment.
#
# Usage: benches/archive-bench.sh [WAL_DIR]   (default: the corpus of make-wal-corpus.sh)
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
wal_dir=${1:-${BARMAN_BENCH_WAL_DIR:-$here/.cache/wal}}
mapfile -t segs < <(find "$wal_dir" -maxdepth 1 -regextype posix-extended -regex '.*/[0-9A-F]{24}' | sort)
((${#segs[@]} > 0)) || { echo "no segments in $wal_dir: run benches/make-wal-corpus.sh" >&2; exit 1; }
cargo build --quiet --release --manifest-path "$here/../Cargo.toml" -p barman-cli
barman="$here/../target/release/barman"
work=$(mktemp -d "${TMPDIR:-/var/tmp}/barman-archive-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
n=${#segs[@]}
now_ns() { date +%s%N; }
per_seg() { awk -v t="$1" -v n="$n" 'BEGIN { printf "%.1f", t / n / 1e6 }'; }

echo "| archive_command | ms per 16 MiB segment (mean of $n) |"
echo "|---|---|"
mkdir -p "$work/cp"
t0=$(now_ns)
for s in "${segs[@]}"; do cp "$s" "$work/cp/" && sync "$work/cp/$(basename "$s")"; done
echo "| cp + sync | $(per_seg $(($(now_ns) - t0))) |"

for c in none lz4 zstd gzip; do
    home="$work/home-$c"
    mkdir -p "$home"
    comp=""
    [[ $c != none ]] && comp="compression = $c"
    printf '[barman]\nbarman_home = %s\n[pg]\nconninfo = host=localhost\nbackup_method = postgres\narchiver = on\n%s\n' "$home" "$comp" > "$work/$c.conf"
    t0=$(now_ns)
    for s in "${segs[@]}"; do "$barman" -q -c "$work/$c.conf" put-wal pg "$s"; done
    echo "| barman-rs put-wal, compression $c | $(per_seg $(($(now_ns) - t0))) |"
done
t0=$(now_ns)
for s in "${segs[@]}"; do "$barman" -q -c "$work/zstd.conf" put-wal pg "$s"; done
echo "| barman-rs put-wal of an already archived identical segment (zstd) | $(per_seg $(($(now_ns) - t0))) |"

py=${BARMAN_ORACLE_PYTHON:-}
if [[ -n $py ]] && "$py" -c 'import barman.output' 2>/dev/null; then
    bbin="$(dirname "$py")/barman"
    for c in none gzip; do
        home="$work/py-$c"
        mkdir -p "$home"
        comp=""
        [[ $c != none ]] && comp="compression = $c"
        printf '[barman]\nbarman_home = %s\nbarman_user = %s\nlog_file = %s/barman.log\n[pg]\nconninfo = host=localhost\nbackup_method = postgres\narchiver = on\n%s\n' "$home" "$(id -un)" "$work" "$comp" > "$work/py-$c.conf"
        t0=$(now_ns)
        for s in "${segs[@]}"; do
            "$py" - "$s" <<'PY' | "$bbin" -q -c "$work/py-$c.conf" put-wal pg
import hashlib, io, os, sys, tarfile
path = sys.argv[1]
name = os.path.basename(path)
data = open(path, "rb").read()
sums = ("%s *%s\n" % (hashlib.sha256(data).hexdigest(), name)).encode()
out = tarfile.open(fileobj=sys.stdout.buffer, mode="w|")
for n, d in ((name, data), ("SHA256SUMS", sums)):
    ti = tarfile.TarInfo(n); ti.size = len(d); out.addfile(ti, io.BytesIO(d))
out.close()
PY
        done
        echo "| Barman 3.19 put-wal (tar stream, as barman-wal-archive sends), compression $c | $(per_seg $(($(now_ns) - t0))) |"
    done
else
    echo "| Barman put-wal | skipped: set BARMAN_ORACLE_PYTHON to a Python with barman |"
fi
