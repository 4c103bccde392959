"""`schedule(op, types, attrs, point)`: an operator's plan, from its template or the generic schedule."""
from __future__ import annotations

from taskmap.spec.ops import get

from . import attention, conv, generic, matmul, row_ops, scan, topk, window
from .plan import Plan
from .template import Template
from .tune_cache import cached_point

# first match wins: the tensor-core conv before the window template (it takes some small ones)
TEMPLATES: tuple[Template, ...] = (row_ops.REDUCE_TEMPLATE, row_ops.NORM_TEMPLATE) + matmul.TEMPLATES + (
    window.POOL_TEMPLATE, conv.CONV_TC_TEMPLATE, window.CONV_TEMPLATE, conv.CONV_SIMT_TEMPLATE,
    topk.TOPK_TEMPLATE, scan.SCAN_TEMPLATE) + attention.TEMPLATES


def template_for(op_name: str, types, attrs: dict | None = None) -> Template:
    """The hand-written template that schedules `op_name` at these input types and attributes
    (None: unchecked, for callers that only have the types), else the generic injective
    schedule (for operators whose compute definition has no reduction)."""
    op = get(op_name)
    types, attrs = op.check_types(types), {} if attrs is None else op.attributes(attrs)
    for t in TEMPLATES:
        if op.name in t.ops and t.applies(types, attrs):
            return t
    return generic.INJECTIVE_TEMPLATE


def schedule(op_name: str, types, attrs: dict | None = None, point=None) -> Plan:
    """The plan computing operator `op_name` on inputs of `types` (TensorTypes) with `attrs`,
    at `point` of its template's space (default: the template's default point; "tuned": the
    point `tune` cached for these types, else the default point). The plan's
    inputs are the operator's inputs in order, its outputs the operator's outputs."""
    op = get(op_name)
    types = op.check_types(types)
    attrs = op.attributes(attrs or {})
    op.infer_fn(types, attrs)                     # shape errors name the operator and input
    template = template_for(op_name, types, attrs)
    if point == "tuned":
        point = cached_point(op_name, types, attrs, template)
    if point is None:
        point = template.default
    elif point not in template.space:
        raise ValueError(f"{op_name}: point {point} is not in the space of template {template.name}")
    return template.plan(op, types, attrs, point)
