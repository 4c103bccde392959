"""A catalogue of invalid kernels and the error each must raise (SPEC.md §8, §9.1).

- `CATALOGUE`: DSL kernels parsed with `verify=False` that `verify()` rejects, with the
  expected `VerifyError.phrase`. The line the error must point at is marked `# <-`.
- `HAND_BUILT`: IR the DSL front end never produces (its own checks or implicit conversions
  prevent it), made by rewriting a parsed kernel, for the rules only such IR can break.
- `DSL_ERRORS`: functions that define a kernel using Python the DSL rejects; calling one raises
  `DSLError` at decoration time, at the line marked `# <-`, with the expected text and hint.
"""
from __future__ import annotations

import dataclasses

from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.lang import (atomic_add, atomic_max, blockIdx, cp_async, cp_async_commit_group, cp_async_wait_group,
                       exp, f16, bf16, f32, i32, kernel, ldmatrix, mma_sync, register_tensor, repeat,
                       shared_tensor, shfl_xor, spatial, syncthreads, syncwarp, threadIdx)


# ---------------------------------------------------------------- launch (§9.5)

@kernel(block=(64, 32), verify=False)
def block_too_large(a: f32[2048]):  # <-
    a[threadIdx.x + threadIdx.y * 64] = 0.0


@kernel(grid=lambda n: n // 2048, block=(32, 1, 0), verify=False)
def block_extent_zero(n: i32, a: f32[n]):  # <-
    a[threadIdx.x] = 0.0


@kernel(grid=lambda x: x, block=32, verify=False)
def grid_from_float(x: f32, a: f32[32]):  # <-
    a[threadIdx.x] = x


# ---------------------------------------------------------------- scopes (§9.2)

@kernel(block=32, verify=False)
def assign_loop_variable(a: f32[32]):
    for i in range(4):
        i = i + 1  # <-
        a[i] = 0.0


# ---------------------------------------------------------------- types (§9.3)

@kernel(block=32, verify=False)
def atomic_result_wrong_type(counter: i32[1], a: f32[32]):
    old = 0.0
    old = atomic_add(counter[0], 1)  # <-
    a[threadIdx.x] = old


@kernel(block=32, verify=False)
def constant_too_big_for_i32(a: i32[32]):
    a[threadIdx.x] = 3000000000  # <-


@kernel(block=32, verify=False)
def add_two_bools(a: f32[32], b: f32[32], both: i32[32]):
    both[threadIdx.x] = (a[threadIdx.x] > 0.0) + (b[threadIdx.x] > 0.0)  # <-


@kernel(block=32, verify=False)
def bitwise_and_on_float(a: f32[32]):
    a[threadIdx.x] = a[threadIdx.x] & 1  # <-


@kernel(block=32, verify=False)
def exp_of_an_integer(a: f32[32]):
    a[threadIdx.x] = exp(threadIdx.x)  # <-


@kernel(block=32, verify=False)
def float_index(a: f32[32]):
    a[threadIdx.x] = a[f32(threadIdx.x) * 0.5]  # <-


@kernel(block=32, verify=False)
def one_index_into_a_matrix(a: f32[32, 32], out: f32[32]):
    out[threadIdx.x] = a[threadIdx.x]  # <-


@kernel(block=32, verify=False)
def float_loop_bound(x: f32, a: f32[32]):
    for i in range(x):  # <-
        a[threadIdx.x] = 1.0


@kernel(block=32, verify=False)
def zero_step(a: f32[32]):
    for i in range(0, 8, 0):  # <-
        a[i] = 0.0


@kernel(block=32, verify=False)
def shuffle_width_three(a: f32[32]):
    a[threadIdx.x] = shfl_xor(a[threadIdx.x], 1, width=3)  # <-


# ---------------------------------------------------------------- memory (§9.4)

@kernel(block=32, verify=False)
def shared_sized_by_float(x: f32, a: f32[32]):
    s = shared_tensor(f32, [x])  # <-
    s[threadIdx.x] = a[threadIdx.x]


@kernel(block=32, verify=False)
def shared_sized_by_thread(a: f32[32]):
    s = shared_tensor(f32, [threadIdx.x + 1])  # <-
    s[0] = a[threadIdx.x]


@kernel(block=32, verify=False)
def register_tensor_of_runtime_size(n: i32, a: f32[n]):
    r = register_tensor(f32, [n])  # <-
    r[0] = a[threadIdx.x]


@kernel(block=32, verify=False)
def zero_extent(a: f32[32]):
    s = shared_tensor(f32, [0, 32])  # <-
    s[0, threadIdx.x] = a[threadIdx.x]


@kernel(block=32, verify=False)
def cp_async_into_registers(a: f32[128]):
    r = register_tensor(f32, [4])
    cp_async(r[0], a[threadIdx.x * 4], elems=4)  # <-


@kernel(block=32, verify=False)
def cp_async_twelve_bytes(a: f32[96]):
    s = shared_tensor(f32, [96])
    cp_async(s[threadIdx.x * 3], a[threadIdx.x * 3], elems=3)  # <-


@kernel(block=32, verify=False)
def cp_async_changes_dtype(a: f32[128]):
    s = shared_tensor(f16, [128])
    cp_async(s[threadIdx.x * 4], a[threadIdx.x * 4], elems=4)  # <-


@kernel(block=32, verify=False)
def negative_wait_count(a: f32[32]):
    s = shared_tensor(f32, [32])
    cp_async(s[threadIdx.x], a[threadIdx.x], elems=1)
    cp_async_commit_group()
    cp_async_wait_group(-1)  # <-


@kernel(block=32, verify=False)
def ldmatrix_from_global(a: f16[16, 16]):
    frag = register_tensor(f16, [8])
    ldmatrix(frag, a[threadIdx.x % 16, threadIdx.x // 16 * 8], num=4)  # <-


@kernel(block=32, verify=False)
def ldmatrix_three_matrices(a: f16[16, 16]):
    s = shared_tensor(f16, [16, 16])
    frag = register_tensor(f16, [6])
    ldmatrix(frag, s[threadIdx.x % 16, 0], num=3)  # <-


@kernel(block=32, verify=False)
def ldmatrix_view_too_small(a: f16[16, 16]):
    s = shared_tensor(f16, [16, 16])
    frag = register_tensor(f16, [2, 4])
    ldmatrix(frag[0], s[threadIdx.x % 16, threadIdx.x // 16 * 8], num=4)  # <-


@kernel(block=32, verify=False)
def mma_on_shared_operands(c: f32[32, 4]):
    sa = shared_tensor(f16, [8])
    fb = register_tensor(f16, [4])
    acc = register_tensor(f32, [4])
    mma_sync(sa, fb, acc)  # <-


def _mma(name: str, a_elems: int = 8, b_dtype=f16, lanes: int = 32):
    """One m16n8k16 mma_sync of a 32-thread block, run by the lanes below `lanes`."""
    @kernel(block=32, name=name, verify=False)
    def mma(c: f32[32, 4]):
        fa = register_tensor(f16, [a_elems])
        fb = register_tensor(b_dtype, [4])
        acc = register_tensor(f32, [4])
        if threadIdx.x < lanes:
            mma_sync(fa, fb, acc)  # <-
    return mma


mma_a_fragment_too_short = _mma("mma_a_fragment_too_short", a_elems=4)
mma_mixes_f16_and_bf16 = _mma("mma_mixes_f16_and_bf16", b_dtype=bf16)
mma_in_half_a_warp = _mma("mma_in_half_a_warp", lanes=16)


@kernel(block=32, verify=False)
def atomic_on_register(a: i32[32]):
    r = register_tensor(i32, [1])
    r[0] = 0
    atomic_add(r[0], 1)  # <-


@kernel(block=32, verify=False)
def atomic_max_on_float(a: f32[1], x: f32[32]):
    atomic_max(a[0], x[threadIdx.x])  # <-


@kernel(block=256, verify=False)
def shared_over_227_kib(a: f32[256]):
    stages_a = shared_tensor(f32, [2, 128, 128])  # <-     (the largest of the tensors over the limit)
    stages_b = shared_tensor(f32, [2, 128, 112])
    stages_a[0, 0, threadIdx.x % 128] = a[threadIdx.x]
    stages_b[0, 0, threadIdx.x % 112] = a[threadIdx.x]


@kernel(block=32, verify=False)
def registers_over_255(a: f32[32]):
    r = register_tensor(f32, [16, 17])  # <-
    r[0, 0] = a[threadIdx.x]


# ---------------------------------------------------------------- thread dependence (§9.6)

@kernel(block=128, verify=False)
def barrier_under_thread_test(a: f32[128]):
    tile = shared_tensor(f32, [128])
    if threadIdx.x < 64:
        tile[threadIdx.x] = a[threadIdx.x]
        syncthreads()  # <-
    a[threadIdx.x] = tile[127 - threadIdx.x]


@kernel(block=128, verify=False)
def barrier_under_thread_dependent_local(a: f32[128]):
    leader = 0
    if threadIdx.x % 32 == 0:
        leader = 1
    if leader == 1:
        syncthreads()  # <-


@kernel(grid=lambda rows: rows // 128, block=128, verify=False)
def barrier_in_per_thread_trip_count(rows: i32, row_start: i32[rows + 1], y: f32[rows]):
    row = blockIdx.x * 128 + threadIdx.x
    acc = 0.0
    for j in range(row_start[row], row_start[row + 1]):
        acc += 1.0
        syncthreads()  # <-
    y[row] = acc


@kernel(block=128, verify=False)
def barrier_in_narrow_mapping(a: f32[64]):
    for i in spatial(64).on(threadIdx.x):
        a[i] = 0.0
        syncthreads()  # <-


@kernel(block=64, verify=False)
def syncwarp_under_lane_test(a: f32[64]):
    if threadIdx.x % 32 < 16:
        syncwarp()  # <-


@kernel(block=64, verify=False)
def shuffle_under_thread_test(a: f32[64]):
    v = a[threadIdx.x]
    if threadIdx.x % 32 < 16:
        v = shfl_xor(v, 1)  # <-
    a[threadIdx.x] = v


@kernel(block=64, verify=False)
def shuffle_behind_short_circuit(a: f32[64]):
    v = a[threadIdx.x]
    if v > 0.0 and shfl_xor(v, 1) > 0.0:  # <-
        a[threadIdx.x] = 0.0


@kernel(block=(48, 2), verify=False)
def warp_test_on_x_of_a_48_wide_block(a: f32[96]):
    v = a[threadIdx.x + 48 * threadIdx.y]
    if threadIdx.x // 32 == 0:                   # warp 1 holds x = 32..47 of y = 0 and x = 0..15 of y = 1
        v = shfl_xor(v, 1)  # <-
    a[threadIdx.x + 48 * threadIdx.y] = v


@kernel(block=128, verify=False)
def mapping_wider_than_block(a: f32[256]):
    for i in spatial(256).on(threadIdx.x):  # <-
        a[i] = 0.0


@kernel(block=128, verify=False)
def mapping_over_more_warps_than_the_block_has(a: f32[8, 32]):
    for w, l in (spatial(8, 1) * repeat(1, 32)).on(threadIdx.x // 32):  # <-
        a[w, l] = 0.0


CATALOGUE = [
    (block_too_large, "too many threads per block"),
    (block_extent_zero, "invalid launch dimension"),
    (grid_from_float, "invalid launch dimension"),
    (assign_loop_variable, "assignment to loop variable"),
    (atomic_result_wrong_type, "type mismatch"),
    (constant_too_big_for_i32, "constant out of range"),
    (add_two_bools, "arithmetic on bool"),
    (bitwise_and_on_float, "bitwise operation on non-integer"),
    (exp_of_an_integer, "math intrinsic on non-float"),
    (float_index, "index is not an integer"),
    (one_index_into_a_matrix, "wrong number of indices"),
    (float_loop_bound, "loop bound is not an integer"),
    (zero_step, "loop step is zero"),
    (shuffle_width_three, "invalid shuffle width"),
    (shared_sized_by_float, "tensor shape is not an integer"),
    (shared_sized_by_thread, "tensor shape must depend only on scalar parameters"),
    (register_tensor_of_runtime_size, "register tensor shape must be constant"),
    (zero_extent, "invalid tensor shape"),
    (cp_async_into_registers, "cp_async must copy global to shared"),
    (cp_async_twelve_bytes, "invalid cp_async size"),
    (cp_async_changes_dtype, "type mismatch"),
    (negative_wait_count, "invalid wait count"),
    (ldmatrix_from_global, "ldmatrix must load shared to registers"),
    (ldmatrix_three_matrices, "invalid ldmatrix fragment"),
    (ldmatrix_view_too_small, "invalid ldmatrix fragment"),
    (mma_on_shared_operands, "mma_sync operands must be registers"),
    (mma_a_fragment_too_short, "invalid mma_sync fragment"),
    (mma_mixes_f16_and_bf16, "invalid mma_sync fragment"),
    (atomic_on_register, "atomic must target global or shared memory"),
    (atomic_max_on_float, "unsupported atomic type"),
    (shared_over_227_kib, "shared memory exceeds device limit"),
    (registers_over_255, "register tensors exceed per-thread limit"),
    (barrier_under_thread_test, "barrier in thread-dependent branch"),
    (barrier_under_thread_dependent_local, "barrier in thread-dependent branch"),
    (barrier_in_per_thread_trip_count, "barrier in thread-dependent branch"),
    (barrier_in_narrow_mapping, "barrier in thread-dependent branch"),
    (syncwarp_under_lane_test, "barrier in thread-dependent branch"),
    (shuffle_under_thread_test, "warp collective in thread-dependent branch"),
    (shuffle_behind_short_circuit, "warp collective in thread-dependent branch"),
    (mma_in_half_a_warp, "warp collective in thread-dependent branch"),
    (warp_test_on_x_of_a_48_wide_block, "warp collective in thread-dependent branch"),
    (mapping_wider_than_block, "task mapping has more workers than threads"),
    (mapping_over_more_warps_than_the_block_has, "task mapping has more workers than threads"),
]


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

HAND_BUILT = [
    (_edit("use_outside_scope", _replace(ir.Store, lambda s: dataclasses.replace(
        s, value=ir.Var("ghost", dt.float32, loc=s.loc)))), "undeclared variable"),
    (_edit("store_to_unknown_tensor", _replace(ir.Store, lambda s: dataclasses.replace(
        s, buffer=dataclasses.replace(s.buffer, name="elsewhere")))), "undeclared tensor"),
    (_edit("declare_twice", _replace(ir.DeclareVar, lambda s: (s, s))), "duplicate name"),
    (_edit("assign_parameter", _replace(ir.If, lambda s: (ir.Assign(_n, ir.const(0), loc=s.loc), s))),
     "assignment to kernel parameter"),
    (_edit("use_with_other_type", _replace(ir.Store, lambda s: dataclasses.replace(
        s, value=ir.Var(_x.name, dt.float16, loc=s.loc)))), "type mismatch"),
    (_edit("store_without_conversion", _replace(ir.Store, lambda s: dataclasses.replace(
        s, value=ir.Const(1, dt.int32, loc=s.loc)))), "type mismatch"),
    (_edit("integer_condition", _replace(ir.If, lambda s: dataclasses.replace(
        s, cond=ir.Var(_n.name, dt.int32, loc=s.loc)))), "condition is not bool"),
    (_edit("mapping_with_one_variable", _replace(ir.ForTask, lambda s: dataclasses.replace(
        s, vars=s.vars[:1], body=()))), "task mapping arity mismatch"),
    (_edit("unknown_intrinsic", _replace(ir.Store, lambda s: dataclasses.replace(
        s, value=ir.Call("sigmoid", (ir.const(1.0),), loc=s.loc)))), "unknown operation"),
    (_edit("global_tensor_in_body", lambda n: (ir.DeclareBuffer(ir.Buffer("g", dt.float32, (ir.const(4),), "global"),
                                                                loc=n.loc), n) if isinstance(n, ir.If) else n),
     "invalid tensor scope"),
]


# ---------------------------------------------------------------- DSL front-end errors (§8)

def early_return():
    @kernel(block=32)
    def k(n: i32, a: f32[32]):
        if threadIdx.x >= n:
            return  # <-
        a[threadIdx.x] = 0.0


def break_in_loop():
    @kernel(block=32)
    def k(a: f32[32]):
        for i in range(4):
            if a[i] > 0.0:
                break  # <-


def continue_in_loop():
    @kernel(block=32)
    def k(a: f32[32]):
        for i in range(4):
            continue  # <-


def list_comprehension():
    @kernel(block=32)
    def k(a: f32[32]):
        a[0] = [a[i] for i in range(4)]  # <-


def slice_of_a_tensor():
    @kernel(block=32)
    def k(a: f32[32], b: f32[32]):
        b[threadIdx.x] = a[0:4]  # <-


def true_division_of_integers():
    @kernel(block=32)
    def k(a: i32[32]):
        a[threadIdx.x] = threadIdx.x / 2  # <-


def tuple_unpacking():
    @kernel(block=32)
    def k(a: f32[32]):
        x, y = 1.0, 2.0  # <-


def nested_function():
    @kernel(block=32)
    def k(a: f32[32]):
        def helper(v):  # <-
            return v


DSL_ERRORS = [
    (early_return, "unsupported statement `Return`", "kernels cannot return early"),
    (break_in_loop, "unsupported statement `Break`", "use a `while` loop with a flag"),
    (continue_in_loop, "unsupported statement `Continue`", "guard the rest of the loop body"),
    (list_comprehension, "unsupported expression `ListComp`", "comprehensions are not supported"),
    (slice_of_a_tensor, "slices are not supported", "index element by element"),
    (true_division_of_integers, "`/` on integers is ambiguous", "use `//`"),
    (tuple_unpacking, "assignments are supported", "unpack tuples into separate assignments"),
    (nested_function, "unsupported statement `FunctionDef`", "define helper functions outside the kernel"),
]
