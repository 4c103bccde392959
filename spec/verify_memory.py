"""Memory (SPEC.md §9.4): tensor scopes and shapes, the operand rules of cp_async, ldmatrix,
mma_sync and atomics, and the per-block shared memory and per-thread register budgets."""
from __future__ import annotations

import math

from . import dtypes as dt
from . import ir
from .printer import buffer_decl, expr_str
from .verify_common import buffer_exprs, const_value, fail, non_parameter, statements, view_elements

SHARED_LIMIT_BYTES = 232448          # 227 KiB: sm_90's opt-in maximum of shared memory per block
REGISTER_LIMIT_BYTES = 255 * 4       # 255 32-bit registers: the most one thread can address
CP_ASYNC_BYTES = (4, 8, 16)

# CUDA's native atomic functions (no emulation through atomicCAS): atomicAdd on int,
# unsigned, float, double, __half, __nv_bfloat16; atomicMax/Min on int, unsigned, long long;
# atomicExch on int, unsigned, float; atomicCAS on int, unsigned.
ATOMIC_DTYPES = {
    "add": (dt.int32, dt.uint32, dt.float16, dt.bfloat16, dt.float32, dt.float64),
    "max": (dt.int32, dt.uint32, dt.int64),
    "min": (dt.int32, dt.uint32, dt.int64),
    "exch": (dt.int32, dt.uint32, dt.float32),
    "cas": (dt.int32, dt.uint32),
}

# mma_sync shape -> (operand dtypes allowed for a and b, elements of a, b, acc per lane) (§5.7)
MMA_FRAGMENTS = {
    "m16n8k16": ((dt.float16, dt.bfloat16), 8, 4, 4),
    "m16n8k8": ((dt.float32,), 4, 2, 4),
}


def check_memory(kernel: ir.Kernel) -> None:
    scalars = {p.name for p in kernel.scalar_params}
    for p in kernel.buffer_params:
        if p.scope != "global":
            raise fail(kernel, "invalid tensor scope", f"tensor parameter `{p.name}` has scope {p.scope}; "
                       "parameters are global tensors (declare shared/register tensors in the body)", p)
        _check_shape(kernel, p, p, scalars)
    for s in statements(kernel.body):
        match s:
            case ir.DeclareBuffer(buffer=b):
                _check_declaration(kernel, b, s, scalars)
            case ir.CpAsync():
                _check_cp_async(kernel, s)
            case ir.CpAsyncWait(pending=n) if n < 0:
                raise fail(kernel, "invalid wait count", f"cp_async_wait_group({n}): the count of groups "
                           "allowed to stay pending must be >= 0", s)
            case ir.LdMatrix():
                _check_ldmatrix(kernel, s)
            case ir.MmaSync():
                _check_mma(kernel, s)
            case ir.Atomic():
                _check_atomic(kernel, s)
    _check_budgets(kernel)


def _check_declaration(kernel, b: ir.Buffer, stmt, scalars) -> None:
    if b.scope not in ("shared", "register"):
        raise fail(kernel, "invalid tensor scope", f"`{buffer_decl(b)}`: a kernel body declares shared or "
                   "register tensors only; global tensors are parameters", stmt)
    if b.scope == "register":
        dynamic = next((d for d in b.shape if const_value(d) is None), None)
        if dynamic is not None:
            raise fail(kernel, "register tensor shape must be constant",
                       f"extent `{expr_str(dynamic)}` of register tensor `{b.name}` is not a compile-time "
                       "constant; registers are allocated at compile time (use a Python int)", stmt)
    _check_shape(kernel, b, stmt, scalars)


