#!/usr/bin/env bash
# Runs the WhatsApp benchmarks (not part of scripts/test), against the WhatsApp test server on
# loopback:
#   - memory: N idle sessions through one bridge beside N one-session bridges (target ≤ 10 MB per
#     session); node bench/whatsapp/memory.mjs N
#   - latency: test server → host WebSocket message.new, p50/p95 (target p95 ≤ 100 ms);
#     whatsapp_latency_bench MESSAGES
#
#   bench/whatsapp/run.sh [memory|latency|all] [N sessions] [messages]   (default: all 10 200)
#
# Needs the npm folders installed (scripts/install-deps does it). BUILD_DIR as scripts/test.
set -euo pipefail
cd "$(dirname "$0")/../.."
build_dir="${BUILD_DIR:-build}"
what="${1:-all}"
sessions="${2:-10}"
messages="${3:-200}"

if [ "$what" = memory ] || [ "$what" = all ]; then node bench/whatsapp/memory.mjs "$sessions"; fi
if [ "$what" = latency ] || [ "$what" = all ]; then
  cmake -S . -B "$build_dir" -G Ninja >/dev/null
  ninja -C "$build_dir" ${JOBS:+-j "$JOBS"} whatsapp_latency_bench
  "$build_dir/bench/whatsapp/whatsapp_latency_bench" "$messages"
fi
