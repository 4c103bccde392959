"""C = A @ Bᵀ on Hopper warpgroup MMA (sm_90a): f16 or bf16 A [M, K] and B [N, K], both K-major
(cuBLAS's "TN" layout), f32 accumulation and output.

`make_matmul_wgmma(dtype=f16, bn=128, warpgroups=2, stages=4)`: a block of `warpgroups`
warpgroups (128 threads each) computes a (64·warpgroups) × bn tile of C with m64n{bn}k16 wgmmas
on 128-byte-swizzled shared stages that thread 0 fills with TMA box copies completing on
mbarriers. The kernel is the operator library's wgmma template at one batch, f32 output and
alpha = 1 (refimpl/schedules/matmul_wgmma.py says how its pipeline works); the tuner picks it
for f16/bf16 matmuls on sm_90 where it wins.
"""
from __future__ import annotations

import numpy as np

from taskmap.lang import bf16, f16
from taskmap.refimpl.schedules.matmul_wgmma import make_kernel
from taskmap.spec import dtypes


def make_matmul_wgmma(dtype=f16, bn: int = 128, warpgroups: int = 2, stages: int = 4):
    return make_kernel(dtype, bn, warpgroups, stages)


matmul_wgmma = make_matmul_wgmma(f16)
matmul_wgmma_bf16 = make_matmul_wgmma(bf16)
kernel_for = {"f16": matmul_wgmma, "bf16": matmul_wgmma_bf16}
SIZES = ({"M": 128, "N": 128, "K": 64}, {"M": 100, "N": 72, "K": 328})


def make_args(rng: np.random.Generator, M: int, N: int, K: int, dtype=f16):
    """Multiples of 1/8 in [-2, 2], exact in f16 and bf16; products and sums are exact in f32,
    so C must equal the float64 reference exactly whatever order the tensor cores add in."""
    a, b = (rng.integers(-16, 17, shape) / 8 for shape in ((M, K), (N, K)))
    if dtype is bf16:
        a, b = (dtypes.to_bf16_bits(x.astype(np.float32)) for x in (a, b))
    else:
        a, b = (x.astype(np.float16) for x in (a, b))
    return M, N, K, a, b, np.zeros((M, N), np.float32)


def reference(M, N, K, a, b, c):
    if a.dtype == np.uint16:                            # bf16 bit patterns
        a, b = dtypes.from_bf16_bits(a), dtypes.from_bf16_bits(b)
    return {"c": (a.astype(np.float64) @ b.astype(np.float64).T).astype(np.float32)}


if __name__ == "__main__":
    print(matmul_wgmma)
