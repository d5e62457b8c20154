#!/usr/bin/env bash
# Run every kei benchmark in sequence; figures go to stdout and, as JSON lines, to
# $KEI_BENCH_RESULTS (default /tmp/kei-bench/results.jsonl). Scale with
# KEI_BENCH_SCALE=small for a quick pass (fewer events, 1 repetition).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
OUT="${KEI_BENCH_RESULTS:-/tmp/kei-bench/results.jsonl}"
mkdir -p "$(dirname "$OUT")"
: > "$OUT"

if [[ "${KEI_BENCH_SCALE:-full}" == "small" ]]; then
  batch=(--events 5000 --reps 1); single=(--events 500 --reps 1); pg=(--events 8000 --reps 1)
  verify=(--events 100000 --reps 1); tail=(--events 100); agents=(--agents 10000)
  route=(--events 100000 --decisions 500); ingest_mb=10
else
  batch=(--events 30000 --reps 5); single=(--events 2000 --reps 5); pg=(--events 40000 --reps 3)
  verify=(--events 1000000 --reps 3); tail=(--events 300); agents=(--agents 100000)
  route=(--events 1000000 --decisions 2000); ingest_mb=100
fi

echo "== machine: $(nproc) vCPU, $(uname -r), $($PY -c 'import sys; print(sys.version.split()[0])')"
$PY bench/append_batch.py "${batch[@]}" --json "$OUT"
$PY bench/append_single.py "${single[@]}" --json "$OUT"
$PY bench/append_pg.py "${pg[@]}" --json "$OUT"
$PY bench/verify_chain.py "${verify[@]}" --json "$OUT"
$PY bench/tail_latency.py "${tail[@]}" --json "$OUT"
$PY bench/serve.py --seconds 5 --json "$OUT"
$PY bench/projection_rebuild.py "${agents[@]}" --reps 1 --json "$OUT"
$PY bench/agent_queries.py "${agents[@]}" --reps 3 --json "$OUT"
$PY bench/bundle.py "${agents[@]}" --json "$OUT"
$PY bench/route_select.py "${route[@]}" --json "$OUT"
$PY bench/memory_write.py --events 3000 --json "$OUT"
$PY bench/trace_ingest.py --mb "${ingest_mb}" --json "$OUT"
echo "== results: $OUT"
