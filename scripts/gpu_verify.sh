#!/usr/bin/env bash
# The whole GPU verification in one command on the GPU machine (device time is scarce):
# every gpu test, then every conformance case on the interpreter and the GPU, reports and the
# cubin cache written to $OUT. Run from the project root with `.gpu` carried (see
# scripts/device_env.sh); with a cubin tarball from an earlier run carried in .cubins/, nvcc
# compiles only what changed since.
#
#     bash scripts/gpu_verify.sh            # PYTEST_S / CONFORM_S: time limits, seconds
#
# tests/test_conformance.py's cuda items are the very cases `taskmap conform --backend all`
# runs, so pytest leaves that file out here; tests/bench holds benchmarks (scripts/gpu_bench.py,
# `taskmap bench`), not pass/fail checks.
set -uo pipefail
source scripts/device_env.sh || exit 1
out=${OUT:-/tmp/taskmap-gpu-verify}
mkdir -p "$out" ~/.cache/taskmap
[ -f .cubins/cubins.tar.xz ] && tar xJf .cubins/cubins.tar.xz -C ~/.cache/taskmap
workers=$(nproc)
timeout "${PYTEST_S:-320}" python -m pytest -q -m gpu -n "$workers" --ignore=tests/test_conformance.py \
    --ignore=tests/bench -p no:warnings --tb=line --junitxml="$out/gpu.xml" 2>&1 | tee "$out/gpu.log" | tail -40
pytest_status=$?
timeout "${CONFORM_S:-230}" taskmap conform --backend all -n "$workers" --json "$out/conform.json" 2>&1 \
    | tee "$out/conform.log" | tail -25
conform_status=$?
tar cJf "$out/cubins.tar.xz" -C ~/.cache/taskmap cubin
echo "gpu_verify: pytest exit $pytest_status, conform exit $conform_status (124: its time limit)"
[ "$pytest_status" -eq 0 ] && [ "$conform_status" -eq 0 ]
