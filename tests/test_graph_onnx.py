"""The ONNX frontend against ONNX Runtime: every registry operator with an ONNX equivalent
imported from its one-node model, the frontend's decompositions, the reduced models; and the
errors (every unsupported operator in one error, opset, non-constant inputs). Skips cleanly
without onnx / onnxruntime."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import taskmap

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

from taskmap.frontends import onnx_models  # noqa: E402
from taskmap.frontends.onnx_import import UnsupportedModel, load  # noqa: E402
from taskmap.frontends.onnx_ops import NEEDS, supported, supported_ops  # noqa: E402
from taskmap.spec import dtypes as dt  # noqa: E402
from taskmap.spec.graph import GraphError  # noqa: E402
from taskmap.spec.graph.passes import PIPELINE, run  # noqa: E402
from taskmap.spec.graph.reference import run_reference  # noqa: E402
from taskmap.spec.ops import OPERATORS, get  # noqa: E402

ORT_DTYPES = (dt.float32, dt.int32, dt.int64, dt.boolean)


def run_ort(model, feeds: dict) -> list[np.ndarray]:
    try:
        return onnx_models.onnxruntime_outputs(model, feeds)
    except onnx_models.NoOrtKernel as e:
        pytest.skip(f"onnxruntime has no CPU kernel: {e}")


def assert_matches(got, want, what: str):
    assert len(got) == len(want), what
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.shape == w.shape, f"{what}: shape {g.shape} vs onnxruntime {w.shape}"
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5, err_msg=what)
        else:
            np.testing.assert_array_equal(g, w, err_msg=what)


OP_CASES = [pytest.param(op.name, k, id=f"{op.name}-{k}") for op in OPERATORS.values() if op.onnx_fn
            for k in range(len(op.examples))]


@pytest.mark.parametrize("name,k", OP_CASES)
def test_every_registry_operator_imports_from_its_onnx_node(name, k):
    op = get(name)
    ex = op.examples[k]
    t = next((d for d in op.dtypes if d in ORT_DTYPES), None)
    if t is None:
        pytest.skip(f"{name}: no dtype onnxruntime's CPU provider runs")
    types = ex.types(t)
    assert supported(op.onnx), (f"operator {name} has an ONNX equivalent ({op.onnx}) but frontends/onnx_ops.py "
                                "maps no converter onto it: add one")
    model = onnx_models.operator_model(name, types, ex.attrs)
    graph = load(model)
    rng = np.random.default_rng(zlib.crc32(f"{name}/{k}".encode()))
    arrays = op.sample(rng, types, **ex.attrs)
    want = run_ort(model, {f"in{j}": a for j, a in enumerate(arrays)})
    assert_matches(run_reference(graph, *arrays), want, f"{name} {ex.attrs}")


def _model(nodes, inputs, outputs, inits=(), opset=18):
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info(n, e, s) for n, e, s in inputs],
                          [helper.make_tensor_value_info(o, T.UNDEFINED, None) for o in outputs], list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = min(m.ir_version, 10)
    m = onnx.shape_inference.infer_shapes(m)
    for o in m.graph.output:          # what ONNX's shape inference could not type is f32 here
        if o.type.tensor_type.elem_type == T.UNDEFINED:
            o.type.tensor_type.elem_type = T.FLOAT
    return m


def _c(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


F = T.FLOAT
X = [("x", F, [2, 3, 4])]
DECOMPOSED = {
    "PRelu": ([helper.make_node("PRelu", ["x", "s"], ["y"])], X, [_c("s", np.float32([0.1, -0.2, 0.3, 0.5]))]),
    "Softsign": ([helper.make_node("Softsign", ["x"], ["y"])], X, []),
    "ThresholdedRelu": ([helper.make_node("ThresholdedRelu", ["x"], ["y"], alpha=0.5)], X, []),
    "Celu": ([helper.make_node("Celu", ["x"], ["y"], alpha=1.5)], X, []),
    "IsNaN": ([helper.make_node("Div", ["x", "x"], ["d"]), helper.make_node("IsNaN", ["d"], ["y"])], X, []),
    "Sum": ([helper.make_node("Sum", ["x", "x", "x"], ["y"])], X, []),
    "Mean": ([helper.make_node("Mean", ["x", "x", "x"], ["y"])], X, []),
    "Max": ([helper.make_node("Max", ["x", "c"], ["y"])], X, [_c("c", np.float32([0.5]))]),
    "Min": ([helper.make_node("Min", ["x"], ["y"])], X, []),
    "ReduceL1": ([helper.make_node("ReduceL1", ["x", "a"], ["y"], keepdims=0)], X, [_c("a", np.int64([1]))]),
    "ReduceL2": ([helper.make_node("ReduceL2", ["x", "a"], ["y"])], X, [_c("a", np.int64([0, 2]))]),
    "ReduceSumSquare": ([helper.make_node("ReduceSumSquare", ["x"], ["y"])], X, []),
    "ReduceLogSum": ([helper.make_node("Abs", ["x"], ["p"]), helper.make_node("ReduceLogSum", ["p", "a"], ["y"])],
                     X, [_c("a", np.int64([-1]))]),
    "ReduceLogSumExp": ([helper.make_node("ReduceLogSumExp", ["x", "a"], ["y"], keepdims=0)], X,
                        [_c("a", np.int64([2]))]),
    "ReduceSum-noop": ([helper.make_node("ReduceSum", ["x"], ["y"], noop_with_empty_axes=1)], X, []),
    "InstanceNormalization": ([helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-3)], X,
                              [_c("s", np.float32([1, 2, 0.5])), _c("b", np.float32([0, 1, -1]))]),
    "GroupNormalization-18": ([helper.make_node("GroupNormalization", ["x4", "s", "b"], ["y"], num_groups=2)],
                              [("x4", F, [1, 4, 3, 2])], [_c("s", np.float32([1, 2])), _c("b", np.float32([0, 1]))]),
    "CastLike": ([helper.make_node("CastLike", ["x", "i"], ["y"])], X, [_c("i", np.int32([1]))]),
    "Identity-Dropout": ([helper.make_node("Identity", ["x"], ["i"]), helper.make_node("Dropout", ["i"], ["y"])],
                         X, []),
    "Clip": ([helper.make_node("Clip", ["x", "lo", ""], ["y"])], X, [_c("lo", np.float32(-0.5))]),
    "Shape-Reshape": ([helper.make_node("Shape", ["x"], ["s"], start=1), helper.make_node("Reshape", ["x4", "s"], ["y"])],
                      X + [("x4", F, [3, 4])], []),
    "Constants": ([helper.make_node("Constant", [], ["c"], value_floats=[1.0, 2.0, 3.0, 4.0]),
                   helper.make_node("ConstantOfShape", ["sh"], ["z"], value=_c("v", np.float32([0.5]))),
                   helper.make_node("Range", ["r0", "r1", "r2"], ["r"]),
                   helper.make_node("Cast", ["r"], ["rf"], to=F),
                   helper.make_node("Add", ["x", "c"], ["a"]), helper.make_node("Mul", ["a", "z"], ["m"]),
                   helper.make_node("Add", ["m", "rf"], ["y"])], X,
                  [_c("sh", np.int64([3, 4])), _c("r0", np.int64(0)), _c("r1", np.int64(8)), _c("r2", np.int64(2))]),
    "ConstantOfShape-scalar": ([helper.make_node("ConstantOfShape", ["e"], ["z"], value=_c("v", np.float32([2.0]))),
                                helper.make_node("Mul", ["x", "z"], ["y"])], X, [_c("e", np.zeros(0, np.int64))]),
    "Tile": ([helper.make_node("Tile", ["x", "r"], ["y"])], X, [_c("r", np.int64([2, 1, 3]))]),
    "Pad-axes": ([helper.make_node("Pad", ["x", "p", "v", "ax"], ["y"])], X,
                 [_c("p", np.int64([1, 2, 0, 1])), _c("v", np.float32(0.25)), _c("ax", np.int64([0, 2]))]),
    "Conv-same": ([helper.make_node("Conv", ["x4", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])],
                  [("x4", F, [1, 2, 5, 6])], [_c("w", np.random.default_rng(0).standard_normal((3, 2, 3, 3))
                                                  .astype(np.float32))]),
    **{f"Einsum-{eq}": ([helper.make_node("Einsum", [f"e{k}" for k in range(len(shapes))], ["y"], equation=eq)],
                        [(f"e{k}", F, s) for k, s in enumerate(shapes)], [])
       for eq, shapes in (("bij,bjk->bik", ([2, 3, 4], [2, 4, 5])), ("ij,kj", ([3, 4], [5, 4])),
                          ("...ii->...i", ([2, 3, 3],)), ("ii", ([4, 4],)), ("ij->", ([3, 5],)),
                          ("bhqd,bhkd->bhqk", ([1, 2, 3, 4], [1, 2, 5, 4])), ("i,i", ([5], [5])),
                          ("ij,jk,kl->li", ([2, 3], [3, 4], [4, 2])), ("b i j , j -> i", ([2, 3, 4], [4])),
                          ("...ij,...jk", ([2, 1, 3, 4], [1, 5, 4, 2])), ("ijk->kji", ([2, 3, 4],)))},
    **{f"OneHot-axis{axis}": ([helper.make_node("OneHot", ["x", "depth", "values"], ["y"], axis=axis)],
                              [("x", F, [2, 3])],            # float indices in [-2, 2): truncated, wrapped
                              [_c("depth", np.array(3, np.float32)), _c("values", np.array([0.5, 3.0], np.float32))])
       for axis in (0, 1, -1)},
    "DepthToSpace-CRD": ([helper.make_node("DepthToSpace", ["x4"], ["y"], blocksize=2, mode="CRD")],
                         [("x4", F, [1, 8, 2, 3])], []),
    "MaxPool-same": ([helper.make_node("MaxPool", ["x4"], ["y"], kernel_shape=[2, 2], auto_pad="SAME_LOWER")],
                     [("x4", F, [1, 2, 5, 5])], []),
}


@pytest.mark.parametrize("case", sorted(DECOMPOSED))
def test_frontend_conversions_match_onnxruntime(case):
    nodes, inputs, inits = DECOMPOSED[case]
    missing = {n for node in nodes for n in NEEDS.get(node.op_type, ()) if n not in OPERATORS}
    if missing:
        pytest.skip(f"needs operators not registered yet: {', '.join(sorted(missing))}")
    model = _model(nodes, inputs, ["y"], inits)
    rng = np.random.default_rng(1)
    feeds = {n: rng.uniform(-2, 2, s).astype(np.float32) for n, _, s in inputs}
    assert_matches(run_reference(load(model), *feeds.values()), run_ort(model, feeds), case)


def _missing_ops(model) -> set[str]:
    return {n for node in model.graph.node for n in NEEDS.get(node.op_type, ()) if n not in OPERATORS}


@pytest.mark.parametrize("name", sorted(onnx_models.REDUCED))
def test_reduced_models_import_and_match_onnxruntime(name):
    model = onnx_models.REDUCED[name]()
    if _missing_ops(model):
        pytest.skip(f"needs operators not registered yet: {', '.join(sorted(_missing_ops(model)))}")
    graph = load(model)
    optimized = run(PIPELINE, graph)
    rng = np.random.default_rng(2)
    feeds = {}
    for vi in model.graph.input:
        shape = [d.dim_value or 3 for d in vi.type.tensor_type.shape.dim]
        feeds[vi.name] = (rng.integers(0, 50, shape) if vi.type.tensor_type.elem_type == T.INT64
                          else rng.standard_normal(shape).astype(np.float32))
    want = run_ort(model, feeds)
    assert_matches(run_reference(graph, *feeds.values()), want, name)
    assert_matches(run_reference(optimized, *feeds.values()), want, f"{name} after the graph passes")


def test_symbolic_batch_survives_import():
    graph = load(onnx_models.mlp(batch="N"))
    assert graph.inputs[0].type.shape == ("N", 16)
    assert graph.output_types()[0].shape == ("N", 8)


def test_every_unsupported_operator_is_listed_once():
    nodes = [helper.make_node("NonMaxSuppression", ["x"], ["a"], name="nms1"),
             helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("NonMaxSuppression", ["r"], ["b"], name="nms2"),
             helper.make_node("Einsum2", ["x"], ["y"], name="weird")]
    with pytest.raises(UnsupportedModel) as e:
        load(_model(nodes, X, ["a", "b", "y"]))
    text = str(e.value)
    assert "unsupported ONNX operators (2 types); nothing was imported" in text
    assert "NonMaxSuppression, opset 18: 2 nodes (nms1, nms2)" in text and "Einsum2, opset 18: 1 node (weird)" in text


def test_nodes_that_cannot_convert_are_listed_together():
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["a"], name="dyn_reshape"),
             helper.make_node("LeakyRelu", ["x"], ["b"], name="ok"),
             helper.make_node("Dropout", ["x", "", "train"], ["y"], name="train_dropout")]
    model = _model(nodes, X + [("shape", T.INT64, [2])], ["a", "y"], [_c("train", np.bool_(True))])
    if not supported("Reshape"):
        pytest.skip("needs the reshape operator")
    with pytest.raises(UnsupportedModel) as e:
        load(model)
    text = str(e.value)
    assert "cannot import 2 nodes" in text
    assert "at node dyn_reshape: input shape must be a constant" in text
    assert "at node train_dropout: training_mode=True is not supported" in text


def test_unhandled_attribute_is_reported_not_ignored():
    nodes = [helper.make_node("LayerNormalization", ["x", "s"], ["y"], stash_type=0, name="ln")]
    with pytest.raises(UnsupportedModel, match="at node ln: attribute stash_type=0 is not supported"):
        load(_model(nodes, X, ["y"], [_c("s", np.ones(4, np.float32))]))


def test_old_opset_is_upgraded_and_bad_model_refused():
    g = load(_model([helper.make_node("Clip", ["x"], ["y"], min=0.0, max=0.5)], X, ["y"], opset=6))
    assert [(n.op, n.attributes["min"], n.attributes["max"]) for n in g.nodes] == [("clip", 0.0, 0.5)]
    with pytest.raises(GraphError, match="no such ONNX file"):
        load("/nonexistent/model.onnx")
    with pytest.raises(GraphError, match="expected an onnx.ModelProto"):
        load(42)


def test_supported_op_count():
    ops = supported_ops()
    assert len(ops) >= 60, ops
    assert all(supported(t) for t in ops)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(onnx_models.FULL))
def test_full_size_models_import(name):
    """ResNet-50, MobileNet-V2, BERT-base, GPT-2 small: every op maps, types agree (seconds and
    up to ~1 GB each, hence slow)."""
    graph = run(PIPELINE, load(onnx_models.FULL[name]()))
    assert len(graph.nodes) >= 50 and all(isinstance(d, int) for t in graph.output_types() for d in t.shape)


def test_zero_sized_runtime_tensor_is_refused():
    model = _model([helper.make_node("Slice", ["x", "s", "e"], ["y"])], X,
                   ["y"], [_c("s", np.int64([1])), _c("e", np.int64([1]))])
    with pytest.raises(UnsupportedModel, match="zero-sized tensors are not supported"):
        load(model)


ELEMENTARY = {"Atan": np.arctan, "Asin": np.arcsin, "Acos": np.arccos, "Asinh": np.arcsinh, "Acosh": np.arccosh,
              "Atanh": np.arctanh, "Tan": np.tan, "Sinh": np.sinh, "Cosh": np.cosh}
_DOMAIN = {"Asin": (-1, 1), "Acos": (-1, 1), "Atanh": (-1, 1), "Acosh": (1, 1e30)}


@pytest.mark.parametrize("op_type", sorted(ELEMENTARY))
def test_composed_elementary_functions_keep_f32_accuracy(op_type):
    """The frontend's compositions (Atan's range reduction and series, log1p forms, sinh's series
    near 0) against NumPy in f64 over tiny, ordinary, edge and huge arguments: within a few f32
    ulps (ONNX's node tests only hold them to rtol 1e-3)."""
    low, high = _DOMAIN.get(op_type, (-1e30, 1e30))
    base = np.array([0.0, 1e-30, 1e-12, 1e-6, 3e-4, 0.03, 0.2, 0.4142135, 0.4142137, 0.5, 0.9, 0.999, 1.0, 1.001,
                     1.5, 2.0, 7.0, 80.0, 300.0, 1e5, 1e10, 1e19, 1e30])
    x = np.concatenate([base, -base])
    x = x[(x >= low) & (x <= high)]
    if op_type in ("Sinh", "Cosh"):
        x = x[np.abs(x) <= 80]                         # beyond, e^x overflows f32
    if op_type == "Tan":
        x = x[np.abs(x) <= 7]                          # sin / cos: f32 argument reduction of both
    x = x.astype(np.float32)
    model = _model([helper.make_node(op_type, ["x"], ["y"])], [("x", T.FLOAT, list(x.shape))], ["y"])
    (got,) = run_reference(run(PIPELINE, load(model)), x)
    (kernel,) = taskmap.compile(model, backend="interp")(x)          # the fused kernel on the interpreter
    with np.errstate(divide="ignore"):                 # atanh(±1) = ±inf
        want = ELEMENTARY[op_type](x.astype(np.float64))
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=8e-7, atol=1e-37, err_msg=op_type)
    np.testing.assert_allclose(kernel.astype(np.float64), want, rtol=2e-6, atol=1e-37, err_msg=f"{op_type} kernel")
