"""Launch configuration (SPEC.md §9.5): grid and block are integer expressions of the scalar
parameters; where they are constants, they respect CUDA's limits (§1.1)."""
from __future__ import annotations

import math

from . import ir
from .printer import expr_str
from .verify_common import const_value, fail, non_parameter

MAX_THREADS = 1024
GRID_LIMITS = (2**31 - 1, 65535, 65535)
BLOCK_LIMITS = (1024, 1024, 64)


def check_launch(kernel: ir.Kernel) -> None:
    scalars = {p.name for p in kernel.scalar_params}
    for what, dims, limits in (("grid", kernel.grid, GRID_LIMITS), ("block", kernel.block, BLOCK_LIMITS)):
        for axis, e, limit in zip("xyz", dims, limits):
            bad = non_parameter(e, scalars)
            if not e.dtype.is_integer or bad is not None:
                why = f"is {e.dtype.short}" if bad is None else f"uses `{expr_str(bad)}`"
                raise fail(kernel, "invalid launch dimension",
                           f"{what}.{axis} = `{expr_str(e)}` {why}; launch dimensions are integer expressions "
                           f"of the scalar parameters ({', '.join(sorted(scalars)) or 'none here'})", kernel)
            v = const_value(e)
            if v is not None and not 1 <= v <= limit:
                raise fail(kernel, "invalid launch dimension",
                           f"{what}.{axis} = {v}; CUDA allows 1 to {limit}", kernel)
    threads = block_shape(kernel)
    if threads is not None and math.prod(threads) > MAX_THREADS:
        raise fail(kernel, "too many threads per block",
                   f"block {threads} has {math.prod(threads)} threads; a block holds at most {MAX_THREADS} "
                   "(SPEC §1.1): give each thread more work (repeat atoms) or split the tile", kernel)


def block_shape(kernel: ir.Kernel) -> tuple[int, int, int] | None:
    """The block extents (x, y, z) when they are compile-time constants, else None."""
    dims = tuple(const_value(e) for e in kernel.block)
    return None if None in dims else dims
