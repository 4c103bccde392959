"""Post-scheduling fusion (refimpl.fusion): fusibility read off the kernel IR, what stays
materialized, wrong rewrites trapping on the interpreter, the graph fusion cases' schema, and
fused programs on the GPU. Fused = unfused = ONNX Runtime on the built-in models:
tests/test_graph_compile.py; the graph cases: conformance/cases/fusion/graph_fusion.yaml."""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from taskmap.conformance import graph_fusion_case
from taskmap.conformance.cases import CaseInfo
from taskmap.conformance.schema import CaseError, load_yaml
from taskmap.refimpl import fusion
from taskmap.refimpl.fusion import access
from taskmap.refimpl.graph_exec import build
from taskmap.spec import ir
from taskmap.spec.errors import TaskmapError
from taskmap.spec.graph.reference import run_reference
from taskmap.spec.ops.registry import random_array

# the pass modules (the package exports their functions under the same names)
fuse_prologues = importlib.import_module("taskmap.refimpl.fusion.fuse_prologues")
fuse_epilogues = importlib.import_module("taskmap.refimpl.fusion.fuse_epilogues")


def _case(text: str, tmp_path, name="c"):
    path = tmp_path / "g.yaml"
    path.write_text(text)
    doc = load_yaml(str(path))
    info = CaseInfo(name, doc.where, str(tmp_path), ("interp",), False, ())
    return graph_fusion_case.build(doc, info)


PROLOGUE_EPILOGUE = """
inputs: {x: "f32[5, 7]", w: "f32[7, 3]"}
nodes:
  - {op: relu, inputs: [x], output: a}
  - {op: matmul, inputs: [a, w], output: y}
  - {op: tanh, inputs: [y], output: z}
groups: [[relu, matmul, tanh]]
"""


def _graph(tmp_path, text=PROLOGUE_EPILOGUE):
    return _case(text, tmp_path).graph


def _inputs(graph, seed=0):
    rng = np.random.default_rng(seed)
    return [random_array(rng, v.type) for v in graph.inputs]


def test_fused_program_holds_prologue_anchor_and_epilogue_in_one_kernel(tmp_path):
    g = _graph(tmp_path)
    exe = build(g, fusion=True)
    assert [s.ops for s in exe.steps] == [("relu", "matmul", "tanh")]
    (step,) = exe.steps
    assert step.anchor == "matmul_1" and step.inputs == ("x", "w") and step.outputs == ("z",)
    assert [b.name for b in exe.memory.buffers] == ["z"]          # a and y are never materialized
    assert "relu + matmul + tanh" in exe.describe()
    x = _inputs(g)
    np.testing.assert_allclose(exe(*x)[0], run_reference(g, *x)[0], rtol=1e-5, atol=1e-5)


def test_cp_async_and_atomic_accesses_are_not_rewritable():
    from taskmap.lang import atomic_add, f32, kernel, threadIdx
    from taskmap.refimpl.schedules import schedule
    from taskmap.spec.lang import TensorType
    from taskmap.spec import dtypes as dt
    plan = schedule("matmul", [TensorType(dt.float16, (16, 16)), TensorType(dt.float16, (16, 8))])
    assert "cp_async" in access.accesses(plan.launches[-1].kernel, plan.launches[-1].kernel.buffer_params[0].name)
    assert "cp_async" in access.refusal(plan, "a", "load")
    assert access.refusal(plan, "y", "store") is None

    @kernel(grid=1, block=32)
    def total(a: f32[32], out: f32[1]):
        atomic_add(out[0], a[threadIdx.x])
    assert access.accesses(total, "out") == {"atomic"} and access.accesses(total, "a") == {"load"}


def _shifted(real, by):
    """A wrong reindex: every element one place further along the flat index."""
    def wrong(indices, src, dst):
        out = real(indices, src, dst)
        return out[:-1] + (ir.binary("+", out[-1], by),)
    return wrong


@pytest.mark.parametrize("module", [fuse_prologues, fuse_epilogues], ids=["prologue", "epilogue"])
def test_a_wrong_rewrite_traps_on_the_interpreter(tmp_path, monkeypatch, module):
    """Planted: the rewrite reads (prologue) or writes (epilogue) the neighbouring element;
    the interpreter's bounds check stops it instead of a wrong answer."""
    g = _graph(tmp_path)
    monkeypatch.setattr(module, "reindex", _shifted(access.reindex, 1))
    exe = build(g, fusion=True)
    assert len(exe.steps) == 1
    with pytest.raises(TaskmapError, match="out of bounds"):
        exe(*_inputs(g))


