"""Warpgroup MMA on the GPU (SPEC.md §5.12, sm_90a) agrees with the interpreter and with NumPy:
64·w × n × k tile GEMMs through matrix descriptors in every swizzle mode, A from registers, two
warpgroups, n up to 256, f16 and bf16, tiles loaded by swizzled TMA copies. Eighths are exact
whatever order the tensor cores add in; random inputs are held to §5.12's bound. The planted
bugs of conformance/cases/wgmma.yaml are the interpreter's; here only correct kernels run."""
from __future__ import annotations

import numpy as np
import pytest

from taskmap.conformance.kernels import wgmmas as kernels
from taskmap.spec.dtypes import from_bf16_bits, to_bf16_bits
from tests.gpu_compare import run_both

pytestmark = pytest.mark.gpu


def _eighths(shape, rng):
    return (rng.integers(-16, 17, shape) * 0.125).astype(np.float16)


@pytest.mark.parametrize("name, m, n, k", [
    ("wgmma_gemm_sw128_n64", 64, 64, 256),
    ("wgmma_gemm_sw64_n32_two_warpgroups", 128, 32, 128),
    ("wgmma_gemm_sw32_n16", 64, 16, 64),
    ("wgmma_gemm_interleaved", 64, 24, 64),
    ("wgmma_gemm_a_registers", 64, 64, 192),
])
def test_tile_gemm_matches_numpy_exactly(name, m, n, k):
    rng = np.random.default_rng(k)
    a, b = _eighths((m, k), rng), _eighths((k, n), rng)
    want = a.astype(np.float64) @ b.astype(np.float64)
    on_gpu, on_ref = run_both(getattr(kernels, name), k, a, b, np.zeros((m, n), np.float32))
    np.testing.assert_array_equal(on_gpu[3], want)
    np.testing.assert_array_equal(on_ref[3], want)


@pytest.mark.parametrize("k", [64, 512])
def test_tma_loaded_swizzled_stages_feed_wgmma(k):
    rng = np.random.default_rng(k)
    a, bt = _eighths((64, k), rng), _eighths((64, k), rng)
    want = a.astype(np.float64) @ bt.astype(np.float64).T
    on_gpu, on_ref = run_both(kernels.wgmma_gemm_tma, k, a, bt, np.zeros((64, 64), np.float32))
    np.testing.assert_array_equal(on_gpu[3], want)
    np.testing.assert_array_equal(on_ref[3], want)


def test_n256_bf16_random_within_the_spec_bound():
    k, rng = 128, np.random.default_rng(3)
    a32, b32 = rng.standard_normal((64, k)), rng.standard_normal((k, 256))
    a, b = to_bf16_bits(a32.astype(np.float32)), to_bf16_bits(b32.astype(np.float32))
    af, bf = from_bf16_bits(a).astype(np.float64), from_bf16_bits(b).astype(np.float64)
    want = af @ bf
    bound = 2.0 ** -22 * 17 * (k // 16) * (np.abs(af) @ np.abs(bf)) + np.abs(want) * 2.0 ** -24
    on_gpu, on_ref = run_both(kernels.wgmma_gemm_sw128_n256_bf16, k, a, b, np.zeros((64, 256), np.float32))
    assert np.all(np.abs(on_gpu[3] - want) <= bound)
    assert np.all(np.abs(on_ref[3] - want) <= bound)
    assert np.any(on_gpu[3] != 0)
