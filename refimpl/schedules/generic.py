"""The generic schedule of injective operators: one kernel per output, from the compute definition.

Each output compute of the Task is inlined (loads of earlier computes replaced by their
bodies, `Compute.at`) into one expression over the inputs, and `injective_kernel` maps its
flattened index space over threads and blocks. This schedules every element-wise, broadcast
and data-movement operator of the registry without a hand-written template.
"""
from __future__ import annotations

from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.spec.ops.compute import Reduce, Task

from .injective import DEFAULT, SPACE, InjectivePoint, injective_kernel, resources
from .plan import Launch, Plan, Tensor, View
from .template import Template


def inline(task: Task, e: ir.Expr) -> ir.Expr:
    """e with every load of a compute of `task` replaced by that compute's (inlined) body."""
    computes = {c.name: c for c in task.computes}

    def expand(n):
        if isinstance(n, ir.Load) and n.buffer.name in computes:
            return inline(task, computes[n.buffer.name].at(n.indices))
        return n
    return ir.rewrite(e, expand)


def injective_plan(task: Task, point: InjectivePoint, prepare=None) -> Plan:
    """One kernel per output of `task`, each computing the inlined body, after `prepare`
    (which must remove any reduction: the window template unrolls them)."""
    if prepare is None and not task.is_injective:
        raise ValueError(f"{task.name}: the generic schedule needs an injective task (it has a reduction)")
    inputs = tuple(Tensor(t.name, t.shape, t.dtype) for t in task.inputs)
    outputs, launches = [], []
    for c in task.output_computes:
        body = inline(task, c.body)
        body = prepare(body) if prepare is not None else body
        assert not any(isinstance(n, Reduce) for n in ir.walk(body))
        out, axes = c.buffer, c.axes
        if not c.shape:                              # a 0-d output: one element, as a [1] tensor
            axes = (ir.Var(f"{c.name}_i0", dt.int32),)
            out = ir.Buffer(c.name, c.dtype, (ir.const(1),), "global")
        kernel = injective_kernel(f"{task.name}_{c.name}", out, axes, body, point)
        outputs.append(Tensor(c.name, c.shape, c.dtype))
        args = tuple(p.name for p in kernel.buffer_params[:-1])      # the inputs it loads, by name
        launches.append(Launch(kernel, args + (View(c.name, (1,)) if not c.shape else c.name,)))
    return Plan(inputs, tuple(outputs), (), tuple(launches))


def _any(types, attrs) -> bool:
    return True


INJECTIVE_TEMPLATE = Template("injective", (), _any, SPACE, DEFAULT, resources,
                              lambda op, types, attrs, point: injective_plan(op.task(types, **attrs), point))
