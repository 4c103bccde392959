"""ldmatrix (every count, with and without .trans) and mma_sync (m16n8k16 f16/bf16 and
m16n8k8 tf32) on the GPU agree with the interpreter and with NumPy (SPEC.md §5.7)."""
from __future__ import annotations

import numpy as np
import pytest

from taskmap.lang import f16, kernel, ldmatrix, register_tensor, shared_tensor, syncwarp, threadIdx
from tests.gpu_compare import run_both

pytestmark = pytest.mark.gpu


def make_ldmatrix(num: int, trans: bool):
    @kernel(grid=1, block=32, name=f"ldmatrix_x{num}{'_trans' if trans else ''}")
    def load(src: f16[4, 8, 8], out: f16[32, 2 * num]):
        lane = threadIdx.x
        tile = shared_tensor(f16, [4, 8, 8])
        for j in range(8):
            tile[lane // 8, lane % 8, j] = src[lane // 8, lane % 8, j]
        syncwarp()
        frag = register_tensor(f16, [2 * num])
        ldmatrix(frag, tile[lane // 8 % num, lane % 8, 0], num=num, trans=trans)
        for i in range(2 * num):
            out[lane, i] = frag[i]
    return load


@pytest.mark.parametrize("num", [1, 2, 4])
@pytest.mark.parametrize("trans", [False, True])
def test_ldmatrix_fragments(num, trans):
    src = np.arange(4 * 8 * 8, dtype=np.float16).reshape(4, 8, 8)
    got, want = run_both(make_ldmatrix(num, trans), src, np.zeros((32, 2 * num), np.float16))
    np.testing.assert_array_equal(got[1], want[1])
    lane = np.arange(32)
    m = src.transpose(0, 2, 1) if trans else src                 # SPEC §5.7: element 2i + c of lane l
    expect = np.stack([m[i // 2, lane // 4, 2 * (lane % 4) + i % 2] for i in range(2 * num)], axis=1)
    np.testing.assert_array_equal(got[1], expect)


def test_tf32_mma_rounds_operands_to_nearest():
    from taskmap.conformance.kernels.semantics import mma_m16n8k8_tf32 as mma_tf32   # the §5.7 fragment layouts
    rng = np.random.default_rng(4)
    a = rng.standard_normal((16, 8)).astype(np.float32)
    b = rng.standard_normal((8, 8)).astype(np.float32)
    got, want = run_both(mma_tf32, a, b, np.zeros((16, 8), np.float32))
    np.testing.assert_allclose(got[2], want[2], rtol=2**-18 * 8, atol=2**-18 * 8 * np.abs(want[2]).max())
    tf32 = lambda x: (x.view(np.uint32) + np.uint32(0xFFF) + ((x.view(np.uint32) >> np.uint32(13)) & np.uint32(1))  # noqa: E731
                      & np.uint32(0xFFFFE000)).view(np.float32).astype(np.float64)
    exact = tf32(a) @ tf32(b)                     # operands rounded to tf32, products exact in f64
    np.testing.assert_allclose(got[2], exact, rtol=2**-18 * 8, atol=2**-18 * 8 * np.abs(exact).max())
    truncated = (a.view(np.uint32) & np.uint32(0xFFFFE000)).view(np.float32).astype(np.float64) @ \
        (b.view(np.uint32) & np.uint32(0xFFFFE000)).view(np.float32).astype(np.float64)
    assert np.abs(got[2] - exact).max() < np.abs(truncated - exact).max()   # rounded, not truncated


def test_f16_mma_with_random_operands_within_the_spec_bound():
    from taskmap.examples import matmul_tc
    args = list(matmul_tc.make_args(np.random.default_rng(6), 48, 32, 64, dtype=f16))
    rng = np.random.default_rng(7)
    args[3] = rng.standard_normal(args[3].shape).astype(np.float16)
    args[4] = rng.standard_normal(args[4].shape).astype(np.float16)
    from taskmap import gpu
    gpu.launch(matmul_tc.matmul_tc, *args)
    exact = args[3].astype(np.float64) @ args[4].astype(np.float64)
    np.testing.assert_allclose(args[5], exact, rtol=2**-18 * 64, atol=2**-18 * 64 * np.abs(exact).max())
