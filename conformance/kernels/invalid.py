"""Kernels that parse but break a static rule: `k.verify()` must raise VerifyError with the
phrase their case names (SPEC.md §9.1). Parsed with verify=False so this module imports;
cases: conformance/cases/invalid.yaml.
"""
from __future__ import annotations

from taskmap.lang import (atomic_add, cp_async, cp_async_wait_group, f16, f32, f64, i32, kernel, ldmatrix,
                       i8, mma_sync, register_tensor, shared_tensor, shfl_xor, spatial, syncthreads, threadIdx)


@kernel(grid=1, block=32, verify=False)
def barrier_under_thread_test(n: i32, a: f32[n]):
    if threadIdx.x < 16:
        syncthreads()
    a[threadIdx.x] = 0.0


@kernel(grid=1, block=32, verify=False)
def shuffle_under_thread_test(n: i32, a: f32[n]):
    v = a[threadIdx.x]
    if threadIdx.x % 2 == 0:
        v = shfl_xor(v, 1)
    a[threadIdx.x] = v


@kernel(grid=1, block=32, verify=False)
def mapping_wider_than_block(n: i32, a: f32[n]):
    for i in spatial(64).on(threadIdx.x):
        a[i] = 0.0


@kernel(grid=1, block=(64, 32), verify=False)
def block_too_large(n: i32, a: f32[n]):
    a[threadIdx.x] = 0.0


@kernel(grid=1, block=(1, 1, 128), verify=False)
def block_z_too_deep(n: i32, a: f32[n]):
    a[threadIdx.z] = 0.0


@kernel(grid=1, block=32, verify=False)
def register_tensor_of_runtime_size(n: i32, a: f32[n]):
    r = register_tensor(f32, [n])
    r[0] = 1.0
    a[threadIdx.x] = r[0]


@kernel(grid=1, block=32, verify=False)
def cp_async_into_registers(n: i32, a: f32[n]):
    r = register_tensor(f32, [4])
    cp_async(r[0], a[0], elems=4)


@kernel(grid=1, block=32, verify=False)
def cp_async_twelve_bytes(n: i32, a: f32[n]):
    s = shared_tensor(f32, [96])
    cp_async(s[threadIdx.x * 3], a[threadIdx.x * 3], elems=3)


@kernel(grid=1, block=32, verify=False)
def negative_wait_count(n: i32, a: f32[n]):
    cp_async_wait_group(-1)


@kernel(grid=1, block=32, verify=False)
def ldmatrix_from_global(n: i32, a: f16[n]):
    frag = register_tensor(f16, [8])
    ldmatrix(frag, a[threadIdx.x * 8], num=4)


@kernel(grid=1, block=32, verify=False)
def ldmatrix_three_matrices(n: i32, a: f16[n]):
    tile = shared_tensor(f16, [32, 8])
    frag = register_tensor(f16, [6])
    ldmatrix(frag, tile[threadIdx.x, 0], num=3)


@kernel(grid=1, block=32, verify=False)
def mma_on_shared_operands(n: i32, c: f32[n]):
    sa = shared_tensor(f16, [8])
    sb = shared_tensor(f16, [4])
    acc = register_tensor(f32, [4])
    mma_sync(sa, sb, acc)


@kernel(grid=1, block=32, verify=False)
def atomic_on_register(n: i32, a: f32[n]):
    r = register_tensor(f32, [1])
    r[0] = 0.0
    atomic_add(r[0], 1.0)
    a[threadIdx.x] = r[0]


@kernel(grid=1, block=32, verify=False)
def atomic_add_on_i8(n: i32, counts: i8[n]):
    atomic_add(counts[0], 1)


@kernel(grid=1, block=32, verify=False)
def shared_over_limit(n: i32, a: f64[n]):
    big = shared_tensor(f64, [32768])
    big[threadIdx.x] = a[threadIdx.x]


@kernel(grid=1, block=32, verify=False)
def registers_over_limit(n: i32, a: f32[n]):
    r = register_tensor(f32, [1024])
    r[0] = a[threadIdx.x]


@kernel(grid=1, block=32, verify=False)
def float_index(n: i32, a: f32[n]):
    x = 1.5
    a[x] = 0.0


@kernel(grid=1, block=32, verify=False)
def too_many_indices(n: i32, a: f32[n]):
    a[threadIdx.x, 0] = 0.0


@kernel(grid=1, block=32, verify=False)
def shuffle_width_three(n: i32, a: f32[n]):
    a[threadIdx.x] = shfl_xor(a[threadIdx.x], 1, width=3)


@kernel(grid=1, block=32, verify=False)
def constant_zero_step(n: i32, a: f32[n]):
    for i in range(0, n, 0):
        a[i] = 0.0
