"""Example kernels written in the taskmap DSL (see README.md).

Every module exposes its kernel(s), `make_args(rng, **sizes)` (valid inputs, outputs
zero-filled, in parameter order), `reference(*args)` (a NumPy reference returning
{output parameter name: expected array}) and `SIZES` (small shapes, odd ones included,
that an interpreter runs in seconds).
"""
MODULES = ("vector_add", "transpose", "reduce_sum", "matmul_simt", "matmul_tc")
