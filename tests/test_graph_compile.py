"""taskmap.compile on the interpreter: reduced models against ONNX Runtime, symbolic batch,
the memory plan (no overlap of live buffers, reuse), and the compile-time errors."""
from __future__ import annotations

import numpy as np
import pytest

from taskmap.spec.errors import TaskmapError
from taskmap.spec.graph.memory import ALIGN, Buffer, conflicts, plan_memory


def test_memory_plan_reuses_dead_buffers_and_never_overlaps_live_ones():
    rng = np.random.default_rng(0)
    for _ in range(50):
        buffers = []
        for k in range(12):
            first = int(rng.integers(0, 10))
            buffers.append(Buffer(f"b{k}", int(rng.integers(1, 5000)), first, first + int(rng.integers(0, 4))))
        plan = plan_memory(buffers)
        assert conflicts(plan) == []
        assert all(at % ALIGN == 0 for _, at in plan.offsets)
        assert plan.peak <= plan.total
    chain = plan_memory([Buffer(f"v{k}", 4096, k, k + 1) for k in range(6)])
    assert chain.peak == 2 * 4096 and chain.total == 6 * 4096


def test_conflicts_finds_an_overlap():
    from taskmap.spec.graph.memory import MemoryPlan
    a, b = Buffer("a", 512, 0, 2), Buffer("b", 512, 1, 3)
    assert conflicts(MemoryPlan((a, b), (("a", 0), ("b", 256)), 768, 1024)) == ["a and b"]


onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import taskmap  # noqa: E402
from taskmap.frontends import onnx_models  # noqa: E402
from taskmap.frontends.onnx_ops import NEEDS  # noqa: E402
from taskmap.spec.ops import OPERATORS  # noqa: E402


def _feeds(model, rng, dims=3):
    out = {}
    for vi in model.graph.input:
        shape = [d.dim_value or dims for d in vi.type.tensor_type.shape.dim]
        out[vi.name] = (rng.integers(0, 20, shape) if vi.type.tensor_type.elem_type == onnx.TensorProto.INT64
                        else rng.standard_normal(shape).astype(np.float32))
    return out


SMALL = {"mlp": lambda: onnx_models.mlp(sizes=(8, 16, 4)),
         "cnn": lambda: onnx_models.cnn(channels=(2, 4, 4), image=6, classes=3),
         "transformer_encoder": lambda: onnx_models.transformer_encoder(seq=4, d=8, heads=2, ff=8),
         "resnet": lambda: onnx_models.resnet(blocks=(1, 1), width=4, image=8, classes=3),
         "mobilenet_v2": lambda: onnx_models.mobilenet_v2(((1, 4, 1, 1), (2, 8, 2, 2)), 4, 16, 8, 3),
         "bert": lambda: onnx_models.bert(layers=1, d=8, heads=2, ff=8, seq=4, vocab=20),
         "gpt2": lambda: onnx_models.gpt2(layers=1, d=8, heads=2, ff=16, seq=4, vocab=20)}


@pytest.mark.parametrize("fusion", [False, True], ids=["unfused", "fused"])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_reduced_model_on_the_interpreter_matches_onnxruntime(name, fusion):
    model = SMALL[name]()
    missing = {n for node in model.graph.node for n in NEEDS.get(node.op_type, ()) if n not in OPERATORS}
    if missing:
        pytest.skip(f"needs operators not registered yet: {', '.join(sorted(missing))}")
    try:
        prog = taskmap.compile(model, backend="interp", fusion=fusion)
    except TaskmapError as e:
        if "no schedule yet" in str(e):
            pytest.skip(str(e).splitlines()[0])
        raise
    assert prog.kernels
    feeds = _feeds(model, np.random.default_rng(0), dims=2)
    want = onnx_models.onnxruntime_outputs(model, feeds)
    got = prog(*feeds.values())
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5, err_msg=name)
    assert prog.memory.peak <= prog.memory.total
    steps = prog.executable(prog.dims).steps
    assert any(len(s.nodes) > 1 for s in steps) == fusion, prog.describe()