def _check_shape(kernel, b: ir.Buffer, at, scalars) -> None:
    for e in buffer_exprs(b):
        if not e.dtype.is_integer:
            raise fail(kernel, "tensor shape is not an integer",
                       f"extent or stride `{expr_str(e)}` of `{b.name}` is {e.dtype.short}", e, at)
        bad = non_parameter(e, scalars)
        if bad is not None:
            raise fail(kernel, "tensor shape must depend only on scalar parameters",
                       f"`{expr_str(e)}` in the shape of `{b.name}` uses `{expr_str(bad)}`; a tensor's shape "
                       "is fixed for the whole launch, so it may use only constants and scalar parameters", e, at)
    bad = next((d for d in b.shape if (v := const_value(d)) is not None and v < 1), None)
    if bad is not None:
        raise fail(kernel, "invalid tensor shape", f"`{b.name}` has extent {expr_str(bad)}; extents must be >= 1", at)
    match b.layout:
        case ir.Strided(strides=st) if len(st) != b.ndim:
            raise fail(kernel, "invalid tensor shape", f"`{b.name}` has {b.ndim} dimension(s) but "
                       f"{len(st)} stride(s)", at)
        case ir.Swizzle(bits=x, base=y, shift=z) if min(x, y, z) < 0:
            raise fail(kernel, "invalid tensor shape", f"swizzle({x}, {y}, {z}) of `{b.name}`: "
                       "bits, base and shift must be >= 0", at)


