"""Element-wise operators: unary, binary and ternary with NumPy broadcasting.

Definition: one Compute `y` over the (broadcast) output shape; input k is loaded at the output
index with its leading dimensions dropped and its size-1 dimensions pinned to 0 (NumPy rules).
Every input is injective; an input whose shape is the output's has the identity inverse map
(a broadcast one has none: its elements feed several outputs).

Numerics: f16/bf16 inputs are converted to f32, the body is computed in f32 and rounded to the
output dtype once; f32 is computed in f32, integers in their own type (wrapping, C division).
NaN propagates through every float operator here (relu, clip, max, min included: they are
selects, not fmax/fmin). `round` rounds half to even (ONNX Round); `mod` follows ONNX Mod:
fmod=1 is C fmod (sign of the dividend), fmod=0 (integers only) takes the sign of the divisor.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes as dt
from .. import ir
from .compute import Task, TensorInput, call, cast, cmp, compute, compute_type, inverse_map, select
from .registry import (FLOATS, INTS, Attr, Example, OnnxNode, Operator, TensorType, get, random_array, register,
                       to_storage, uniform_sample)

UNARY_SHAPES = (Example(((7,),)), Example(((3, 1, 5),)), Example(((1,),)), Example(((2, 33),)))
BINARY_SHAPES = (Example(((3, 5), (3, 5))), Example(((2, 1, 5), (4, 1))), Example(((1,), (3, 2))),
                 Example(((7,), (1,))), Example(((2, 3, 1), (2, 1, 4))))
ALL_TYPES = FLOATS + INTS + (dt.int8, dt.boolean)


def broadcast_shape(op: Operator, names, types) -> tuple[int, ...]:
    """NumPy broadcasting of the inputs' shapes, or an OpError naming the clashing dimension."""
    n = max(len(t.shape) for t in types)
    out = []
    for d in range(-n, 0):
        sizes = [(nm, t.shape[d]) for nm, t in zip(names, types) if len(t.shape) >= -d]
        big = {s for _, s in sizes if s != 1}
        if len(big) > 1:
            desc = " vs ".join(f"{nm}{list(t.shape)}" for nm, t in zip(names, types))
            raise op.fail(f"inputs do not broadcast: dimension {d} is "
                          f"{' vs '.join(str(s) for _, s in sizes)} ({desc})")
        out.append(big.pop() if big else 1)
    return tuple(out)


def broadcast_load(x: TensorInput, out_axes) -> ir.Load:
    """x at an output index under NumPy broadcasting."""
    lead = len(out_axes) - len(x.shape)
    return x[tuple(ir.const(0) if s == 1 else out_axes[lead + d] for d, s in enumerate(x.shape))]


def elementwise_task(name: str, inputs: list[TensorInput], shape, fn, out_dtype) -> Task:
    """y[i] = fn(*inputs at i, each converted to its compute_type) rounded to out_dtype; identity
    inverse maps for the inputs of the output's shape."""
    def body(*i):
        return fn(*(cast(broadcast_load(x, i), compute_type(x.dtype)) for x in inputs))
    y = compute("y", shape, body, out_dtype)
    inv = tuple((x.name, inverse_map(x, lambda *j: j)) for x in inputs if x.shape == tuple(shape))
    return Task(name, tuple(inputs), (y,), ("y",), inv)


def _nonzero_divisor(rng, types, attrs):
    a, b = (random_array(rng, t) for t in types)
    if types[1].dtype.is_float:
        return [a, uniform_sample(0.5, 3.0, True)(rng, types[1:], attrs)[0]]
    return [a, np.where(b == 0, 3, b).astype(b.dtype)]


# ---------------------------------------------------------------- unary

