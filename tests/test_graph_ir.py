"""Graph IR: the verifier's rules (each error names the node), symbolic dimensions, the
printer, and the NumPy reference executor against NumPy written out by hand."""
from __future__ import annotations

import numpy as np
import pytest

from taskmap.lang import TensorType, f32, i64
from taskmap.spec.graph import Constant, Graph, GraphError, Node, Value, verify
from taskmap.spec.graph.reference import run_reference


def T(*shape, dtype=f32):
    return TensorType(dtype, tuple(shape))


def small(nodes=None, outputs=("y",), inputs=None, constants=None):
    """x[N, 4] + c -> relu -> sum over axis 1."""
    return Graph("small", inputs or (Value("x", T("N", 4)),), tuple(outputs), tuple(nodes or (
        Node.make("add1", "add", ("x", "c"), [Value("h", T("N", 4))]),
        Node.make("relu1", "relu", ("h",), [Value("r", T("N", 4))]),
        Node.make("sum1", "sum", ("r",), [Value("y", T("N", 1))], {"axes": (1,)}),
    )), tuple(constants or (Constant.of("c", np.arange(4, dtype=np.float32) - 1.5),)))


def test_a_valid_graph_verifies_and_runs_like_numpy():
    g = verify(small())
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    (y,) = run_reference(g, x)
    np.testing.assert_allclose(y, np.maximum(x + (np.arange(4) - 1.5), 0).sum(1, keepdims=True), rtol=1e-6)


@pytest.mark.parametrize("change, message", [
    (lambda g: g.replace(nodes=g.nodes[::-1]),
     "node sum1 (sum): input 'r' is not defined before the node"),
    (lambda g: g.replace(nodes=(g.nodes[0], Node.make("relu1", "relu", ("h",), [Value("h", T("N", 4))]))),
     "value 'h' is defined twice (again by node relu1)"),
    (lambda g: g.replace(nodes=(g.nodes[0], Node.make("add1", "relu", ("h",), [Value("r", T("N", 4))]))),
     "two nodes are named 'add1'"),
    (lambda g: g.replace(nodes=(Node.make("n", "reluu", ("x",), [Value("y", T("N", 4))]),)),
     "node n (reluu): unknown operator 'reluu'; did you mean 'relu'?"),
    (lambda g: g.replace(nodes=(Node.make("n", "relu", ("x",), [Value("y", T("N", 5))]),)),
     "node n (relu): output y is declared f32[N, 5] but the operator gives f32[1009, 4]"),
    (lambda g: g.replace(nodes=(Node.make("n", "sum", ("x",), [Value("y", T("N", 1))], {"axis": 1}),)),
     "node n (sum): sum: unknown attribute 'axis'; did you mean 'axes'?"),
    (lambda g: g.replace(nodes=(Node.make("n", "add", ("x", "x", "x"), [Value("y", T("N", 4))]),)),
     "node n (add): add: expected 2 inputs"),
    (lambda g: g.replace(nodes=(Node.make("n", "relu", ("x",), [Value("y", None)]),)),
     "node n (relu): output y has no type; run passes.infer_shapes"),
    (lambda g: g.replace(outputs=("nope",)), "output 'nope' is not defined"),
    (lambda g: g.replace(outputs=()), "the graph has no outputs"),
    (lambda g: g.replace(constants=(Constant.of("x", np.zeros(4, np.float32)),)),
     "value 'x' is defined twice (again by a constant)"),
])
def test_each_rule_names_the_node(change, message):
    with pytest.raises(GraphError) as e:
        verify(change(small()))
    assert message in str(e.value)


def test_a_symbol_that_no_input_carries_must_stay_consistent():
    ok = small(nodes=(Node.make("n", "relu", ("x",), [Value("y", T("B", 4))]),))
    verify(ok)                   # B is free: bound to N's probe sizes, consistently
    bad = small(nodes=(Node.make("n", "relu", ("x",), [Value("a", T("B", 4))]),
                       Node.make("m", "sum", ("a",), [Value("y", T("B", 4))], {"axes": (1,)})))
    with pytest.raises(GraphError, match="node m \\(sum\\): output y is declared f32\\[B, 4\\]"):
        verify(bad)


def test_constants_are_read_only_and_typed():
    c = Constant.of("k", np.arange(6, dtype=np.int64).reshape(2, 3))
    assert c.type == T(2, 3, dtype=i64)
    with pytest.raises(ValueError):
        c.array[0, 0] = 1


def test_printer_shows_signature_constants_nodes_and_attributes():
    text = str(small())
    assert text.splitlines()[0] == "graph small(x: f32[N, 4]) -> (y)"
    assert "  const c: f32[4]  [-1.5, -0.5,  0.5,  1.5]" in text
    assert text.splitlines()[-2].startswith("  y: f32[N, 1] = sum(r, axes=[1])")
    assert text.splitlines()[-2].endswith("# sum1") and text.splitlines()[-1] == "  return y"


def test_reference_executor_checks_its_arguments():
    with pytest.raises(GraphError, match="graph small takes 1 inputs \\(x\\), got 2"):
        run_reference(small(), np.zeros((1, 4), np.float32), np.zeros(1))
