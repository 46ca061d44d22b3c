#!/bin/sh
# Side by side, interleaved: migrate's image analyzer over a 300 MB
# docker-archive vs `gzip -dc` over the same layer blobs. Prints wall
# seconds, CPU seconds and peak RSS of each run. Needs ~1 GB in $DIR.
set -e
cd "$(dirname "$0")/.."
DIR=${DIR:-/tmp/migrate-bench}
A=$DIR/order-300mb.tar
B=$DIR/blobs
mkdir -p "$B"
[ -f "$A" ] || MIGRATE_BENCH_ARCHIVE=$A go test -run TestWriteBenchArchive ./analyze/
[ -n "$(ls "$B"/*.tar.gz 2>/dev/null)" ] || tar -xf "$A" -C "$B"
go test -c -o "$DIR/analyze.test" ./analyze/
cat "$A" > /dev/null  # warm the page cache
for i in 1 2 3 4 5 6 7; do
  /usr/bin/time -f "gzip    wall=%e cpu=%U+%S rss_kb=%M" sh -c "for f in $B/*.tar.gz; do gzip -dc \$f > /dev/null; done"
  MIGRATE_BENCH_ARCHIVE=$A /usr/bin/time -f "migrate wall=%e cpu=%U+%S rss_kb=%M" \
    "$DIR/analyze.test" -test.run '^$' -test.bench 'BenchmarkAnalyzeDockerArchive$' -test.benchtime 1x > /dev/null
done
