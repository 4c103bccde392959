"""The fuse_attention graph pass (spec/graph/passes/fuse_attention.py).

- Rewritten graphs are checked against the unchanged graph's node-by-node NumPy reference run
  (spec/graph/reference.py), so the rewrite computes the same function; each variant of the
  pattern (scale by div or mul on either side, no scale, mask on either side of the add, a
  key given already transposed) is rewritten, each near miss (the scores read elsewhere,
  the mask added before the scale, softmax along another axis, a key batch that broadcasts,
  a scale of several elements, one that adds a dimension) is left alone.
- A constant additive causal mask becomes is_causal (exactly where the reference gives the
  same values); masks that differ anywhere, or broadcast over queries or keys, stay masks.
- The BERT and GPT-2 builders (frontends/onnx_models.py) lose every softmax to an attention
  node and the compiled program (interpreter, fused kernels) still matches ONNX Runtime.
"""
from __future__ import annotations

import numpy as np
import pytest

from taskmap.lang import TensorType, f16, f32
from taskmap.spec.graph import Constant, Graph, Node, Value, verify
from taskmap.spec.graph.passes import PIPELINE, fuse_attention, infer_shapes, run
from taskmap.spec.graph.reference import run_reference

B, H, S, T, D = 2, 2, 5, 7, 4
RNG = np.random.default_rng(0)


def _graph(nodes, inputs, outputs=("y",), constants=()):
    g = Graph("attn", tuple(Value(n, TensorType(t, s)) for n, (t, s) in inputs.items()), outputs,
              tuple(Node.make(nm, op, ins, [Value(out, None)], attrs) for nm, op, ins, out, attrs in nodes),
              tuple(Constant.of(n, a) for n, a in constants))
    return infer_shapes(g)


def _attention_graph(scale="div", mask="right", key="transposed", dtype=f32, softmax_axis=-1, extra_output=False,
                     scale_shape=()):
    """q [B,H,S,D], k as the export writes it, v [B,H,T,D]: softmax(q kᵀ · scale + mask) v."""
    inputs = {"q": (dtype, (B, H, S, D)), "v": (dtype, (B, H, T, D))}
    nodes = []
    if key == "transposed":                     # k [B, T, H, D] as reshaped from a projection
        inputs["k"] = (dtype, (B, T, H, D))
        nodes.append(("kt", "transpose", ("k",), "kt", {"perm": (0, 2, 3, 1)}))
    else:                                       # kᵀ given as is (its batch broadcast when "broadcast")
        inputs["kt"] = (dtype, (1 if key == "broadcast" else B, H, D, T))
    nodes.append(("qk", "matmul", ("q", "kt"), "s", {}))
    scores = "s"
    constants = [("c", np.full(scale_shape, 2.0, dtype.storage))] if scale else []
    if scale == "div":
        nodes.append(("scale", "div", ("s", "c"), "s2", {}))
    elif scale in ("mul", "mul_left"):
        nodes.append(("scale", "mul", ("s", "c") if scale == "mul" else ("c", "s"), "s2", {}))
    scores = "s2" if scale in ("div", "mul", "mul_left") else scores
    if mask:
        inputs["m"] = (dtype, (1, 1, S, T))
        pair = (scores, "m") if mask == "right" else ("m", scores)
        nodes.append(("mask", "add", pair, "s3", {}))
        scores = "s3"
    if scale == "after_mask":
        constants = [("c", np.full((), 0.5, dtype.storage))]
        nodes.append(("scale", "mul", (scores, "c"), "s4", {}))
        scores = "s4"
    nodes += [("sm", "softmax", (scores,), "p", {"axis": softmax_axis}), ("pv", "matmul", ("p", "v"), "y", {})]
    return _graph(nodes, inputs, ("y", "p") if extra_output else ("y",), constants)


def _feeds(g: Graph):
    return [RNG.uniform(-2, 2, v.type.shape).astype(v.type.dtype.storage) for v in g.inputs]


def _ops(g: Graph):
    return [n.op for n in g.nodes]


VARIANTS = [dict(), dict(scale="mul"), dict(scale="mul_left"), dict(scale=None), dict(mask=None),
            dict(mask="left"), dict(key="given"), dict(scale="mul", scale_shape=(1, 1, 1, 1)), dict(dtype=f16)]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) or "div-mask")
def test_pattern_becomes_one_attention_node(variant):
    g = _attention_graph(**variant)
    fused = fuse_attention(g)
    verify(fused)
    assert "attention" in _ops(fused) and "softmax" not in _ops(fused) and _ops(fused).count("matmul") == 0
    (node,) = [n for n in fused.nodes if n.op == "attention"]
    assert node.outputs == g.nodes[-1].outputs
    want = {"div": 0.5, "mul": 2.0, "mul_left": 2.0, None: 1.0}[variant.get("scale", "div")]
    assert node.attributes["scale"] == want and node.attributes["is_causal"] == 0
    feeds = _feeds(g)
    tol = 2 ** -9 if variant.get("dtype") is f16 else 1e-5
    (got,), (ref,) = run_reference(fused, *feeds), run_reference(g, *feeds)
    np.testing.assert_allclose(got.astype(np.float32), ref.astype(np.float32), rtol=tol, atol=tol)


