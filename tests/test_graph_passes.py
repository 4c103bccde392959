"""Each graph pass on small graphs, checked against NumPy / the unchanged graph's reference
run, and the pipeline naming a pass that breaks a graph."""
from __future__ import annotations

import numpy as np
import pytest

from taskmap.lang import TensorType, f32, i32
from taskmap.spec.errors import TaskmapError
from taskmap.spec.graph import Constant, Graph, Node, Value, verify
from taskmap.spec.graph.passes import PIPELINE, constant_fold, dead_code, fold_batch_norm, infer_shapes, run, simplify
from taskmap.spec.graph.passes.constant_fold import FOLD_LIMIT
from taskmap.spec.graph.reference import run_reference
from taskmap.spec.ops import OPERATORS


def T(*shape, dtype=f32):
    return TensorType(dtype, tuple(shape))


def needs(*ops):
    missing = [o for o in ops if o not in OPERATORS]
    return pytest.mark.skipif(bool(missing), reason=f"needs operators not registered yet: {', '.join(missing)}")


def node(name, op, inputs, out, attrs=None, t=None):
    return Node.make(name, op, inputs, [Value(out, t)], attrs)


def graph(nodes, outputs, inputs=(("x", T("N", 4)),), constants=()):
    return Graph("g", tuple(Value(n, t) for n, t in inputs), tuple(outputs), tuple(nodes),
                 tuple(Constant.of(n, a) for n, a in constants))


X = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)


def test_infer_shapes_keeps_symbols_and_specializes():
    g = infer_shapes(graph([node("a", "exp", ("x",), "e"), node("s", "sum", ("e",), "y", {"axes": (0,)}),
                            node("m", "matmul", ("x", "w"), "z")], ["y", "z"],
                           constants=[("w", np.ones((4, 2), np.float32))]))
    types = verify(g).types()
    assert types["e"] == T("N", 4) and types["y"] == T(1, 4) and types["z"] == T("N", 2)
    fixed = verify(infer_shapes(g, {"N": 3})).types()
    assert fixed["e"] == T(3, 4) and fixed["z"] == T(3, 2) and fixed["x"] == T(3, 4)


@needs("flatten")
def test_infer_shapes_names_a_derived_dimension():
    g = verify(infer_shapes(graph([node("f", "flatten", ("x3",), "y", {"axis": 0})], ["y"],
                                  inputs=(("x3", T("N", 2, 3)),))))
    assert g.types()["y"] == T(1, "y.1")


def test_constant_fold_evaluates_through_the_references():
    a, b = np.float32([1, 2, 3, 4]), np.float32([0.5])
    g = infer_shapes(graph([node("m", "mul", ("a", "b"), "ab"), node("e", "exp", ("ab",), "k"),
                            node("add", "add", ("x", "k"), "y")], ["y"], constants=[("a", a), ("b", b)]))
    folded = verify(constant_fold(g))
    assert [n.name for n in folded.nodes] == ["add"]
    np.testing.assert_allclose(folded.constant_arrays()["k"], np.exp(a * b), rtol=1e-6)
    np.testing.assert_array_equal(run_reference(folded, X)[0], run_reference(g, X)[0])


def test_constant_fold_does_not_inflate_the_model():
    n = int(np.sqrt(FOLD_LIMIT)) * 2
    g = infer_shapes(graph([node("o", "add", ("col", "row"), "big"), node("r", "sum", ("big",), "y")], ["y"],
                           constants=[("col", np.ones((n, 1), np.float32)), ("row", np.ones((1, n), np.float32))]))
    assert [nd.name for nd in constant_fold(g).nodes] == ["o", "r"]


def test_dead_code_drops_what_no_output_reads():
    g = infer_shapes(graph([node("a", "exp", ("x",), "e"), node("b", "log", ("x",), "unused"),
                            node("c", "relu", ("e",), "y"), node("d", "neg", ("w",), "w2")], ["y"],
                           constants=[("w", np.ones(3, np.float32)), ("v", np.ones(2, np.float32))]))
    out = verify(dead_code(g))
    assert [n.name for n in out.nodes] == ["a", "c"] and out.constants == ()
    assert [v.name for v in out.inputs] == ["x"]