def _check_cp_async(kernel, s: ir.CpAsync) -> None:
    dst, src = s.dst.buffer, s.src.buffer
    if (dst.scope, src.scope) != ("shared", "global"):
        raise fail(kernel, "cp_async must copy global to shared",
                   f"cp_async copies into `{dst.name}` ({dst.scope}) from `{src.name}` ({src.scope}); the "
                   "destination must be a shared tensor and the source a global one (SPEC §5.4) — use a "
                   "plain load/store for other copies", s)
    if dst.dtype != src.dtype:
        raise fail(kernel, "type mismatch", f"cp_async copies bytes: `{dst.name}` is {dst.dtype.short} but "
                   f"`{src.name}` is {src.dtype.short}; declare both with the same dtype", s)
    if s.elems < 1 or s.elems * dst.dtype.nbytes not in CP_ASYNC_BYTES:
        fits = ", ".join(str(n // dst.dtype.nbytes) for n in CP_ASYNC_BYTES if n >= dst.dtype.nbytes)
        raise fail(kernel, "invalid cp_async size",
                   f"elems={s.elems} of {dst.dtype.short} is {s.elems * dst.dtype.nbytes} bytes; one cp_async "
                   f"moves 4, 8 or 16 bytes (for {dst.dtype.short}: elems in {{{fits}}})", s)


def _check_ldmatrix(kernel, s: ir.LdMatrix) -> None:
    dst, src = s.dst.buffer, s.src.buffer
    if (dst.scope, src.scope) != ("register", "shared"):
        raise fail(kernel, "ldmatrix must load shared to registers",
                   f"ldmatrix reads `{src.name}` ({src.scope}) into `{dst.name}` ({dst.scope}); the source "
                   "must be a shared tensor and the destination a register tensor (SPEC §5.7)", s)
    if s.num not in (1, 2, 4):
        raise fail(kernel, "invalid ldmatrix fragment", f"num={s.num}; ldmatrix loads 1, 2 or 4 8x8 matrices", s)
    if src.dtype.bits != 16 or dst.dtype != src.dtype:
        raise fail(kernel, "invalid ldmatrix fragment" if src.dtype.bits != 16 else "type mismatch",
                   f"ldmatrix moves 16-bit elements of one dtype, but `{src.name}` is {src.dtype.short} and "
                   f"`{dst.name}` is {dst.dtype.short}", s)
    check_fragment(kernel, s, s.dst, 2 * s.num, "invalid ldmatrix fragment", f"ldmatrix(num={s.num}) destination")


def _check_mma(kernel, s: ir.MmaSync) -> None:
    ops = {"a": s.a, "b": s.b, "acc": s.acc}
    off = next((n for n, r in ops.items() if r.buffer.scope != "register"), None)
    if off is not None:
        raise fail(kernel, "mma_sync operands must be registers",
                   f"operand {off} `{ops[off].buffer.name}` is a {ops[off].buffer.scope} tensor; load fragments "
                   "into register tensors first (ldmatrix or element loads)", s)
    if s.shape not in MMA_FRAGMENTS:
        raise fail(kernel, "invalid mma_sync fragment", f"shape {s.shape}; supported: {', '.join(MMA_FRAGMENTS)}", s)
    dtypes, *counts = MMA_FRAGMENTS[s.shape]
    a, b, acc = s.a.buffer.dtype, s.b.buffer.dtype, s.acc.buffer.dtype
    if a not in dtypes or b != a or acc != dt.float32:
        raise fail(kernel, "invalid mma_sync fragment",
                   f"{s.shape} multiplies {' or '.join(d.short for d in dtypes)} operands (a and b alike) into "
                   f"an f32 accumulator, but a is {a.short}, b {b.short}, acc {acc.short} (SPEC §5.7)", s)
    for (name, ref), count in zip(ops.items(), counts):
        check_fragment(kernel, s, ref, count, "invalid mma_sync fragment", f"{s.shape} operand {name}")


def check_fragment(kernel, s, ref: ir.Ref, count: int, phrase: str, what: str) -> None:
    """A register view passed to a warp-level matrix op: exactly `count` contiguous elements."""
    have = view_elements(ref)
    if have != count or not isinstance(ref.buffer.layout, ir.RowMajor):
        view = expr_str(ref)
        raise fail(kernel, phrase, f"the {what} is a register view of {count} elements per lane, but `{view}` "
                   f"is a view of {have} element(s) of `{buffer_decl(ref.buffer)}`; index the leading "
                   f"dimensions only, so the remaining row-major dimensions hold exactly {count}", ref, s)


def _check_atomic(kernel, s: ir.Atomic) -> None:
    t = s.target.buffer
    if t.scope not in ("global", "shared"):
        raise fail(kernel, "atomic must target global or shared memory",
                   f"atomic_{s.op} on register tensor `{t.name}`: registers are private to a thread, so "
                   "update the element with a plain assignment", s)
    if t.dtype not in ATOMIC_DTYPES[s.op]:
        raise fail(kernel, "unsupported atomic type",
                   f"atomic_{s.op} on {t.dtype.short} `{t.name}`: CUDA provides atomic_{s.op} for "
                   f"{', '.join(d.short for d in ATOMIC_DTYPES[s.op])} only (SPEC §9.4)", s)


def _check_budgets(kernel) -> None:
    decls = [s for s in statements(kernel.body) if isinstance(s, ir.DeclareBuffer)]
    for scope, limit, phrase, unit in (
            ("shared", SHARED_LIMIT_BYTES, "shared memory exceeds device limit", "per block"),
            ("register", REGISTER_LIMIT_BYTES, "register tensors exceed per-thread limit", "per thread")):
        sized = [(s, _bytes(s.buffer)) for s in decls if s.buffer.scope == scope]
        sized = [(s, n) for s, n in sized if n is not None]
        total = sum(n for _, n in sized)
        if total > limit:
            biggest = max(sized, key=lambda sn: sn[1])
            listing = ", ".join(f"{s.buffer.name} {n} B" for s, n in sized)
            raise fail(kernel, phrase, f"{scope} tensors take {total} bytes {unit} ({listing}), over the limit "
                       f"of {limit} bytes; shrink the tiles or the pipeline depth", biggest[0])


def _bytes(b: ir.Buffer) -> int | None:
    """Bytes the tensor spans: its element count, or for strided layouts the largest offset + 1."""
    dims = [const_value(d) for d in b.shape]
    strides = [const_value(x) for x in b.layout.strides] if isinstance(b.layout, ir.Strided) else []
    if None in dims + strides:
        return None
    span = sum((n - 1) * x for n, x in zip(dims, strides)) + 1 if strides else math.prod(dims)
    return span * b.dtype.nbytes
