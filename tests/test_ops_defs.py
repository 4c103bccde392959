"""Operator definitions, table-driven over the registry (issue 10; SPEC.md "Operators").

For every operator x dtype x example shape (odd sizes, 1-sized dims, broadcasting):
- the compute definition, run by refimpl.compute_eval, matches the NumPy reference;
- the NumPy reference matches ONNX Runtime on a one-node ONNX model (f32, f16 and integer
  dtypes that ORT's CPU kernels implement; skipped when onnx/onnxruntime are not installed);
- inverse maps are bijections that invert the output's load of that input;
- shape-inference errors name the operator, the input and the dimension.

Tolerances (|got - want| <= atol + rtol |want|), per dtype of the output: f32 1e-5/1e-5 (the
definition accumulates in f32, the reference in f64), f16 2^-9/2^-9 and bf16 2^-6/2^-6 (both
sides round once to the output; f32-vs-f64 intermediate differences can move that rounding by
one ulp), integers and bool exact. Reductions over n terms scale atol by sqrt(n)-ish through
`depth` in their examples' magnitudes (kept small).
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from taskmap.refimpl.compute_eval import evaluate
from taskmap.spec import dtypes as dt
from taskmap.spec import ir
from taskmap.spec.ops import OPERATORS, OpError, get
from taskmap.spec.ops.compute import Compute, Task, TensorInput, substitute
from taskmap.spec.ops.registry import TensorType, values_of

TOLERANCE = {dt.float32: (1e-5, 1e-5), dt.float16: (2.0 ** -9, 2.0 ** -9), dt.bfloat16: (2.0 ** -6, 2.0 ** -6)}

CASES = [pytest.param(op.name, t, k, id=f"{op.name}-{t.short}-{k}")
         for op in OPERATORS.values() for t in op.dtypes for k in range(len(op.examples))]


def _inputs(op, t, k):
    ex = op.examples[k]
    types = ex.types(t)
    rng = np.random.default_rng(zlib.crc32(f"{op.name}/{t.short}/{k}".encode()))
    return ex, types, op.sample(rng, types, **ex.attrs)


def assert_close(got, want, t: dt.DType, what: str):
    assert got.shape == want.shape and got.dtype == want.dtype, f"{what}: {got.dtype}{got.shape} vs {want.dtype}{want.shape}"
    if not t.is_float:
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    rtol, atol = TOLERANCE[t]
    np.testing.assert_allclose(values_of(got, t), values_of(want, t), rtol=rtol, atol=atol, err_msg=what)


@pytest.mark.parametrize("name,t,k", CASES)
def test_definition_matches_reference(name, t, k):
    op = get(name)
    ex, types, arrays = _inputs(op, t, k)
    outs = op.infer(types, **ex.attrs)
    want = op.reference(*arrays, **ex.attrs)
    got = evaluate(op.task(types, **ex.attrs), *arrays)
    assert len(got) == len(want) == len(outs)
    for g, w, o in zip(got, want, outs):
        assert g.shape == o.shape and g.dtype == o.dtype.storage
        assert_close(g, w, o.dtype, f"{name} {[list(t.shape) for t in types]} {ex.attrs}")


# ---------------------------------------------------------------- inverse maps

def _index_task(inp: TensorInput, exprs, axes) -> Task:
    """Evaluates index expressions over the input's grid (as i64 computes)."""
    cs = tuple(Compute(f"e{d}", inp.shape, axes, ir.Cast(e, dt.int64)) for d, e in enumerate(exprs))
    return Task("index", (), cs, tuple(c.name for c in cs))


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_inverse_maps_invert_the_loads(name):
    op = get(name)
    for ex in op.examples:
        task = op.task(ex.types(op.dtypes[0]), **ex.attrs)
        (y,) = task.output_computes if len(task.outputs) == 1 else (None,)
        for inp in task.inputs:
            inv = task.inverse_map(inp.name)
            if inv is None:
                continue
            assert y is not None and task.injective(inp.name)
            assert np.prod(inp.shape) == np.prod(y.shape), f"{name}: inverse map of {inp.name} is not a bijection"
            out_idx = evaluate(_index_task(inp, inv.indices, inv.axes))
            flat = np.ravel_multi_index(tuple(np.broadcast_to(i, inp.shape).ravel() for i in out_idx), y.shape)
            assert len(np.unique(flat)) == flat.size, f"{name}: inverse map of {inp.name} is not one-to-one"
            loads = [n for n in ir.walk(y.body) if isinstance(n, ir.Load) and n.buffer.name == inp.name]
            assert loads
            for load in loads:
                at = [substitute(i, dict(zip(y.axes, inv.indices))) for i in load.indices]
                back = evaluate(_index_task(inp, at, inv.axes))
                for d, b in enumerate(back):
                    grid = np.arange(inp.shape[d]).reshape([-1 if e == d else 1 for e in range(len(inp.shape))])
                    np.testing.assert_array_equal(np.broadcast_to(b, inp.shape), np.broadcast_to(grid, inp.shape))