def test_symbolic_batch_is_bound_per_call():
    model = onnx_models.mlp(batch="N", sizes=(4, 8, 3))
    prog = taskmap.compile(model)
    rng = np.random.default_rng(1)
    for n in (1, 3):
        x = rng.standard_normal((n, 4)).astype(np.float32)
        (y,) = prog(x)
        np.testing.assert_allclose(y, onnx_models.onnxruntime_outputs(model, {"x": x})[0], rtol=1e-4, atol=1e-5)
    with pytest.raises(TaskmapError, match="input x must be f32\\[3, 4\\], got float64\\[3, 4\\]"):
        prog(x.astype(np.float64))
    with pytest.raises(TaskmapError, match="takes 1 inputs \\(x\\), got 2"):
        prog(x, x)


def test_a_node_without_a_schedule_is_reported_at_compile_time(monkeypatch):
    """Every registry operator has a schedule; one that reduces and has no template (here sum,
    its template hidden) is refused before anything is built, naming the node."""
    from taskmap.lang import f32
    from taskmap.refimpl import graph_exec
    from taskmap.refimpl.schedules.generic import INJECTIVE_TEMPLATE
    from taskmap.spec.graph import Graph, Node, Value
    from taskmap.spec.graph.passes import infer_shapes
    g = infer_shapes(Graph("g", (Value("x", f32[3, 4]),), ("y",),
                           (Node.make("n", "sum", ["x"], [Value("y", None)], {"axes": (1,)}),)))
    graph_exec.build(g)
    monkeypatch.setattr(graph_exec, "template_for", lambda op, types, attrs: INJECTIVE_TEMPLATE)
    with pytest.raises(TaskmapError, match=r"no schedule yet for 1 nodes.*\n  n \(sum on f32\[3, 4\]\)"):
        graph_exec.build(g)


def test_unavailable_options_are_refused():
    with pytest.raises(TaskmapError, match="backend 'tpu': whole models run on 'interp' or 'cuda'"):
        taskmap.compile(onnx_models.mlp(), backend="tpu")


def test_shape_computations_on_a_symbolic_batch_are_imported_per_binding():
    """A PyTorch-style dynamic reshape: Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""
    from onnx import TensorProto as TP
    from onnx import helper, numpy_helper
    h = helper
    nodes = [h.make_node("Shape", ["x"], ["s"]), h.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             h.make_node("Unsqueeze", ["n", "axis0"], ["n1"]), h.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             h.make_node("Reshape", ["x", "shape"], ["r"]), h.make_node("Relu", ["r"], ["y"])]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"), numpy_helper.from_array(np.int64([0]), "axis0"),
             numpy_helper.from_array(np.int64([-1]), "minus1")]
    g = h.make_graph(nodes, "dyn", [h.make_tensor_value_info("x", TP.FLOAT, ["N", 4, 2])],
                     [h.make_tensor_value_info("y", TP.FLOAT, ["N", 8])], inits)
    model = h.make_model(g, opset_imports=[h.make_opsetid("", 18)])
    model.ir_version = min(model.ir_version, 10)
    prog = taskmap.compile(model)
    rng = np.random.default_rng(4)
    for n in (2, 3):
        x = rng.standard_normal((n, 4, 2)).astype(np.float32)
        np.testing.assert_array_equal(prog(x)[0], onnx_models.onnxruntime_outputs(model, {"x": x})[0])


@pytest.mark.parametrize("precision", ["f16", "bf16"])
@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet", "bert", "gpt2"])
def test_a_model_computes_in_half_precision_behind_its_f32_interface(name, precision):
    """precision= stores weights and activations in f16/bf16 (f32 accumulation): f32 in and out,
    within that dtype's rounding of ONNX Runtime's f32 result, and its kernels in that dtype."""
    model = SMALL[name]()
    prog = taskmap.compile(model, backend="interp", precision=precision)
    feeds = _feeds(model, np.random.default_rng(0), dims=2)
    want = onnx_models.onnxruntime_outputs(model, feeds)
    got = prog(*feeds.values())
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        error = np.linalg.norm(np.float64(g) - w) / max(np.linalg.norm(w), 1e-30)
        assert error < {"f16": 1e-2, "bf16": 6e-2}[precision], (name, error)
    assert any(f"_{precision}" in k.name for k in prog.kernels) or \
        any(b.dtype.short == precision for k in prog.kernels for b in k.buffer_params)


def test_an_unknown_precision_is_refused():
    with pytest.raises(TaskmapError, match=r"precision='f8': use None \(the model's own dtypes\) or one of 'f16', 'bf16'"):
        taskmap.compile(SMALL["mlp"](), precision="f8")
