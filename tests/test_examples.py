"""The example kernels (examples/): they import, verify, print readable IR and compute what
their NumPy references say — on the interpreter, and on a GPU where there is one.

Every example's inputs are chosen so that the exact result is representable (see each
module's make_args), so outputs are compared bit for bit.
"""
from __future__ import annotations

import importlib
import re
from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskmap.examples import matmul_simt, matmul_tc, matmul_wgmma, reduce_sum, transpose, vector_add
from taskmap.lang import bf16, f16, f32, i32

DTYPES = {"f32": f32, "f16": f16, "bf16": bf16, "i32": i32}

# ------------------------------------------------------------------ import, verify, print

PRINTED = {  # kernel -> lines its printed IR must contain (stripped, without the parser's _1, _2 renames)
    vector_add.vector_add: ["kernel vector_add_f32(n: i32, a: f32[n], b: f32[n], c: f32[n])",
                            "for i in (spatial(256)).on(threadIdx.x):", "if idx < n:",
                            "c[idx] = a[idx] + b[idx]"],
    vector_add.kernel_for["bf16"]: ["kernel vector_add_bf16(n: i32, a: bf16[n], b: bf16[n], c: bf16[n])"],
    transpose.transpose: ["shared f32 tile[32, 33]", "for i, j in (repeat(4, 1) * spatial(8, 32)).on(threadIdx.x):",
                          "tile[i, j] = a[r, c]", "syncthreads()"],
    reduce_sum.reduce_sum: ["for i in (repeat(4) * spatial(256)).on(threadIdx.x):",
                            "acc = acc + shfl_down(acc, 16 >> k)", "shared f32 warp_sums[8]", "syncthreads()",
                            "out[blockIdx.x] = total"],
    reduce_sum.reduce_sum_atomic: ["kernel reduce_sum_atomic(n: i32, a: f32[n], out: f32[1])",
                                   "atomic_add(out[0], total)"],
    matmul_simt.matmul_simt: ["shared f32 sa[2, 8, 64]", "register f32 fa[2, 4]",
                              "for i, j in (spatial(4, 2) * spatial(4, 8) * repeat(4, 4)).on(tid):",
                              "for i, j in (spatial(4, 2) * spatial(4, 8) * repeat(4, 1)).on(tid):",
                              "syncthreads()"],
    matmul_tc.matmul_tc: ["shared f16 sa[3, 64, 32] swizzle(2, 3, 3)", "shared f16 sb[3, 32, 64] swizzle(3, 3, 3)",
                          "cp_async_wait_group(1)", "syncthreads()", "cp_async_commit_group()",
                          "cp_async(sa[t % 3, r, q * 8], a[ok ? row : 0, ok ? col : 0], elems=8, valid=ok)",
                          "ldmatrix(fb[p], sb[s, ks * 16 + lane % 16, warp_n + p * 16 + lane / 16 * 8], num=4, "
                          "trans=True)",
                          "mma_sync.m16n8k16(fa[mt], fb[nt / 2, nt % 2], acc[mt, nt])"],
    matmul_tc.matmul_tc_bf16: ["shared bf16 sa[3, 64, 32] swizzle(2, 3, 3)"],
    matmul_wgmma.matmul_wgmma: ["shared f16 sa[4, 128, 64] swizzle(3, 3, 3)", "tma_load(sa[s], a[a0, 64 * s], full[s])",
                                "mbarrier_wait(full[s], j / 4 % 2)", "wgmma_wait_group(1)",
                                "wgmma.m64n128k16(acc, wgmma_desc(sa[s, 64 * wg, 16 * kk], sbo=1024, swizzle=128, "
                                "lbo=16), wgmma_desc(sb[s, 0, 16 * kk], sbo=1024, swizzle=128, lbo=16))"],
}


@pytest.mark.parametrize("name", ["vector_add", "transpose", "reduce_sum", "matmul_simt", "matmul_tc", "matmul_wgmma"])
def test_example_module_interface(name):
    mod = importlib.import_module(f"taskmap.examples.{name}")
    assert callable(mod.make_args) and callable(mod.reference) and mod.SIZES


