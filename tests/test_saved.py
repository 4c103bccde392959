"""Saved programs (frontends.saved): save and load on the interpreter round-trip without the
model (outputs equal to ONNX Runtime's and to the original program's, bindings kept, new ones
specialized), and files of another format version, another backend's GPU arch, with other
kernels or not a program at all are refused with what to do. On the GPU: tests/test_gpu_models.py."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from taskmap.spec.errors import TaskmapError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import taskmap  # noqa: E402
from taskmap.frontends import onnx_models  # noqa: E402


def _rewrite(path, change):
    """The saved file with its manifest changed by change(manifest)."""
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    manifest = json.loads(members["manifest.json"])
    change(manifest)
    members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)


def test_save_and_load_round_trip_without_the_model(tmp_path):
    model = onnx_models.mlp(sizes=(4, 8, 3))
    prog = taskmap.compile(model)
    rng = np.random.default_rng(0)
    x3 = rng.standard_normal((3, 4)).astype(np.float32)
    (y3,) = prog(x3)
    path = tmp_path / "mlp.tmprog"
    prog.save(path)
    del model
    loaded = taskmap.load(path)
    assert loaded.bindings == [{"N": 1}, {"N": 3}] and loaded.backend == "interp"
    assert [k.name for k in loaded.kernels] == [k.name for k in prog.kernels]
    np.testing.assert_array_equal(loaded(x3)[0], y3)
    x5 = rng.standard_normal((5, 4)).astype(np.float32)          # a binding the file does not hold
    want = onnx_models.onnxruntime_outputs(onnx_models.mlp(sizes=(4, 8, 3)), {"x": x5})[0]
    np.testing.assert_allclose(loaded(x5)[0], want, rtol=1e-4, atol=1e-6)
    with zipfile.ZipFile(path) as z:
        assert not [n for n in z.namelist() if n.endswith(".pkl")]
        assert sum(n.startswith("constants/") for n in z.namelist()) == 4    # shared by both bindings


def test_a_model_with_weights_and_convolutions_round_trips(tmp_path):
    model = onnx_models.cnn(channels=(2, 4, 4), image=6, classes=3)
    prog = taskmap.compile(model)
    prog.save(tmp_path / "cnn.tmprog")
    x = np.random.default_rng(1).standard_normal((1, 2, 6, 6)).astype(np.float32)
    got = taskmap.load(tmp_path / "cnn.tmprog")(x)[0]
    np.testing.assert_allclose(got, onnx_models.onnxruntime_outputs(model, {"x": x})[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(version=99), "format version 99 .*this taskmap reads version 1: compile the model again"),
    (lambda m: m.update(format="other"), "format 'other', not a saved taskmap program"),
    (lambda m: m["bindings"][0]["kernels"][0].__setitem__(2, "0" * 32),
     "step MatMul_1 kernel matmul_simt.* is not what this taskmap builds .*compile the model again"),
    (lambda m: m["bindings"][0]["memory"].update(peak=1), "the memory plan of binding"),
])
def test_foreign_files_are_refused(tmp_path, change, message):
    path = tmp_path / "mlp.tmprog"
    taskmap.compile(onnx_models.mlp(sizes=(4, 8, 3))).save(path)
    _rewrite(path, change)
    with pytest.raises(TaskmapError, match=message):
        taskmap.load(path)


def test_a_cuda_file_without_its_gpu_is_refused(tmp_path):
    from taskmap import gpu
    path = tmp_path / "mlp.tmprog"
    taskmap.compile(onnx_models.mlp(sizes=(4, 8, 3))).save(path)
    _rewrite(path, lambda m: m.update(backend="cuda", arch="sm_1"))
    with pytest.raises(TaskmapError, match="a cuda program, and .*|compiled for sm_1, this GPU is"):
        taskmap.load(path)
    if gpu.unavailable_reason() is None:
        pytest.skip("(the no-GPU message needs a machine without one)")


def test_not_a_program_is_refused(tmp_path):
    path = tmp_path / "x.tmprog"
    path.write_text("hello")
    with pytest.raises(TaskmapError, match="not a saved taskmap program"):
        taskmap.load(path)
    with pytest.raises(TaskmapError, match="not a saved taskmap program"):
        taskmap.load(tmp_path / "missing.tmprog")
