"""The interpreter's semantics (SPEC.md §2–§5) against NumPy / Python references."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from taskmap import refimpl
from taskmap.refimpl import debug, memory
from taskmap.spec import dtypes
from taskmap.spec.errors import LaunchError
from taskmap.lang import (atomic_add, atomic_cas, atomic_max, bf16, blockIdx, cast, cos, cp_async, cp_async_commit_group,
                       cp_async_wait_group, erf, exp, exp2, f16, f32, fma, i32, i64, kernel, log, log2, pow, rsqrt,
                       select, shared_tensor, shfl_down, shfl_idx, shfl_up, shfl_xor, sin, sqrt, swizzle, syncthreads,
                       syncwarp, tanh, threadIdx, u32)

# ---------------------------------------------------------------- integer arithmetic (§2.3)


@kernel(grid=1, block=64)
def int_ops(a: i32[64], b: i32[64], q: i32[64], r: i32[64], s: i32[64], p: i32[64]):
    i = threadIdx.x
    q[i] = a[i] // b[i]
    r[i] = a[i] % b[i]
    s[i] = a[i] >> 3
    p[i] = a[i] * b[i] + 2147483647


def _c_div(x: int, y: int) -> int:
    q = abs(x) // abs(y)
    return q if (x >= 0) == (y >= 0) else -q


def _wrap32(x: int) -> int:
    return (x + 2**31) % 2**32 - 2**31


def test_integer_division_truncates_and_wraps_like_c():
    rng = np.random.default_rng(0)
    a = rng.integers(-1000, 1000, 64).astype(np.int32)
    b = rng.integers(1, 20, 64).astype(np.int32) * rng.choice([-1, 1], 64).astype(np.int32)
    a[:4] = [-2**31, -7, 7, -2**31]
    b[:4] = [-1, 2, -2, 3]
    outs = [np.zeros(64, np.int32) for _ in range(4)]
    refimpl.interpret(int_ops, a, b, *outs)
    q, r, s, p = outs
    assert q.tolist() == [_wrap32(_c_div(int(x), int(y))) for x, y in zip(a, b)]
    assert r.tolist() == [int(x) - _c_div(int(x), int(y)) * int(y) if (x, y) != (-2**31, -1) else 0
                          for x, y in zip(a, b)]
    assert s.tolist() == [int(x) >> 3 for x in a]
    assert p.tolist() == [_wrap32(int(x) * int(y) + 2**31 - 1) for x, y in zip(a, b)]


# ---------------------------------------------------------------- conversions (§2.4)


@kernel(grid=1, block=8)
def to_ints(x: f32[8], a: i32[8], b: u32[8], c: i64[8]):
    i = threadIdx.x
    a[i] = cast(x[i], i32)
    b[i] = cast(x[i], u32)
    c[i] = cast(x[i], i64)


def test_float_to_int_truncates_and_saturates_nan_to_zero():
    x = np.array([2.7, -2.7, 3e9, -3e9, np.nan, np.inf, -np.inf, 1e19], np.float32)
    a, b, c = np.zeros(8, np.int32), np.zeros(8, np.uint32), np.zeros(8, np.int64)
    refimpl.interpret(to_ints, x, a, b, c)
    assert a.tolist() == [2, -2, 2**31 - 1, -2**31, 0, 2**31 - 1, -2**31, 2**31 - 1]
    assert b.tolist() == [2, 0, 3000000000, 0, 0, 2**32 - 1, 0, 2**32 - 1]
    assert c.tolist() == [2, -2, 3000000000, -3000000000, 0, 2**63 - 1, -2**63, 2**63 - 1]


# ---------------------------------------------------------------- f16 / bf16 rounding (§2.3)


@kernel(grid=1, block=64)
def f16_ops(a: f16[64], b: f16[64], c: f16[64], twice: f16[64], once: f16[64]):
    i = threadIdx.x
    twice[i] = a[i] * b[i] + c[i]
    once[i] = fma(a[i], b[i], c[i])


def test_f16_rounds_each_operation_and_fma_rounds_once():
    rng = np.random.default_rng(1)
    a, b, c = (rng.standard_normal(64).astype(np.float16) for _ in range(3))
    twice, once = np.zeros(64, np.float16), np.zeros(64, np.float16)
    refimpl.interpret(f16_ops, a, b, c, twice, once)
    want_twice = [np.float16(np.float16(x * y) + z) for x, y, z in zip(a, b, c)]   # NumPy f16 scalars round per op
    want_once = [np.float16(float(x) * float(y) + float(z)) for x, y, z in zip(a, b, c)]  # exact in f64
    np.testing.assert_array_equal(twice, want_twice)
    np.testing.assert_array_equal(once, want_once)
    assert (twice != once).any()           # the inputs are chosen so the two roundings differ somewhere


@kernel(grid=1, block=4)
def f32_fma(a: f32[4], b: f32[4], c: f32[4], out: f32[4]):
    i = threadIdx.x
    out[i] = fma(a[i], b[i], c[i])


def test_f32_fma_is_not_double_rounded():
    """a·b = ±(1 + 2⁻¹¹ + 2⁻²⁴) is exactly halfway between two f32 values; c = ±2⁻⁸⁰ decides the
    side. Rounding a·b + c to f64 first loses c and then ties to even (1 + 2⁻¹¹) on every lane."""
    a = np.float32(1 + 2**-12) * np.array([1, 1, -1, -1], np.float32)
    b = np.full(4, 1 + 2**-12, np.float32)
    c = np.array([2**-80, -2**-80, -2**-80, 2**-80], np.float32)
    out = np.zeros(4, np.float32)
    refimpl.interpret(f32_fma, a, b, c, out)
    up, down = np.float32(1 + 2**-11 + 2**-23), np.float32(1 + 2**-11)
    np.testing.assert_array_equal(out, [up, down, -up, -down])


@kernel(grid=1, block=64)
def bf16_mul_add(a: bf16[64], b: bf16[64], out: bf16[64], wide: f32[64]):
    i = threadIdx.x
    out[i] = a[i] * b[i] + a[i]
    wide[i] = a[i] * b[i]


def _bf16(x):
    """Round-to-nearest-even to bf16, independently of spec.dtypes: via Python floats."""
    x = np.asarray(x, np.float32)
    bits = x.view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return (rounded.astype(np.uint32) << 16).view(np.float32)


def test_bf16_rounds_each_operation():
    rng = np.random.default_rng(2)
    af, bf = _bf16(rng.standard_normal(64)), _bf16(rng.standard_normal(64))
    a, b = (dtypes.to_bf16_bits(v) for v in (af, bf))
    out, wide = np.zeros(64, np.uint16), np.zeros(64, np.float32)
    refimpl.interpret(bf16_mul_add, a, b, out, wide)
    prod = _bf16(af * bf)                   # f32 product of two bf16 values is exact
    np.testing.assert_array_equal(dtypes.from_bf16_bits(out), _bf16(prod + af))
    np.testing.assert_array_equal(wide, prod)


# ---------------------------------------------------------------- lazy evaluation (§2.3)


@kernel(grid=1, block=64)
def guarded(n: i32, a: f32[n], out: f32[64]):
    i = threadIdx.x
    ok = i < n and a[i] > 0.0
    out[i] = select(i < n, a[i] if i < n else 0.0, -1.0) + (1.0 if ok else 0.0)


def test_short_circuit_and_select_skip_the_untaken_reads():
    a = np.array([1.0, -2.0, 3.0], np.float32)
    out = np.zeros(64, np.float32)
    refimpl.interpret(guarded, 3, a, out)
    np.testing.assert_array_equal(out, [2.0, -2.0, 4.0] + [-1.0] * 61)


# ---------------------------------------------------------------- shuffles (§5.6)


@kernel(grid=1, block=64)
def shuffles(a: i32[64], x: i32[64], d: i32[64], u: i32[64], s: i32[64]):
    i = threadIdx.x
    v = a[i]
    x[i] = shfl_xor(v, 5)
    d[i] = shfl_down(v, 3, width=8)
    u[i] = shfl_up(v, 2, width=16)
    s[i] = shfl_idx(v, i * 7 + 1, width=4)


def test_shuffles_follow_segments_and_keep_own_value_outside():
    a = np.arange(64, dtype=np.int32) * 10
    outs = [np.zeros(64, np.int32) for _ in range(4)]
    refimpl.interpret(shuffles, a, *outs)
    lane = np.arange(64) % 32
    base = np.arange(64) - lane
    want_x = base + (lane ^ 5)
    want_d = np.where(lane % 8 + 3 < 8, np.arange(64) + 3, np.arange(64))
    want_u = np.where(lane % 16 - 2 >= 0, np.arange(64) - 2, np.arange(64))
    want_s = base + lane - lane % 4 + (np.arange(64) * 7 + 1) % 4
    for got, want in zip(outs, (want_x, want_d, want_u, want_s)):
        np.testing.assert_array_equal(got, a[want])


@kernel(grid=1, block=64)
def shuffles_negative(a: i32[64], d: i32[64], u: i32[64]):
    v = a[threadIdx.x]
    d[threadIdx.x] = shfl_down(v, threadIdx.x % 4 - 2, width=8)
    u[threadIdx.x] = shfl_up(v, threadIdx.x % 4 - 2, width=8)


def test_negative_shuffle_deltas_stay_inside_the_segment():
    a = np.arange(64, dtype=np.int32) * 10
    d, u = np.zeros(64, np.int32), np.zeros(64, np.int32)
    refimpl.interpret(shuffles_negative, a, d, u)
    t = np.arange(64)
    delta, rel = t % 4 - 2, t % 8
    want_d = np.where((rel + delta >= 0) & (rel + delta < 8), t + delta, t)
    want_u = np.where((rel - delta >= 0) & (rel - delta < 8), t - delta, t)
    np.testing.assert_array_equal(d, a[want_d])
    np.testing.assert_array_equal(u, a[want_u])


# ---------------------------------------------------------------- tensor cores (§5.7)


def _tf32(x):
    bits = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return (((bits + 0xFFF + ((bits >> 13) & 1)) & 0xFFFFE000).astype(np.uint32)).view(np.float32)


def test_mma_m16n8k8_rounds_operands_to_tf32():
    from taskmap.conformance.kernels.semantics import mma_m16n8k8_tf32     # fragments by the PTX layouts (§5.7)
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((16, 8)).astype(np.float32), rng.standard_normal((8, 8)).astype(np.float32)
    c = np.zeros((16, 8), np.float32)
    want = (_tf32(a).astype(np.float64) @ _tf32(b).astype(np.float64)).astype(np.float32)
    refimpl.interpret(mma_m16n8k8_tf32, a, b, c)
    np.testing.assert_allclose(c, want, rtol=2**-18 * 8, atol=1e-6)
    assert not np.allclose(want, (a.astype(np.float64) @ b).astype(np.float32), rtol=1e-7, atol=0)


# ---------------------------------------------------------------- atomics (§5.8)


@kernel(grid=4, block=64)
def histogram(keys: i32[256], counts: i32[8], olds: i32[256]):
    i = blockIdx.x * 64 + threadIdx.x
    old = atomic_add(counts[keys[i]], 1)
    olds[i] = old


def test_atomics_count_and_return_distinct_old_values():
    keys = np.random.default_rng(4).integers(0, 8, 256).astype(np.int32)
    counts, olds = np.zeros(8, np.int32), np.zeros(256, np.int32)
    refimpl.interpret(histogram, keys, counts, olds)
    np.testing.assert_array_equal(counts, np.bincount(keys, minlength=8))
    for k in range(8):
        assert sorted(olds[keys == k].tolist()) == list(range(counts[k]))


# ---------------------------------------------------------------- barriers and races (§5.3, §10)


@kernel(grid=2, block=64, verify=False)
def warp_exchange(across: i32, out: i32[128]):
    s = shared_tensor(i32, [64])
    t = threadIdx.x
    s[t] = t * 3
    syncwarp()
    partner = (t + 32) % 64 if across else t ^ 1
    out[blockIdx.x * 64 + t] = s[partner]


def test_syncwarp_orders_a_warp_but_not_the_block():
    out = np.zeros(128, np.int32)
    refimpl.interpret(warp_exchange, 0, out)
    np.testing.assert_array_equal(out, np.tile((np.arange(64) ^ 1) * 3, 2))
    with pytest.raises(refimpl.KernelTrap) as info:
        refimpl.interpret(warp_exchange, 1, out)
    assert info.value.phrase == "data race on shared memory"
    assert [tuple(t) for t in info.value.thread] == [(32, 0, 0), (0, 0, 0)]


@kernel(grid=2, block=64, verify=False)
def write_after_read(mode: i32, out: i32[128]):
    s = shared_tensor(i32, [64])
    t = threadIdx.x
    s[t] = t
    syncthreads()
    v = 0
    if mode == 2:
        v = s[t // 8 * 8]                  # each multiple of 8 read by the 8 threads of one warp above it
    else:
        if mode == 4:
            v = s[0]                       # read by every thread
        else:
            v = s[t]
    if mode == 1:
        syncthreads()
    if mode == 3 or mode == 5:
        syncwarp()
    if mode == 6:
        if blockIdx.x == 0:                # a barrier of block 0 only
            syncthreads()
    if mode == 3:
        s[t ^ 1] = v
    else:
        if mode == 5:
            s[(t + 32) % 64] = v
        else:
            s[(t + 1) % 64] = v
    syncthreads()
    out[blockIdx.x * 64 + t] = s[t]


WRITE_AFTER_READ_RACES = {   # mode: (block, element, reader, writing thread)
    0: ((0, 0, 0), 1, "thread (1,0,0)", (0, 0, 0)),
    2: ((0, 0, 0), 8, "threads of warp 0", (7, 0, 0)),
    4: ((0, 0, 0), 0, "several threads", (63, 0, 0)),
    5: ((0, 0, 0), 32, "thread (32,0,0)", (0, 0, 0)),
    6: ((1, 0, 0), 1, "thread (1,0,0)", (0, 0, 0)),
}


@pytest.mark.parametrize("defer_limit", [0, memory.DEFER_LIMIT])      # 0: every read recorded at once
@pytest.mark.parametrize("mode", sorted(WRITE_AFTER_READ_RACES))
def test_write_after_unordered_read_traps(monkeypatch, defer_limit, mode):
    monkeypatch.setattr(memory, "DEFER_LIMIT", defer_limit)
    block, element, reader, writer = WRITE_AFTER_READ_RACES[mode]
    with pytest.raises(refimpl.KernelTrap) as info:
        refimpl.interpret(write_after_read, mode, np.zeros(128, np.int32))
    trap = info.value
    assert str(trap).startswith(f"[race] data race on shared memory: s[{element}] read by {reader} and written by "
                                f"thread {'(%d,%d,%d)' % writer}"), str(trap)
    assert tuple(trap.block) == block and tuple(trap.thread[1]) == writer


@pytest.mark.parametrize("defer_limit", [0, memory.DEFER_LIMIT])
@pytest.mark.parametrize("mode, after", [(1, lambda u: (u - 1) % 64), (3, lambda u: u ^ 1)])
def test_write_after_read_ordered_by_a_barrier_runs_clean(monkeypatch, defer_limit, mode, after):
    monkeypatch.setattr(memory, "DEFER_LIMIT", defer_limit)
    out = np.zeros(128, np.int32)
    refimpl.interpret(write_after_read, mode, out)
    np.testing.assert_array_equal(out, np.tile(after(np.arange(64)), 2))


@kernel(grid=1, block=64)
def tree_reduce(a: f32[64], out: f32[1]):
    s = shared_tensor(f32, [64])
    t = threadIdx.x
    s[t] = a[t]
    syncthreads()
    step = 32
    while step > 0:
        if t < step:
            s[t] = s[t] + s[t + step]
        syncthreads()
        step = step // 2
    if t == 0:
        out[0] = s[0]


def test_tree_reduction_with_barriers_is_race_free():
    a = (np.arange(64) / 4).astype(np.float32)
    out = np.zeros(1, np.float32)
    refimpl.interpret(tree_reduce, a, out)
    assert out[0] == a.sum()


@kernel(grid=1, block=32)
def async_zero_fill(n: i32, a: f32[128], b: f32[128]):
    s = shared_tensor(f32, [128], layout=swizzle(2, 2, 3))
    t = threadIdx.x
    cp_async(s[t * 4], a[t * 4], elems=4, valid=t * 4 < n)
    cp_async_commit_group()
    cp_async_wait_group(0)
    for e in range(4):
        b[t * 4 + e] = s[t * 4 + e]


def test_cp_async_lands_at_wait_and_zero_fills_invalid_copies():
    a = np.arange(128, dtype=np.float32) + 1
    b = np.zeros(128, np.float32)
    refimpl.interpret(async_zero_fill, 40, a, b)
    np.testing.assert_array_equal(b, np.where(np.arange(128) < 40, a, 0))


# ---------------------------------------------------------------- control flow (§5.2)


@kernel(grid=1, block=32)
def ragged_loops(a: i32[32]):
    t = threadIdx.x
    total = 0
    for k in range(t % 5, t, 3):
        total += k
    n = t
    while n > 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        total += 1
    a[t] = total


def test_loops_with_per_thread_trip_counts():
    a = np.zeros(32, np.int32)
    refimpl.interpret(ragged_loops, a)

    def collatz_steps(n):
        steps = 0
        while n > 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
            steps += 1
        return steps
    assert a.tolist() == [sum(range(t % 5, t, 3)) + collatz_steps(t) for t in range(32)]


# ---------------------------------------------------------------- launch, empty, trace


@kernel(grid=lambda m: (m + 31) // 32, block=32)
def copy2d(m: i32, n: i32, a: f32[m, n], b: f32[m, n]):
    r = blockIdx.x * 32 + threadIdx.x
    if r < m:
        for c in range(n):
            b[r, c] = a[r, c]


def test_launch_validates_arguments():
    a, b = np.zeros((4, 5), np.float32), np.zeros((4, 5), np.float32)
    with pytest.raises(LaunchError) as info:
        refimpl.interpret(copy2d, 4, 5, a, np.zeros((5, 4), np.float32))
    assert (info.value.kind, info.value.phrase, info.value.param) == ("launch", "shape mismatch", "b")
    assert str(info.value).startswith("shape mismatch: parameter b of kernel copy2d expects shape (4, 5) from (m, n), "
                                      "got (5, 4)")
    with pytest.raises(LaunchError, match="dtype mismatch: parameter a of kernel copy2d expects an array of float32, "
                                          "got float64"):
        refimpl.interpret(copy2d, 4, 5, a.astype(np.float64), b)
    with pytest.raises(LaunchError, match="dtype mismatch: parameter m of kernel copy2d expects a i32 scalar"):
        refimpl.interpret(copy2d, 4.0, 5, a, b)
    with pytest.raises(LaunchError, match="takes 4 arguments, got 3"):
        refimpl.interpret(copy2d, 4, 5, a)
    with pytest.raises(LaunchError, match="invalid launch configuration"):
        refimpl.interpret(copy2d, 0, 5, np.zeros((0, 5), np.float32), np.zeros((0, 5), np.float32))


def test_empty_tracks_initialization_across_launches():
    a = np.arange(20, dtype=np.float32).reshape(4, 5)
    b = refimpl.empty((4, 5), np.float32)
    refimpl.interpret(copy2d, 4, 5, a, b)
    assert b.initialized.all()
    c = refimpl.empty((4, 5), np.float32)
    refimpl.interpret(copy2d, 4, 5, b, c)              # b's elements now count as written
    np.testing.assert_array_equal(c, a)
    with pytest.raises(refimpl.KernelTrap, match="uninitialized global read: a\\[0, 0\\]"):
        refimpl.interpret(copy2d, 4, 5, refimpl.empty((4, 5), np.float32), c)


def test_trace_records_a_threads_assignments_and_stores():
    a = np.arange(20, dtype=np.float32).reshape(4, 5)
    trace = refimpl.Trace(block=(0, 0, 0), threads=[(2, 0, 0)])
    refimpl.interpret(copy2d, 4, 5, a, np.zeros((4, 5), np.float32), trace=trace)
    stores = [e for e in trace.events if e.code.startswith("b[r, c]")]
    assert [e.values for e in stores] == [f"b[2, {c}] = {a[2, c]}" for c in range(5)]
    assert all(e.thread == (2, 0, 0) and e.loc.line == stores[0].loc.line for e in stores)
    assert "r = blockIdx.x * 32 + threadIdx.x" in str(trace) and "# r = 2" in str(trace)


def test_debug_cli_traces_a_thread_and_reports_traps(capsys):
    bugs = Path(__file__).resolve().parents[1] / "conformance" / "kernels" / "bugs.py"
    assert debug.main([f"{bugs}::off_by_one", "--thread", "40", "--shape", "n=40"]) == 1
    out = capsys.readouterr().out
    assert "TRAP [oob] out of bounds global access: a[40]" in out
    assert "statement: b[i] = a[i]" in out and "# i = 40" in out
    assert debug.main([f"{bugs}::negative_index", "--thread", "5", "--shape", "n=32"]) == 1
    assert debug.main([f"{bugs}::nope"]) == 2
    assert "has no kernel 'nope'" in capsys.readouterr().err


# ---------------------------------------------------------------- §10 table, rarer traps


def test_trap_phrases_match_spec_table():
    import re
    from taskmap.refimpl.traps import PHRASES
    text = Path(__file__).resolve().parents[1].joinpath("spec", "SPEC.md").read_text()
    section = text[text.index("## 10. Traps"):]
    rows = re.findall(r"^\| (\w+) \| ([^|]+) \| [^|]+ \|$", section, re.M)
    table = {kind: tuple(p.strip() for p in phrases.split(" / ")) for kind, phrases in rows if kind != "kind"}
    assert table == PHRASES


@kernel(grid=1, block=4, verify=False)
def stepped(step: i32, a: i32[4]):
    total = 0
    for k in range(0, 8, step):
        total += k
    a[threadIdx.x] = total


def test_zero_loop_step_traps():
    a = np.zeros(4, np.int32)
    refimpl.interpret(stepped, 3, a)
    assert a.tolist() == [0 + 3 + 6] * 4
    with pytest.raises(refimpl.KernelTrap) as info:
        refimpl.interpret(stepped, 0, a)
    assert (info.value.kind, info.value.phrase, tuple(info.value.thread)) == ("loop", "zero loop step", (0, 0, 0))


def test_uninitialized_variable_read_traps():
    from taskmap.spec import ir
    x = ir.Var("x", dtypes.int32)
    out = ir.Buffer("out", dtypes.int32, (ir.const(4),), "global")
    tid = ir.Special("threadIdx.x")
    body = (ir.DeclareVar(x, None),
            ir.If(ir.Binary("<", tid, ir.const(2)), (ir.Assign(x, tid),)),
            ir.Store(out, (tid,), x))
    k = ir.Kernel("uninit_var", (out,), (ir.const(1),) * 3, (ir.const(4), ir.const(1), ir.const(1)), body)
    with pytest.raises(refimpl.KernelTrap) as info:
        refimpl.interpret(k, np.zeros(4, np.int32))
    assert (info.value.phrase, tuple(info.value.thread)) == ("uninitialized variable read", (2, 0, 0))


# ---------------------------------------------------------------- index simplification (refimpl/ranges.py)


@kernel(grid=1, block=32)
def divmod_patterns(a: i32[32, 8, 4]):
    t = threadIdx.x
    for r in range(4):
        x = t * 4 + r
        a[t, 0, r] = x % 4                    # rewritten to r
        a[t, 1, r] = x // 4                   # rewritten to t
        y = t * 4 + r + 1                     # the remainder part reaches 4: kept
        a[t, 2, r] = y % 4
        z = (t - 16) * 4 + r                  # negative multiples: C remainder, kept
        a[t, 3, r] = z % 4
        a[t, 4, r] = z // 4
        w = x * 8 + r * 2
        a[t, 5, r] = w % 8
        a[t, 6, r] = w // 8
        a[t, 7, r] = (r + 4 * t) // 4


def test_index_simplification_keeps_c_semantics():
    from taskmap.refimpl.launch import program_for
    from taskmap.spec import ir
    from taskmap.spec.passes import lower
    a = np.zeros((32, 8, 4), np.int32)
    refimpl.interpret(divmod_patterns, a)
    t, r = np.meshgrid(np.arange(32), np.arange(4), indexing="ij")

    def c_div(x, y):
        return np.trunc(x / y).astype(np.int64)
    x, y, z = t * 4 + r, t * 4 + r + 1, (t - 16) * 4 + r
    w = x * 8 + r * 2
    want = [x % 4, x // 4, y % 4, z - c_div(z, 4) * 4, c_div(z, 4), w % 8, w // 8, (r + 4 * t) // 4]
    for row, expected in enumerate(want):
        np.testing.assert_array_equal(a[:, row, :], expected, err_msg=f"row {row}")

    def count(k):
        return sum(isinstance(n, ir.Binary) and n.op in ("/", "%") for n in ir.walk(k))
    assert count(program_for(divmod_patterns).kernel) < count(lower(divmod_patterns))


@kernel(grid=2, block=64)
def shared_atomics(keys: i32[128], out: i32[2, 4], top: i32[1], fsum: f32[1], bsum: bf16[1], olds: i32[128]):
    s = shared_tensor(i32, [4])
    t = threadIdx.x
    if t < 4:
        s[t] = 0
    syncthreads()
    i = blockIdx.x * 64 + t
    atomic_add(s[keys[i] % 4], 1)
    atomic_max(top[0], keys[i])
    atomic_add(fsum[0], 0.5)
    atomic_add(bsum[0], 1.0)
    old = atomic_cas(out[blockIdx.x, 3], 0, i + 1)
    olds[i] = old
    syncthreads()
    if t < 3:
        out[blockIdx.x, t] = s[t]


def test_atomics_on_shared_and_global_of_several_types():
    keys = np.random.default_rng(5).integers(0, 100, 128).astype(np.int32)
    out, top, olds = np.zeros((2, 4), np.int32), np.zeros(1, np.int32), np.zeros(128, np.int32)
    fsum, bsum = np.zeros(1, np.float32), np.zeros(1, np.uint16)
    refimpl.interpret(shared_atomics, keys, out, top, fsum, bsum, olds)
    for b in range(2):
        np.testing.assert_array_equal(out[b, :3], np.bincount(keys[64 * b:64 * b + 64] % 4, minlength=4)[:3])
        winners = np.flatnonzero(olds[64 * b:64 * b + 64] == 0)        # exactly one cas found 0
        assert len(winners) == 1 and out[b, 3] == 64 * b + winners[0] + 1
        assert set(olds[64 * b:64 * b + 64]) == {0, out[b, 3]}
    assert top[0] == keys.max() and fsum[0] == 64.0
    assert dtypes.from_bf16_bits(bsum)[0] == 128.0


@kernel(grid=1, block=64)
def transcendentals(x: f32[64], h: f16[64], out: f32[8, 64], outh: f16[8, 64]):
    i = threadIdx.x
    v = x[i]
    out[0, i] = exp(v)
    out[1, i] = log(abs(v) + 1.0)
    out[2, i] = tanh(v)
    out[3, i] = erf(v)
    out[4, i] = pow(abs(v), 1.5)
    out[5, i] = rsqrt(abs(v) + 1.0)
    out[6, i] = sin(v) + cos(v)
    out[7, i] = exp2(v) - log2(abs(v) + 1.0)
    w = h[i]
    outh[0, i] = exp(w)
    outh[1, i] = tanh(w)
    outh[2, i] = sqrt(abs(w))


def test_math_intrinsics_within_spec_bounds():
    import math
    x = np.linspace(-3, 3, 64).astype(np.float32)
    h = x.astype(np.float16)
    out, outh = np.zeros((8, 64), np.float32), np.zeros((8, 64), np.float16)
    refimpl.interpret(transcendentals, x, h, out, outh)
    d = x.astype(np.float64)
    erf = np.array([math.erf(v) for v in d])
    want = [np.exp(d), np.log(abs(d) + 1), np.tanh(d), erf, abs(d) ** 1.5, 1 / np.sqrt(abs(d) + 1),
            np.sin(d) + np.cos(d), np.exp2(d) - np.log2(abs(d) + 1)]
    for row, w in enumerate(want):           # §2.5: 4 ulp of f32 per operation
        np.testing.assert_allclose(out[row], w, rtol=2**-20, atol=2**-22, err_msg=f"row {row}")
    hd = h.astype(np.float64)
    for row, w in enumerate([np.exp(hd), np.tanh(hd), np.sqrt(abs(hd))]):
        np.testing.assert_allclose(outh[row].astype(np.float64), w, rtol=2**-10, atol=2**-14, err_msg=f"f16 {row}")
    np.testing.assert_array_equal(outh[2], np.sqrt(np.abs(h).astype(np.float32)).astype(np.float16))
