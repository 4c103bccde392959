"""Elementary functions the registry has no operator for, as compositions of registry operators:
one copy of each numerical form, shared by the ONNX importer (Atan, Sinh, IsInf, ...) and the
ATen table (aten.atan, aten.sinh, aten.isinf, aten.log1p, ...).

A `Composer` writes against two callables of its frontend: `emit(op, inputs)` adds one
registry node and returns its value, `const(value)` a scalar in the dtype being computed.
Values are whatever the frontend uses (ONNX value names, torch_graph.V); a composer never
looks inside them. The forms avoid cancellation where the naive one loses digits.
"""
from __future__ import annotations

import math
from typing import Callable

from taskmap.spec import dtypes as dt

# what the compositions below emit: a frontend supports them when the registry has all of these
NEEDS = ("abs", "add", "sub", "mul", "div", "exp", "log", "sqrt", "sign", "sin", "cos", "neg", "floor", "ceil",
         "equal", "not_equal", "greater", "less", "logical_or", "where")
INVERSE = ("atan", "asin", "acos", "asinh", "acosh", "atanh")


class Composer:
    def __init__(self, emit: Callable[[str, list], object], const: Callable[[float], object], dtype: dt.DType):
        self.emit, self.c, self.dtype = emit, const, dtype

    def op(self, name: str, *inputs):
        return self.emit(name, list(inputs))

    def log1p(self, v):
        """log(1 + v) to full precision for small v (Goldberg: v · log(u) / (u - 1) with u = 1 + v
        rounded; v where u rounds to 1; u itself where it is infinite)."""
        u = self.op("add", self.c(1), v)
        ratio = self.op("div", self.op("mul", v, self.op("log", u)), self.op("sub", u, self.c(1)))
        exact = self.op("where", self.op("equal", u, self.c(1)), v, ratio)
        return self.op("where", self.op("equal", u, self.c(math.inf)), u, exact)

    def expm1(self, v):
        """exp(v) - 1 to full precision for small v (Kahan: (u - 1) · v / log(u) with u = e^v
        rounded; v where u rounds to 1; u - 1 where it is -1 or infinite)."""
        u = self.op("exp", v)
        um1 = self.op("sub", u, self.c(1))
        ratio = self.op("div", self.op("mul", um1, v), self.op("log", u))
        far = self.op("logical_or", self.op("equal", um1, self.c(-1)), self.op("equal", u, self.c(math.inf)))
        return self.op("where", self.op("equal", u, self.c(1)), v, self.op("where", far, um1, ratio))

    def atan(self, x):
        """atan by range reduction to |u| <= tan(pi/8) (atan(t) = pi/2 - atan(1/t) above 1,
        pi/4 + atan((t - 1)/(t + 1)) above tan(pi/8)) and the series to u^21 (error < 2e-9)."""
        a = self.op("abs", x)
        big = self.op("greater", a, self.c(1))
        t = self.op("where", big, self.op("div", self.c(1), a), a)
        mid = self.op("greater", t, self.c(math.tan(math.pi / 8)))
        u = self.op("where", mid, self.op("div", self.op("sub", t, self.c(1)), self.op("add", t, self.c(1))), t)
        z = self.op("mul", u, u)
        p = self.c((-1) ** 10 / 21)
        for k in range(9, -1, -1):
            p = self.op("add", self.op("mul", p, z), self.c((-1) ** k / (2 * k + 1)))
        r = self.op("mul", u, p)
        r = self.op("where", mid, self.op("add", r, self.c(math.pi / 4)), r)
        r = self.op("where", big, self.op("sub", self.c(math.pi / 2), r), r)
        return self.op("mul", self.op("sign", x), r)

    def inverse(self, kind: str, x):
        """`kind` (one of INVERSE) of x in forms without cancellation:
        asin x = 2 atan(x / (1 + sqrt(1 - x^2))), acos x = 2 atan(sqrt((1 - x) / (1 + x))),
        asinh x = sign(x) log1p(|x| + x^2 / (1 + sqrt(x^2 + 1))), acosh x = log1p(y + sqrt(y (y + 2)))
        with y = x - 1, atanh x = sign(x) log1p(2|x| / (1 - |x|)) / 2; where x^2 would overflow (above
        2^60, f16: 2^7, with log 2 within 1/(4x^2) of the rest) asinh and acosh are log(|x|) + log 2."""
        if kind == "atan":
            return self.atan(x)
        if kind in ("asin", "acos"):
            one_minus = self.op("sub", self.c(1), x)
            if kind == "asin":
                arg = self.op("div", x, self.op("add", self.c(1), self.op(
                    "sqrt", self.op("mul", one_minus, self.op("add", self.c(1), x)))))
            else:
                arg = self.op("sqrt", self.op("div", one_minus, self.op("add", self.c(1), x)))
            return self.op("mul", self.c(2), self.atan(arg))
        if kind == "atanh":
            a = self.op("abs", x)            # |x|: 1 + 2x/(1 - x) would cancel as x nears -1
            return self.op("mul", self.op("mul", self.c(0.5), self.op("sign", x)),
                           self.log1p(self.op("div", self.op("mul", self.c(2), a), self.op("sub", self.c(1), a))))
        a = self.op("abs", x) if kind == "asinh" else x
        if kind == "asinh":
            a2 = self.op("mul", a, a)
            near = self.log1p(self.op("add", a, self.op("div", a2, self.op(
                "add", self.c(1), self.op("sqrt", self.op("add", a2, self.c(1)))))))
        else:
            d = self.op("sub", x, self.c(1))
            near = self.log1p(self.op("add", d, self.op("sqrt", self.op("mul", d, self.op("add", d, self.c(2))))))
        far = self.op("add", self.op("log", a), self.c(math.log(2)))
        limit = 2.0 ** 7 if self.dtype is dt.float16 else 2.0 ** 60
        y = self.op("where", self.op("greater", a, self.c(limit)), far, near)
        return self.op("mul", self.op("sign", x), y) if kind == "asinh" else y

    def tan(self, x):
        return self.op("div", self.op("sin", x), self.op("cos", x))

    def cosh(self, x):
        return self.op("mul", self.op("add", self.op("exp", x), self.op("exp", self.op("neg", x))), self.c(0.5))

    def sinh(self, x):
        """(e^x - e^-x) / 2; near 0 (|x| < 2^-5) its series x + x^3/6 + x^5/120, where the
        difference of exponentials would cancel to a few correct bits."""
        half = self.op("mul", self.op("sub", self.op("exp", x), self.op("exp", self.op("neg", x))), self.c(0.5))
        x2 = self.op("mul", x, x)                   # the series as x (1 + x^2 (1/6 + x^2 / 120))
        inner = self.op("add", self.c(1 / 6), self.op("mul", x2, self.c(1 / 120)))
        series = self.op("mul", x, self.op("add", self.c(1), self.op("mul", x2, inner)))
        return self.op("where", self.op("less", self.op("abs", x), self.c(2.0 ** -5)), series, half)

    def isnan(self, x):
        return self.op("not_equal", x, x)

    def isinf(self, x, positive: bool = True, negative: bool = True):
        """x = +inf (positive) or x = -inf (negative); neither: false everywhere (x < x, NaN too)."""
        hits = [self.op("equal", x, self.c(s * math.inf)) for s, on in ((1, positive), (-1, negative)) if on]
        if not hits:
            return self.op("less", x, x)
        return hits[0] if len(hits) == 1 else self.op("logical_or", *hits)

    def trunc(self, x):
        """Rounded toward zero: ceil below 0, floor elsewhere (exact)."""
        return self.op("where", self.op("less", x, self.c(0)), self.op("ceil", x), self.op("floor", x))
