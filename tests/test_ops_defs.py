"""Operator definitions, table-driven over the registry (issue 10; SPEC.md "Operators").

For every operator x dtype x example shape (odd sizes, 1-sized dims, broadcasting):
- the compute definition, run by refimpl.compute_eval, matches the NumPy reference;
- the NumPy reference matches ONNX Runtime on a one-node ONNX model (f32, f16 and integer
  dtypes that ORT's CPU kernels implement; skipped when onnx/onnxruntime are not installed);
- inverse maps are bijections that invert the output's load of that input;
- shape-inference errors name the operator, the input and the dimension.

Tolerances (SPEC.md §11.3; |got - want| <= atol + rtol |want|, per output dtype): f32
1e-5/1e-5 (the definition accumulates in f32, the reference in f64), f16 2^-9/2^-9 and bf16
2^-6/2^-6 (both sides round once to the output; f32-vs-f64 intermediate differences may move
that rounding by one ulp), integers and bool exact. Example magnitudes are about 1 and
reductions short (<= 64 terms), so no depth scaling is needed here.
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
from taskmap.spec.ops.registry import values_of

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
    g, w = values_of(got, t), values_of(want, t)
    np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=what)
    zeros = (g == 0) & (w == 0)                  # a zero's sign shows after a division (1/-0 = -inf)
    assert (np.signbit(g) == np.signbit(w))[zeros].all(), f"{what}: the sign of a zero differs from the reference's"


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_examples_cover_odd_and_unit_dimensions(name):
    """The table's shapes are what the schedules are tested on too: odd sizes and 1-sized dims."""
    op = get(name)
    dims = [s for ex in op.examples for shape in ex.shapes for s in shape]
    assert len(op.examples) >= 3 and 1 in dims and any(s > 1 and s % 2 for s in dims), f"{name}: add examples"


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
    order = node.order or range(len(arrays))
    for nm, a, t in zip(names, [arrays[k] for k in order], [types[k] for k in order]):
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
    try:                           # ORT's CPU provider lacks a kernel for this type, or this ORT the opset
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return sess.run(None, feeds)             # (some kernels refuse a dtype only when they run)
    except Exception as e:
        if any(p in str(e) for p in ("NOT_IMPLEMENTED", "Could not find an implementation", "opset", "Opset",
                                     "data type is not supported")):
            pytest.skip(f"onnxruntime has no CPU kernel: {str(e).splitlines()[0][:120]}")
        raise


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
    ("conv2d", [f32[1, 3, 5, 5], f32[4, 3, 3, 3]], {"stride": (1, 1)},
     "conv2d: unknown attribute 'stride'; did you mean 'strides'?"),
    ("matmul", [f32[4, 5], f32[7, 3]], {}, "matmul: inner dimensions differ: a[..., 5] vs b[7, ...]"),
    ("matmul", [f32[2, 4, 5], f32[3, 5, 3]], {}, "matmul: batch dimensions do not broadcast: a[2, 4, 5] vs b[3, 5, 3]"),
    ("matmul", [f32[5], f32[5]], {}, "matmul: both inputs are 1-D"),
    ("batch_matmul", [f32[2, 4, 5], f32[3, 5, 3]], {}, "batch_matmul: batch dimensions differ: a[2, ...] vs b[3, ...]"),
    ("gemm", [f32[4, 5], f32[4, 3]], {}, "gemm: inner dimensions differ: a[..., 5] vs b[4, ...]"),
    ("gemm", [f32[4, 5], f32[5, 3], f32[2, 3]], {}, "gemm: input c[2, 3] must broadcast to the output [4, 3]"),
    ("conv2d", [f32[1, 6, 5, 5], f32[4, 3, 3, 3]], {"group": 4},
     "conv2d: group 4 must divide the input channels x[:, 6] and the output channels w[4, ...]"),
    ("conv2d", [f32[1, 6, 5, 5], f32[4, 2, 3, 3]], {"group": 2},
     "conv2d: input w has 2 channels per group (w[:, 2]) but x has 6 / group 2 = 3"),
    ("conv2d", [f32[1, 3, 2, 2], f32[4, 3, 3, 3]], {}, "conv2d: window 3 (kernel 3, dilation 1) is larger than the padded input H"),
    ("conv2d", [f32[1, 3, 5, 5], f32[4, 3, 3, 3]], {"strides": (1,)}, "conv2d: attribute 'strides' must be 2 ints, got [1]"),
    ("max_pool2d", [f32[1, 3, 5, 5]], {}, "max_pool2d: attribute 'kernel_shape' is required"),
    ("max_pool2d", [f32[3, 5, 5]], {"kernel_shape": (2, 2)}, "max_pool2d: input x must be 4-D (N, C, H, W), got [3, 5, 5]"),
    ("avg_pool2d", [f32[1, 1, 4, 4]], {"kernel_shape": (2, 2), "pads": (-1, 0, 0, 0)},
     "avg_pool2d: attribute 'pads' must be non-negative"),
    ("sum", [f32[3, 4]], {"axes": (2,)}, "sum: axis 2 is out of range for input x of rank 2"),
    ("sum", [f32[3, 4]], {"axes": (1, -1)}, "sum: axis -1 given twice"),
    ("argmax", [f32[3, 4]], {"axis": 5}, "argmax: axis 5 is out of range for input x of rank 2"),
    ("softmax", [f32[3, 4]], {"axis": 2}, "softmax: axis 2 is out of range for input x of rank 2"),
    ("layer_norm", [f32[3, 4], f32[3]], {}, "layer_norm: input scale must have shape [4] (x's dimensions from axis 1), got [3]"),
    ("group_norm", [f32[2, 6, 4], f32[6], f32[6]], {"num_groups": 4},
     "group_norm: num_groups=4 must divide the channel dimension x[:, 6]"),
    ("batch_norm", [f32[2, 3, 4], f32[3], f32[3], f32[4], f32[3]], {},
     "batch_norm: input mean must have shape [3] (one per channel), got [4]"),
    ("reshape", [f32[2, 3]], {"shape": (4, -1)}, "reshape: cannot reshape x[2, 3] (6 elements) to [4, -1]"),
    ("reshape", [f32[2, 3]], {"shape": (-1, -1)}, "reshape: shape [-1, -1] has more than one -1"),
    ("transpose", [f32[2, 3]], {"perm": (0, 0)}, "transpose: perm [0, 0] is not a permutation of 0..1"),
    ("concat", [f32[2, 3], f32[2, 4]], {"axis": 0}, "concat: input x1[2, 4] does not match x0[2, 3] outside axis 0"),
    ("split", [f32[5]], {"split": (2, 2)}, "split: split sizes [2, 2] must be positive and sum to x's dimension 0 of size 5"),
    ("slice", [f32[5]], {"starts": (3,), "ends": (1,)}, "slice: axis 0 is empty after slicing (start 3, end 1, step 1)"),
    ("gather", [f32[5, 3], f32[2]], {}, "gather: input indices must be i32 or i64, got f32"),
    ("gather_elements", [f32[4, 3], i64[2, 5]], {}, "gather_elements: indices dimension 1 has size 5, larger than x's 3"),
    ("pad", [f32[3, 4]], {"pads": (1, 1)}, "pad: pads needs 2 x rank = 4 entries (begins, then ends), got 2"),
    ("pad", [f32[3, 4]], {"pads": (3, 0, 0, 0), "mode": "reflect"},
     "pad: reflect padding 3 on axis 0 must be smaller than its size 3"),
    ("squeeze", [f32[2, 3]], {"axes": (1,)}, "squeeze: dimension 1 of x has size 3, not 1"),
    ("expand", [f32[3, 2]], {"shape": (4,)}, "expand: inputs do not broadcast: dimension -1 is 2 vs 4 (x[3, 2] vs shape[4])"),
    ("resize", [f32[1, 1, 4, 4]], {}, "resize: give exactly one of 'sizes' and 'scales'"),
    ("attention", [f32[1, 2, 5, 8], f32[1, 2, 7, 6], f32[1, 2, 7, 4]], {},
     "attention: head dimensions differ: q[..., 8] vs k[..., 6]"),
    ("attention", [f32[1, 3, 5, 8], f32[1, 2, 7, 8], f32[1, 2, 7, 4]], {},
     "attention: batch/heads/sequence of q[1, 3, 5, 8], k[1, 2, 7, 8], v[1, 2, 7, 4] do not match (q, k: same batch, "
     "k's heads dividing q's; k, v: same batch, heads and length)"),
    ("embedding", [f32[3], f32[10, 4]], {}, "embedding: input indices must be i32 or i64, got f32"),
    ("trilu", [f32[4]], {}, "trilu: input x must have rank 2 or more (a matrix per batch), got [4]"),
    ("scatter_nd", [f32[4, 3], i32[2, 1], f32[2, 3]], {}, "scatter_nd: input indices must be i64"),
    ("scatter_nd", [f32[4, 3], i64[2, 1], f32[2, 4]], {},
     "scatter_nd: input updates must have shape [2, 3] (indices' leading dimensions, then data's after the first 1)"),
    ("scatter_nd", [f32[4, 3], i64[65, 1], f32[65, 3]], {}, "scatter_nd: 65 index tuples (indices[65, 1]); at most 64"),
    ("scatter_nd", [f32[4, 3], i64[2, 3], f32[2]], {}, "scatter_nd: indices[..., 3] index 3 dimensions but data[4, 3] has 2"),
]


