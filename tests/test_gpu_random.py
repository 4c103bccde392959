"""Differential testing: randomly generated kernels run on the GPU and on the interpreter must
agree bit for bit (SPEC.md §2.5: integer, conversion and + - * / sqrt fma results are exact).

Each kernel reads one input of every dtype (random values plus NaN, ±inf, ±0 and the
integer extremes) and stores ~20 random expression trees. Expressions avoid what SPEC
makes a trap (division by zero, shift amounts out of range); MIN / -1 is exercised.
"""
from __future__ import annotations

import numpy as np
import pytest

from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from tests import gpu_compare

N = 128
TYPES = (dt.boolean, dt.int8, dt.int16, dt.int32, dt.int64, dt.uint8, dt.uint32,
         dt.float16, dt.bfloat16, dt.float32, dt.float64)
NUMERIC = tuple(t for t in TYPES if t is not dt.boolean)
EXACT_MATH = ("sqrt", "abs", "floor", "ceil", "fma")
TRANSCENDENTAL = ("exp", "exp2", "log", "log2", "tanh", "erf", "sin", "cos", "rsqrt")


class Gen:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.inputs = {t: ir.Buffer(f"x_{t.short}", t, (ir.const(N),), "global") for t in TYPES}
        self.tid = ir.Var("tid", dt.int32)

    def pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def leaf(self, t: dt.DType) -> ir.Expr:
        if self.rng.random() < 0.2 and t is not dt.boolean:
            if t.is_integer:
                return ir.const(abs(int(self.rng.integers(-100, 100))) if t.kind == "uint" else
                                int(self.rng.integers(-100, 100)), t)
            return ir.const(dt.round_to(float(self.rng.normal() * 10), t), t)   # a value of t
        lane = self.tid if self.rng.random() < 0.8 else ir.binary("%", ir.binary("+", self.tid, 7), N)
        return ir.Load(self.inputs[t], (lane,))

    def expr(self, t: dt.DType, depth: int) -> ir.Expr:
        """An expression of type exactly t."""
        if depth == 0 or self.rng.random() < 0.15:
            return self.leaf(t)
        r = self.rng.random()
        if t is dt.boolean:
            if r < 0.5:
                s = self.pick(NUMERIC)
                return ir.Binary(self.pick(ir.COMPARE_OPS), self.expr(s, depth - 1), self.expr(s, depth - 1))
            if r < 0.8:
                return ir.Binary(self.pick(ir.LOGIC_OPS), self.expr(t, depth - 1), self.expr(t, depth - 1))
            return ir.Unary("not", self.expr(t, depth - 1))
        if r < 0.2:
            return ir.Cast(self.expr(self.pick(TYPES), depth - 1), t)
        if r < 0.3:
            return ir.Select(self.expr(dt.boolean, depth - 1), self.expr(t, depth - 1), self.expr(t, depth - 1))
        if r < 0.4:
            return ir.Binary(self.pick(ir.MINMAX_OPS), self.expr(t, depth - 1), self.expr(t, depth - 1))
        if t.is_float:
            if r < 0.5:
                fn = self.pick(EXACT_MATH)
                return ir.Call(fn, tuple(self.expr(t, depth - 1) for _ in range(3 if fn == "fma" else 1)))
            if r < 0.55:
                return ir.Unary("neg", self.expr(t, depth - 1))
            return ir.Binary(self.pick(ir.ARITH_OPS), self.expr(t, depth - 1), self.expr(t, depth - 1))
        a, b = self.expr(t, depth - 1), self.expr(t, depth - 1)
        if r < 0.5:
            return ir.Unary(self.pick(("neg", "invert")), a)
        if r < 0.65:
            amount = ir.Binary("&", ir.Cast(b, dt.int32), ir.const(t.bits - 1))
            return ir.Binary(self.pick(("<<", ">>")), a, amount)
        if r < 0.8:
            return ir.Binary(self.pick(("/", "%")), a, self.safe_divisor(b, t))
        return ir.Binary(self.pick(("+", "-", "*", "&", "|", "^")), a, b)

    def safe_divisor(self, b: ir.Expr, t: dt.DType) -> ir.Expr:
        """b, or -1 where b is 0 (division by zero traps; MIN / -1 must wrap)."""
        return ir.Select(ir.Binary("==", b, ir.const(0, t)), ir.const(-1 if t.kind == "int" else 7, t), b)

    def kernel(self, count: int = 20, depth: int = 4) -> ir.Kernel:
        outs, body = [], [ir.DeclareVar(self.tid, ir.Special("threadIdx.x"))]
        for i in range(count):
            t = self.pick(TYPES)
            out = ir.Buffer(f"out{i}", t, (ir.const(N),), "global")
            outs.append(out)
            body.append(ir.Store(out, (self.tid,), self.expr(t, depth)))
        params = tuple(self.inputs.values()) + tuple(outs)
        return ir.Kernel("random_kernel", params, (ir.const(1),) * 3, (ir.const(N), ir.const(1), ir.const(1)),
                         tuple(body))


def as_values(a: np.ndarray, t: dt.DType) -> np.ndarray:
    return dt.from_bf16_bits(a) if t is dt.bfloat16 else a


