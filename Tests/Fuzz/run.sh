#!/usr/bin/env bash
# Fuzzes every decoder of untrusted input with libFuzzer and AddressSanitizer, each for a bounded time.
#   Tests/Fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
# Targets: http-request http-response chunked rules otlp-protobuf otlp-json postgres sql-text.
# Seeds are in Tests/Fuzz/Corpus/<target>; what a run adds goes to .build/fuzz/corpus/<target>. A crash is
# saved in Tests/Fuzz/Corpus/<target>/ (crash-*, timeout-*, oom-*), which makes it a regression test: `swift test` replays every
# file there (FuzzCorpusTests), so fix the decoder and commit the file.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(http-request http-response chunked rules otlp-protobuf otlp-json postgres sql-text)

swift build -c release --product tracetap-fuzz --build-path .build/fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -parse-as-library >/dev/null
binary=.build/fuzz/release/tracetap-fuzz
status=0
for target in "${targets[@]}"; do
    seeds=Tests/Fuzz/Corpus/$target
    corpus=.build/fuzz/corpus/$target
    mkdir -p "$seeds" "$corpus" .build/fuzz/runs
    log=.build/fuzz/runs/$target.log
    # -timeout: an input that takes over 5 s is a hang; -rss_limit_mb / -malloc_limit_mb: unbounded allocation.
    if TRACETAP_FUZZ_TARGET=$target "$binary" "$corpus" "$seeds" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
        -malloc_limit_mb=512 -max_len=65536 -artifact_prefix="$seeds/" -print_final_stats=1 >"$log" 2>&1; then
        runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
        echo "$target: $runs inputs in ${seconds}s, no crash, no hang, no runaway allocation (corpus $(ls "$corpus" | wc -l) files)"
    else
        status=1
        echo "$target: FAILED, see $log and $seeds/crash-*"
        grep -m3 -E "ERROR|SUMMARY|deadly signal|timeout|out-of-memory" "$log" || true
    fi
done
exit $status
