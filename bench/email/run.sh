#!/usr/bin/env bash
# Runs the e-mail benchmarks (not part of scripts/test): builds email_bench and prints the
# initial-sync comparison with isync's mbsync and the Postfix → host event latency.
#
#   bench/email/run.sh [sync|latency|all]     (default: all; needs root, like the mail tests)
#
# isync (mbsync) is the reference of the sync benchmark only, so it is installed here rather
# than listed in scripts/deps (the installer has no bench-only lists). BUILD_DIR as scripts/test.
set -euo pipefail
cd "$(dirname "$0")/../.."
build_dir="${BUILD_DIR:-build}"
what="${1:-all}"

scripts/install-deps
if ! command -v mbsync >/dev/null 2>&1; then
  env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends isync
fi
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONNECTOR_BUILD_BENCH=ON
ninja -C "$build_dir" ${JOBS:+-j "$JOBS"} email_bench connector_email_imap

bench="$build_dir/bench/email/email_bench"
if [ "$what" = sync ] || [ "$what" = all ]; then "$bench" sync 5000; fi
if [ "$what" = latency ] || [ "$what" = all ]; then "$bench" latency 100; fi
