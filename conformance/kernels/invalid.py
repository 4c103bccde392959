"""Kernels that parse but break a static rule: `k.verify()` must raise VerifyError with the
phrase, at the line, that their case names (SPEC.md §9.1). Built with verify=False so this
module imports. The last section holds IR the DSL front end never produces (its own checks or
implicit conversions prevent it), made by rewriting a parsed kernel, for the rules only such
IR can break. Cases: conformance/cases/invalid.yaml.
"""
from __future__ import annotations

import dataclasses

from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.lang import (atomic_add, atomic_max, blockIdx, bulk_copy, cp_async, cp_async_commit_group,
                          cp_async_wait_group, exp, f16, bf16, f32, i8, i32, i64, kernel, ldmatrix, mbarrier_init,
                          mbarrier_wait, mma_sync, register_tensor, repeat, shared_tensor, shfl_xor, spatial,
                          swizzle, syncthreads, syncwarp, threadIdx, tma_load, wgmma, wgmma_desc)


# ---------------------------------------------------------------- launch (§9.5)

@kernel(block=(64, 32), verify=False)
def block_too_large(a: f32[2048]):
    a[threadIdx.x + threadIdx.y * 64] = 0.0


@kernel(grid=lambda n: n // 2048, block=(32, 1, 0), verify=False)
def block_extent_zero(n: i32, a: f32[n]):
    a[threadIdx.x] = 0.0


@kernel(grid=1, block=(1, 1, 128), verify=False)
def block_z_too_deep(n: i32, a: f32[n]):
    a[threadIdx.z] = 0.0


@kernel(grid=lambda x: x, block=32, verify=False)
def grid_from_float(x: f32, a: f32[32]):
    a[threadIdx.x] = x


# ---------------------------------------------------------------- scopes (§9.2)

@kernel(block=32, verify=False)
def assign_loop_variable(a: f32[32]):
    for i in range(4):
        i = i + 1
        a[i] = 0.0


# ---------------------------------------------------------------- types (§9.3)

@kernel(block=32, verify=False)
def atomic_result_wrong_type(counter: i32[1], a: f32[32]):
    old = 0.0
    old = atomic_add(counter[0], 1)
    a[threadIdx.x] = old


@kernel(block=32, verify=False)
def constant_too_big_for_i32(a: i32[32]):
    a[threadIdx.x] = 3000000000


@kernel(block=32, verify=False)
def add_two_bools(a: f32[32], b: f32[32], both: i32[32]):
    both[threadIdx.x] = (a[threadIdx.x] > 0.0) + (b[threadIdx.x] > 0.0)


@kernel(block=32, verify=False)
def bitwise_and_on_float(a: f32[32]):
    a[threadIdx.x] = a[threadIdx.x] & 1


@kernel(block=32, verify=False)
def exp_of_an_integer(a: f32[32]):
    a[threadIdx.x] = exp(threadIdx.x)


@kernel(block=32, verify=False)
def float_index(a: f32[32]):
    a[threadIdx.x] = a[f32(threadIdx.x) * 0.5]


@kernel(block=32, verify=False)
def one_index_into_a_matrix(a: f32[32, 32], out: f32[32]):
    out[threadIdx.x] = a[threadIdx.x]


@kernel(grid=1, block=32, verify=False)
def too_many_indices(n: i32, a: f32[n]):
    a[threadIdx.x, 0] = 0.0


@kernel(block=32, verify=False)
def float_loop_bound(x: f32, a: f32[32]):
    for i in range(x):
        a[threadIdx.x] = 1.0


@kernel(block=32, verify=False)
def zero_step(a: f32[32]):
    for i in range(0, 8, 0):
        a[i] = 0.0


@kernel(block=32, verify=False)
def shuffle_width_three(a: f32[32]):
    a[threadIdx.x] = shfl_xor(a[threadIdx.x], 1, width=3)


# ---------------------------------------------------------------- memory (§9.4)

@kernel(block=32, verify=False)
def shared_sized_by_float(x: f32, a: f32[32]):
    s = shared_tensor(f32, [x])
    s[threadIdx.x] = a[threadIdx.x]


@kernel(block=32, verify=False)
def shared_sized_by_thread(a: f32[32]):
    s = shared_tensor(f32, [threadIdx.x + 1])
    s[0] = a[threadIdx.x]


@kernel(block=32, verify=False)
def register_tensor_of_runtime_size(n: i32, a: f32[n]):
    r = register_tensor(f32, [n])
    r[0] = a[threadIdx.x]


@kernel(block=32, verify=False)
def zero_extent(a: f32[32]):
    s = shared_tensor(f32, [0, 32])
    s[0, threadIdx.x] = a[threadIdx.x]


@kernel(block=32, verify=False)
def cp_async_into_registers(a: f32[128]):
    r = register_tensor(f32, [4])
    cp_async(r[0], a[threadIdx.x * 4], elems=4)


@kernel(block=32, verify=False)
def cp_async_twelve_bytes(a: f32[96]):
    s = shared_tensor(f32, [96])
    cp_async(s[threadIdx.x * 3], a[threadIdx.x * 3], elems=3)


@kernel(block=32, verify=False)
def cp_async_changes_dtype(a: f32[128]):
    s = shared_tensor(f16, [128])
    cp_async(s[threadIdx.x * 4], a[threadIdx.x * 4], elems=4)


@kernel(block=32, verify=False)
def negative_wait_count(a: f32[32]):
    s = shared_tensor(f32, [32])
    cp_async(s[threadIdx.x], a[threadIdx.x], elems=1)
    cp_async_commit_group()
    cp_async_wait_group(-1)


@kernel(block=32, verify=False)
def ldmatrix_from_global(a: f16[16, 16]):
    frag = register_tensor(f16, [8])
    ldmatrix(frag, a[threadIdx.x % 16, threadIdx.x // 16 * 8], num=4)


@kernel(block=32, verify=False)
def ldmatrix_three_matrices(a: f16[16, 16]):
    s = shared_tensor(f16, [16, 16])
    frag = register_tensor(f16, [6])
    ldmatrix(frag, s[threadIdx.x % 16, 0], num=3)


@kernel(block=32, verify=False)
def ldmatrix_view_too_small(a: f16[16, 16]):
    s = shared_tensor(f16, [16, 16])
    frag = register_tensor(f16, [2, 4])
    ldmatrix(frag[0], s[threadIdx.x % 16, threadIdx.x // 16 * 8], num=4)


@kernel(block=32, verify=False)
def mma_on_shared_operands(c: f32[32, 4]):
    sa = shared_tensor(f16, [8])
    fb = register_tensor(f16, [4])
    acc = register_tensor(f32, [4])
    mma_sync(sa, fb, acc)


def _mma(name: str, a_elems: int = 8, b_dtype=f16, lanes: int = 32):
    """One m16n8k16 mma_sync of a 32-thread block, run by the lanes below `lanes`."""
    @kernel(block=32, name=name, verify=False)
    def mma(c: f32[32, 4]):
        fa = register_tensor(f16, [a_elems])
        fb = register_tensor(b_dtype, [4])
        acc = register_tensor(f32, [4])
        if threadIdx.x < lanes:
            mma_sync(fa, fb, acc)
    return mma


mma_a_fragment_too_short = _mma("mma_a_fragment_too_short", a_elems=4)
mma_mixes_f16_and_bf16 = _mma("mma_mixes_f16_and_bf16", b_dtype=bf16)
mma_in_half_a_warp = _mma("mma_in_half_a_warp", lanes=16)


@kernel(block=32, verify=False)
def atomic_on_register(a: i32[32]):
    r = register_tensor(i32, [1])
    r[0] = 0
    atomic_add(r[0], 1)


@kernel(block=32, verify=False)
def atomic_max_on_float(a: f32[1], x: f32[32]):
    atomic_max(a[0], x[threadIdx.x])


@kernel(grid=1, block=32, verify=False)
def atomic_add_on_i8(n: i32, counts: i8[n]):
    atomic_add(counts[0], 1)


@kernel(block=256, verify=False)
def shared_over_227_kib(a: f32[256]):
    stages_a = shared_tensor(f32, [2, 128, 128])  # the largest tensor over the limit: the error points here
    stages_b = shared_tensor(f32, [2, 128, 112])
    stages_a[0, 0, threadIdx.x % 128] = a[threadIdx.x]
    stages_b[0, 0, threadIdx.x % 112] = a[threadIdx.x]


@kernel(block=32, verify=False)
def registers_over_255(a: f32[32]):
    r = register_tensor(f32, [16, 17])
    r[0, 0] = a[threadIdx.x]


# ---------------------------------------------------------------- thread dependence (§9.6)

@kernel(block=128, verify=False)
def barrier_under_thread_test(a: f32[128]):
    tile = shared_tensor(f32, [128])
    if threadIdx.x < 64:
        tile[threadIdx.x] = a[threadIdx.x]
        syncthreads()
    a[threadIdx.x] = tile[127 - threadIdx.x]


@kernel(block=128, verify=False)
def barrier_under_thread_dependent_local(a: f32[128]):
    leader = 0
    if threadIdx.x % 32 == 0:
        leader = 1
    if leader == 1:
        syncthreads()


@kernel(grid=lambda rows: rows // 128, block=128, verify=False)
def barrier_in_per_thread_trip_count(rows: i32, row_start: i32[rows + 1], y: f32[rows]):
    row = blockIdx.x * 128 + threadIdx.x
    acc = 0.0
    for j in range(row_start[row], row_start[row + 1]):
        acc += 1.0
        syncthreads()
    y[row] = acc


@kernel(block=128, verify=False)
def barrier_in_narrow_mapping(a: f32[64]):
    for i in spatial(64).on(threadIdx.x):
        a[i] = 0.0
        syncthreads()


@kernel(block=64, verify=False)
def syncwarp_under_lane_test(a: f32[64]):
    if threadIdx.x % 32 < 16:
        syncwarp()


@kernel(block=64, verify=False)
def shuffle_under_thread_test(a: f32[64]):
    v = a[threadIdx.x]
    if threadIdx.x % 32 < 16:
        v = shfl_xor(v, 1)
    a[threadIdx.x] = v


@kernel(block=64, verify=False)
def shuffle_behind_short_circuit(a: f32[64]):
    v = a[threadIdx.x]
    if v > 0.0 and shfl_xor(v, 1) > 0.0:
        a[threadIdx.x] = 0.0


@kernel(block=(48, 2), verify=False)
def warp_test_on_x_of_a_48_wide_block(a: f32[96]):
    v = a[threadIdx.x + 48 * threadIdx.y]
    if threadIdx.x // 32 == 0:                   # warp 1 holds x = 32..47 of y = 0 and x = 0..15 of y = 1
        v = shfl_xor(v, 1)
    a[threadIdx.x + 48 * threadIdx.y] = v


@kernel(block=128, verify=False)
def mapping_wider_than_block(a: f32[256]):
    for i in spatial(256).on(threadIdx.x):
        a[i] = 0.0


@kernel(block=128, verify=False)
def mapping_over_more_warps_than_the_block_has(a: f32[8, 32]):
    for w, l in (spatial(8, 1) * repeat(1, 32)).on(threadIdx.x // 32):
        a[w, l] = 0.0


# ---------------------------------------------------------------- hand-built IR

@kernel(block=32, verify=False)
def _base(n: i32, a: f32[32]):
    x = a[threadIdx.x]
    if threadIdx.x < n:
        a[threadIdx.x] = x * 2.0
    for i, j in spatial(4, 8).on(threadIdx.x):
        a[i * 8 + j] = 1.0


def _edit(name: str, fn) -> ir.Kernel:
    """`_base` with `fn` applied to every node (bottom-up), renamed."""
    return dataclasses.replace(ir.rewrite(_base, fn), name=name)


def _replace(node_type, make):
    return lambda n: make(n) if isinstance(n, node_type) else n


_x = next(n.var for n in ir.walk(_base) if isinstance(n, ir.DeclareVar))
_n, _a = _base.params

use_outside_scope = _edit("use_outside_scope", _replace(ir.Store, lambda s: dataclasses.replace(
    s, value=ir.Var("ghost", dt.float32, loc=s.loc))))
store_to_unknown_tensor = _edit("store_to_unknown_tensor", _replace(ir.Store, lambda s: dataclasses.replace(
    s, buffer=dataclasses.replace(s.buffer, name="elsewhere"))))
declare_twice = _edit("declare_twice", _replace(ir.DeclareVar, lambda s: (s, s)))
assign_parameter = _edit("assign_parameter", _replace(ir.If, lambda s: (ir.Assign(_n, ir.const(0), loc=s.loc), s)))
use_with_other_type = _edit("use_with_other_type", _replace(ir.Store, lambda s: dataclasses.replace(
    s, value=ir.Var(_x.name, dt.float16, loc=s.loc))))
store_without_conversion = _edit("store_without_conversion", _replace(ir.Store, lambda s: dataclasses.replace(
    s, value=ir.Const(1, dt.int32, loc=s.loc))))
integer_condition = _edit("integer_condition", _replace(ir.If, lambda s: dataclasses.replace(
    s, cond=ir.Var(_n.name, dt.int32, loc=s.loc))))
mapping_with_one_variable = _edit("mapping_with_one_variable", _replace(ir.ForTask, lambda s: dataclasses.replace(
    s, vars=s.vars[:1], body=())))
unknown_intrinsic = _edit("unknown_intrinsic", _replace(ir.Store, lambda s: dataclasses.replace(
    s, value=ir.Call("sigmoid", (ir.const(1.0),), loc=s.loc))))
global_tensor_in_body = _edit("global_tensor_in_body", lambda n: (
    ir.DeclareBuffer(ir.Buffer("g", dt.float32, (ir.const(4),), "global"), loc=n.loc), n)
    if isinstance(n, ir.If) else n)


# ---------------------------------------------------------------- mbarriers and bulk copies (§9.4)

@kernel(block=32, verify=False)
def mbarrier_of_f32(a: f32[32]):
    bar = shared_tensor(f32, [2])
    mbarrier_init(bar[0], 1)


@kernel(block=32, verify=False)
def mbarrier_stored_to(a: f32[32]):
    bar = shared_tensor(i64, [1])
    mbarrier_init(bar[0], 32)
    bar[0] = 0


@kernel(block=32, verify=False)
def mbarrier_parity_two(a: f32[32]):
    bar = shared_tensor(i64, [1])
    mbarrier_init(bar[0], 32)
    mbarrier_wait(bar[0], 2)


@kernel(block=32, verify=False)
def bulk_copy_to_global(a: f32[256], b: f32[256]):
    bar = shared_tensor(i64, [1])
    mbarrier_init(bar[0], 1)
    bulk_copy(b[0], a[0], bar[0], elems=256)


@kernel(block=32, verify=False)
def bulk_copy_twelve_bytes(a: f32[256]):
    bar = shared_tensor(i64, [1])
    tile = shared_tensor(f32, [256])
    mbarrier_init(bar[0], 1)
    bulk_copy(tile[0], a[0], bar[0], elems=3)


@kernel(block=32, verify=False)
def tma_load_into_registers(a: f32[64, 64]):
    bar = shared_tensor(i64, [1])
    r = register_tensor(f32, [4, 4])
    mbarrier_init(bar[0], 1)
    tma_load(r, a[0, 0], bar[0])


@kernel(block=32, verify=False)
def tma_box_of_three_floats(a: f32[64, 64]):
    bar = shared_tensor(i64, [1])
    tile = shared_tensor(f32, [8, 3])
    mbarrier_init(bar[0], 1)
    tma_load(tile, a[0, 0], bar[0])


@kernel(block=32, verify=False)
def tma_box_swizzled_like_f16(a: f32[64, 64]):
    bar = shared_tensor(i64, [1])
    tile = shared_tensor(f32, [8, 32], layout=swizzle(3, 3, 3))
    mbarrier_init(bar[0], 1)
    tma_load(tile, a[0, 0], bar[0])


@kernel(block=32, verify=False)
def tma_box_wider_than_its_swizzle(a: f32[64, 64]):
    bar = shared_tensor(i64, [1])
    tile = shared_tensor(f32, [8, 64], layout=swizzle(3, 2, 3))
    mbarrier_init(bar[0], 1)
    tma_load(tile, a[0, 0], bar[0])


@kernel(block=128, verify=False)
def wgmma_n_twelve(a: f16[64, 64]):
    sa = shared_tensor(f16, [64, 64], layout=swizzle(3, 3, 3))
    acc = register_tensor(f32, [6])
    wgmma(acc, wgmma_desc(sa[0, 0], sbo=1024, swizzle=128), wgmma_desc(sa[0, 0], sbo=1024, swizzle=128), n=12)


@kernel(block=128, verify=False)
def wgmma_swizzle_sixteen(a: f16[64, 64]):
    sa = shared_tensor(f16, [64, 64])
    acc = register_tensor(f32, [8])
    wgmma(acc, wgmma_desc(sa[0, 0], sbo=1024, swizzle=16), wgmma_desc(sa[0, 0], sbo=1024, swizzle=16), n=16)


@kernel(block=128, verify=False)
def wgmma_sbo_not_16_bytes(a: f16[64, 64]):
    sa = shared_tensor(f16, [64, 64], layout=swizzle(3, 3, 3))
    acc = register_tensor(f32, [8])
    wgmma(acc, wgmma_desc(sa[0, 0], sbo=1000, swizzle=128), wgmma_desc(sa[0, 0], sbo=1024, swizzle=128), n=16)
