"""Kernels for the integer identities the IR builder simplifies (`spec.ir.binary`): `x * 0`,
`0 * x` and `x % 1` become `0` only when evaluating `x` cannot trap (SPEC.md §2.3: the operand
is still evaluated). Each `*_hides_*` kernel puts a trapping operand under one identity, so
the trap must survive; `safe_folds` holds the folds that must still happen.
Cases: conformance/cases/fold_traps.yaml.
"""
from __future__ import annotations

from taskmap.lang import (i32, kernel, register_tensor, shared_tensor, shfl_xor, syncthreads, threadIdx)


def make_mul_zero_hides_oob(dtype=i32):
    @kernel(grid=1, block=32, name=f"mul_zero_hides_oob_{dtype.short}")
    def mul_zero_hides_oob(n: i32, a: dtype[n], b: dtype[n]):
        i = threadIdx.x
        b[i] = a[i + 1000] * 0                 # the load is out of bounds: it still happens
    return mul_zero_hides_oob


def make_zero_mul_hides_oob(dtype=i32):
    @kernel(grid=1, block=32, name=f"zero_mul_hides_oob_{dtype.short}")
    def zero_mul_hides_oob(n: i32, a: dtype[n], b: dtype[n]):
        i = threadIdx.x
        b[i] = 0 * a[i + 1000]
    return zero_mul_hides_oob


def make_mod_one_hides_oob(dtype=i32):
    @kernel(grid=1, block=32, name=f"mod_one_hides_oob_{dtype.short}")
    def mod_one_hides_oob(n: i32, a: dtype[n], b: dtype[n]):
        i = threadIdx.x
        b[i] = a[i + 1000] % 1
    return mod_one_hides_oob


@kernel(grid=1, block=32)
def mul_zero(n: i32, a: i32[n], b: i32[n]):
    """Correct on initialized input (b = 0); traps when the case passes `a` as `empty`."""
    i = threadIdx.x
    b[i] = a[i] * 0


@kernel(grid=1, block=32, verify=False)
def mul_zero_hides_uninit_shared(n: i32, a: i32[n], b: i32[n]):
    tile = shared_tensor(i32, [32])
    i = threadIdx.x
    if i < 16:
        tile[i] = a[i]                         # half the tile stays unwritten
    syncthreads()
    b[i] = tile[i] * 0


@kernel(grid=1, block=32, verify=False)
def mod_one_hides_uninit_register(n: i32, a: i32[n], b: i32[n]):
    r = register_tensor(i32, [2])
    r[0] = a[threadIdx.x]
    b[threadIdx.x] = r[1] % 1                  # r[1] never written


@kernel(grid=1, block=32)
def mul_zero_hides_divide_by_zero(n: i32, a: i32[n], d: i32[n], b: i32[n]):
    i = threadIdx.x
    b[i] = (a[i] // d[i]) * 0                  # traps where d[i] == 0


@kernel(grid=1, block=32)
def mod_one_hides_shift(n: i32, s: i32, a: i32[n], b: i32[n]):
    i = threadIdx.x
    b[i] = (a[i] << s) % 1                     # traps for s outside [0, 32)


@kernel(grid=1, block=32, verify=False)
def zero_mul_hides_race(n: i32, a: i32[n], b: i32[n]):
    tile = shared_tensor(i32, [32])
    i = threadIdx.x
    tile[i] = a[i]
    b[i] = 0 * tile[31 - i]                    # no syncthreads() between write and read


@kernel(grid=1, block=32, verify=False)
def mul_zero_hides_divergent_shuffle(n: i32, a: i32[n], b: i32[n]):
    i = threadIdx.x
    v = a[i]
    if i < 16:
        v = shfl_xor(v, 1) * 0                 # half the warp shuffles
    b[i] = v


@kernel(grid=1, block=32)
def safe_folds(n: i32, a: i32[n], b: i32[n]):
    """Every identity on operands that cannot trap: the store prints as `b[i] = a[i]`."""
    i = threadIdx.x
    b[i] = i * 0 + (i + 7) % 1 + 0 * (i // 4) + a[i]
