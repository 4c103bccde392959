"""gpu.executable's own logic on a CPU stand-in of the driver (tests/fake_cuda.py: device memory
is a byte array, launches are interpreted): the arena placement and its reuse, the argument
packing, caller buffers bound per call, outputs no step writes, CUDA-graph capture per binding.
Each program is checked against ONNX Runtime, not against itself. The same on a real GPU:
tests/test_gpu_models.py."""
from __future__ import annotations

import numpy as np
import pytest

from fake_cuda import DeviceArray, fake_device
from taskmap.spec.errors import TaskmapError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import taskmap  # noqa: E402
from taskmap.frontends import onnx_models  # noqa: E402
from taskmap.gpu.executable import DeviceProgram  # noqa: E402
from taskmap.spec.graph import Constant, Graph, Node, Value  # noqa: E402
from taskmap.spec.graph.passes import infer_shapes  # noqa: E402
from taskmap.spec.lang import f32  # noqa: E402


@pytest.fixture
def device(monkeypatch):
    with fake_device(monkeypatch) as memory:
        yield memory


def _program(model, dims=None):
    prog = taskmap.compile(model, dims=dims or {})
    return DeviceProgram(prog.executable(prog.dims))


@pytest.mark.parametrize("name, model", [
    ("cnn", lambda: onnx_models.cnn(channels=(2, 4, 4), image=6, classes=3)),
    ("transformer_encoder", lambda: onnx_models.transformer_encoder(seq=4, d=8, heads=2, ff=8)),
])
def test_arena_program_matches_onnxruntime_by_replay_and_by_launches(device, name, model):
    model = model()
    prog = _program(model)
    assert prog.memory.peak < prog.memory.total          # buffers really share the arena
    rng = np.random.default_rng(0)
    feeds = {vi.name: rng.standard_normal([d.dim_value for d in vi.type.tensor_type.shape.dim]).astype(np.float32)
             for vi in model.graph.input}
    want = onnx_models.onnxruntime_outputs(model, feeds)
    for graph in (True, False):
        for got, w in zip(prog(*feeds.values(), graph=graph), want):
            np.testing.assert_allclose(got, w, rtol=1e-4, atol=1e-5, err_msg=f"{name} graph={graph}")


def test_caller_buffers_are_bound_per_call_and_graphs_kept_per_binding(device):
    model = onnx_models.mlp(sizes=(4, 8, 3))
    prog = _program(model, {"N": 2})
    rng = np.random.default_rng(1)
    for _ in range(2):                                  # a new pair of buffers: a new graph
        x = rng.standard_normal((2, 4)).astype(np.float32)
        xd, yd = DeviceArray(device, x), DeviceArray(device, shape=(2, 3), dtype=np.float32)
        assert prog.run([xd], [yd]) == [yd]
        np.testing.assert_allclose(yd.get(), onnx_models.onnxruntime_outputs(model, {"x": x})[0], rtol=1e-4, atol=1e-6)
    assert len(prog._graphs) == 2
    x2 = rng.standard_normal((2, 4)).astype(np.float32)
    xd.memory.view(xd.ptr, (2, 4), np.float32)[...] = x2       # same buffers, new contents: replayed
    prog.run([xd], [yd])
    np.testing.assert_allclose(yd.get(), onnx_models.onnxruntime_outputs(model, {"x": x2})[0], rtol=1e-4, atol=1e-6)
    assert len(prog._graphs) == 2


def test_outputs_no_step_writes_are_copied(device):
    """An input passed through, a constant output and an output listed twice."""
    c = np.arange(6, dtype=np.float32).reshape(2, 3)
    g = infer_shapes(Graph("g", (Value("x", f32[2, 3]),), ("y", "x", "c", "y"),
                           (Node.make("n", "relu", ["x"], [Value("y", None)]),), (Constant.of("c", c),)))
    from taskmap.refimpl.graph_exec import build
    prog = DeviceProgram(build(g))
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    want = [np.maximum(x, 0), x, c, np.maximum(x, 0)]
    for got, w in zip(prog(x), want):
        np.testing.assert_array_equal(got, w)
    outs = [DeviceArray(device, shape=(2, 3), dtype=np.float32) for _ in range(4)]
    prog.run([DeviceArray(device, x)], outs)
    for o, w in zip(outs, want):
        np.testing.assert_array_equal(o.get(), w)


def test_bad_device_buffers_are_refused_by_name(device):
    prog = _program(onnx_models.mlp(sizes=(4, 8, 3)), {"N": 2})
    x = DeviceArray(device, np.zeros((2, 4), np.float32))
    y = DeviceArray(device, shape=(2, 3), dtype=np.float32)
    with pytest.raises(TaskmapError, match="input x must be f32\\[2, 4\\] .*got float64\\[2, 4\\]"):
        prog.run([DeviceArray(device, np.zeros((2, 4)))], [y])
    with pytest.raises(TaskmapError, match="input x: a NumPy array"):
        prog.run([np.zeros((2, 4), np.float32)], [y])
    with pytest.raises(TaskmapError, match="takes 1 inputs \\(x\\) and 1 outputs"):
        prog.run([x, x], [y])
    alias = DeviceArray.__new__(DeviceArray)
    alias.memory, alias.shape, alias.dtype, alias.ptr = device, (2, 3), np.dtype(np.float32), x.ptr
    with pytest.raises(TaskmapError, match="input x and output .* share device memory"):
        prog.run([x], [alias])
    with pytest.raises(TaskmapError, match="CUstream int serves CUDA-graph replay only"):
        prog.run([x], [y], stream=7, graph=False)


def test_compile_for_cuda_without_a_gpu_says_why():
    from taskmap import gpu
    if gpu.unavailable_reason() is None:
        pytest.skip("a GPU is here")
    with pytest.raises(TaskmapError, match="backend='cuda': .*; use backend='interp' here"):
        taskmap.compile(onnx_models.mlp(), backend="cuda")
