#!/bin/sh
# Seed fuzz/corpus/decode from the captured FreeSWITCH traces. Each seed is
# one chunk-size count byte (0: no chunking) followed by the capture, plus a
# chunked variant, so the fuzzer starts from real frames of every kind.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src="$here/../tests/fixtures/esl"
dst="$here/corpus/decode"
mkdir -p "$dst"
for f in "$src"/*.esl; do
    name=$(basename "$f" .esl)
    { printf '\000'; cat "$f"; } > "$dst/$name"
    # 3 chunk sizes: 7, 64 and 200 bytes (+1 each).
    { printf '\003\006\077\307'; cat "$f"; } > "$dst/$name-chunked"
done
echo "seeded $(ls "$dst" | wc -l) inputs into $dst"
