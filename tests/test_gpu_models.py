"""backend="cuda" on the GPU: every built-in model matches ONNX Runtime (reduced sizes always,
full sizes under -m slow); CUDA-graph replay gives what the launches one by one give; the
zero-copy path on torch CUDA tensors; a new batch size compiles only the kernels whose code
changed; a saved cuda program loads and runs with its own cubins (no nvcc, an empty cache);
--profile's table. The CPU stand-in of the same logic: tests/test_gpu_executable.py."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gpu

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import taskmap  # noqa: E402
from taskmap.frontends import onnx_models  # noqa: E402
from taskmap.spec import ir  # noqa: E402
from taskmap.spec.errors import TaskmapError  # noqa: E402


def _atomics(prog) -> bool:
    return any(isinstance(n, ir.Atomic) for k in prog.kernels for n in ir.walk(k))


def _check_model(model, rtol, atol, name):
    prog = taskmap.compile(model, backend="cuda", dims={"N": 2})
    feeds = onnx_models.random_feeds(model, np.random.default_rng(0))
    want = onnx_models.onnxruntime_outputs(model, feeds)
    replayed = prog(*feeds.values())
    one_by_one = prog.executable(prog.dims)(*feeds.values(), graph=False)
    for r, o, w in zip(replayed, one_by_one, want):
        np.testing.assert_allclose(r, w, rtol=rtol, atol=atol, err_msg=f"{name}: CUDA vs onnxruntime")
        if _atomics(prog):          # atomics may add in another order
            np.testing.assert_allclose(r, o, rtol=1e-6, atol=1e-7, err_msg=f"{name}: replay vs launches")
        else:
            np.testing.assert_array_equal(r, o, err_msg=f"{name}: CUDA-graph replay vs launches one by one")
    return prog


@pytest.mark.parametrize("name", sorted(onnx_models.REDUCED))
def test_reduced_model_on_cuda_matches_onnxruntime(name):
    _check_model(onnx_models.REDUCED[name](), 1e-4, 1e-5, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(onnx_models.FULL))
def test_full_size_model_on_cuda_matches_onnxruntime(name):
    _check_model(onnx_models.FULL[name](), 1e-3, 1e-4, name)


def test_zero_copy_on_torch_tensors_and_torch_streams():
    torch = pytest.importorskip("torch")
    model = onnx_models.transformer_encoder()
    prog = taskmap.compile(model, backend="cuda")
    x = np.random.default_rng(1).standard_normal(prog.inputs[0].type.shape).astype(np.float32)
    (want,) = onnx_models.onnxruntime_outputs(model, {prog.inputs[0].name: x})
    xt = torch.from_numpy(x).cuda()
    (t,) = prog.output_types(xt)
    yt = torch.empty(t.shape, dtype=torch.float32, device="cuda")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        prog.run([xt], [yt], stream=stream.cuda_stream)
    stream.synchronize()
    np.testing.assert_allclose(yt.cpu().numpy(), want, rtol=1e-4, atol=1e-5)
    yt.zero_()
    prog.run([xt], [yt], graph=False)                       # default stream, launches one by one
    torch.cuda.synchronize()
    np.testing.assert_allclose(yt.cpu().numpy(), want, rtol=1e-4, atol=1e-5)
    with pytest.raises(TaskmapError, match="must be f32.*got torch.float16"):
        prog.run([xt.half()], [yt])


def test_a_new_batch_size_compiles_only_changed_kernels(tmp_path, monkeypatch):
    monkeypatch.setenv("TASKMAP_CACHE", str(tmp_path))
    lines = []
    model = onnx_models.mlp(batch="N", sizes=(16, 32, 8))
    prog = taskmap.compile(model, backend="cuda", progress=lines.append)
    first = [line for line in lines if "distinct" in line]
    x = np.random.default_rng(2).standard_normal((5, 16)).astype(np.float32)
    np.testing.assert_allclose(prog(x)[0], onnx_models.onnxruntime_outputs(model, {"x": x})[0], rtol=1e-4, atol=1e-6)
    second = [line for line in lines if "distinct" in line][-1]
    assert len(first) == 1 and prog.bindings == [{"N": 1}, {"N": 5}]
    assert "from the cubin cache" in second and not second.split("compiled, ")[1].startswith("0 from"), second


def test_saved_cuda_program_loads_its_own_cubins(tmp_path, monkeypatch):
    from taskmap.gpu import build
    model = onnx_models.cnn()
    prog = taskmap.compile(model, backend="cuda")
    feeds = onnx_models.random_feeds(model, np.random.default_rng(3), batch=1)
    (want,) = prog(*feeds.values())
    prog.save(tmp_path / "cnn.tmprog")
    monkeypatch.setenv("TASKMAP_CACHE", str(tmp_path / "empty"))

    def no_nvcc(*args, **kwargs):
        raise AssertionError("nvcc ran although the saved program holds every cubin")
    monkeypatch.setattr(build, "run_nvcc", no_nvcc)
    loaded = taskmap.load(tmp_path / "cnn.tmprog")
    np.testing.assert_array_equal(loaded(*feeds.values())[0], want)


def test_profile_times_every_launch(capsys):
    from taskmap.conformance.cli import main
    assert main(["compile", "cnn", "--backend", "cuda", "--profile", "--repeat", "5"]) == 0
    out = capsys.readouterr().out
    assert "largest difference from onnxruntime" in out and "whole program as one CUDA-graph replay" in out
    prog = taskmap.compile(onnx_models.cnn(), backend="cuda")
    rows, replay = prog.profile(*onnx_models.random_feeds(onnx_models.cnn(), np.random.default_rng(0), 1).values(), repeat=5)
    assert len(rows) == len(prog.executable(prog.dims).launches) and all(r["us"] > 0 for r in rows) and replay > 0