@pytest.mark.parametrize("name,types,attrs,phrase", ERRORS, ids=[f"{e[0]}-{k}" for k, e in enumerate(ERRORS)])
def test_inference_errors(name, types, attrs, phrase):
    with pytest.raises(OpError) as e:
        get(name).infer(types, **attrs)
    assert phrase in str(e.value)


def test_operators_doc_is_current():
    from pathlib import Path
    from taskmap.spec.ops.table import markdown
    doc = Path(__file__).resolve().parents[1] / "docs" / "OPERATORS.md"
    assert doc.read_text() == markdown(), "docs/OPERATORS.md is stale: python -m taskmap.spec.ops.table docs/OPERATORS.md"


def test_unknown_operator_suggests_a_close_name():
    with pytest.raises(OpError, match="unknown operator 'sigmod'; did you mean 'sigmoid'"):
        get("sigmod")


@pytest.mark.parametrize("name, shapes, attrs, depth", [
    ("conv2d", ([1, 8, 9, 9], [16, 4, 3, 3]), {"group": 2}, 4 * 3 * 3),     # C/group * KH * KW
    ("matmul", ([3, 24], [24, 5]), {}, 24),
    ("gemm", ([24, 3], [24, 5]), {"trans_a": 1}, 24),
    ("layer_norm", ([3, 70], [70], [70]), {}, 70),
    ("softmax", ([3, 70],), {}, 70),
    ("add", ([3, 70], [70]), {}, 1),
])
def test_reduction_depth_counts_the_terms_one_output_combines(name, shapes, attrs, depth):
    """What tolerances scale by (the tuner's check, op cases, the schedule tests), read from the
    compute definition rather than guessed from input and output sizes."""
    assert get(name).task([dt.float32[tuple(s)] for s in shapes], **attrs).reduction_depth == depth