@pytest.mark.parametrize("k", list(PRINTED), ids=lambda k: k.name)
def test_example_verifies_and_prints_readable_ir(k):
    assert k.verify() is k
    lines = [re.sub(r"\b([A-Za-z]\w*?)_\d+\b", r"\1", line.strip()) for line in str(k).splitlines()]
    for expected in PRINTED[k]:
        assert expected in lines, f"{expected!r} missing from the printed IR of {k.name}:\n{k}"


@pytest.mark.parametrize("make", [
    lambda: matmul_simt.make_matmul_simt(lanes=(4, 4)),
    lambda: matmul_simt.make_matmul_simt(bm=60),
    lambda: matmul_simt.make_matmul_simt(bk=3),
    lambda: matmul_tc.make_matmul_tc(f32),
    lambda: matmul_tc.make_matmul_tc(bk=24),
    lambda: matmul_tc.make_matmul_tc(stages=1),
    lambda: matmul_tc.make_matmul_tc(vec=16),
    lambda: matmul_tc.row_swizzle(24),
    lambda: reduce_sum.make_reduce_sum(block=100),
    lambda: matmul_wgmma.make_matmul_wgmma(f32),
    lambda: matmul_wgmma.make_matmul_wgmma(bn=12),
    lambda: matmul_wgmma.make_matmul_wgmma(stages=1),
])
def test_bad_factory_configurations_are_rejected(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize("row_elems", [16, 32, 64, 128])
def test_matmul_tc_swizzle_spreads_eight_rows_over_eight_bank_groups(row_elems):
    """What ldmatrix needs from the shared tiles: any 8 consecutive rows' chunks at one column
    land in distinct 16-byte bank groups, and chunks stay aligned (SPEC.md §3.3 formula)."""
    sw = matmul_tc.row_swizzle(row_elems)
    mask = ((1 << sw.bits) - 1) << (sw.base + sw.shift)
    def physical(o):
        return o ^ ((o & mask) >> sw.shift)
    for first in range(64):
        for chunk in range(row_elems // 8):
            offsets = [physical(r * row_elems + chunk * 8) for r in range(first, first + 8)]
            assert all(o % 8 == 0 for o in offsets)
            assert len({o // 8 % 8 for o in offsets}) == 8, (row_elems, first, chunk)


# ------------------------------------------------------------------ execution against the references

def _cases():
    for d in DTYPES:
        for s in vector_add.SIZES:
            yield f"vector_add_{d}", vector_add.kernel_for[d], partial(vector_add.make_args, dtype=DTYPES[d]), \
                vector_add.reference, s
    for s in transpose.SIZES:
        yield "transpose", transpose.transpose, transpose.make_args, transpose.reference, s
    for s in reduce_sum.SIZES:
        yield "reduce_sum", reduce_sum.reduce_sum, reduce_sum.make_args, reduce_sum.reference, s
        yield "reduce_sum_atomic", reduce_sum.reduce_sum_atomic, partial(reduce_sum.make_args, atomic=True), \
            reduce_sum.reference, s
    for s in matmul_simt.SIZES:
        yield "matmul_simt", matmul_simt.matmul_simt, matmul_simt.make_args, matmul_simt.reference, s
    small_simt = matmul_simt.make_matmul_simt(bm=32, bn=32, bk=8, warps=(2, 2), lanes=(4, 8))
    yield "matmul_simt_32x32", small_simt, matmul_simt.make_args, matmul_simt.reference, {"M": 33, "N": 40, "K": 17}
    for d in ("f16", "bf16"):
        for s in matmul_tc.SIZES:
            yield f"matmul_tc_{d}", matmul_tc.kernel_for[d], partial(matmul_tc.make_args, dtype=DTYPES[d]), \
                matmul_tc.reference, s
    two_stage = matmul_tc.make_matmul_tc(f16, bm=32, bn=32, bk=16, warps=(1, 2), stages=2, vec=4)
    yield "matmul_tc_2stage", two_stage, matmul_tc.make_args, matmul_tc.reference, {"M": 21, "N": 36, "K": 52}
    for d in ("f16", "bf16"):
        for s in matmul_wgmma.SIZES:
            yield f"matmul_wgmma_{d}", matmul_wgmma.kernel_for[d], partial(matmul_wgmma.make_args, dtype=DTYPES[d]), \
                matmul_wgmma.reference, s


CASES = [pytest.param(*c[1:], id=f"{c[0]}-" + "-".join(f"{k}{v}" for k, v in c[4].items())) for c in _cases()]


def _run_and_compare(launch, k, make_args, reference, sizes, uninitialized=None):
    """uninitialized(shape, dtype): an array for each "out" tensor, which the kernel must write
    before reading ("inout" ones, e.g. an atomic total, keep make_args' initial values)."""
    args = list(make_args(np.random.default_rng(0), **sizes))
    inputs = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    expected = reference(*inputs)
    names = [p.name for p in k.params]
    assert set(expected) == {b.name for b in k.outputs}, "reference() returns exactly the kernel's outputs"
    if uninitialized is not None:
        for b in k.outputs:
            i = names.index(b.name)
            if k.directions[b.name] == "out":
                args[i] = uninitialized(args[i].shape, b.dtype)
    launch(k, *args)
    for name, want in expected.items():
        got = args[names.index(name)]
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want, err_msg=f"{k.name} {sizes}: output {name}")
    for name, before, after in zip(names, inputs, args):
        if name not in expected and isinstance(before, np.ndarray):
            np.testing.assert_array_equal(after, before, err_msg=f"{k.name} modified its input {name}")


def _refimpl():
    from taskmap import refimpl
    if not hasattr(refimpl, "interpret"):     # the interpreter has not been written yet: nothing to run
        pytest.skip("refimpl.interpret does not exist yet")
    return refimpl


@pytest.mark.parametrize("k, make_args, reference, sizes", CASES)
def test_example_matches_reference_on_interpreter(k, make_args, reference, sizes):
    refimpl = _refimpl()
    _run_and_compare(refimpl.interpret, k, make_args, reference, sizes, uninitialized=refimpl.empty)


@pytest.mark.gpu
@pytest.mark.parametrize("k, make_args, reference, sizes", CASES)
def test_example_matches_reference_on_gpu(k, make_args, reference, sizes):
    from taskmap import gpu
    _run_and_compare(gpu.launch, k, make_args, reference, sizes)


RANDOM_SIZES = {   # kernel, make_args, size strategy (matmul_tc: K and N multiples of 8)
    "vector_add_f16": (vector_add.kernel_for["f16"], partial(vector_add.make_args, dtype=f16),
                       st.fixed_dictionaries({"n": st.integers(1, 700)})),
    "transpose": (transpose.transpose, transpose.make_args,
                  st.fixed_dictionaries({"m": st.integers(1, 80), "n": st.integers(1, 80)})),
    "reduce_sum": (reduce_sum.reduce_sum, reduce_sum.make_args, st.fixed_dictionaries({"n": st.integers(1, 3000)})),
    "matmul_simt": (matmul_simt.matmul_simt, matmul_simt.make_args,
                    st.fixed_dictionaries({d: st.integers(1, 80) for d in "MNK"})),
    "matmul_tc": (matmul_tc.matmul_tc, matmul_tc.make_args,
                  st.fixed_dictionaries({"M": st.integers(1, 80), "N": st.integers(1, 10).map(lambda x: 8 * x),
                                         "K": st.integers(1, 12).map(lambda x: 8 * x)})),
}


@pytest.mark.parametrize("name", list(RANDOM_SIZES))
def test_example_matches_reference_on_random_sizes(name):
    refimpl = _refimpl()
    k, make_args, sizes = RANDOM_SIZES[name]
    module = importlib.import_module(f"taskmap.examples.{name.removesuffix('_f16')}")

    @settings(max_examples=12, deadline=None, database=None)
    @given(sizes)
    def check(s):
        _run_and_compare(refimpl.interpret, k, make_args, module.reference, s, uninitialized=refimpl.empty)
    check()
