#!/usr/bin/env bash
# Runs the benchmarks recorded in docs/performance.md and prints their JSON,
# one object per line, after a line describing the machine.  Run it on a
# quiet machine: `tools/bench.sh > /tmp/bench.jsonl`.
set -euo pipefail
ps="${PS_BIN:-build/src/paramscope}"
echo "{\"machine\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\", \"cores\": $(nproc), \"load\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
for threads in 1 2; do
    "$ps" bench --preset tiny --steps 50 --threads "$threads" --json
done
"$ps" bench --preset gpt2-124m --steps 5 --threads 2 --json
"$ps" bench --preset gpt2-124m --steps 3 --threads 1 --json
"$ps" bench --preset gpt2-124m --predict --threads 2 --json 2>/dev/null || true
"$ps" bench --preset tiny --predict --threads 2 --json 2>/dev/null || true