def unary(name, body, ref, *, onnx=None, onnx_attrs=None, dtypes=FLOATS, attrs=(), sample=None,
          doc="", out=None, opset=21, onnx_fn=None):
    """Register y = body(x, attrs) (x in the compute type; out(dtype, attrs) gives the output dtype)."""
    out, doc = out or (lambda t, a: t), doc or f"{name}(x)"

    def infer(types, a):
        return [TensorType(out(types[0].dtype, a), types[0].shape)]

    def task(types, a):
        x = TensorInput("x", types[0].shape, types[0].dtype)
        return elementwise_task(name, [x], x.shape, lambda v: body(v, a), out(x.dtype, a))

    return register(Operator(
        name, "elementwise", doc, ("x",), attrs, dtypes, infer, lambda v, types, a: [ref(v[0], a)], task,
        UNARY_SHAPES, onnx,
        onnx_fn or onnx and (lambda types, a: OnnxNode(onnx, onnx_attrs(types, a) if onnx_attrs else {}, opset=opset)),
        sample))


def _f(v: float):
    """A float literal; it adopts the type of the expression it meets (weak typing, §2.2)."""
    return float(v)


def _round_half_even(x):
    r = call("floor", x)
    d = x - r
    even = cmp("==", r - 2.0 * call("floor", r * 0.5), 0.0)
    rounded = select(cmp(">", d, 0.5), r + 1.0, select(cmp("<", d, 0.5), r, select(even, r, r + 1.0)))
    # a zero keeps x's sign, as NumPy's and IEEE's rounding do (-0.3 -> -0.0: 1/round(x) is -inf)
    return select(cmp("==", rounded, 0.0), x * 0.0, rounded)


def _clamp(v, lo, hi):
    """lo <= v <= hi by selects, so NaN stays NaN."""
    return select(cmp("<", v, lo), lo, select(cmp(">", v, hi), hi, v))


def _sigmoid(x):
    return ir.binary("/", 1.0, 1.0 + call("exp", ir.Unary("neg", x)))


def _softplus(x):
    return select(cmp(">", x, 0.0), x, 0.0 * x) + call("log", 1.0 + call("exp", ir.Unary("neg", call("abs", x))))


_erf = np.vectorize(math.erf, otypes=[np.float64])
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_SELU_ALPHA, _SELU_GAMMA = 1.6732632423543772, 1.0507009873554805
_POSITIVE = uniform_sample(0.1, 4.0)
_NONZERO = uniform_sample(0.25, 3.0, True)
_SIGNED = FLOATS + INTS + (dt.int8,)

unary("relu", lambda x, a: select(cmp("<", x, 0), 0, x), lambda x, a: np.where(x < 0, 0, x),
      onnx="Relu", dtypes=FLOATS + (dt.int32, dt.int8), doc="max(x, 0)")
unary("leaky_relu", lambda x, a: select(cmp("<", x, 0.0), x * a["alpha"], x),
      lambda x, a: np.where(x < 0, x * a["alpha"], x), onnx="LeakyRelu",
      onnx_attrs=lambda t, a: {"alpha": a["alpha"]}, attrs=(Attr("alpha", 0.01, (int, float), "slope for x < 0"),),
      doc="x < 0 ? alpha x : x")
unary("gelu", lambda x, a: 0.5 * x * (1.0 + (call("erf", x * _f(1 / math.sqrt(2))) if a["approximate"] == "none"
                                             else call("tanh", _f(_SQRT_2_OVER_PI) * (x + 0.044715 * x * x * x)))),
      lambda x, a: 0.5 * x * (1 + (_erf(x / math.sqrt(2)) if a["approximate"] == "none"
                                   else np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)))),
      onnx="Gelu", onnx_attrs=lambda t, a: {"approximate": a["approximate"]}, opset=20,
      attrs=(Attr("approximate", "none", str, "'none' (erf) or 'tanh'", ("none", "tanh")),),
      doc="x Φ(x), exact (erf) or the tanh approximation")
