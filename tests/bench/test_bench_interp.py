"""Interpreter benchmarks (pytest-benchmark; numbers in docs/PERF.md, no timed asserts).

    python -m pytest tests/bench/test_bench_interp.py --benchmark-only
    python -m pytest tests/bench/test_bench_interp.py -m slow --benchmark-only   # + Triton's interpreter

- the SIMT matmul example at 512×512×512 f32 (64×64 tiles, 256 threads), checks off and on;
- a 2048² transpose: run time and peak traced memory (tracemalloc) with checks off and on
  (slow: 4096², checks on);
- the matmul at 128³ and 256³ (slow: 1024³) with checks on, for the scaling table;
- vector add of 1M f32, checks off and on;
- (slow, skipped without triton) Triton's interpreter (TRITON_INTERPRET=1, torch CPU) on the
  same jobs with the same tiling (matmul at BK 8, 32 and 64), for comparison. The side-by-side
  table in PERF.md comes from scripts/interp_bench.py, which interleaves both;
- (slow) issue 9's goals, each measured side by side in fresh processes, interleaved, medians
  in extra_info: matmul 512³ with checks on against Triton's best tiling (goal ≥ 3×), checks on /
  off (goal ≤ 1.3×), transpose 2048² and vector add 1M against Triton (goal ≥ 10×), peak RSS of
  the 1024³ matmul and the 4096² transpose.
Each run's result is checked against NumPy, so a fast wrong interpreter cannot pass.
"""
from __future__ import annotations

import importlib.util
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from taskmap import refimpl
from taskmap.examples import matmul_simt, transpose, vector_add


@pytest.mark.parametrize("checks", [False, True], ids=["checks_off", "checks_on"])
def test_bench_matmul_simt_512(benchmark, checks):
    args = matmul_simt.make_args(np.random.default_rng(0), 512, 512, 512)
    benchmark.extra_info.update(shape="512x512x512 f32", kernel=matmul_simt.matmul_simt.name, checks=checks)
    benchmark.pedantic(refimpl.interpret, args=(matmul_simt.matmul_simt, *args), kwargs={"checks": checks},
                       rounds=2, iterations=1)
    np.testing.assert_array_equal(args[5], matmul_simt.reference(*args)["c"])


@pytest.mark.parametrize("n, checks", [(2048, False), (2048, True), pytest.param(4096, True, marks=pytest.mark.slow)],
                         ids=["2048_checks_off", "2048_checks_on", "4096_checks_on"])
def test_bench_transpose_peak_memory(benchmark, n, checks):
    a = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    b = np.zeros_like(a)

    def run():
        tracemalloc.start()
        try:
            refimpl.interpret(transpose.transpose, n, n, a, b, checks=checks)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    peak = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(shape=f"{n}x{n} f32", checks=checks, peak_traced_mib=round(peak / 2**20, 1))
    np.testing.assert_array_equal(b, a.T)


@pytest.mark.parametrize("n", [128, 256, pytest.param(1024, marks=pytest.mark.slow)])
def test_bench_matmul_simt_scaling(benchmark, n):
    """Time ∝ M·N·K from 256³ up (docs/PERF.md's scaling table); checks on."""
    args = matmul_simt.make_args(np.random.default_rng(0), n, n, n)
    benchmark.extra_info.update(shape=f"{n}x{n}x{n} f32", checks=True)
    benchmark.pedantic(refimpl.interpret, args=(matmul_simt.matmul_simt, *args), rounds=1, iterations=1)
    np.testing.assert_array_equal(args[5], matmul_simt.reference(*args)["c"])


@pytest.mark.parametrize("checks", [False, True], ids=["checks_off", "checks_on"])
def test_bench_vector_add_1m(benchmark, checks):
    args = vector_add.make_args(np.random.default_rng(2), 1 << 20)
    benchmark.extra_info.update(shape="1048576 f32", checks=checks)
    benchmark.pedantic(refimpl.interpret, args=(vector_add.vector_add, *args), kwargs={"checks": checks},
                       rounds=2, iterations=1)
    np.testing.assert_array_equal(args[3], vector_add.reference(*args)["c"])


def _interp_bench():
    """scripts/interp_bench.py (the PERF.md table's runner), loaded from its file."""
    path = Path(__file__).parents[2] / "scripts" / "interp_bench.py"
    spec = importlib.util.spec_from_file_location("interp_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("what, n, tile", [("matmul", 512, 8), ("matmul", 512, 32), ("matmul", 512, 64),
                                           ("transpose", 2048, 32), ("vector_add", 1 << 20, 256)])
def test_bench_triton_interpreter(benchmark, what, n, tile):
    """Triton's interpreter (TRITON_INTERPRET=1, torch CPU) on the job of our example, same tiling
    (matmul: 64×64 output tiles at BK = tile); the child checks its result against torch."""
    pytest.importorskip("triton")
    pytest.importorskip("torch")
    bench = _interp_bench()
    seconds = benchmark.pedantic(lambda: bench.peak_rss(bench.TRITON, what, n, tile)[0], rounds=1, iterations=1)
    benchmark.extra_info.update(kernel=what, size=n, tile=tile, triton_launch_seconds=seconds)


@pytest.mark.slow
@pytest.mark.parametrize("what", ["matmul", "transpose", "vector_add"])
def test_bench_goal_against_triton(benchmark, what):
    """Ours (checks on and off) and Triton's interpreter at each tiling, three interleaved rounds;
    extra_info: the medians, best Triton / ours with checks on, and checks on / off."""
    pytest.importorskip("triton")
    pytest.importorskip("torch")
    bench = _interp_bench()
    med = benchmark.pedantic(lambda: bench.measure(what, 3, True), rounds=1, iterations=1)
    best = min(v for k, v in med.items() if k not in ("on", "off"))
    benchmark.extra_info.update(seconds=med, triton_best_over_checks_on=round(best / med["on"], 2),
                                checks_on_over_off=round(med["on"] / med["off"], 2))


@pytest.mark.slow
def test_bench_goal_checks_overhead(benchmark):
    """Matmul 512³ checks on / off, five interleaved rounds in fresh processes (no Triton needed)."""
    bench = _interp_bench()
    med = benchmark.pedantic(lambda: bench.measure("matmul", 5, False), rounds=1, iterations=1)
    benchmark.extra_info.update(seconds=med, checks_on_over_off=round(med["on"] / med["off"], 2))


@pytest.mark.slow
@pytest.mark.parametrize("what, n", [("matmul", 1024), ("transpose", 4096)])
def test_bench_peak_rss(benchmark, what, n):
    """Peak RSS (wait4) of a fresh process running the job with checks on; the child checks its result."""
    bench = _interp_bench()
    seconds, rss = benchmark.pedantic(lambda: bench.peak_rss(bench.OURS, what, n, "on"), rounds=1, iterations=1)
    benchmark.extra_info.update(kernel=what, size=n, launch_seconds=seconds, peak_rss_mib=round(rss))
