"""mbarriers and TMA copies (SPEC.md §9.4, §5.9–§5.11): an mbarrier is an element of a shared
i64 tensor that only mbarrier operations touch; bulk copies move global to shared in whole
16-byte units and complete on an mbarrier; tensor copies move a box, the row-major trailing
dimensions of a shared view, one per dimension of the global tensor."""
from __future__ import annotations

import math

from . import dtypes as dt
from . import ir
from .printer import buffer_decl, expr_str
from .verify_common import const_value, fail, own_exprs, refs, statements

BULK_ALIGN = 16                   # cp.async.bulk: size and both addresses in 16-byte units
TX_LIMIT = (1 << 20) - 1          # the PTX ISA's range of an mbarrier's arrival and transaction counts
TMA_MAX_RANK = 5                  # cuTensorMapEncodeTiled: ranks 1 … 5, box extents 1 … 256
TMA_MAX_BOX = 256


def check_mbarriers(kernel: ir.Kernel) -> None:
    body = tuple(statements(kernel.body))
    barriers = {r.buffer.name for s in body for r in _barrier_refs(s)}
    for s in body:
        for r in _barrier_refs(s):
            _check_barrier_ref(kernel, s, r)
        match s:
            case ir.MbarrierInit(count=c):
                _check_count(kernel, s, c, "arrival count", 1)
            case ir.MbarrierArrive(tx=ir.Expr() as tx):
                _check_count(kernel, s, tx, "transaction byte count", 0)
            case ir.MbarrierWait(parity=p):
                _check_integer(kernel, s, p, "parity")
                if (v := const_value(p)) is not None and v not in (0, 1):
                    raise fail(kernel, "invalid mbarrier", f"mbarrier_wait parity {v}: a phase's parity is 0 or 1 "
                               "(phase k has parity k % 2)", p, s)
            case ir.BulkCopy():
                _check_bulk_copy(kernel, s)
            case ir.TmaLoad(dst=shared, src=tensor) | ir.TmaStore(dst=tensor, src=shared):
                _check_tma(kernel, s, shared, tensor)
        _check_not_touched(kernel, s, barriers)


def _barrier_refs(s: ir.Stmt) -> tuple[ir.Ref, ...]:
    if isinstance(s, ir.MBARRIER_STMTS):
        return (s.bar,)
    return (s.bar,) if isinstance(s, (ir.BulkCopy, ir.TmaLoad)) else ()


def _check_barrier_ref(kernel, s, r: ir.Ref) -> None:
    b = r.buffer
    if b.scope != "shared" or b.dtype != dt.int64 or len(r.indices) != b.ndim:
        raise fail(kernel, "invalid mbarrier",
                   f"`{expr_str(r)}` of `{buffer_decl(b)}` is not an mbarrier: an mbarrier is one element of a "
                   "shared i64 tensor, e.g. `bar = shared_tensor(i64, [stages])`, passed as `bar[s]`", r, s)


def _check_not_touched(kernel, s, barriers: set[str]) -> None:
    """Only mbarrier operations (and bulk_copy's barrier operand) may use an mbarrier tensor:
    its 64 bits are an opaque hardware object (phase, counts), not data."""
    used = [r for r in refs(s) if r.buffer.name in barriers and r not in _barrier_refs(s)]
    used += [n for e in own_exprs(s) for n in ir.walk(e) if isinstance(n, ir.Load) and n.buffer.name in barriers]
    if isinstance(s, ir.Store) and s.buffer.name in barriers:
        used.append(s)
    if used:
        name = (used[0].buffer if not isinstance(used[0], ir.Store) else s.buffer).name
        raise fail(kernel, "invalid mbarrier",
                   f"`{name}` holds mbarriers, so only mbarrier_init/arrive/arrive_expect_tx/wait and bulk_copy's "
                   "barrier operand may use it; keep data in another tensor", used[0], s)


def _check_integer(kernel, s, e: ir.Expr, what: str) -> None:
    if not e.dtype.is_integer:
        raise fail(kernel, "type mismatch", f"the mbarrier {what} `{expr_str(e)}` is {e.dtype.short}; "
                   "it must be an integer", e, s)


def _check_count(kernel, s, e: ir.Expr, what: str, least: int) -> None:
    _check_integer(kernel, s, e, what)
    v = const_value(e)
    if v is not None and not least <= v <= TX_LIMIT:
        raise fail(kernel, "invalid mbarrier", f"{what} {v} is outside {least} … {TX_LIMIT} (2^20 - 1), "
                   "the range of an mbarrier's counts", e, s)


