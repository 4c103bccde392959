"""`taskmap compile`: kernels and memory printed, --run compared with onnxruntime, bad input
a one-line error with status 2."""
from __future__ import annotations

import pytest

from taskmap.conformance.cli import main

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def test_compile_prints_kernels_and_runs(capsys, tmp_path):
    from taskmap.frontends import onnx_models
    import onnx
    path = tmp_path / "mlp.onnx"
    onnx.save(onnx_models.mlp(sizes=(4, 8, 3)), path)
    assert main(["compile", str(path), "--run", "--dims", "N=2", "--graph"]) == 0
    out = capsys.readouterr().out
    assert "graph mlp(x: f32[2, 4])" in out
    assert "kernels in" in out and "steps for" in out and "matmul" in out and "memory: arena" in out
    assert "output float32[2, 3]" in out
    worst = float(out.split("largest difference from onnxruntime: ")[1].split()[0])
    assert worst < 1e-5


@pytest.mark.parametrize("argv, message", [
    (["compile", "nosuch"], "nosuch: not an .onnx file nor a built-in model"),
    (["compile", "/nonexistent/m.onnx"], "/nonexistent/m.onnx: no such ONNX file"),
    (["compile", "mlp", "--dims", "N=0"], "--dims 'N=0': expected NAME=SIZE with a positive SIZE"),
])
def test_bad_input_is_one_line_with_status_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("taskmap compile: ") and message in err and "Traceback" not in err


def test_profile_needs_cuda_and_save_writes_a_loadable_program(capsys, tmp_path):
    assert main(["compile", "mlp", "--profile"]) == 2
    assert "--profile times GPU kernels; add --backend cuda" in capsys.readouterr().err
    path = tmp_path / "mlp.tmprog"
    assert main(["compile", "mlp", "--save", str(path)]) == 0
    assert f"saved to {path}" in capsys.readouterr().out
    import taskmap
    assert taskmap.load(path).kernels


def test_built_in_names_pick_the_reduced_model_unless_full_is_asked_for():
    from taskmap.conformance.compile_cli import _model
    from taskmap.frontends import onnx_models
    reduced, full = _model("mobilenet_v2"), _model("mobilenet_v2", full=True)
    assert reduced == onnx_models.mobilenet_v2_small() and full == onnx_models.mobilenet_v2()
    reduced_bytes, full_bytes = (sum(len(t.raw_data) or len(t.float_data) for t in m.graph.initializer)
                                 for m in (reduced, full))
    assert full_bytes > 10 * reduced_bytes
    assert _model("resnet50").graph.input[0].type.tensor_type.shape.dim[2].dim_value == 224


@pytest.mark.parametrize("name", ["mlp", "bert", "model.onnx"])
def test_full_of_a_name_without_a_full_size_model_is_an_error_not_the_reduced_one(name, capsys):
    assert main(["compile", name, "--full"]) == 2
    err = capsys.readouterr().err
    assert f"--full {name}: no full-size built-in of that name" in err and "bert_base" in err
