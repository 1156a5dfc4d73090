#!/bin/bash
# CPU per call of the control plane and the worker as separate processes
# (a model-store, a control plane, a worker) on the iris example, driven by
# perf_analyzer over gRPC through the front door, or straight to the worker
# with DIRECT=1: (utime + stime of each process) / calls the worker counted.
# With PROFILE=1, `perf record` samples both processes while the load runs
# and the flat profile of each is printed.
# usage: cpu_per_plane.sh BINARY CONCURRENCY (loopback only; every process
# is stopped by its PID at the end)
set -u
BIN=$(realpath "$1"); C=$2
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export HOTSWAP_VENV=${HOTSWAP_VENV:-$PWD/.venv}
PA=$HOTSWAP_VENV/bin/perf_analyzer
D=$(mktemp -d)
addr() { grep "$2 listening" "$1" | grep -o 'addr=[0-9.:]*' | head -1 | cut -d= -f2; }
"$BIN" model-store --config examples/iris-onnx/hotswap.yaml --listen 127.0.0.1:0 > $D/store.log 2>&1 & SP=$!
trap 'kill $SP ${CP:-} ${WP:-} 2>/dev/null; wait 2>/dev/null; rm -rf $D' EXIT
sleep 1; SA=$(addr $D/store.log model-store)
"$BIN" control-plane --model-store $SA --listen 127.0.0.1:0 --internal-listen 127.0.0.1:0 > $D/cp.log 2>&1 & CP=$!
sleep 1; FA=$(addr $D/cp.log 'control-plane'); IA=$(addr $D/cp.log 'control-plane-internal')
"$BIN" data-plane --model-store $SA --control-plane $IA --listen 127.0.0.1:0 > $D/w.log 2>&1 & WP=$!
sleep 1; WA=$(addr $D/w.log data-plane)
for i in $(seq 1 60); do curl -sf http://$FA/v2/models/iris/ready >/dev/null && break; sleep 0.5; done
T=$FA; [ "${DIRECT:-0}" = 1 ] && T=$WA
count() { curl -s http://$WA/v2/models/iris/stats | python3 -c 'import json,sys; print(sum(int(m.get("inference_count",0)) for m in json.load(sys.stdin)["model_stats"]))'; }
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
load() { timeout 120 $PA -i grpc -u $T -m iris --shape input:1,4 --concurrency-range $C:$C -p $1 2>&1; }
load 1000 >/dev/null
c0=$(count); a0=$(ticks $CP); b0=$(ticks $WP)
if [ "${PROFILE:-0}" = 1 ]; then
  perf record -F 999 -g -o $D/cp.data -p $CP -- sleep 6 >/dev/null 2>&1 & R1=$!
  perf record -F 999 -g -o $D/w.data -p $WP -- sleep 6 >/dev/null 2>&1 & R2=$!
fi
load 2000 | grep -E "Throughput|p50 lat|p99 lat"
c1=$(count); a1=$(ticks $CP); b1=$(ticks $WP)
hz=$(getconf CLK_TCK)
python3 -c "c=$c1-$c0; print(f'calls={c} control_plane_us_per_call={($a1-$a0)/$hz/c*1e6:.1f} worker_us_per_call={($b1-$b0)/$hz/c*1e6:.1f}')"
if [ "${PROFILE:-0}" = 1 ]; then
  wait $R1 $R2
  for p in cp w; do
    echo "=== $p"
    perf report -i $D/$p.data --no-children --sort dso,symbol -g none --stdio 2>/dev/null | grep -E '^ +[0-9]' | cut -c1-150 | head -40
  done
fi
