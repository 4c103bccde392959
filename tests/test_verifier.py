"""The static verifier (SPEC.md §9): every catalogued invalid kernel fails with its phrase, at
its DSL line, with the printed-IR window; correct kernels of every kind verify clean."""
from __future__ import annotations

import dataclasses
import importlib
import pathlib
import re

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from taskmap.spec import dtypes as dt
from taskmap.spec import ir, passes, printer
from taskmap.spec.errors import DSLError, VerifyError
from taskmap.lang import (atomic_add, blockDim, blockIdx, cp_async, cp_async_commit_group, cp_async_wait_group, exp,
                       f16, f32, i8, i32, kernel, ldmatrix, mma_sync, register_tensor, repeat, select, shared_tensor,
                       shfl_down, shfl_idx, shfl_xor, spatial, swizzle, syncthreads, syncwarp, threadIdx, u32)
from taskmap.spec.verifier import PHRASES
from taskmap.conformance.loader import load_paths

ROOT = pathlib.Path(__file__).resolve().parents[1]
INVALID = [c for c in load_paths() if getattr(c, "invalid", None)]
VERIFY_CASES = [c for c in INVALID if c.invalid.stage == "verify"]
DSL_CASES = [c for c in INVALID if c.invalid.stage == "dsl"]


# ---------------------------------------------------------------- the suite's invalid kernels
# (conformance/cases/invalid.yaml checks each one's phrase and line; these check the message)

def rejected(k: ir.Kernel, phrase: str) -> VerifyError:
    """verify() fails with `phrase`, and the message ends with consecutive lines of the printed
    IR, exactly one of them marked `>`."""
    with pytest.raises(VerifyError) as info:
        k.verify()
    assert info.value.phrase == phrase, str(info.value)
    text = str(info.value)
    printed = str(k).splitlines()
    window = re.findall(r"^(  > |    ) *(\d+) \| (.*)$", text, re.M)
    numbers = [int(n) for _, n, _ in window]
    assert len(window) >= 2 and numbers == list(range(numbers[0], numbers[0] + len(window))), text
    assert all(printed[int(n) - 1] == line for _, n, line in window), text
    assert [m for m, _, _ in window].count("  > ") == 1, text
    return info.value


@pytest.mark.parametrize("case", VERIFY_CASES, ids=lambda c: c.id)
def test_verify_error_shows_the_printed_ir_marking_its_statement(case):
    k = case.ref.load()
    e = rejected(k, case.invalid.phrase)
    loc = e.node.loc
    text = str(e)
    assert text.startswith(f"{loc.file}:{loc.line}:") and f": {case.invalid.phrase}" in text
    assert f"(in kernel {k.name})" in text
    printed = printer.kernel_lines(k).where         # id(node) -> printed line index
    at_line = {printed[id(n)] + 1 for n in ir.walk(k) if id(n) in printed and n.loc and n.loc.line == loc.line}
    marked = int(re.search(r"^  > +(\d+) \| ", text, re.M).group(1))
    assert marked in at_line, "the window marks the statement written on the error's line"


@pytest.mark.parametrize("case", DSL_CASES, ids=lambda c: c.id)
def test_dsl_error_starts_with_file_line_column(case):
    with pytest.raises(DSLError) as info:
        kernel()(case.ref.load())
    e = info.value
    assert re.match(rf"{re.escape(e.loc.file)}:{e.loc.line}:\d+: {re.escape(e.phrase)}", str(e)), str(e)
    if e.hint:
        assert str(e).endswith(f"\n  hint: {e.hint}")


def test_kernel_decorator_verifies_at_decoration_time():
    with pytest.raises(VerifyError, match="too many threads per block"):
        @kernel(block=(32, 64))
        def k(a: f32[2048]):
            a[threadIdx.x] = 0.0


