"""c = a + b, one element per thread, for any element type.

`make_vector_add(dtype)` builds the kernel for f32/f16/bf16/i32 (or any other dtype): the
dtype and block size are compile-time constants of the factory, the length `n` is a runtime
parameter, and the last block's surplus threads are switched off by the `idx < n` guard.
"""
from __future__ import annotations

import numpy as np

from taskmap.spec import dtypes
from taskmap.lang import bf16, blockIdx, f16, f32, i32, kernel, spatial, threadIdx


def make_vector_add(dtype=f32, block: int = 256):
    @kernel(grid=lambda n: (n + block - 1) // block, block=block, name=f"vector_add_{dtype.short}")
    def vector_add(n: i32, a: dtype[n], b: dtype[n], c: dtype[n]):
        for i in spatial(block).on(threadIdx.x):
            idx = blockIdx.x * block + i
            if idx < n:
                c[idx] = a[idx] + b[idx]
    return vector_add


vector_add = make_vector_add(f32)
kernel_for = {d.short: make_vector_add(d) for d in (f32, f16, bf16, i32)}
SIZES = ({"n": 1}, {"n": 256}, {"n": 1000})


def make_args(rng: np.random.Generator, n: int, dtype=f32):
    if dtype.is_integer:
        a, b = (rng.integers(-2**31, 2**31, n, dtype=np.int64).astype(dtype.storage) for _ in range(2))
    elif dtype is bf16:
        a, b = (dtypes.to_bf16_bits(rng.standard_normal(n).astype(np.float32)) for _ in range(2))
    else:
        a, b = (rng.standard_normal(n).astype(dtype.storage) for _ in range(2))
    return n, a, b, np.zeros(n, dtype.storage)


def reference(n, a, b, c):
    """Exact sum in int64/float64, then one conversion to the element type (wrapping for
    integers, round-to-nearest-even for floats: SPEC.md §2.3)."""
    if a.dtype == np.uint16:                                 # bf16 bit patterns
        exact = dtypes.from_bf16_bits(a).astype(np.float64) + dtypes.from_bf16_bits(b)
        return {"c": dtypes.to_bf16_bits(exact.astype(np.float32))}
    if a.dtype.kind == "i":
        return {"c": (a.astype(np.int64) + b.astype(np.int64)).astype(a.dtype)}
    return {"c": (a.astype(np.float64) + b.astype(np.float64)).astype(a.dtype)}


if __name__ == "__main__":
    print(vector_add)