unary("silu", lambda x, a: x * _sigmoid(x), lambda x, a: x / (1 + np.exp(-x)), doc="x sigmoid(x) (swish)")
unary("sigmoid", lambda x, a: _sigmoid(x), lambda x, a: 1 / (1 + np.exp(-x)), onnx="Sigmoid", doc="1 / (1 + e^-x)")
unary("tanh", lambda x, a: call("tanh", x), lambda x, a: np.tanh(x), onnx="Tanh")
unary("exp", lambda x, a: call("exp", x), lambda x, a: np.exp(x), onnx="Exp")
unary("log", lambda x, a: call("log", x), lambda x, a: np.log(x), onnx="Log", sample=_POSITIVE)
unary("sqrt", lambda x, a: call("sqrt", x), lambda x, a: np.sqrt(x), onnx="Sqrt", sample=_POSITIVE)
unary("rsqrt", lambda x, a: call("rsqrt", x), lambda x, a: 1 / np.sqrt(x), sample=_POSITIVE, doc="1 / sqrt(x)")
unary("abs", lambda x, a: call("abs", x), lambda x, a: np.abs(x), onnx="Abs", dtypes=_SIGNED)
unary("neg", lambda x, a: ir.Unary("neg", x), lambda x, a: -x, onnx="Neg", dtypes=_SIGNED)
unary("erf", lambda x, a: call("erf", x), lambda x, a: _erf(x), onnx="Erf")
unary("reciprocal", lambda x, a: ir.binary("/", 1.0, x), lambda x, a: 1 / x, onnx="Reciprocal", sample=_NONZERO)
unary("floor", lambda x, a: call("floor", x), lambda x, a: np.floor(x), onnx="Floor")
unary("ceil", lambda x, a: call("ceil", x), lambda x, a: np.ceil(x), onnx="Ceil")
unary("round", lambda x, a: _round_half_even(x), lambda x, a: np.round(x), onnx="Round",
      sample=lambda rng, types, a: [to_storage(rng.integers(-12, 12, types[0].shape) * 0.25, types[0].dtype)],
      doc="to the nearest integer, halves to even")
unary("sign", lambda x, a: select(cmp(">", x, 0), 1, select(cmp("<", x, 0), -1, x)),
      lambda x, a: np.sign(x), onnx="Sign", dtypes=_SIGNED)
unary("softplus", lambda x, a: _softplus(x), lambda x, a: np.logaddexp(0, x), onnx="Softplus", doc="log(1 + e^x)")
unary("mish", lambda x, a: x * call("tanh", _softplus(x)), lambda x, a: x * np.tanh(np.logaddexp(0, x)),
      onnx="Mish", doc="x tanh(softplus(x))")
unary("hardsigmoid", lambda x, a: _clamp(x * a["alpha"] + a["beta"], 0.0, 1.0),
      lambda x, a: np.clip(x * a["alpha"] + a["beta"], 0, 1), onnx="HardSigmoid",
      onnx_attrs=lambda t, a: dict(a), attrs=(Attr("alpha", 0.2, (int, float)), Attr("beta", 0.5, (int, float))),
      doc="clip(alpha x + beta, 0, 1)")
unary("hardswish", lambda x, a: x * _clamp(x * _f(1 / 6) + 0.5, 0.0, 1.0),
      lambda x, a: x * np.clip(x / 6 + 0.5, 0, 1), onnx="HardSwish", doc="x clip(x/6 + 1/2, 0, 1)")
unary("elu", lambda x, a: select(cmp("<", x, 0.0), (call("exp", x) - 1.0) * a["alpha"], x),
      lambda x, a: np.where(x < 0, a["alpha"] * np.expm1(x), x), onnx="Elu",
      onnx_attrs=lambda t, a: dict(a), attrs=(Attr("alpha", 1.0, (int, float)),), doc="x < 0 ? alpha (e^x - 1) : x")
unary("selu", lambda x, a: select(cmp("<=", x, 0.0), (call("exp", x) - 1.0) * a["alpha"], x) * a["gamma"],
      lambda x, a: a["gamma"] * np.where(x <= 0, a["alpha"] * np.expm1(x), x), onnx="Selu",
      onnx_attrs=lambda t, a: dict(a),
      attrs=(Attr("alpha", _SELU_ALPHA, (int, float)), Attr("gamma", _SELU_GAMMA, (int, float))),
      doc="gamma (x <= 0 ? alpha (e^x - 1) : x)")
unary("sin", lambda x, a: call("sin", x), lambda x, a: np.sin(x), onnx="Sin")
unary("cos", lambda x, a: call("cos", x), lambda x, a: np.cos(x), onnx="Cos")
def _clip_onnx(types, a):
    t = types[0].dtype
    lo, hi = (to_storage(np.array(v), t) for v in _bounds(t, a))
    return OnnxNode("Clip", {}, ((1, lo), (2, hi)))