def test_simplify_drops_identity_casts():
    g = infer_shapes(graph([node("c", "cast", ("x",), "xc", {"to": f32}), node("r", "relu", ("xc",), "y"),
                            node("i", "cast", ("y",), "yi", {"to": i32})], ["y", "yi"]))
    out = verify(dead_code(simplify(g)))
    assert [n.name for n in out.nodes] == ["r", "i"] and out.nodes[0].inputs == ("x",)
    for a, b in zip(run_reference(out, X), run_reference(g, X)):
        np.testing.assert_array_equal(a, b)


@needs("reshape", "transpose", "unsqueeze", "flatten")
def test_simplify_collapses_reshape_and_transpose_chains():
    x3 = np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32)
    g = infer_shapes(graph([node("u", "unsqueeze", ("x",), "u1", {"axes": (0,)}),
                            node("f", "flatten", ("u1",), "f1", {"axis": 2}),
                            node("r", "reshape", ("f1",), "r1", {"shape": (0, -1)}),
                            node("t1", "transpose", ("x",), "a", {"perm": (1, 2, 0)}),
                            node("t2", "transpose", ("a",), "b", {"perm": (2, 0, 1)}),
                            node("t3", "transpose", ("b",), "c", {"perm": (0, 2, 1)})], ["r1", "c"],
                           inputs=(("x", T("N", 3, 4)),)))
    out = verify(dead_code(simplify(g)))
    assert [(n.op, n.inputs) for n in out.nodes] == [("reshape", ("x",)), ("transpose", ("x",))]
    assert out.nodes[1].attributes["perm"] == (0, 2, 1)
    for a, b in zip(run_reference(out, x3), run_reference(g, x3)):
        np.testing.assert_array_equal(a, b)


def test_pipeline_verifies_after_each_pass_and_names_a_broken_one():
    g = infer_shapes(graph([node("a", "exp", ("x",), "y")], ["y"]))
    assert [name for name, _ in PIPELINE] == ["infer_shapes", "constant_fold", "fold_batch_norm", "simplify",
                                            "fuse_attention", "dead_code"]
    np.testing.assert_allclose(run_reference(run(PIPELINE, g), X)[0], np.exp(X), rtol=1e-6)
    broken = (("drop_everything", lambda gr: gr.replace(nodes=())),)
    with pytest.raises(TaskmapError, match="graph pass drop_everything produced an invalid graph"):
        run(broken, g)


def test_fold_batch_norm_into_conv():
    rng = np.random.default_rng(3)
    c = lambda *s: rng.uniform(0.5, 1.5, s).astype(np.float32)
    g = infer_shapes(graph([node("conv", "conv2d", ("x", "w", "b"), "y", {"pads": (1, 1, 1, 1)}),
                            node("bn", "batch_norm", ("y", "s", "t", "m", "v"), "z", {"epsilon": 1e-3}),
                            node("conv2", "conv2d", ("z", "w2"), "y2"),
                            node("bn2", "batch_norm", ("y2", "s", "t", "m", "v"), "z2"),
                            node("relu", "relu", ("y2",), "r")], ["z2", "r"],
                           inputs=(("x", T(1, 3, 5, 5)),),
                           constants=[("w", c(3, 3, 3, 3)), ("b", c(3)), ("w2", c(3, 3, 1, 1)), ("s", c(3)),
                                      ("t", c(3) - 1), ("m", c(3) - 1), ("v", c(3))]))
    out = verify(dead_code(fold_batch_norm(g)))
    assert [(n.name, n.op) for n in out.nodes] == [("conv", "conv2d"), ("conv2", "conv2d"), ("bn2", "batch_norm"),
                                                   ("relu", "relu")]     # conv2's output has a second reader
    x = rng.standard_normal((1, 3, 5, 5)).astype(np.float32)
    for a, b in zip(run_reference(out, x), run_reference(g, x)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
