#!/bin/bash
# CPU per call of `hotswap up` (model-store + control plane + worker in one
# process) on the iris example, driven by perf_analyzer over gRPC through the
# front door: (utime + stime of the process) / calls the server counted.
# usage: cpu_per_call.sh BINARY CONCURRENCY REQUESTS (loopback only; the
# server is stopped by its PID at the end)
set -u
BIN=$(realpath "$1"); C=$2; N=$3
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export HOTSWAP_VENV=${HOTSWAP_VENV:-$PWD/.venv}
PA=$HOTSWAP_VENV/bin/perf_analyzer
PORT=$((20000 + RANDOM % 20000))
LOG=$(mktemp)
"$BIN" up examples/iris-onnx/hotswap.yaml --listen 127.0.0.1:$PORT > "$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -f "$LOG"' EXIT
for i in $(seq 1 60); do
  curl -sf http://127.0.0.1:$PORT/v2/health/ready >/dev/null && break; sleep 0.5
done
count() { curl -s http://127.0.0.1:$PORT/v2/models/iris/stats | python3 -c 'import json,sys; print(sum(int(m.get("inference_count",0)) for m in json.load(sys.stdin)["model_stats"]))'; }
ticks() { awk '{print $14+$15}' /proc/$PID/stat; }
# warm-up
timeout 60 $PA -i grpc -u 127.0.0.1:$PORT -m iris --shape input:1,4 --concurrency-range $C:$C -p 1000 >/dev/null 2>&1
c0=$(count); t0=$(ticks)
timeout 120 $PA -i grpc -u 127.0.0.1:$PORT -m iris --shape input:1,4 --concurrency-range $C:$C --request-count $N >/dev/null 2>&1
c1=$(count); t1=$(ticks)
hz=$(getconf CLK_TCK)
python3 -c "c=$c1-$c0; t=($t1-$t0)/$hz; print(f'calls={c} cpu_s={t:.2f} cpu_us_per_call={t/c*1e6:.1f}')"
