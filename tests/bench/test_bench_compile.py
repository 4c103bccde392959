"""Compile-time benchmarks of full-size ResNet-50 (issue 11: compile+tune < 120 s cold and
< 5 s from the cache). Each compile runs in a fresh Python process with its own TASKMAP_CACHE
(a temporary directory): the first is cold (empty cubin and tuning caches), the second warm
(everything cached, nothing in memory). extra_info: cold_s and warm_s; the benchmark itself
times a warm compile. Results go to docs/PERF.md.

    python -m pytest tests/bench/test_bench_compile.py --benchmark-only -s           # no GPU: nvcc only
    python -m pytest tests/bench/test_bench_compile.py --benchmark-only -s -m gpu    # on the GPU, with tuning
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow

pytest.importorskip("onnx")

from taskmap.gpu.build import nvcc  # noqa: E402

# The model is built (seeded random weights, ~2 s) before the clock starts: compiling is what is timed.
_BUILD = "from taskmap.frontends import onnx_models; model = onnx_models.resnet50(); import time; t = time.perf_counter()\n"
# No device: the graph side (import, passes, fusion, scheduling, verification), then every distinct
# kernel's CUDA emitted and compiled to a cubin as DeviceProgram would (gpu.build.compile_ahead).
NVCC_ONLY = _BUILD + """import taskmap
from taskmap.gpu.build import compile_ahead
from taskmap.gpu.emit import emit_kernel
prog = taskmap.compile(model, backend="interp")
compile_ahead({emit_kernel(k).source for k in dict.fromkeys(prog.kernels)}, "sm_90")
print(time.perf_counter() - t)
"""
# On the GPU: compile with tuning (tunes every anchor the cache lacks), kernels loaded on the device.
TUNED = _BUILD + """import taskmap
taskmap.compile(model, backend="cuda", tune="default")
print(time.perf_counter() - t)
"""


def _seconds(code: str, cache) -> float:
    env = dict(os.environ, TASKMAP_CACHE=str(cache))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def _cold_then_warm(benchmark, code: str, cache) -> None:
    cold = _seconds(code, cache)
    warm = benchmark.pedantic(_seconds, (code, cache), rounds=1, iterations=1)
    benchmark.extra_info.update(cold_s=round(cold, 2), warm_s=round(warm, 2))
    print(f"\nResNet-50 compile: cold {cold:.2f} s, warm {warm:.2f} s ({time.strftime('%Y-%m-%d %H:%M')}, "
          f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


@pytest.mark.skipif(nvcc() is None, reason="nvcc not found")
def test_resnet50_compile_nvcc_only(benchmark, tmp_path):
    _cold_then_warm(benchmark, NVCC_ONLY, tmp_path)


@pytest.mark.gpu
def test_resnet50_compile_and_tune(benchmark, tmp_path):
    _cold_then_warm(benchmark, TUNED, tmp_path)