def sample(rng: np.random.Generator, t: dt.DType) -> np.ndarray:
    if t is dt.boolean:
        return rng.random(N) < 0.5
    if t.is_integer:
        info = np.iinfo(t.storage)
        x = rng.integers(info.min, info.max, N, endpoint=True, dtype=np.int64 if t.bits < 64 else t.storage)
        x = x.astype(t.storage)
        x[:8] = [info.min, info.max, 0, 1, -1 if t.kind == "int" else 2, 3, info.min + 1, info.max - 1]
        small = rng.integers(-20, 21, N // 4)
        x[8:8 + N // 4] = small if t.kind == "int" else np.abs(small)
        return x
    x = (rng.standard_normal(N) * rng.choice([1e-3, 1, 100, 1e5], N)).astype(np.float64)
    x[:8] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 0.5]
    with np.errstate(over="ignore"):                 # 1e30 becomes inf in f16/bf16
        return dt.to_bf16_bits(x.astype(np.float32)) if t is dt.bfloat16 else x.astype(t.storage)


def run_on_inputs(k: ir.Kernel, inputs: dict):
    return gpu_compare.run_both(k, *(inputs[p.name] if p.name in inputs else np.zeros(N, p.dtype.storage)
                                     for p in k.params))


@pytest.mark.gpu
@pytest.mark.parametrize("seed", range(40))
def test_random_kernels_agree_bit_for_bit(seed):
    g = Gen(seed)
    k = g.kernel()
    rng = np.random.default_rng(1000 + seed)
    inputs = {b.name: sample(rng, t) for t, b in g.inputs.items()}
    got, want = run_on_inputs(k, inputs)
    for p, a, b in zip(k.params, got, want):
        if p.name.startswith("out"):
            stmt = next(s for s in k.body if isinstance(s, ir.Store) and s.buffer.name == p.name)
            a, b = as_values(a, p.dtype), as_values(b, p.dtype)
            bad = np.flatnonzero(~((a == b) | ((a != a) & (b != b))))      # NaN payloads may differ
            assert bad.size == 0, (f"seed {seed} {p.name}: {p.dtype.short} = {stmt.value}\n"
                                   f"lanes {bad[:5]}: gpu {a[bad[:5]]} interpreter {b[bad[:5]]}")


@pytest.mark.gpu
@pytest.mark.parametrize("t", [dt.float32, dt.float16, dt.bfloat16, dt.float64])
def test_transcendentals_within_spec_bound(t):
    """§2.5: at most 4 ulp apart, compared with rtol 2^-20 (f32), 2^-8 (f16), 2^-5 (bf16)."""
    x = ir.Buffer("x", t, (ir.const(N),), "global")
    tid = ir.Var("tid", dt.int32)
    outs = [ir.Buffer(f"out_{fn}", t, (ir.const(N),), "global") for fn in TRANSCENDENTAL + ("pow",)]
    body = [ir.DeclareVar(tid, ir.Special("threadIdx.x"))]
    for fn, out in zip(TRANSCENDENTAL + ("pow",), outs):
        args = (ir.Load(x, (tid,)),) * (2 if fn == "pow" else 1)
        body.append(ir.Store(out, (tid,), ir.Call(fn, args)))
    k = ir.Kernel("transcendentals", (x, *outs), (ir.const(1),) * 3, (ir.const(N), ir.const(1), ir.const(1)),
                  tuple(body))
    values = np.random.default_rng(5).uniform(0.05, 4.0, N)
    data = dt.to_bf16_bits(values.astype(np.float32)) if t is dt.bfloat16 else values.astype(t.storage)
    got, want = run_on_inputs(k, {"x": data})
    rtol = {dt.float32: 2**-20, dt.float16: 2**-8, dt.bfloat16: 2**-5, dt.float64: 2**-48}[t]
    for out, a, b in zip(outs, got[1:], want[1:]):
        a, b = as_values(a, t), as_values(b, t)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0, err_msg=f"{out.name} ({t.short})")


@pytest.mark.gpu
@pytest.mark.parametrize("t", [dt.int8, dt.int16, dt.uint8])
def test_narrow_negation_wraps(t):
    """-x of every i8/u8 value and the i16 extremes, compared after sign extension (a
    miscompiled neg.s16 once gave +32768 for -(-32768))."""
    x = ir.Buffer("x", t, (ir.const(N),), "global")
    out = ir.Buffer("out", dt.int32, (ir.const(N),), "global")
    tid = ir.Var("tid", dt.int32)
    neg = ir.Unary("neg", ir.Load(x, (tid,)))
    body = (ir.DeclareVar(tid, ir.Special("threadIdx.x")),
            ir.Store(out, (tid,), ir.Cast(ir.Binary("<=", ir.Cast(ir.const(-2), t), neg), dt.int32)))
    k = ir.Kernel("negate", (x, out), (ir.const(1),) * 3, (ir.const(N), ir.const(1), ir.const(1)), body)
    info = np.iinfo(t.storage)
    values = np.linspace(info.min, info.max, N).astype(np.int64)
    values[:2] = info.min, info.max
    got, _ = run_on_inputs(k, {"x": values.astype(t.storage)})
    want = (np.int64(-2).astype(t.storage) <= (-values).astype(t.storage)).astype(np.int32)
    np.testing.assert_array_equal(got[1], want)