def test_an_unknown_binary_operator_is_reported_with_its_window():
    """Built in Python (the DSL cannot spell it): the window prints the operator it rejects."""
    @kernel(block=32)
    def k(a: i32[32]):
        a[threadIdx.x] = threadIdx.x + 1
    broken = ir.rewrite(k, lambda n: ir.Binary("//", n.a, n.b) if isinstance(n, ir.Binary) and n.op == "+" else n)
    error = rejected(broken, "unknown operation")
    assert "binary operator '//'" in str(error) and "threadIdx.x // 1" in str(error)


def test_every_phrase_is_documented_in_spec_and_exercised():
    spec = (ROOT / "spec" / "SPEC.md").read_text()
    table = spec[spec.index("9.1 **Error phrases**"):spec.index("9.2 **Scopes.**")]
    rows = [r for r in table.splitlines() if r.startswith("| ") and not r.startswith("| phrase")]
    documented = {r.split(" | ")[0].strip("| "): r.rsplit("|", 2)[1].strip() for r in rows}
    assert documented == PHRASES
    exercised = {c.invalid.phrase for c in VERIFY_CASES}
    assert exercised == set(PHRASES)


# ---------------------------------------------------------------- correct kernels verify clean

@kernel(grid=lambda n: (n + 255) // 256, block=256)
def vector_add(n: i32, a: f32[n], b: f32[n], c: f32[n]):
    i = blockIdx.x * 256 + threadIdx.x
    if i < n:
        c[i] = a[i] + b[i]


@kernel(grid=lambda m, n: ((n + 31) // 32, (m + 31) // 32), block=(32, 8))
def transpose(m: i32, n: i32, a: f32[m, n], b: f32[n, m]):
    tile = shared_tensor(f32, [32, 33])
    for k in range(4):
        r = blockIdx.y * 32 + threadIdx.y + 8 * k
        c = blockIdx.x * 32 + threadIdx.x
        if r < m and c < n:
            tile[threadIdx.y + 8 * k, threadIdx.x] = a[r, c]
    syncthreads()
    for k in range(4):
        r = blockIdx.x * 32 + threadIdx.y + 8 * k
        c = blockIdx.y * 32 + threadIdx.x
        if r < n and c < m:
            b[r, c] = tile[threadIdx.x, threadIdx.y + 8 * k]


@kernel(grid=32, block=256)
def warp_shuffle_sum(n: i32, x: f32[n], out: f32[1]):
    partial = shared_tensor(f32, [8])
    warp = threadIdx.x // 32
    lane = threadIdx.x % 32
    v = 0.0
    i = blockIdx.x * 256 + threadIdx.x
    while i < n:                                   # thread-dependent loop, no barrier inside
        v += x[i]
        i += 32 * 256
    offset = 16
    while offset > 0:                              # uniform loop around shuffles
        v += shfl_xor(v, offset)
        offset = offset // 2
    if lane == 0:
        partial[warp] = v
    syncthreads()
    if warp == 0:                                  # warp-uniform: shuffles inside are fine
        w = select(lane < 8, partial[lane % 8], 0.0)
        d = 4
        while d > 0:
            w += shfl_down(w, d)
            d = d // 2
        total = shfl_idx(w, 0)                     # broadcast: warp-uniform from here on
        if total != 0.0:
            w = shfl_idx(w, 0)                     # a collective under a warp-uniform condition
        if lane == 0:
            atomic_add(out[0], w)


BM, BN, BK = 64, 64, 8
SIMT_TILE = spatial(16, 16) * repeat(4, 4)         # 256 threads, 4x4 outputs each


@kernel(grid=lambda m, n, k: ((n + BN - 1) // BN, (m + BM - 1) // BM), block=256)
def simt_matmul_double_buffered(m: i32, n: i32, k: i32, a: f32[m, k], b: f32[k, n], c: f32[m, n]):
    sa = shared_tensor(f32, [2, BK, BM])
    sb = shared_tensor(f32, [2, BK, BN])
    acc = register_tensor(f32, [4, 4])
    tid = threadIdx.x
    for i, j in repeat(4, 4).on(0):
        acc[i, j] = 0.0
    row0 = blockIdx.y * BM
    col0 = blockIdx.x * BN
    for r, kk in (repeat(2, 1) * spatial(32, 8)).on(tid):
        sa[0, kk, r] = a[row0 + r, kk] if row0 + r < m and kk < k else 0.0
    for kk, cc in (repeat(1, 2) * spatial(8, 32)).on(tid):
        sb[0, kk, cc] = b[kk, col0 + cc] if kk < k and col0 + cc < n else 0.0
    syncthreads()
    tiles = (k + BK - 1) // BK
    for t in range(tiles):
        cur = t % 2
        if t + 1 < tiles:                          # uniform: prefetch the next stage
            for r, kk in (repeat(2, 1) * spatial(32, 8)).on(tid):
                gk = (t + 1) * BK + kk
                sa[1 - cur, kk, r] = a[row0 + r, gk] if row0 + r < m and gk < k else 0.0
            for kk, cc in (repeat(1, 2) * spatial(8, 32)).on(tid):
                gk = (t + 1) * BK + kk
                sb[1 - cur, kk, cc] = b[gk, col0 + cc] if gk < k and col0 + cc < n else 0.0
        for kk in range(BK, unroll=True):
            for i, j in SIMT_TILE.on(tid):
                acc[i % 4, j % 4] += sa[cur, kk, i] * sb[cur, kk, j]
        syncthreads()
    for i, j in SIMT_TILE.on(tid):
        if row0 + i < m and col0 + j < n:
            c[row0 + i, col0 + j] = acc[i % 4, j % 4]


TM, TN, TK = 64, 64, 32


@kernel(grid=lambda m, n, k: (n // TN, m // TM), block=128)
def tensor_core_matmul(m: i32, n: i32, k: i32, a: f16[m, k], b: f16[k, n], c: f32[m, n]):
    sa = shared_tensor(f16, [2, TM, TK], layout=swizzle(2, 3, 3))
    sb = shared_tensor(f16, [2, TK, TN], layout=swizzle(3, 3, 3))
    fa = register_tensor(f16, [2, 8])
    fb = register_tensor(f16, [4, 4])
    acc = register_tensor(f32, [2, 4, 4])
    warp = threadIdx.x // 32
    lane = threadIdx.x % 32
    for mi, ni, e in repeat(2, 4, 4).on(0):
        acc[mi, ni, e] = 0.0
    row0 = blockIdx.y * TM
    col0 = blockIdx.x * TN
    for r, ch in (repeat(2, 1) * spatial(32, 4)).on(threadIdx.x):
        cp_async(sa[0, r, ch * 8], a[row0 + r, ch * 8], elems=8)
    for r, ch in (repeat(2, 1) * spatial(16, 8)).on(threadIdx.x):
        cp_async(sb[0, r, ch * 8], b[r, col0 + ch * 8], elems=8)
    cp_async_commit_group()
    tiles = k // TK
    for t in range(tiles):
        cur = t % 2
        if t + 1 < tiles:
            for r, ch in (repeat(2, 1) * spatial(32, 4)).on(threadIdx.x):
                cp_async(sa[1 - cur, r, ch * 8], a[row0 + r, (t + 1) * TK + ch * 8], elems=8)
            for r, ch in (repeat(2, 1) * spatial(16, 8)).on(threadIdx.x):
                cp_async(sb[1 - cur, r, ch * 8], b[(t + 1) * TK + r, col0 + ch * 8], elems=8)
        cp_async_commit_group()
        cp_async_wait_group(1)
        syncthreads()
        for wm, wn in spatial(2, 2).on(warp):      # 4 workers = the block's 4 warps: no divergence
            for kk in range(TK // 16):
                for mi in range(2):
                    ldmatrix(fa[mi], sa[cur, wm * 32 + mi * 16 + lane % 16, kk * 16 + lane // 16 * 8], num=4)
                for ni in range(4):
                    ldmatrix(fb[ni], sb[cur, kk * 16 + lane % 16, wn * 32 + ni * 8], num=2, trans=True)
                for mi, ni in repeat(2, 4).on(0):
                    mma_sync(fa[mi], fb[ni], acc[mi, ni])
        syncthreads()
    cp_async_wait_group(0)
    for wm, wn in spatial(2, 2).on(warp):
        for mi, ni, e in repeat(2, 4, 4).on(0):
            r = row0 + wm * 32 + mi * 16 + lane // 4 + 8 * (e // 2)
            cl = col0 + wn * 32 + ni * 8 + 2 * (lane % 4) + e % 2
            c[r, cl] = acc[mi, ni, e]


@kernel(grid=lambda m, n: (m + 3) // 4, block=128)
def softmax_row_per_warp(m: i32, n: i32, x: f32[m, n], y: f32[m, n]):
    row = blockIdx.x * 4 + threadIdx.x // 32       # warp-uniform, though not block-uniform
    lane = threadIdx.x % 32
    if row < m:
        top = -float("inf")
        j = lane
        while j < n:                               # lane-dependent trip count, no collective inside
            top = max(top, x[row, j])
            j += 32
        for k in range(5, unroll=True):
            top = max(top, shfl_xor(top, 16 >> k))
        total = 0.0
        j = lane
        while j < n:
            total += exp(x[row, j] - top)
            j += 32
        for k in range(5, unroll=True):
            total += shfl_xor(total, 1 << k)
        j = lane
        while j < n:
            y[row, j] = exp(x[row, j] - top) / total
            j += 32


@kernel(grid=lambda n: (n + 255) // 256, block=256)
def block_scan(n: i32, x: i32[n], out: i32[n]):
    s = shared_tensor(i32, [2, 256])
    tid = threadIdx.x
    g = blockIdx.x * 256 + tid
    s[0, tid] = x[g] if g < n else 0
    syncthreads()
    src = 0
    offset = 1
    while offset < 256:                            # uniform loop with a barrier
        v = s[src, tid]
        if tid >= offset:
            v += s[src, tid - offset]
        s[1 - src, tid] = v
        syncthreads()
        src = 1 - src
        offset = offset * 2
    if g < n:
        out[g] = s[src, tid]


CORRECT = [vector_add, transpose, warp_shuffle_sum, simt_matmul_double_buffered, tensor_core_matmul,
           softmax_row_per_warp, block_scan]


def _interpreted_cases(rng):
    """(kernel, args, {output index: NumPy reference}) for each kernel of CORRECT."""
    x = rng.integers(-8, 9, (37, 45)).astype(np.float32) / 8
    a16, b16 = (rng.integers(-8, 9, s).astype(np.float16) / 8 for s in ((64, 64), (64, 64)))
    scan_in = rng.integers(-5, 6, 300).astype(np.int32)
    blocks = [np.cumsum(scan_in[i:i + 256]) for i in range(0, 300, 256)]
    ex = np.exp(x - x.max(axis=1, keepdims=True))
    return [
        (vector_add, (45, x[0], x[1], np.zeros(45, np.float32)), {3: x[0] + x[1]}),
        (transpose, (37, 45, x, np.zeros((45, 37), np.float32)), {3: x.T}),
        (warp_shuffle_sum, (37 * 45, x.reshape(-1), np.zeros(1, np.float32)), {2: [x.sum()]}),
        (simt_matmul_double_buffered, (37, 45, 45, x[:, :45], x.T @ x / 64, np.zeros((37, 45), np.float32)),
         {5: x[:, :45] @ (x.T @ x / 64)}),
        (tensor_core_matmul, (64, 64, 64, a16, b16, np.zeros((64, 64), np.float32)),
         {5: a16.astype(np.float64) @ b16.astype(np.float64)}),
        (softmax_row_per_warp, (37, 45, x, np.zeros((37, 45), np.float32)), {3: ex / ex.sum(axis=1, keepdims=True)}),
        (block_scan, (300, scan_in, np.zeros(300, np.int32)), {2: np.concatenate(blocks)}),
    ]


def test_the_correct_kernels_are_correct():
    """They run trap-free on the interpreter and match NumPy, so verifying them clean means no
    false positive on real kernels."""
    from taskmap import refimpl

    for k, args, want in _interpreted_cases(np.random.default_rng(7)):
        args = [np.ascontiguousarray(v) if isinstance(v, np.ndarray) else v for v in args]
        refimpl.interpret(k, *args)
        for i, ref in want.items():
            np.testing.assert_allclose(args[i], np.asarray(ref, np.float64), rtol=1e-5, atol=1e-5, err_msg=k.name)


def example_kernels():
    out = []
    for path in sorted((ROOT / "examples").glob("*.py")):
        module = importlib.import_module(f"taskmap.examples.{path.stem}")
        out += [k for k in vars(module).values() if isinstance(k, ir.Kernel)]
    return out


@pytest.mark.parametrize("k", CORRECT + example_kernels(), ids=lambda k: k.name)
def test_correct_kernels_verify_clean_before_and_after_lowering(k):
    k.verify()
    passes.lower(k).verify()


# ---------------------------------------------------------------- thread-dependence precision (§9.6)

def test_conditions_proven_uniform_allow_barriers_and_collectives():
    @kernel(block=(32, 4))
    def k(n: i32, a: f32[128], flags: i32[4]):
        s = shared_tensor(f32, [128])
        tid = threadIdx.x + threadIdx.y * 32
        if threadIdx.x < 32:                       # always true in a 32-wide block
            syncthreads()
        if flags[blockIdx.x] > 0 and n > 2:        # uniform load index, uniform parameter
            syncthreads()
        if threadIdx.y == 1:                       # one warp per row: warp-uniform
            a[tid] = shfl_xor(a[tid], 1)
            syncwarp()
        x = 0
        for i in range(n):                         # loop-carried but uniform
            x = x + i
        if x > 3:
            s[tid] = 1.0
            syncthreads()
        for w in spatial(4).on(tid // 32):
            v = shfl_idx(a[tid], 0)                # warp-uniform broadcast
            if v > 0.0:
                a[tid] = shfl_xor(v, 2)
        linear = threadIdx.x + threadIdx.y * blockDim.x
        threads = 128                              # a local holding a constant
        if linear // 32 == 3 and linear < threads:
            a[linear] = shfl_xor(a[linear], 4)
        if linear < threads:
            syncthreads()

    k.verify()


def test_conditions_that_split_a_warp_reject_collectives_only():
    @kernel(block=64)
    def warp_split_ok_for_syncthreads_check(a: f32[64]):
        if threadIdx.x // 32 == 1:
            a[threadIdx.x] = shfl_xor(a[threadIdx.x], 1)

    warp_split_ok_for_syncthreads_check.verify()

    @kernel(block=64, verify=False)
    def barrier_in_warp_branch(a: f32[64]):
        if threadIdx.x // 32 == 1:
            syncthreads()

    with pytest.raises(VerifyError, match="barrier in thread-dependent branch"):
        barrier_in_warp_branch.verify()

    @kernel(block=64, verify=False)
    def shuffle_in_select_branch(a: f32[64]):
        a[threadIdx.x] = select(threadIdx.x % 2 == 0, shfl_xor(a[threadIdx.x], 1), 0.0)

    with pytest.raises(VerifyError, match="warp collective in thread-dependent branch") as info:
        shuffle_in_select_branch.verify()
    assert "short-circuit condition `threadIdx.x % 2 == 0`" in str(info.value)

    @kernel(block=64, verify=False)
    def shuffle_in_condition_of_divergent_loop(a: f32[64]):
        v = a[threadIdx.x]
        while shfl_xor(v, 1) > 0.0:                # lanes leave the loop at different times
            v -= 1.0

    with pytest.raises(VerifyError, match="warp collective in thread-dependent branch") as info:
        shuffle_in_condition_of_divergent_loop.verify()
    assert "inside `while shfl_xor(v, 1) > 0.0`" in str(info.value)


def test_register_contents_and_loop_carried_values_are_tracked():
    @kernel(block=64, verify=False)
    def via_register(a: f32[64]):
        r = register_tensor(i32, [2])
        r[0] = 0
        r[1] = threadIdx.x
        if r[0] > 0:                               # r[0] holds a thread index at times: may differ
            syncthreads()

    @kernel(block=64, verify=False)
    def via_swap(a: f32[64]):
        x = threadIdx.x
        y = 0
        i = 0
        while i < 2:
            y = x
            x = 0
            i += 1
        if y == 0:
            syncthreads()

    for k in (via_register, via_swap):
        with pytest.raises(VerifyError, match="barrier in thread-dependent branch"):
            k.verify()


@settings(max_examples=60, deadline=None)
@example(threads=64, scale=1, shift=0, modulus=64, bound=32, collective=False)     # splits the block
@example(threads=64, scale=1, shift=0, modulus=64, bound=32, collective=True)      # ... but not a warp
@example(threads=64, scale=1, shift=0, modulus=64, bound=16, collective=True)      # splits a warp
@example(threads=96, scale=1, shift=0, modulus=96, bound=96, collective=False)     # always true
@given(threads=st.sampled_from([32, 64, 96, 128]), scale=st.integers(0, 3), shift=st.integers(-40, 40),
       modulus=st.integers(1, 70), bound=st.integers(-2, 70), collective=st.booleans())
def test_exact_conditions_match_a_per_thread_reference(threads, scale, shift, modulus, bound, collective):
    """`if (tid * scale + shift) % modulus < bound` around a barrier (or a shuffle) verifies
    exactly when the condition, computed per thread in Python with C's truncating %, is the
    same in the whole block (or in every warp)."""
    @kernel(block=threads, verify=False)
    def k(a: f32[128]):
        if (threadIdx.x * scale + shift) % modulus < bound:
            if collective:
                a[threadIdx.x] = shfl_xor(a[threadIdx.x], 1)
            else:
                syncthreads()

    def c_rem(x, y):
        return x - y * int(x / y)

    taken = [c_rem(t * scale + shift, modulus) < bound for t in range(threads)]
    groups = [taken[w:w + 32] for w in range(0, threads, 32)] if collective else [taken]
    if all(len(set(g)) == 1 for g in groups):
        k.verify()
    else:
        with pytest.raises(VerifyError, match="warp collective" if collective else "barrier"):
            k.verify()


@settings(max_examples=60, deadline=None)
@example(threads=64, scale=1, shift=0, modulus=64, bound=32, what="warp", trips=False)      # warp-uniform
@example(threads=64, scale=1, shift=0, modulus=64, bound=32, what="block", trips=False)     # splits the block
@example(threads=40, scale=1, shift=0, modulus=64, bound=32, what="shuffle", trips=False)   # partial warp
@example(threads=64, scale=1, shift=0, modulus=64, bound=0, what="block", trips=True)       # 0 or 1 trips
@given(threads=st.sampled_from([32, 40, 64, 96, 128]), scale=st.integers(0, 3), shift=st.integers(0, 40),
       modulus=st.integers(1, 70), bound=st.integers(0, 70), what=st.sampled_from(["block", "warp", "shuffle"]),
       trips=st.booleans())
def test_verifier_agrees_with_the_interpreters_divergence_traps(threads, scale, shift, modulus, bound, what, trips):
    """A barrier or collective in a loop run `limit` times, `limit` a function of the thread
    index (0 or 1 times: a branch): the verifier rejects it exactly when the interpreter traps
    on it (§5.3, §5.6) — both see whether `limit` differs within the block or a warp."""
    from taskmap import refimpl

    @kernel(block=threads, verify=False)
    def k(a: f32[128]):
        key = (threadIdx.x * scale + shift) % modulus
        limit = key // 16 + bound // 16 if trips else select(key < bound, 1, 0)
        j = 0
        while j < limit:
            if what == "block":
                syncthreads()
            elif what == "warp":
                syncwarp()
            else:
                a[threadIdx.x] = shfl_xor(a[threadIdx.x], 1)
            j += 1

    try:
        k.verify()
        accepted = True
    except VerifyError as e:
        assert e.phrase in ("barrier in thread-dependent branch", "warp collective in thread-dependent branch")
        accepted = False
    try:
        refimpl.interpret(k, np.zeros(128, np.float32))
        trapped = False
    except refimpl.KernelTrap as e:
        assert e.phrase in ("divergent barrier", "divergent warp collective"), str(e)
        trapped = True
    assert accepted != trapped


def _c_int(op: str, x: int, y: int) -> int:
    """Reference i32 arithmetic with C semantics (§2.3), in plain Python ints."""
    if op in ("/", "%"):
        q = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)
        v = q if op == "/" else x - q * y
    else:
        v = {"+": lambda: x + y, "-": lambda: x - y, "*": lambda: x * y, "&": lambda: x & y,
             "|": lambda: x | y, "^": lambda: x ^ y, "<<": lambda: x << y, ">>": lambda: x >> y,
             "min": lambda: min(x, y), "max": lambda: max(x, y)}[op]()
    return (v + 2**31) % 2**32 - 2**31


@settings(max_examples=80, deadline=None)
@given(op=st.sampled_from(["+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>", "min", "max"]),
       scale=st.sampled_from([-3, -1, 1, 2, 5, 1 << 27]), shift=st.integers(-100, 100), k=st.integers(1, 31),
       cmp=st.sampled_from(["<", "==", ">="]), bound=st.integers(-40, 40))
def test_exact_integer_evaluation_matches_c_semantics(op, scale, shift, k, cmp, bound):
    """A barrier under `op(tid * scale + shift, k) cmp bound` (hand-built IR, 64 threads) is
    accepted exactly when the condition, computed per thread by the reference, is the same in
    every thread."""
    tx = ir.Special("threadIdx.x")
    x = ir.Binary("+", ir.Binary("*", tx, ir.const(scale)), ir.const(shift))
    cond = ir.Binary(cmp, ir.Binary(op, x, ir.const(k)), ir.const(bound))
    k_ir = ir.Kernel("exact", (), (ir.const(1),) * 3, (ir.const(64), ir.const(1), ir.const(1)),
                     (ir.If(cond, (ir.SyncThreads(),)),))
    compare = {"<": lambda a, b: a < b, "==": lambda a, b: a == b, ">=": lambda a, b: a >= b}[cmp]
    taken = {compare(_c_int(op, _c_int("+", _c_int("*", t, scale), shift), k), bound) for t in range(64)}
    if len(taken) == 1:
        k_ir.verify()
    else:
        with pytest.raises(VerifyError, match="barrier in thread-dependent branch"):
            k_ir.verify()


def test_dynamic_block_counts_thread_indices_as_varying():
    @kernel(block=lambda nt: nt, verify=False)
    def k(nt: i32, a: f32[1024]):
        if threadIdx.x < 1024:
            syncthreads()

    with pytest.raises(VerifyError, match="barrier in thread-dependent branch"):
        k.verify()

    @kernel(block=lambda nt: (nt, 1, 1))
    def uniform(nt: i32, a: f32[1024]):
        if threadIdx.y == 0 and blockIdx.x >= 0:   # y extent is the constant 1
            syncthreads()

    uniform.verify()


def test_mapping_coverage_counts_only_threads_that_reach_the_loop():
    @kernel(block=128)
    def lanes_of_warp_zero(a: f32[32]):
        if threadIdx.x < 32:
            for i in spatial(32).on(threadIdx.x):
                a[i] = 0.0

    lanes_of_warp_zero.verify()

    @kernel(block=128, verify=False)
    def half_the_lanes(a: f32[32]):
        if threadIdx.x < 16:
            for i in spatial(32).on(threadIdx.x):
                a[i] = 0.0

    with pytest.raises(VerifyError, match="task mapping has more workers than threads") as info:
        half_the_lanes.verify()
    assert "takes only 16 of the values 0..31" in str(info.value)


# ---------------------------------------------------------------- smaller rules

def test_front_end_conversions_keep_the_ir_well_typed():
    @kernel(block=32)
    def k(total: f32[1], h: f16[32], counts: i32[4]):
        atomic_add(total[0], h[threadIdx.x])       # f16 value converted to the f32 target
        old = atomic_add(counts[0], 1)
        counts[1] = old
        x: u32 = 7
        counts[2] = x
        neighbour_positive = shfl_xor(h[threadIdx.x] > 0.0, 1)   # any dtype shuffles (narrow ones as a word)
        counts[3] = i32(shfl_down(i8(counts[3]), 2)) + neighbour_positive
        counts[3] = counts[3] + (h[threadIdx.x] > 0.0)   # a bool operand yields to i32 (§2.2)

    add = next(s for s in ir.walk(k) if isinstance(s, ir.Atomic))
    assert add.value.dtype == dt.float32
    k.verify()


def test_constants_must_fit_their_dtype():
    for value, dtype, ok in ((255, dt.uint8, True), (256, dt.uint8, False), (-1, dt.uint32, False),
                             (65504.0, dt.float16, True), (70000.0, dt.float16, False),
                             (float("-inf"), dt.float16, True), (1e39, dt.float32, False), (1.5, dt.int32, False)):
        k = _kernel_storing(ir.Const(value, dtype))
        if ok:
            k.verify()
        else:
            with pytest.raises(VerifyError, match="constant out of range"):
                k.verify()


def _kernel_storing(value: ir.Expr) -> ir.Kernel:
    """A one-store kernel writing `value` into a tensor of its own dtype."""
    out = ir.Buffer("out", value.dtype, (ir.const(1),), "global")
    return ir.Kernel("store_const", (out,), (ir.const(1),) * 3, (ir.const(1),) * 3,
                     (ir.Store(out, (ir.const(0),), value),))


def test_fragment_views_count_the_sub_tensor():
    @kernel(block=32)
    def ok(c: f32[32, 4]):
        fa = register_tensor(f16, [3, 2, 8])
        fb = register_tensor(f16, [2, 4])
        acc = register_tensor(f32, [4, 4])
        mma_sync(fa[2, 1], fb[1], acc[3])

    ok.verify()

    @kernel(block=32, verify=False)
    def element_not_view(c: f32[32, 4]):
        fa = register_tensor(f16, [8])
        fb = register_tensor(f16, [4])
        acc = register_tensor(f32, [4])
        mma_sync(fa[0], fb, acc)

    with pytest.raises(VerifyError, match="invalid mma_sync fragment") as info:
        element_not_view.verify()
    assert "`fa[0]` is a view of 1 element(s)" in str(info.value)


def test_errors_point_inside_hand_built_ir_without_locations():
    k = _kernel_storing(ir.Binary("&", ir.const(1.0), ir.const(2.0)))
    k = dataclasses.replace(k, body=(dataclasses.replace(k.body[0], loc=ir.Loc("gen.py", 7, 3)),))
    with pytest.raises(VerifyError) as info:
        k.verify()
    assert info.value.phrase == "bitwise operation on non-integer"
    assert str(info.value).startswith("gen.py:7:3: ")        # the enclosing statement's location