# ---------------------------------------------------------------- ONNX Runtime

ONNX_DTYPES = (dt.float32, dt.float16, dt.int8, dt.int32, dt.int64, dt.boolean)
ONNX_CASES = [c for c in CASES if get(c.values[0]).onnx and c.values[1] in ONNX_DTYPES]


def _run_onnx(op, types, arrays, attrs):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import helper
    node = op.onnx_node(types, **attrs)
    enum = lambda t: helper.np_dtype_to_tensor_dtype(t.storage)
    feeds, inputs, names = {}, [], [f"in{k}" for k in range(len(arrays))]
    for nm, a, t in zip(names, arrays, types):
        feeds[nm] = a
        inputs.append(helper.make_tensor_value_info(nm, enum(t.dtype), a.shape))
    names, inits = list(names), []
    for pos, const in node.inputs:
        if const is None:
            names.insert(pos, "")
            continue
        cname = f"const{pos}"
        inits.append(onnx.numpy_helper.from_array(np.asarray(const), cname))
        names.insert(pos, cname)
    outs = op.infer(types, **attrs)
    outputs = [helper.make_tensor_value_info(f"out{k}", enum(o.dtype), o.shape) for k, o in enumerate(outs)]
    onnx_attrs = {k: enum(v) if isinstance(v, dt.DType) else v for k, v in node.attrs.items()}
    graph = helper.make_graph([helper.make_node(node.op_type, names, [o.name for o in outputs], domain=node.domain,
                                                **onnx_attrs)], "g", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(node.domain, node.opset)])
    model.ir_version = min(model.ir_version, 10)
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as e:         # ORT's CPU provider lacks a kernel for this type
        if "NOT_IMPLEMENTED" in str(e) or "Could not find an implementation" in str(e):
            pytest.skip(f"onnxruntime has no CPU kernel: {str(e).splitlines()[0][:120]}")
        raise
    return sess.run(None, feeds)


@pytest.mark.parametrize("name,t,k", ONNX_CASES)
def test_reference_matches_onnxruntime(name, t, k):
    op = get(name)
    ex, types, arrays = _inputs(op, t, k)
    got = _run_onnx(op, types, arrays, ex.attrs)
    want = op.reference(*arrays, **ex.attrs)
    for g, w, o in zip(got, want, op.infer(types, **ex.attrs)):
        assert_close(np.asarray(g).astype(o.dtype.storage), w, o.dtype, f"{name} vs onnxruntime")


# ---------------------------------------------------------------- shape-inference errors

f32, f16, i32, i64, boolean = dt.float32, dt.float16, dt.int32, dt.int64, dt.boolean
ERRORS = [
    ("relu", [i64[4]], {}, "relu: input x has dtype i64; expected f32, f16, bf16, i32, i8"),
    ("relu", [f32[4], f32[4]], {}, "relu: expected 1 inputs (x), got 2"),
    ("relu", [f32[0, 3]], {}, "relu: input x needs positive int dimensions, got [0, 3]"),
    ("leaky_relu", [f32[4]], {"alpah": 0.1}, "leaky_relu: unknown attribute 'alpah'; did you mean 'alpha'?"),
    ("gelu", [f32[4]], {"approximate": "fast"}, "gelu: attribute 'approximate' must be 'none' or 'tanh'"),
    ("clip", [f32[4]], {"min": "0"}, "clip: attribute 'min' must be an int or a number"),
    ("add", [f32[2, 3], f32[4]], {}, "add: inputs do not broadcast: dimension -1 is 3 vs 4 (a[2, 3] vs b[4])"),
    ("mul", [f32[3], f16[3]], {}, "mul: inputs differ in dtype: f32 vs f16; cast one of them first"),
    ("mod", [f32[3], f32[3]], {}, "mod: fmod=0 (sign of the divisor) needs integer inputs"),
    ("where", [i32[3], f32[3], f32[3]], {}, "where: input cond must be bool, got i32"),
    ("cast", [f32[3]], {"to": "f16"}, "cast: attribute 'to' must be a dtype"),
]


@pytest.mark.parametrize("name,types,attrs,phrase", ERRORS, ids=[f"{e[0]}-{k}" for k, e in enumerate(ERRORS)])
def test_inference_errors(name, types, attrs, phrase):
    with pytest.raises(OpError) as e:
        get(name).infer(types, **attrs)
    assert phrase in str(e.value)


def test_unknown_operator_suggests_a_close_name():
    with pytest.raises(OpError, match="unknown operator 'sigmod'; did you mean 'sigmoid'"):
        get("sigmod")
