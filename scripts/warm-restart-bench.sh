#!/usr/bin/env bash
# Warm restart with 1M items (issue 16): writes 1M items (values of 1 to 200
# bytes, mixed TTLs) to `shoal -t 2 -m 256 --restart-dir DIR`, stops it with
# SIGTERM, starts it again and reads every item back; prints the stop time
# (SIGTERM to exit, image written), the start-to-ready time (image checked
# and loaded), the items kept and the peak RSS against -m. Bounded: fails if
# it takes more than 5 minutes.
# usage: scripts/warm-restart-bench.sh [items] [cores] [megabytes]
#   defaults: 1000000 2 256 (with -m below the data, the store evicts while
#   writing; what it holds is what is saved and loaded)
set -euo pipefail
cd "$(dirname "$0")/.."
export WARM_RESTART_ITEMS=${1:-1000000}
export WARM_RESTART_CORES=${2:-2}
export WARM_RESTART_MB=${3:-256}
timeout 300 cargo test --release -q --test warm_restart_e2e million_items -- \
  --ignored --nocapture 2>&1 | grep -v '^\[shoal\]'
