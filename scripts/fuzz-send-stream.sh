#!/usr/bin/env bash
# Fuzzes the send-stream reader (native/core/send_stream.cc) with libFuzzer,
# ASan and UBSan for SECONDS (default 60), starting from the kernel streams
# in test/fixtures/streams/ and the dictionary native/fuzz/send_stream.dict.
#
#   bash scripts/fuzz-send-stream.sh [SECONDS]
#
# Installs nothing: it needs clang with libFuzzer (Debian 12: apt-get install
# -y clang libclang-rt-14-dev). Inputs that found new coverage accumulate in
# .fuzz/corpus/ (reused by the next run). Exits 0 when nothing crashed,
# 1 on a crash (or a leak, a timeout, an out-of-memory), 2 when it cannot
# build; a crashing input is left in .fuzz/crashes/: commit it as
# test/fixtures/streams/crash-<name>.bin, where a test replays it.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "usage: $0 [SECONDS]  (a positive number of seconds, default 60)" >&2
  exit 2
fi
cxx=${CXX_FUZZ:-clang++}
if ! command -v "$cxx" >/dev/null; then
  echo "$0: $cxx not found; on Debian 12: apt-get install -y clang libclang-rt-14-dev" >&2
  exit 2
fi

out=.fuzz  # not under build/: node-gyp rebuild deletes that
mkdir -p "$out/corpus" "$out/crashes"
bin=$out/send_stream_fuzz
# -fno-sanitize-recover: an undefined-behaviour report is a crash, not a warning.
if ! "$cxx" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Wall -Wextra \
  native/fuzz/send_stream_fuzz.cc native/core/send_stream.cc native/core/crc32c.cc -o "$bin"; then
  echo "$0: cannot build with -fsanitize=fuzzer (is libclang-rt-14-dev installed?)" >&2
  exit 2
fi

set +e
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -dict=native/fuzz/send_stream.dict -artifact_prefix="$out/crashes/" \
  "$out/corpus" test/fixtures/streams 2>"$out/fuzz.log"
status=$?
set -e
grep -E '^(#[0-9]+[[:space:]]+DONE|stat::|Done )' "$out/fuzz.log" || true
if [ $status -ne 0 ]; then
  tail -n 60 "$out/fuzz.log" >&2
  echo "$0: the fuzzer failed (exit $status); input(s) in $out/crashes/:" >&2
  ls -l "$out/crashes/" >&2
  exit 1
fi
echo "$0: no crash in ${seconds}s (log: $out/fuzz.log)"
