"""IR expressions -> CUDA C expressions with SPEC.md §2 semantics.

Every emitted expression has exactly the C type of its IR dtype. What C would do differently
is spelled out: signed 32/64-bit `+ - * << neg` go through unsigned arithmetic (signed
overflow is undefined in C, it wraps in SPEC §2.3); narrow integers are truncated back after
C's int promotion; f16/bf16 operations compute in float and round once per operation;
float->int conversions saturate (prelude `tm_to_*`). `&&`, `||` and `?:` short-circuit
natively, which is what §2.3 asks for.
"""
from __future__ import annotations

import math

import numpy as np

from taskmap.spec import dtypes as dt
from taskmap.spec import ir

HALVES = (dt.float16, dt.bfloat16)
FULL_MASK = "0xffffffffu"
_ROUND = {dt.float16: "tm_f16", dt.bfloat16: "tm_bf16"}
_UNSIGNED_TWIN = {dt.int32: "uint32_t", dt.int64: "uint64_t"}
_F32_MATH = {"exp": "expf", "exp2": "exp2f", "log": "logf", "log2": "log2f", "sqrt": "sqrtf",
             "rsqrt": "rsqrtf", "tanh": "tanhf", "erf": "erff", "sin": "sinf", "cos": "cosf",
             "abs": "fabsf", "floor": "floorf", "ceil": "ceilf", "pow": "powf", "fma": "fmaf"}
_F64_MATH = {k: v[:-1] for k, v in _F32_MATH.items()}
_INT_MAX = {8: 127, 16: 32767, 32: 2**31 - 1, 64: 2**63 - 1}

# C/C++ keywords and CUDA names a DSL identifier must not shadow: such names get a `_` suffix.
RESERVED = set("""
alignas alignof asm auto bool break case catch char class const constexpr continue default delete
do double else enum explicit export extern false float for friend goto if inline int long mutable
namespace new noexcept nullptr operator private protected public register return short signed
sizeof static struct switch template this throw true try typedef typeid typename union unsigned
using virtual void volatile while half bf16_t min max abs threadIdx blockIdx blockDim gridDim
warpSize exp exp2 log log2 sqrt rsqrt tanh erf sin cos floor ceil pow fma memcpy memcmp printf
int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t uintptr_t main
""".split())


def cname(name: str) -> str:
    """A C identifier for a DSL name (dots from lowering never occur; keywords get a suffix)."""
    out = name.replace(".", "_")
    return out + "_" if out in RESERVED or out.startswith(("tm_", "__")) else out


def ctype(t: dt.DType) -> str:
    return "bf16_t" if t is dt.bfloat16 else t.ctype


def const(value, t: dt.DType) -> str:
    if t is dt.boolean:
        return "true" if value else "false"
    if t.is_integer:
        v = int(value)
        if t is dt.int64:
            return f"(-{_INT_MAX[64]}L - 1)" if v == -2**63 else f"{v}L"   # int64_t is long
        if t is dt.uint32:
            return f"{v}u"
        if t is dt.int32:
            return f"(-{_INT_MAX[32]} - 1)" if v == -2**31 else str(v)
        return f"({t.ctype}){v}"
    v = float(value)
    if t is dt.float64:
        return repr(v) if math.isfinite(v) else f"__longlong_as_double({np.float64(v).view(np.int64)}ll)"
    if t is dt.float32:
        f = np.float32(v)
        return f"{str(f)}f" if math.isfinite(f) else f"__int_as_float({int(f.view(np.int32))})"
    if math.isfinite(dt.round_to(v, t)):   # finite halves read better as a rounded float literal
        return f"{_ROUND[t]}({const(dt.round_to(v, t), dt.float32)})"
    return f"{'tm_f16_bits' if t is dt.float16 else 'tm_bf16_bits'}(0x{dt.half_bits(v, t):04x})"


def convert(code: str, src: dt.DType, to: dt.DType) -> str:
    """SPEC §2.4 conversion of a C expression of type `src` to type `to`."""
    if src == to:
        return code
    if to is dt.boolean:
        return f"({as_float(code, src)} != 0)" if src.is_float else f"({code} != 0)"
    if src in HALVES:
        return convert(f"tm_f32({code})", dt.float32, to)
    if to in HALVES:
        if src.is_float:
            return f"{'__double2half' if to is dt.float16 else '__double2bfloat16'}({code})" \
                if src is dt.float64 else f"{_ROUND[to]}({code})"
        prefix = "half" if to is dt.float16 else "bfloat16"
        wide = {dt.int64: "ll", dt.uint32: "uint"}.get(src, "int")
        return f"__{wide}2{prefix}_rn({code})"
    if to.is_integer and src.is_float:
        return f"tm_to_{to.short}({code})"
    return f"({ctype(to)})({code})"


