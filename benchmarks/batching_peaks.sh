#!/bin/bash
# Issue 11 dynamic-batching target, LoadGen-valid durations: find-peak at p99 <= 100 ms, unbatched vs batched.
cd "$(dirname "$0")/.."   # the repository root
OUT=${OUT:-results/bench}
mkdir -p $OUT
PY=.venv/bin/python
for method in fp32 pt2e-int8; do
  for policy in "1 0" "16 5"; do
    set -- $policy; B=$1; W=$2
    $PY -m accelbench serve --task sst2 --model minilm-sst2 --method $method --threads 2 --max-batch-size $B --max-wait-ms $W --port 8101 > $OUT/serve_${method}_b$B.log 2>&1 &
    SP=$!
    for i in $(seq 1 240); do curl -sf http://127.0.0.1:8101/health >/dev/null && break; sleep 1; done
    echo "== $method batch<=$B wait=$W ($(date +%T))"
    $PY -m accelbench load --url http://127.0.0.1:8101 --rate 20 --duration 25 --p99-ms 100 --find-peak --out $OUT/peak_${method}_b$B.json 2>&1 | grep -v "torchao\|register_constant\|W1207" | tail -6
    kill -INT $SP; wait $SP
  done
done
echo done $(date +%T)
