"""C = A @ B on tensor cores: f16 or bf16 inputs, f32 accumulation and output.

`make_matmul_tc(dtype=f16, bm=64, bn=64, bk=32, warps=(2, 2), stages=3, vec=8)`: a block of
`warps` warps (2×2: 128 threads) computes a bm×bn tile of C; each warp a
(bm/warps[0])×(bn/warps[1]) tile made of 16×8 `mma_sync` (m16n8k16) tiles. The kernel is the
operator library's tensor-core matmul template (`taskmap.refimpl.schedules.matmul_tc`, whose
docstring walks through it) at its plainest point: no transposes, batches or split-K.

- **Async pipeline (SPEC.md §5.4).** `stages` shared-memory stages of A ([bm, bk]) and B
  ([bk, bn]), filled with 16-byte `cp_async` copies (`vec` = 8 elements) that zero-fill
  outside the matrices (their source index clamped to 0); per iteration: wait for the
  oldest stage, barrier, issue the next tile, compute the oldest.
- **Fragments (SPEC.md §5.7).** `ldmatrix(x4)` loads a 16×16 A fragment, and with
  `trans=True` two k16×n8 B fragments; shared tiles are swizzled (`row_swizzle`) so the 8
  rows one ldmatrix matrix reads fall in 8 different bank groups.
- **Epilogue.** The accumulator fragment layout is the task mapping
  `repeat(2, 1) * spatial(8, 4) * repeat(1, 2)` on the lane.
- **Bounds.** M is arbitrary; K and N must be multiples of `vec` (16-byte aligned rows for
  cp_async), which the kernel asserts.
"""
from __future__ import annotations

import numpy as np

from taskmap.spec import dtypes
from taskmap.lang import bf16, f16
from taskmap.refimpl.schedules.matmul_tc import make_kernel, row_swizzle  # noqa: F401 (row_swizzle: the example's)


def make_matmul_tc(dtype=f16, bm: int = 64, bn: int = 64, bk: int = 32, warps=(2, 2), stages: int = 3,
                   vec: int = 8):
    if vec not in (2, 4, 8):
        raise ValueError(f"make_matmul_tc(vec={vec}): cp_async copies 4, 8 or 16 bytes (vec 2, 4 or 8)")
    return make_kernel(dtype, bm, bn, bk, warps, stages, vec)


matmul_tc = make_matmul_tc(f16)
matmul_tc_bf16 = make_matmul_tc(bf16)
kernel_for = {"f16": matmul_tc, "bf16": matmul_tc_bf16}
SIZES = ({"M": 16, "N": 8, "K": 16}, {"M": 64, "N": 64, "K": 64}, {"M": 37, "N": 24, "K": 40})


def make_args(rng: np.random.Generator, M: int, N: int, K: int, dtype=f16):
    """Multiples of 1/8 in [-2, 2], exact in f16 and bf16; products and sums are exact in f32,
    so C must equal the float64 reference exactly whatever order the tensor cores add in."""
    a, b = (rng.integers(-16, 17, shape) / 8 for shape in ((M, K), (K, N)))
    if dtype is bf16:
        a, b = (dtypes.to_bf16_bits(x.astype(np.float32)) for x in (a, b))
    else:
        a, b = (x.astype(np.float16) for x in (a, b))
    return M, N, K, a, b, np.zeros((M, N), np.float32)


def reference(M, N, K, a, b, c):
    if a.dtype == np.uint16:                            # bf16 bit patterns
        a, b = dtypes.from_bf16_bits(a), dtypes.from_bf16_bits(b)
    return {"c": (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float32)}


if __name__ == "__main__":
    print(matmul_tc)