def _bounds(t: dt.DType, a) -> tuple:
    """clip's bounds in x's type: integers clamp them to the type's range (no float compare)."""
    if not t.is_integer:
        return a["min"], a["max"]
    return (int(max(math.ceil(max(a["min"], t.min)), t.min)),
            int(min(math.floor(min(a["max"], t.max)), t.max)))


unary("clip", lambda x, a: _clamp(x, *_bounds(x.dtype, a)),
      lambda x, a: np.clip(x, a["min"], a["max"]), onnx="Clip", dtypes=_SIGNED, onnx_fn=_clip_onnx,
      attrs=(Attr("min", -math.inf, (int, float), "lower bound"), Attr("max", math.inf, (int, float), "upper bound")),
      doc="min(max(x, min), max); NaN stays NaN")
unary("logical_not", lambda x, a: ir.Unary("not", x), lambda x, a: np.logical_not(x), onnx="Not",
      dtypes=(dt.boolean,))
unary("cast", lambda x, a: cast(x, a["to"]), lambda x, a: x, onnx="Cast", dtypes=ALL_TYPES,
      onnx_attrs=lambda t, a: {"to": a["to"]}, out=lambda t, a: a["to"],
      attrs=(Attr("to", dt.float32, dt.DType, "target dtype"),),
      doc="conversion of SPEC §2.4 (float -> int truncates and saturates, NaN -> 0)")



# ---------------------------------------------------------------- binary / ternary

def nary(name, inputs, body, ref, *, onnx=None, dtypes=FLOATS, attrs=(), out=None, sample=None, doc="",
         typed=0, check=None, onnx_attrs=None, examples=None):
    """Register y = body(*inputs at the broadcast index, attrs), inputs in the compute type."""
    out = out or (lambda t, a: t)

    def infer(types, a):
        data = [t for k, t in enumerate(types) if name != "where" or k > 0]
        for t in data[1:]:
            if t.dtype != data[0].dtype:
                raise get(name).fail(f"inputs differ in dtype: {' vs '.join(d.dtype.short for d in data)}; "
                                     f"cast one of them first")
        if name == "where" and types[0].dtype is not dt.boolean:
            raise get(name).fail(f"input cond must be bool, got {types[0].dtype.short}")
        if check:
            check(get(name), types, a)
        return [TensorType(out(types[typed].dtype, a), broadcast_shape(get(name), inputs, types))]

    def task(types, a):
        xs = [TensorInput(n, t.shape, t.dtype) for n, t in zip(inputs, types)]
        shape = broadcast_shape(get(name), inputs, types)
        return elementwise_task(name, xs, shape, lambda *v: body(*v, a), out(types[typed].dtype, a))

    register(Operator(
        name, "elementwise", doc, inputs, attrs, dtypes, infer, lambda v, types, a: [ref(*v, a)], task,
        examples or (BINARY_SHAPES if len(inputs) == 2 else WHERE_SHAPES), onnx,
        onnx and (lambda types, a: OnnxNode(onnx, onnx_attrs(a) if onnx_attrs else {})), sample, typed))


WHERE_SHAPES = (Example(((3, 5), (3, 5), (3, 5)), dtypes=(dt.boolean,)),
                Example(((2, 1, 5), (4, 1), (5,)), dtypes=(dt.boolean,)),
                Example(((1,), (3, 2), (1, 2)), dtypes=(dt.boolean,)))
_ARITH = FLOATS + INTS
_BOOL = lambda t, a: dt.boolean


def _c_div(a, b):
    """Integer division truncating toward zero (SPEC §2.3), floats true division."""
    if a.dtype.kind == "f":
        return a / b
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q).astype(a.dtype)


def _mod_ref(a, b, attrs):
    return np.fmod(a, b) if attrs["fmod"] else np.mod(a, b)


def _mod_body(a, b, attrs):
    r = ir.binary("%", a, b)
    if attrs["fmod"]:
        return r
    fix = cmp("&&", cmp("!=", r, 0), cmp("!=", cmp("<", r, 0), cmp("<", b, 0)))
    return select(fix, r + b, r)