def as_float(code: str, t: dt.DType) -> str:
    """f16/bf16 values enter arithmetic as float (SPEC §2.3: compute in f32, round per op)."""
    return f"tm_f32({code})" if t in HALVES else code


def offset(buf: ir.Buffer, indices, expr) -> str:
    """Element offset of buf[indices] (missing trailing indices are 0) under its layout (§3.3).

    Global tensors whose size might reach 2^31 elements get int64 offsets.
    """
    idx = list(indices) + [ir.const(0)] * (buf.ndim - len(indices))
    layout = buf.layout
    if buf.scope == "global" and not _fits_i32(buf):
        out = _wide_offset(buf, idx, expr)
    elif all(isinstance(i, ir.Const) for i in idx) and all(isinstance(s, ir.Const) for s in _strides(buf)):
        out = str(sum(i.value * s.value for i, s in zip(idx, _strides(buf))))
    else:
        terms = [expr(i) if s == ir.const(1) else f"{expr(i)} * {expr(s)}"
                 for i, s in zip(idx, _strides(buf)) if i != ir.const(0)]
        out = " + ".join(terms) or "0"
    if isinstance(layout, ir.Swizzle):
        out = f"tm_swizzle({out}, 0x{layout.mask:x}, {layout.shift})"
    return out


def _strides(buf: ir.Buffer) -> list:
    if isinstance(buf.layout, ir.Strided):
        return list(buf.layout.strides)
    strides, run = [], ir.const(1)
    for extent in reversed(buf.shape):
        strides.append(run)
        run = ir.binary("*", run, extent)
    return strides[::-1]


def _wide_offset(buf: ir.Buffer, idx, expr) -> str:
    """int64 offsets (Horner form for row-major, so no i32 product of extents can overflow)."""
    if isinstance(buf.layout, ir.Strided):
        return " + ".join(f"(int64_t){expr(i)} * {expr(s)}" for i, s in zip(idx, buf.layout.strides))
    out = f"(int64_t){expr(idx[0])}"
    for i, extent in zip(idx[1:], buf.shape[1:]):
        out = f"({out} * {expr(extent)} + {expr(i)})"
    return strip_parens(out)


def _fits_i32(buf: ir.Buffer) -> bool:
    if not all(isinstance(s, ir.Const) for s in buf.shape):
        return False
    return math.prod(s.value for s in buf.shape) < 2**31


