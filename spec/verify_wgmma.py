"""Warpgroup MMA (SPEC.md §9.4, §5.12): wgmma's accumulator is a register view of n/2 f32, A a
register fragment of 8 elements or, like B, one element of a shared f16/bf16 tensor read
through a matrix descriptor whose offsets fit its 14-bit, 16-byte-unit fields."""
from __future__ import annotations

from . import dtypes as dt
from . import ir
from .printer import buffer_decl, expr_str
from .verify_common import const_value, fail, statements
from .verify_memory import check_fragment

WGMMA_DTYPES = (dt.float16, dt.bfloat16)
DESC_UNIT = 16                    # descriptor addresses and offsets drop their 4 low bits
DESC_LIMIT = 1 << 18              # 14 bits of 16-byte units
A_FRAGMENT = 8                    # A from registers: 4 × f16x2 per thread (§5.12)


def check_wgmma(kernel: ir.Kernel) -> None:
    for s in statements(kernel.body):
        match s:
            case ir.Wgmma():
                _check_wgmma(kernel, s)
            case ir.WgmmaWait(pending=n) if n < 0:
                raise fail(kernel, "invalid wait count", f"wgmma_wait_group({n}): the count of groups allowed to "
                           "stay in flight must be >= 0", s)


def _check_wgmma(kernel, s: ir.Wgmma) -> None:
    if not (8 <= s.n <= 256 and s.n % 8 == 0):
        raise fail(kernel, "invalid wgmma operands", f"n={s.n}: wgmma's shape is m64nNk16 with N a multiple of 8 "
                   "from 8 to 256", s)
    acc = s.acc.buffer
    if acc.scope != "register" or acc.dtype != dt.float32:
        raise fail(kernel, "invalid wgmma operands", f"the accumulator `{expr_str(s.acc)}` of `{buffer_decl(acc)}` "
                   "must be a view of an f32 register tensor", s.acc, s)
    check_fragment(kernel, s, s.acc, s.n // 2, "invalid wgmma operands", f"m64n{s.n}k16 accumulator")
    a, b = s.a.buffer, s.b.buffer
    if b.dtype not in WGMMA_DTYPES or a.dtype != b.dtype:
        raise fail(kernel, "invalid wgmma operands", f"wgmma multiplies f16 or bf16 operands (A and B alike), but "
                   f"`{a.name}` is {a.dtype.short} and `{b.name}` is {b.dtype.short}", s)
    if s.a_in_registers:
        if a.scope != "register":
            raise fail(kernel, "invalid wgmma operands", f"A `{expr_str(s.a)}` is a {a.scope} tensor: pass a "
                       "register fragment, or a shared element through wgmma_desc(...)", s.a, s)
        check_fragment(kernel, s, s.a, A_FRAGMENT, "invalid wgmma operands", "A fragment")
    else:
        _check_desc(kernel, s, "A", s.a, s.a_lbo, s.a_sbo, s.a_swizzle)
    _check_desc(kernel, s, "B", s.b, s.b_lbo, s.b_sbo, s.b_swizzle)


def _check_desc(kernel, s, name: str, ref: ir.Ref, lbo: ir.Expr, sbo: ir.Expr, swizzle: int) -> None:
    t = ref.buffer
    if t.scope != "shared" or len(ref.indices) != t.ndim or t.ndim < 2:
        raise fail(kernel, "invalid wgmma operands", f"{name} `{expr_str(ref)}` of `{buffer_decl(t)}`: a matrix "
                   "descriptor starts at one element of a shared tensor of rank >= 2 (every index given)", ref, s)
    if not isinstance(t.layout, (ir.RowMajor, ir.Swizzle)):
        raise fail(kernel, "invalid wgmma operands", f"{name} `{buffer_decl(t)}`: a wgmma operand tensor is "
                   "row-major or swizzled (SPEC §5.12)", ref, s)
    if swizzle not in ir.WGMMA_SWIZZLES:
        raise fail(kernel, "invalid wgmma descriptor", f"{name}'s swizzle={swizzle}; the modes are "
                   f"{', '.join(map(str, ir.WGMMA_SWIZZLES))} bytes (0: none)", s)
    for what, e in (("lbo", lbo), ("sbo", sbo)):
        if not e.dtype.is_integer:
            raise fail(kernel, "type mismatch", f"{name}'s {what} `{expr_str(e)}` is {e.dtype.short}; byte offsets "
                       "are integers", e, s)
        v = const_value(e)
        if v is not None and not (0 <= v < DESC_LIMIT and v % DESC_UNIT == 0):
            raise fail(kernel, "invalid wgmma descriptor", f"{name}'s {what}={v}: a descriptor's byte offsets are "
                       f"multiples of {DESC_UNIT} below {DESC_LIMIT} (14 bits of 16-byte units)", e, s)