def test_key_transpose_is_composed_not_stacked():
    """kt = transpose(k, (0, 2, 3, 1)) gives k' = transpose(k, (0, 2, 1, 3)); a kᵀ with no
    transpose producer gets one swapping its last two axes."""
    for key, source, perm in (("transposed", "k", (0, 2, 1, 3)), ("given", "kt", (0, 1, 3, 2))):
        g = fuse_attention(_attention_graph(key=key))
        (node,) = [n for n in g.nodes if n.op == "attention"]
        t = g.producers()[node.inputs[1]]
        assert t.op == "transpose" and t.inputs == (source,) and t.attributes["perm"] == perm


NEAR_MISSES = [dict(extra_output=True), dict(scale="after_mask"), dict(softmax_axis=2), dict(key="broadcast"),
               dict(scale="div", scale_shape=(T,)), dict(scale="mul", scale_shape=(1, 1, 1, 1, 1))]


@pytest.mark.parametrize("variant", NEAR_MISSES, ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()))
def test_near_misses_are_left_alone(variant):
    g = _attention_graph(**variant)
    assert _ops(fuse_attention(g)) == _ops(g)


def test_the_pass_is_in_the_pipeline_after_simplify():
    names = [name for name, _ in PIPELINE]
    assert names.index("simplify") < names.index("fuse_attention") < names.index("dead_code")


@pytest.mark.parametrize("name", [pytest.param("bert", marks=pytest.mark.slow), "gpt2"])   # ~8 s each
def test_reduced_models_fuse_and_match_onnxruntime(name):
    pytest.importorskip("onnxruntime")
    import taskmap
    from taskmap.frontends import onnx_import, onnx_models
    model = getattr(onnx_models, name)(layers=1, d=8, heads=2, ff=16, seq=5, vocab=20)
    g = run(PIPELINE, onnx_import.load(model))
    assert _ops(g).count("attention") == 1 and "softmax" not in _ops(g)
    assert [n.attributes["is_causal"] for n in g.nodes if n.op == "attention"] == [int(name == "gpt2")]
    feeds = onnx_models.random_feeds(model, np.random.default_rng(1), batch=1)
    program = taskmap.compile(model, backend="interp")
    assert any("attention" in k.name for k in program.kernels)
    (got,) = program(*feeds.values())
    (want,) = onnx_models.onnxruntime_outputs(model, feeds)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _with_constant_mask(mask: np.ndarray) -> Graph:
    """softmax(q kᵀ / 2 + mask) v with `mask` a constant."""
    inputs = {"q": (f32, (B, H, S, D)), "kt": (f32, (B, H, D, T)), "v": (f32, (B, H, T, D))}
    nodes = [("qk", "matmul", ("q", "kt"), "s", {}), ("scale", "div", ("s", "c"), "s2", {}),
             ("mask", "add", ("s2", "m"), "s3", {}), ("sm", "softmax", ("s3",), "p", {"axis": -1}),
             ("pv", "matmul", ("p", "v"), "y", {})]
    return _graph(nodes, inputs, constants=[("c", np.float32(2.0)), ("m", mask.astype(np.float32))])


CAUSAL = np.triu(np.full((S, T), -1e4), 1)


@pytest.mark.parametrize("mask", [CAUSAL, np.triu(np.full((1, 1, S, T), -np.inf), 1), CAUSAL * 3],
                         ids=["-1e4", "-inf-4d", "-3e4"])
def test_a_constant_causal_mask_becomes_is_causal(mask):
    g = _with_constant_mask(mask)
    fused = fuse_attention(g)
    (node,) = [n for n in fused.nodes if n.op == "attention"]
    assert node.attributes["is_causal"] == 1 and len(node.inputs) == 3
    feeds = _feeds(g)
    np.testing.assert_allclose(run_reference(fused, *feeds)[0], run_reference(g, *feeds)[0], rtol=1e-5, atol=1e-6)


def _near_causal(change):
    m = CAUSAL.copy()
    change(m)
    return m


@pytest.mark.parametrize("mask", [_near_causal(lambda m: m.__setitem__((2, 1), -1e4)),      # masks below the diagonal
                                  _near_causal(lambda m: m.__setitem__((0, 5), -100.0)),    # too weak to mask
                                  np.zeros((1, T)), np.zeros((S, 1))],                      # broadcast rows/columns
                         ids=["below-diagonal", "weak", "row-broadcast", "column-broadcast"])
def test_other_constant_masks_stay_masks(mask):
    (node,) = [n for n in fuse_attention(_with_constant_mask(mask)).nodes if n.op == "attention"]
    assert node.attributes["is_causal"] == 0 and node.inputs[3] == "m"
