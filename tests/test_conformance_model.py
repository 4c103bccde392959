"""The `model` case kind: load-time validation with file:line, a wrong answer fails, the
cuda column skips with the reason while whole-model CUDA executables do not exist."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from taskmap.conformance import backends  # noqa: E402
from taskmap.conformance.cases import BrokenCase  # noqa: E402
from taskmap.conformance.loader import load_file  # noqa: E402
from taskmap.frontends import onnx_models  # noqa: E402

CNN = "model: cnn\nargs: {channels: [2, 2], image: 4, classes: 2}\n"


def cases(tmp_path, body: str):
    path = tmp_path / "m.yaml"
    path.write_text("kind: model\ncases:\n  - name: c\n    " + textwrap.dedent(body).replace("\n", "\n    "))
    return str(path), load_file(str(path))


@pytest.mark.parametrize("body, line, message", [
    ("model: nope\n", 4, "unknown model builder 'nope'; known:"),
    ("model: cnn\nargs: {depth: 3}\n", 5, "args of cnn: got an unexpected keyword argument 'depth'"),
    ("args: {}\n", 3, "a model case needs exactly one of model, onnx, torch (found: none)"),
    ("model: cnn\nonnx: a.onnx\n", 3, "needs exactly one of model, onnx, torch (found: model, onnx)"),
    ("onnx: missing.onnx\n", 4, "onnx: missing.onnx: no such file (paths are relative to the case file)"),
    ("onnx: model.pb\n", 4, "must be a .onnx or .onnxtxt file"),
    ("model: cnn\nreference: torch\n", 5, "reference torch needs a `torch:` model"),
    ("model: cnn\nreference: tf\n", 5, "unknown reference 'tf'"),
    ("model: cnn\ninputs: {x: {init: empty}}\n", 5, "unknown init 'empty' for a model input"),
    ("model: cnn\ninputs: {x: {shap: [1]}}\n", 5, "unknown key `shap` in input x"),
    ("model: cnn\ntolerance: {rtol: -1}\n", 5, "`rtol:` must be finite, 0 or more"),
    ("model: cnn\nreduced: {width: 2}\n", 5, "unknown key `width` in `reduced:`"),
    ("model: resnet50\nreduced: {args: {depth: 2}}\n", 5, "args of resnet50: got an unexpected keyword"),
    ("torch: bert\n", 3, "a `torch:` model needs `inputs:`"),
    ("torch: alexnet\ninputs: {x: {shape: [1]}}\n", 4, "unknown torch model 'alexnet'"),
])
def test_malformed_model_cases_fail_at_their_line(tmp_path, body, line, message):
    path, (case,) = cases(tmp_path, body)
    assert isinstance(case, BrokenCase)
    assert case.message.startswith(f"{path}:{line}: ") and message in case.message, case.message


@pytest.mark.parametrize("body, message", [
    ("model: bert\nargs: {layers: 1, d: 4, heads: 1, ff: 4, seq: 2, vocab: 5}\n",
     "input ids is i64 (indices, token ids): give its `range: [low, high]`"),
    ("model: mlp\nargs: {sizes: [2, 2]}\n", "input x has symbolic dimensions ['N', 2]; give `inputs:"),
    (CNN + "inputs: {y: {shape: [1]}}\n", "inputs: y not inputs of model cnn("),
    (CNN + "inputs: {x: {dtype: f16}}\n", "input x is f32 in the model, not f16"),
])
def test_inputs_that_do_not_fit_the_model_are_the_cases_error(tmp_path, body, message):
    path, (case,) = cases(tmp_path, body)
    out = case.run("interp")
    assert out.status == "error" and out.message.startswith(f"{path}:") and message in out.message, out.message


def test_a_model_case_passes_and_a_wrong_reference_fails(tmp_path, monkeypatch):
    _, (case,) = cases(tmp_path, CNN + "inputs: {x: {range: [-3, 3]}}\n")
    out = case.run("interp")
    assert out.status == "passed" and out.max_abs < 1e-5, out.message
    real = onnx_models.onnxruntime_outputs
    monkeypatch.setattr(onnx_models, "onnxruntime_outputs", lambda m, f: [w + 1e-3 for w in real(m, f)])
    out = case.run("interp")
    assert out.status == "failed" and "max rel err" in out.message and out.max_abs == pytest.approx(1e-3, rel=1e-2)


def test_the_interpreter_runs_the_reduced_variant(tmp_path):
    _, (case,) = cases(tmp_path, "model: resnet50\nreduced: {model: resnet, args: {blocks: [1], width: 2, "
                                 "image: 8, classes: 2}}\n")
    assert case.reduced.describe() == "model resnet(blocks=[1], width=2, image=8, classes=2)"
    assert case.full.describe() == "model resnet50()"
    assert case.run("interp").status == "passed"


def test_the_numpy_reference_and_an_onnx_text_file(tmp_path):
    (tmp_path / "t.onnxtxt").write_text(textwrap.dedent("""\
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[2, 3] x) => (float[2, 3] y) { y = Relu(x) }
        """))
    _, (case,) = cases(tmp_path, "onnx: t.onnxtxt\nreference: numpy\n")
    assert case.run("interp").status == "passed"
    (tmp_path / "bad.onnxtxt").write_text("g (float[2] x) => (float[2] y) { y = Relu(x }\n")
    path, (case,) = cases(tmp_path, "onnx: bad.onnxtxt\n")
    out = case.run("interp")
    assert out.status == "error" and out.message.startswith(f"{path}:3: onnx: ") and "ParseError" in out.message


def test_cuda_runs_skip_until_compile_has_a_cuda_backend(tmp_path, monkeypatch):
    from taskmap.frontends import compiler
    if "cuda" in compiler.BACKENDS:
        pytest.skip("taskmap.compile has a cuda backend")
    monkeypatch.setitem(backends.BACKENDS, "cuda", backends.Backend("cuda", None, lambda: None))
    _, (case,) = cases(tmp_path, CNN)
    out = case.run("cuda")
    assert out.status == "skipped" and "taskmap.compile(model, backend='cuda') does not exist yet" in out.message


def test_torch_cases_skip_without_torch(tmp_path):
    from taskmap.frontends import torch_models
    if torch_models.unavailable("bert") is None:
        pytest.skip("torch and transformers are installed")
    _, (case,) = cases(tmp_path, "torch: bert\nargs: {hidden_size: 8}\ninputs: {input_ids: {shape: [1, 4], "
                                 "dtype: i64, range: [0, 9]}}\n")
    out = case.run("interp")
    assert out.status == "skipped" and "is not installed" in out.message
    assert case.reference == "torch"


def test_model_builders_are_seeded():
    a, b = (onnx_models.inception_v3(1, (1, 1), 43, 3, seed=5) for _ in range(2))
    assert a.SerializeToString() == b.SerializeToString()
    c = onnx_models.inception_v3(1, (1, 1), 43, 3, seed=6)
    assert a.SerializeToString() != c.SerializeToString()
    assert np.isfinite(onnx_models.onnxruntime_outputs(a, {"x": np.ones((1, 3, 43, 43), np.float32)})[0]).all()