def test_an_epilogue_that_misses_an_element_is_an_error(tmp_path, monkeypatch):
    """Planted: the epilogue's stores of the last column go to the one before it, so one
    output element is never written — the executable refuses to return it."""
    g = _graph(tmp_path)

    def wrong(indices, src, dst):
        out = access.reindex(indices, src, dst)
        last = ir.binary("min", out[-1], dst[-1] - 2)
        return out[:-1] + (last,)
    monkeypatch.setattr(fuse_epilogues, "reindex", wrong)
    exe = build(g, fusion=True)
    with pytest.raises(TaskmapError, match="never written|race"):
        exe(*_inputs(g))


def test_fusion_check_names_a_broken_pass(tmp_path):
    g = _graph(tmp_path)
    steps = build(g, fusion=False).steps
    with pytest.raises(TaskmapError, match="fusion pass drop broke the program: node relu_0 is in no step"):
        fusion.fuse(g, steps, (("drop", lambda graph, s: s[1:]),))


def test_graph_case_with_wrong_groups_fails(tmp_path):
    case = _case(PROLOGUE_EPILOGUE.replace("groups: [[relu, matmul, tanh]]", "groups: [[relu], [matmul, tanh]]"),
                 tmp_path)
    outcome = case.run("interp")
    assert outcome.status == "failed" and "expected [[relu], [matmul, tanh]]" in outcome.message


@pytest.mark.parametrize("text, message", [
    (PROLOGUE_EPILOGUE.replace("f32[5, 7]", "f32[5, 0]"), "g.yaml:2: expected a tensor type"),
    (PROLOGUE_EPILOGUE.replace("inputs: [a, w]", "inputs: [q, w]"), "g.yaml:5: matmul reads 'q'"),
    (PROLOGUE_EPILOGUE.replace("op: tanh", "op: tanhh"), "g.yaml:6:"),
    (PROLOGUE_EPILOGUE.replace("output: z}", "outputz: z}"), "g.yaml:6: unknown key `outputz`"),
    (PROLOGUE_EPILOGUE.replace('w: "f32[7, 3]"', 'w: "f32[6, 3]"'), "the graph does not verify"),
    (PROLOGUE_EPILOGUE.replace("groups: [[relu, matmul, tanh]]", "groups: [relu]"), "each group is a non-empty list"),
])
def test_malformed_graph_cases_name_their_line(tmp_path, text, message):
    with pytest.raises(CaseError, match=message.replace("[", "\\[")):
        _case(text, tmp_path)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["mlp", "transformer_encoder", "bert", "gpt2"])
def test_fused_models_on_the_gpu_match_onnxruntime(name):
    pytest.importorskip("onnxruntime")
    from taskmap import gpu
    from taskmap.conformance.graph_fusion_case import _on
    from taskmap.frontends import onnx_models
    import taskmap
    from test_graph_compile import SMALL, _feeds
    model = SMALL[name]()
    prog = taskmap.compile(model, fusion=True)
    feeds = _feeds(model, np.random.default_rng(0), dims=2)
    exe = prog.executable(prog._bind(list(feeds.values())))
    got = _on(exe, [np.asarray(a) for a in feeds.values()], gpu.launch)
    for g, w in zip(got, onnx_models.onnxruntime_outputs(model, feeds)):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5, err_msg=name)


def test_fused_kernels_compile_with_nvcc():
    """The fused kernels of the reduced mlp and transformer encoder (prologues, epilogues with
    broadcast operands, transposes through inverse maps) are valid CUDA for sm_90."""
    from taskmap.gpu import build as cc
    if cc.nvcc() is None:
        pytest.skip("nvcc not found")
    pytest.importorskip("onnx")
    import taskmap
    from test_cuda_compile import assert_compile_for_sm90
    from test_graph_compile import SMALL
    kernels = []
    for name in ("mlp", "transformer_encoder"):
        prog = taskmap.compile(SMALL[name](), fusion=True)
        kernels += [k for k in prog.kernels if "_" in k.name and all(k is not o for o in kernels)]
    assert any(k.name.endswith("_add_relu") for k in kernels)
    assert_compile_for_sm90(kernels)