def _check_bulk_copy(kernel, s: ir.BulkCopy) -> None:
    dst, src = s.dst.buffer, s.src.buffer
    if (dst.scope, src.scope) != ("shared", "global"):
        raise fail(kernel, "bulk_copy must copy global to shared",
                   f"bulk_copy copies into `{dst.name}` ({dst.scope}) from `{src.name}` ({src.scope}); the "
                   "destination must be a shared tensor and the source a global one (SPEC §5.10)", s)
    if dst.dtype != src.dtype:
        raise fail(kernel, "type mismatch", f"bulk_copy copies bytes: `{dst.name}` is {dst.dtype.short} but "
                   f"`{src.name}` is {src.dtype.short}; declare both with the same dtype", s)
    nbytes = s.elems * dst.dtype.nbytes
    if s.elems < 1 or nbytes % BULK_ALIGN or nbytes > TX_LIMIT:
        raise fail(kernel, "invalid bulk copy size",
                   f"elems={s.elems} of {dst.dtype.short} is {nbytes} bytes; a bulk copy moves a positive multiple "
                   f"of {BULK_ALIGN} bytes, at most {TX_LIMIT - TX_LIMIT % BULK_ALIGN} (one mbarrier phase's "
                   f"transaction range): elems a multiple of {BULK_ALIGN // dst.dtype.nbytes or 1}", s)


def tma_swizzle(shared: ir.Buffer) -> int | None:
    """The TMA swizzle mode (bytes; 0: none) the layout of a TMA copy's shared tensor is: row-major,
    or swizzle(b, 4 − log2(element bytes), 3), i.e. Swizzle<b, 4, 3> on byte offsets (16-byte
    chunk ^= row mod 2^b of rows of 16·2^b bytes), b = 1, 2, 3 for 32, 64, 128 bytes; None for
    any other layout."""
    match shared.layout:
        case ir.RowMajor():
            return 0
        case ir.Swizzle(bits=b, base=m, shift=3) if 1 <= b <= 3 and 0 <= m <= 4 and 1 << (4 - m) == shared.dtype.nbytes:
            return 16 << b
    return None


def tma_box(shared: ir.Ref) -> tuple[int | None, ...]:
    """The box a TMA copy moves: the extents of the shared view's trailing dimensions (None
    where one is not constant)."""
    return tuple(const_value(d) for d in shared.buffer.shape[len(shared.indices):])


def _check_tma(kernel, s, shared: ir.Ref, tensor: ir.Ref) -> None:
    load = isinstance(s, ir.TmaLoad)
    what = "tma_load" if load else "tma_store"
    if (shared.buffer.scope, tensor.buffer.scope) != ("shared", "global"):
        raise fail(kernel, "invalid TMA operands",
                   f"{what} moves a box between a global tensor and a shared view: "
                   + ("tma_load(dst_shared[...], src_global[coords], bar[i])" if load else
                      "tma_store(dst_global[coords], src_shared[...])")
                   + f", but `{shared.buffer.name}` is {shared.buffer.scope} and `{tensor.buffer.name}` is "
                   f"{tensor.buffer.scope}", s)
    if shared.buffer.dtype != tensor.buffer.dtype:
        raise fail(kernel, "type mismatch", f"{what} copies bytes: `{shared.buffer.name}` is "
                   f"{shared.buffer.dtype.short} but `{tensor.buffer.name}` is {tensor.buffer.dtype.short}", s)
    rank = tensor.buffer.ndim
    if len(tensor.indices) != rank or not 1 <= rank <= TMA_MAX_RANK:
        raise fail(kernel, "invalid TMA operands",
                   f"`{expr_str(tensor)}`: a TMA copy names the box's first element with one coordinate per "
                   f"dimension of `{buffer_decl(tensor.buffer)}` (ranks 1 … {TMA_MAX_RANK})", tensor, s)
    box = tma_box(shared)
    nbytes = shared.buffer.dtype.nbytes
    problem = None
    if len(box) != rank:
        problem = f"the view has {len(box)} trailing dimension(s) but the tensor has {rank}"
    elif (mode := tma_swizzle(shared.buffer)) is None:
        e = nbytes.bit_length() - 1
        problem = (f"the shared tensor must be row-major or swizzled in a TMA mode, swizzle(b, {4 - e}, 3) for "
                   f"{shared.buffer.dtype.short} with b = 1, 2, 3 (32-, 64-, 128-byte swizzle)")
    elif None in box:
        problem = "its extents must be compile-time constants"
    elif max(box) > TMA_MAX_BOX:
        problem = f"each extent must be at most {TMA_MAX_BOX}"
    elif box[-1] * nbytes % BULK_ALIGN:
        problem = f"its innermost extent is {box[-1] * nbytes} bytes, not a multiple of {BULK_ALIGN}"
    elif mode and box[-1] * nbytes > mode:
        problem = f"its innermost extent is {box[-1] * nbytes} bytes, more than one row of the {mode}-byte swizzle"
    elif math.prod(box) * nbytes > TX_LIMIT:
        problem = f"it holds {math.prod(box) * nbytes} bytes, over one mbarrier phase's {TX_LIMIT}"
    if problem:
        raise fail(kernel, "invalid TMA box", f"`{expr_str(shared)}` of `{buffer_decl(shared.buffer)}` is the box "
                   f"({', '.join(map(str, box))}) of {what}: {problem}", shared, s)
