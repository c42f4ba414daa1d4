#!/usr/bin/env bash
# Fuzzers in CI: seed corpus plus a short run each (rulings R2: <= 60 s each).
set -euo pipefail
cd "$ROOT"
FUZZ_SECONDS=${FUZZ_SECONDS:-15} bash tests/fuzz/run.sh