def _mod_check(op, types, a):
    if not a["fmod"] and types[0].dtype.is_float:
        raise op.fail("fmod=0 (sign of the divisor) needs integer inputs, as in ONNX; pass fmod=1 for floats")


def _pow_sample(rng, types, attrs):
    return [_POSITIVE(rng, types[:1], attrs)[0], random_array(rng, types[1], -2.0, 2.0)]


nary("add", ("a", "b"), lambda a, b, _: a + b, lambda a, b, _: a + b, onnx="Add", dtypes=_ARITH, doc="a + b")
nary("sub", ("a", "b"), lambda a, b, _: a - b, lambda a, b, _: a - b, onnx="Sub", dtypes=_ARITH, doc="a - b")
nary("mul", ("a", "b"), lambda a, b, _: a * b, lambda a, b, _: a * b, onnx="Mul", dtypes=_ARITH, doc="a * b")
nary("div", ("a", "b"), lambda a, b, _: ir.binary("/", a, b), lambda a, b, _: _c_div(a, b), onnx="Div",
     dtypes=_ARITH, sample=_nonzero_divisor, doc="a / b; integers truncate toward zero")
nary("pow", ("a", "b"), lambda a, b, _: call("pow", a, b), lambda a, b, _: np.power(a, b), onnx="Pow",
     sample=_pow_sample, doc="a ** b")
nary("max", ("a", "b"), lambda a, b, _: select(cmp("||", cmp(">", a, b), cmp("!=", a, a)), a, b),
     lambda a, b, _: np.maximum(a, b), onnx="Max", dtypes=_ARITH, doc="larger of a and b; NaN propagates")
nary("min", ("a", "b"), lambda a, b, _: select(cmp("||", cmp("<", a, b), cmp("!=", a, a)), a, b),
     lambda a, b, _: np.minimum(a, b), onnx="Min", dtypes=_ARITH, doc="smaller of a and b; NaN propagates")
MOD_SHAPES = tuple(Example(e.shapes, {"fmod": 1}) for e in BINARY_SHAPES) + tuple(
    Example(e.shapes, {"fmod": 0}, (dt.int32, dt.int32)) for e in BINARY_SHAPES[:2])
nary("mod", ("a", "b"), _mod_body, _mod_ref, onnx="Mod", dtypes=_ARITH, sample=_nonzero_divisor, examples=MOD_SHAPES,
     doc="remainder: fmod=1 sign of a (C fmod), fmod=0 sign of b",
     attrs=(Attr("fmod", 0, int, "1: C fmod (sign of a); 0: sign of b (integers only)", (0, 1)),),
     check=_mod_check, onnx_attrs=lambda a: {"fmod": a["fmod"]})
for _name, _op, _onnx, _np in (("equal", "==", "Equal", np.equal), ("not_equal", "!=", None, np.not_equal),
                               ("less", "<", "Less", np.less), ("less_equal", "<=", "LessOrEqual", np.less_equal),
                               ("greater", ">", "Greater", np.greater),
                               ("greater_equal", ">=", "GreaterOrEqual", np.greater_equal)):
    nary(_name, ("a", "b"), lambda a, b, _, op=_op: cmp(op, a, b), lambda a, b, _, f=_np: f(a, b), onnx=_onnx,
         dtypes=_ARITH, out=_BOOL, doc=f"a {_op} b (bool)")
for _name, _op, _onnx, _np in (("logical_and", "&&", "And", np.logical_and), ("logical_or", "||", "Or", np.logical_or),
                               ("logical_xor", "!=", "Xor", np.logical_xor)):
    nary(_name, ("a", "b"), lambda a, b, _, op=_op: cmp(op, a, b), lambda a, b, _, f=_np: f(a, b), onnx=_onnx,
         dtypes=(dt.boolean,), doc=f"a {_op} b on bools")
nary("where", ("cond", "a", "b"), lambda c, a, b, _: select(c, a, b), lambda c, a, b, _: np.where(c, a, b),
     onnx="Where", dtypes=ALL_TYPES, typed=1, doc="cond ? a : b")
