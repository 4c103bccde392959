"""ForTask -> plain loops and index arithmetic (SPEC.md §7.3), shared by every backend.

Worker w is split into one digit per atom (innermost atom = lowest digit). A spatial atom
turns its digit into a fixed task index; a repeat atom becomes loops over its extent, in
rank order. The task index in dim d is the mixed-radix sum of the atoms' indices.
Workers at or beyond the mapping's worker count run no task.
"""
from __future__ import annotations

from .. import dtypes as dt
from .. import ir


def lower_task_mappings(kernel: ir.Kernel) -> ir.Kernel:
    """Task-mapping loops (ForTask) become counted loops and index arithmetic (SPEC §7.3)."""
    return ir.rewrite(kernel, lambda n: _lower(n) if isinstance(n, ir.ForTask) else n)


def _lower(node: ir.ForTask):
    loc = node.loc
    m = node.mapping
    worker = rest = node.worker
    atom_idx: list = [None] * len(m.atoms)
    for a in reversed(range(len(m.atoms))):
        atom = m.atoms[a]
        if atom.kind == "spatial":
            outer_spatial = any(o.kind == "spatial" for o in m.atoms[:a])
            digit = ir.binary("%", rest, atom.workers, loc=loc) if outer_spatial else rest
            rest = ir.binary("/", rest, atom.workers, loc=loc)
            atom_idx[a] = _unravel(atom, digit, loc)
    loops = []                      # (var, extent) for repeat atoms, outermost first
    for a, atom in enumerate(m.atoms):
        if atom.kind == "repeat":
            idx = [ir.const(0)] * len(atom.shape)
            for d in atom.ordered_dims():
                if atom.shape[d] > 1:
                    idx[d] = ir.Var(f"{node.vars[0].name}__r{len(loops)}", dt.int32, loc=loc)
                    loops.append((idx[d], atom.shape[d]))
            atom_idx[a] = tuple(idx)
    body = tuple(ir.DeclareVar(var, _combine(m, atom_idx, d, loc), loc=loc) for d, var in enumerate(node.vars))
    body += node.body
    for var, extent in reversed(loops):
        body = (ir.For(var, ir.const(0), ir.const(extent), ir.const(1), body, True, loc=loc),)
    if isinstance(worker, ir.Const) and 0 <= worker.value < m.num_workers:
        return body             # e.g. repeat(...).on(0): nothing to guard
    return (ir.If(ir.binary("<", worker, m.num_workers, loc=loc), body, (), loc=loc),)


def _unravel(atom, linear, loc):
    """The digit is already < atom.workers (modulo or guard), so the slowest dim needs no %."""
    idx = [None] * len(atom.shape)
    slowest = atom.ordered_dims()[0]
    for d in reversed(atom.ordered_dims()):
        n = atom.shape[d]
        idx[d] = ir.const(0) if n == 1 else linear if d == slowest else ir.binary("%", linear, n, loc=loc)
        linear = linear if n == 1 else ir.binary("/", linear, n, loc=loc)
    return tuple(idx)


def _combine(m, atom_idx, d, loc):
    out = None
    for atom, idx in zip(m.atoms, atom_idx):
        out = idx[d] if out is None else ir.binary("+", ir.binary("*", out, atom.shape[d], loc=loc), idx[d], loc=loc)
    return out
