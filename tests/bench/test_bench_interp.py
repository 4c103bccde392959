"""Interpreter benchmarks (pytest-benchmark; numbers in docs/PERF.md, no timed asserts).

    python -m pytest tests/bench/test_bench_interp.py --benchmark-only
    python -m pytest tests/bench/test_bench_interp.py -m slow --benchmark-only   # + Triton's interpreter

- the SIMT matmul example at 512×512×512 f32 (64×64 tiles, 256 threads), checks off and on;
- a 2048² transpose: run time and peak traced memory (tracemalloc) with checks off and on;
- (slow, skipped without triton) Triton's interpreter (TRITON_INTERPRET=1, torch CPU) on a
  512³ tiled matmul, for comparison.
Each run's result is checked against NumPy, so a fast wrong interpreter cannot pass.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

from taskmap import refimpl
from taskmap.examples import matmul_simt, transpose


@pytest.mark.parametrize("checks", [False, True], ids=["checks_off", "checks_on"])
def test_bench_matmul_simt_512(benchmark, checks):
    args = matmul_simt.make_args(np.random.default_rng(0), 512, 512, 512)
    benchmark.extra_info.update(shape="512x512x512 f32", kernel=matmul_simt.matmul_simt.name, checks=checks)
    benchmark.pedantic(refimpl.interpret, args=(matmul_simt.matmul_simt, *args), kwargs={"checks": checks},
                       rounds=2, iterations=1)
    np.testing.assert_array_equal(args[5], matmul_simt.reference(*args)["c"])


@pytest.mark.parametrize("checks", [False, True], ids=["checks_off", "checks_on"])
def test_bench_transpose_2048_peak_memory(benchmark, checks):
    a = np.random.default_rng(1).standard_normal((2048, 2048)).astype(np.float32)
    b = np.zeros_like(a)

    def run():
        tracemalloc.start()
        try:
            refimpl.interpret(transpose.transpose, 2048, 2048, a, b, checks=checks)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    peak = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(shape="2048x2048 f32", checks=checks, peak_traced_mib=round(peak / 2**20, 1))
    np.testing.assert_array_equal(b, a.T)


TRITON_MATMUL = textwrap.dedent('''
    import os, sys, time
    os.environ["TRITON_INTERPRET"] = "1"
    import numpy as np, torch, triton, triton.language as tl

    @triton.jit
    def matmul(a, b, c, M, N, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
        pm, pn = tl.program_id(0), tl.program_id(1)
        rm, rn, rk = pm * BM + tl.arange(0, BM), pn * BN + tl.arange(0, BN), tl.arange(0, BK)
        acc = tl.zeros((BM, BN), dtype=tl.float32)
        for k in range(0, K, BK):
            x = tl.load(a + rm[:, None] * K + (k + rk)[None, :])
            y = tl.load(b + (k + rk)[:, None] * N + rn[None, :])
            acc += tl.dot(x, y)
        tl.store(c + rm[:, None] * N + rn[None, :], acc)

    n = 512
    a, b = torch.randn(n, n), torch.randn(n, n)
    c = torch.empty(n, n)
    start = time.perf_counter()
    matmul[(n // 64, n // 64)](a, b, c, n, n, n, BM=64, BN=64, BK=8)
    print(time.perf_counter() - start)
    sys.exit(0 if torch.allclose(c, a @ b, rtol=1e-3, atol=1e-3) else 1)
''')


@pytest.mark.slow
def test_bench_triton_interpreter_matmul_512(benchmark):
    pytest.importorskip("triton")
    pytest.importorskip("torch")

    def run():
        out = subprocess.run([sys.executable, "-c", TRITON_MATMUL], capture_output=True, text=True,
                             env={**os.environ, "TRITON_INTERPRET": "1"})
        assert out.returncode == 0, out.stderr[-2000:]
        return float(out.stdout.strip().splitlines()[-1])
    seconds = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(shape="512x512x512 f32, 64x64x8 tiles", triton_kernel_seconds=seconds)
