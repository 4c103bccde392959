"""Every example kernel on the GPU agrees with the interpreter (SPEC.md §2.5): bit for bit
for integer, data-movement and fixed-order float kernels; within the tensor-core and
atomic-reduction bounds otherwise. Inputs here are random floats (not the examples' exact
ones), so the float semantics of the emitted code are what is compared.
"""
from __future__ import annotations

import numpy as np
import pytest

from taskmap.examples import matmul_simt, matmul_tc, matmul_wgmma, reduce_sum, transpose, vector_add
from taskmap.spec import dtypes as dt
from taskmap.lang import bf16, f16, f32, i32
from tests.gpu_compare import run_both


def _random_like(rng, a: np.ndarray, t: dt.DType) -> np.ndarray:
    if t.is_integer:
        info = np.iinfo(a.dtype)
        return rng.integers(info.min, info.max, a.shape, endpoint=True, dtype=np.int64).astype(a.dtype)
    x = rng.standard_normal(a.shape).astype(np.float32)
    return dt.to_bf16_bits(x) if t is dt.bfloat16 else x.astype(a.dtype)


def _inputs(k, args, seed):
    """Example arguments with every input tensor redrawn at random; outputs keep their zeros."""
    from taskmap.spec.ir import written_buffers
    rng = np.random.default_rng(seed)
    outputs = written_buffers(k)
    return [_random_like(rng, a, p.dtype) if isinstance(a, np.ndarray) and p.name not in outputs else a
            for p, a in zip(k.params, args)]


CASES = [
    ("vector_add_f32", vector_add.kernel_for["f32"], lambda r: vector_add.make_args(r, 3000, f32), None),
    ("vector_add_f16", vector_add.kernel_for["f16"], lambda r: vector_add.make_args(r, 3000, f16), None),
    ("vector_add_bf16", vector_add.kernel_for["bf16"], lambda r: vector_add.make_args(r, 3000, bf16), None),
    ("vector_add_i32", vector_add.kernel_for["i32"], lambda r: vector_add.make_args(r, 3000, i32), None),
    ("transpose", transpose.transpose, lambda r: transpose.make_args(r, 70, 45), None),
    ("reduce_sum", reduce_sum.reduce_sum, lambda r: reduce_sum.make_args(r, 5000), None),
    ("reduce_sum_atomic", reduce_sum.reduce_sum_atomic, lambda r: reduce_sum.make_args(r, 5000, atomic=True),
     2**-20 * 5000),
    ("matmul_simt", matmul_simt.matmul_simt, lambda r: matmul_simt.make_args(r, 70, 37, 45), None),
    ("matmul_tc_f16", matmul_tc.matmul_tc, lambda r: matmul_tc.make_args(r, 37, 24, 40, dtype=f16), 2**-18 * 40),
    ("matmul_tc_bf16", matmul_tc.matmul_tc_bf16, lambda r: matmul_tc.make_args(r, 37, 24, 40, dtype=bf16),
     2**-18 * 40),
    ("matmul_wgmma_f16", matmul_wgmma.matmul_wgmma, lambda r: matmul_wgmma.make_args(r, 300, 200, 520, dtype=f16),
     2**-18 * 520),
    ("matmul_wgmma_bf16", matmul_wgmma.matmul_wgmma_bf16,
     lambda r: matmul_wgmma.make_args(r, 300, 200, 520, dtype=bf16), 2**-18 * 520),
]


@pytest.mark.gpu
@pytest.mark.parametrize("name, k, make, rtol", CASES, ids=[c[0] for c in CASES])
def test_example_on_gpu_agrees_with_interpreter(name, k, make, rtol):
    on_gpu, on_ref = run_both(k, *_inputs(k, make(np.random.default_rng(1)), seed=2))
    for p, a, b in zip(k.params, on_gpu, on_ref):
        if not isinstance(a, np.ndarray):
            continue
        if rtol is None:
            np.testing.assert_array_equal(a, b, err_msg=f"{name}: {p.name}")
        else:
            a, b = (dt.from_bf16_bits(x) if p.dtype is dt.bfloat16 else x for x in (a, b))
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max(), err_msg=f"{name}: {p.name}")
