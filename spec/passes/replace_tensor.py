"""Replace a tensor parameter by new parameters: the rewrite fusion builds on (SPEC §6.3).

Every load `x[idx]` becomes `load(idx)`, an expression over the new parameters (a producer's
computation), and every store `x[idx] = v` becomes `store(idx, v)`, statements over them (a
consumer's). Nodes the callbacks build without a location take the replaced access's, so
the interpreter's traps in the new code point at the line that accessed `x`. Any other use of
`x` (an atomic, an async copy, ldmatrix) cannot be expressed this way and is refused.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from .. import ir
from ..verify_common import where


def replace_tensor(kernel: ir.Kernel, name: str, params: tuple, load: Callable | None = None,
                   store: Callable | None = None, kernel_name: str | None = None) -> ir.Kernel:
    """`kernel` with tensor parameter `name` replaced, in place in the parameter list, by
    `params` (tensors and scalars); its loads by `load(indices)`, its stores by
    `store(indices, value)` (a statement or a tuple of them). Verify the result."""
    old = next((p for p in kernel.buffer_params if p.name == name), None)
    if old is None:
        raise ValueError(f"kernel {kernel.name} has no tensor parameter {name!r}; its tensors: "
                         f"{', '.join(b.name for b in kernel.buffer_params)}")

    def replace(n):
        match n:
            case ir.Load(buffer=b) if b.name == name:
                return _located(_needed(load, "load", n)(n.indices), n.loc)
            case ir.Store(buffer=b) if b.name == name:
                out = _needed(store, "store", n)(n.indices, n.value)
                return tuple(_located(s, n.loc) for s in (out if isinstance(out, tuple) else (out,)))
            case ir.Ref(buffer=b) if b.name == name:
                raise ValueError(f"{name} is accessed through an address{where(n)}: only its loads and stores "
                                 "can be replaced, not atomic, cp_async, bulk_copy, ldmatrix or mma_sync operands")
        return n

    i = kernel.params.index(old)
    params = kernel.params[:i] + tuple(params) + kernel.params[i + 1:]
    return dataclasses.replace(ir.rewrite(kernel, replace), name=kernel_name or kernel.name, params=params)


def _needed(callback, what: str, node):
    if callback is None:
        raise ValueError(f"{node.buffer.name} is {'read' if what == 'load' else 'written'}{where(node)}: "
                         f"pass {what}= to say what replaces it")
    return callback


def _located(node, loc):
    """`node` with `loc` on every node under it that has none (names keep their declarations')."""
    if loc is None:
        return node
    return ir.rewrite(node, lambda n: n if n.loc is not None or isinstance(n, (ir.Var, ir.Buffer))
                      else dataclasses.replace(n, loc=loc))
