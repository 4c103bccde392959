"""Small-window anchors: pooling, depthwise and other small convolutions.

Their reductions are short (a kh×kw window, times the channels per group of a convolution),
so the template unrolls each `Reduce` of the compute definition into a fixed-order chain of
`+` / `*` / `max` / `min` over the window positions, which leaves an injective expression
per output element: the generic injective schedule (coalesced over the flattened output)
then computes it, reading each input element where the definition reads it (padding is a
select in the definition, so nothing outside the input is read).
"""
from __future__ import annotations

import functools
import itertools
import math

from taskmap.spec import ir
from taskmap.spec.ops.compute import Reduce, substitute

from .generic import injective_plan
from .injective import DEFAULT, SPACE, resources
from .template import Template

MAX_TERMS = 64                       # a convolution unrolls at most this many terms per output
COMBINE = {"sum": "+", "prod": "*", "max": "max", "min": "min"}


def unroll(e: ir.Expr) -> ir.Expr:
    """e with every Reduce replaced by its terms combined in row-major order of the window."""
    def expand(n):
        if not isinstance(n, Reduce):
            return n
        if n.op not in COMBINE:
            raise ValueError(f"cannot unroll a {n.op} reduction")
        terms = []
        for at in itertools.product(*(range(x) for x in n.extents)):
            t = substitute(n.body, {a: ir.const(v) for a, v in zip(n.axes, at)})
            terms.append(t if t.dtype == n.acc else ir.Cast(t, n.acc))
        return functools.reduce(lambda a, b: ir.binary(COMBINE[n.op], a, b), terms)
    return ir.rewrite(e, expand)


def small_convolution(types, attrs) -> bool:
    """A convolution whose per-output reduction (C/group × KH × KW) is at most MAX_TERMS."""
    return math.prod(types[1].shape[1:]) <= MAX_TERMS


def _window_plan(op, types, attrs, point):
    return injective_plan(op.task(types, **attrs), point, unroll)


POOL_TEMPLATE = Template("window_pool", ("max_pool2d", "avg_pool2d"), lambda types, attrs: True, SPACE, DEFAULT,
                         resources, _window_plan)
CONV_TEMPLATE = Template("window_conv", ("conv2d",), small_convolution, SPACE, DEFAULT, resources, _window_plan)
