#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz/ for a given time each.
#
#   tools/fuzz.sh [-j JOBS] [-b BUILD] SECONDS [TARGET...]
#
# BUILD is a clang build made with -Dfuzz=true (default build-fuzz; made if
# missing: CC=clang meson setup build-fuzz -Dfuzz=true).  Each target starts
# from its committed seeds (tests/fuzz/corpus/TARGET) and its dictionary, and
# keeps what it finds in BUILD/fuzz-work/TARGET (never in the repository), so
# a second run goes on from the first.  A crash, leak, timeout or out-of-memory
# input is saved as BUILD/fuzz-work/crash-TARGET-*; copy it, minimised
# (-minimize_crash=1), to tests/fuzz/regressions/TARGET/ to keep it as a test.
# JOBS targets run at a time (default 1), each on one core at nice 10.
# Prints one line per target (executions, exec/s, cov:, ft:) and exits 1 if
# any target failed.  The issue's long runs: tools/fuzz.sh 1800.
set -uo pipefail
cd "$(dirname "$0")/.."

jobs=1
build=build-fuzz
while getopts "j:b:" o; do
    case $o in
        j) jobs=$OPTARG ;;
        b) build=$OPTARG ;;
        *) echo "usage: tools/fuzz.sh [-j JOBS] [-b BUILD] SECONDS [TARGET...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
    echo "usage: tools/fuzz.sh [-j JOBS] [-b BUILD] SECONDS [TARGET...]" >&2
    exit 2
fi
seconds=$1
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in tests/fuzz/fuzz_*.c; do
        t=${f#tests/fuzz/fuzz_}
        targets+=("${t%.c}")
    done
fi

if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" -Dfuzz=true -Dbuildtype=debugoptimized -Db_lundef=false >/dev/null || exit 1
fi
exes=()
for t in "${targets[@]}"; do exes+=("tests/fuzz/fuzz_$t"); done
ninja -C "$build" "${exes[@]}" >/dev/null || { echo "tools/fuzz.sh: the build of $build failed" >&2; exit 1; }

work=$build/fuzz-work
mkdir -p "$work"
# Leaks are crashes too (LeakSanitizer after every input would be slow:
# libFuzzer checks for them itself); BLIS and libgomp keep their pools.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:allocator_may_return_null=1"
export LSAN_OPTIONS="suppressions=$PWD/.ci/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export PARAMSCOPE_THREADS=1

run_one() {
    local t=$1 exe=$build/tests/fuzz/fuzz_$1
    mkdir -p "$work/$t"
    nice -n 10 "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -malloc_limit_mb=1024 -max_len=65536 -print_final_stats=1 \
        -dict="tests/fuzz/dict/$t.dict" -artifact_prefix="$work/crash-$t-" \
        "$work/$t" "tests/fuzz/corpus/$t" >"$work/$t.log" 2>&1
    local rc=$?
    local stats execs rate cov ft
    stats=$(grep -E '^#[0-9]+' "$work/$t.log" | tail -1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t.log")
    cov=$(grep -o 'cov: [0-9]*' <<<"$stats" | tail -1)
    ft=$(grep -o 'ft: [0-9]*' <<<"$stats" | tail -1)
    if [ $rc -eq 0 ]; then
        echo "fuzz $t: ok, ${execs:-?} runs in ${seconds}s (${rate:-?}/s), ${cov:-cov: ?}, ${ft:-ft: ?}"
    else
        echo "fuzz $t: FAILED (exit $rc) after ${execs:-?} runs; see $work/$t.log"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*broken promise)' "$work/$t.log" | head -3 | sed 's/^/    /'
        ls "$work"/crash-"$t"-* 2>/dev/null | sed 's/^/    input: /'
    fi
    return $rc
}

failed=0
running=0
for t in "${targets[@]}"; do
    if [ ! -x "$build/tests/fuzz/fuzz_$t" ]; then
        echo "fuzz $t: FAILED: no target $build/tests/fuzz/fuzz_$t"
        failed=$((failed + 1))
        continue
    fi
    run_one "$t" &
    running=$((running + 1))
    if [ $running -ge "$jobs" ]; then
        wait -n || failed=$((failed + 1))
        running=$((running - 1))
    fi
done
while [ $running -gt 0 ]; do
    wait -n || failed=$((failed + 1))
    running=$((running - 1))
done
[ $failed -eq 0 ]