class ExprEmitter:
    """Turns expressions into C; `warp_mask` is the member mask shuffles use."""

    def __init__(self, warp_mask: str):
        self.warp_mask = warp_mask

    def __call__(self, e: ir.Expr) -> str:
        return strip_parens(self.emit(e))

    def emit(self, e: ir.Expr) -> str:
        match e:
            case ir.Const(value=v, type=t):
                return const(v, t)
            case ir.Var(name=n):
                return cname(n)
            case ir.Special(name=n):
                return f"(int){n}"
            case ir.Unary():
                return self.unary(e)
            case ir.Binary():
                return self.binary(e)
            case ir.Select(cond=c, a=a, b=b):
                t = e.dtype
                return f"({self.emit(c)} ? {self.conv(a, t)} : {self.conv(b, t)})"
            case ir.Cast(a=a, type=t):
                return convert(self.emit(a), a.dtype, t)
            case ir.Call():
                return self.call(e)
            case ir.Load(buffer=b, indices=idx):
                return f"{cname(b.name)}[{offset(b, idx, self.emit)}]"
            case ir.Shuffle():
                return self.shuffle(e)
        raise TypeError(f"cannot emit expression {e!r}")

    def conv(self, e: ir.Expr, to: dt.DType) -> str:
        return convert(self.emit(e), e.dtype, to)

    def unary(self, e: ir.Unary) -> str:
        t, a = e.dtype, self.emit(e.a)
        if e.op == "not" or t is dt.boolean:         # ~ on bool is logical not, like NumPy's invert
            return f"(!{a})"
        if e.op == "invert":
            return f"(({t.ctype})~{a})"
        if t in HALVES:
            return f"{_ROUND[t]}(-tm_f32({a}))"
        if t in _UNSIGNED_TWIN:
            return f"(({t.ctype})(0 - ({_UNSIGNED_TWIN[t]}){a}))"
        if t.kind == "int":                           # i8/i16 (i32/i64 went through the unsigned twin)
            return f"(({t.ctype})tm_neg32({strip_parens(a)}))"
        a = f"({a})" if a.startswith("-") else a       # `--x` would be a decrement
        return f"(-{a})" if t.is_float or t is dt.uint32 else f"(({t.ctype})(-{a}))"

    def binary(self, e: ir.Binary) -> str:
        op = e.op
        if op in ir.LOGIC_OPS:
            return f"({self.emit(e.a)} {op} {self.emit(e.b)})"
        if op in ("<<", ">>"):
            return self.shift(e)
        # each operand is emitted once on every path: emitting it twice (once converted, once as
        # a float) doubles the work per level, exponential in the depth of an expression
        t = dt.promote(e.a.dtype, e.b.dtype)
        if op in ir.COMPARE_OPS:
            return f"({self.in_float(e.a, t)} {op} {self.in_float(e.b, t)})"
        if t.is_float and op not in ir.MINMAX_OPS:
            fa, fb = self.in_float(e.a, t), self.in_float(e.b, t)
            value = f"{'fmodf' if t != dt.float64 else 'fmod'}({fa}, {fb})" if op == "%" else f"({fa} {op} {fb})"
            return f"{_ROUND[t]}({strip_parens(value)})" if t in HALVES else value
        if t in _UNSIGNED_TWIN and op in "+-*":
            return f"(({t.ctype})({self.unsigned(e)}))"
        a, b = self.conv(e.a, t), self.conv(e.b, t)
        if op in ir.MINMAX_OPS:
            return f"tm_{op}({a}, {b})"
        if t in _UNSIGNED_TWIN and op in "/%" and not (isinstance(e.b, ir.Const) and e.b.value != -1):
            return f"tm_{'div' if op == '/' else 'rem'}({strip_parens(a)}, {strip_parens(b)})"
        if t.bits < 32:
            return f"(({t.ctype})({a} {op} {b}))"
        return f"({a} {op} {b})"

    def unsigned(self, e: ir.Expr) -> str:
        """A wrapping signed `+ - *` chain, computed in the unsigned twin type (no casts inside)."""
        t = e.dtype
        u = _UNSIGNED_TWIN[t]
        match e:
            case ir.Binary(op=op, a=a, b=b) if op in "+-*" and dt.promote(a.dtype, b.dtype) == t:
                return f"{self.unsigned_operand(a, t)} {op} {self.unsigned_operand(b, t)}"
            case ir.Const(value=v):
                return f"{v % 2**t.bits}{'u' if t.bits == 32 else 'UL'}"
        return f"({u}){self.emit(e)}"

    def unsigned_operand(self, e: ir.Expr, t: dt.DType) -> str:
        if e.dtype != t:
            return f"({_UNSIGNED_TWIN[t]}){self.conv(e, t)}"
        inner = self.unsigned(e)
        is_sum = isinstance(e, ir.Binary) and e.op in "+-"
        return f"({inner})" if is_sum else inner

    def in_float(self, e: ir.Expr, t: dt.DType) -> str:
        """Operand `e`, converted to `t`, as the float an f16/bf16 operation computes in."""
        if t in HALVES and isinstance(e, ir.Const):
            rounded = dt.round_to(e.value, t)
            return const(rounded, dt.float32)
        return as_float(self.conv(e, t), t)

    def shift(self, e: ir.Binary) -> str:
        t = e.dtype
        a, b = self.emit(e.a), self.emit(e.b)
        if e.op == ">>":
            return f"(({t.ctype})({a} >> {b}))" if t.bits < 32 else f"({a} >> {b})"
        u = "uint64_t" if t.bits == 64 else "uint32_t"
        return f"(({t.ctype})(({u}){a} << {b}))"

    def call(self, e: ir.Call) -> str:
        t = e.dtype
        if e.fn == "abs" and t.is_integer:
            a = strip_parens(self.conv(e.args[0], t))
            return f"tm_abs({a})" if t.bits >= 32 else f"(({t.ctype})abs((int){a}))"
        fn = (_F64_MATH if t is dt.float64 else _F32_MATH)[e.fn]
        value = f"{fn}({', '.join(strip_parens(self.in_float(a, t)) for a in e.args)})"
        return f"{_ROUND[t]}({value})" if t in HALVES else value

    def shuffle(self, e: ir.Shuffle) -> str:
        v, lane, w = self.emit(e.value), self.emit(e.lane), e.width
        full_warps = self.warp_mask == FULL_MASK
        native = full_warps and (e.kind == "idx" or (isinstance(e.lane, ir.Const) and 0 <= e.lane.value < w))
        v, lane, m = strip_parens(v), strip_parens(lane), self.warp_mask
        if native:
            return f"tm_shfl_{e.kind}({m}, {v}, {lane}, {w})"
        return f"tm_shfl_idx({m}, {v}, tm_shfl_src({ir.SHUFFLE_KINDS.index(e.kind)}, {lane}, {w}, {m}), 32)"


def strip_parens(code: str) -> str:
    """Drop one redundant outer pair of parentheses (statement level)."""
    if code.startswith("(") and code.endswith(")"):
        depth = 0
        for i, ch in enumerate(code):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(code) - 1:
                return code
        return code[1:-1]
    return code
