"""Whole-model benchmarks on the GPU (pytest-benchmark): taskmap's CUDA-graph replay of
ResNet-50, BERT-base (seq 128) and GPT-2 small (seq 128), batch 1, f32 as the builders make
them, beside ONNX Runtime's CUDA provider in the same run where it is installed. extra_info:
our replay's CUDA-event median (µs), ORT's host-timed median per synchronized run (µs; it
cannot be timed with our events) and the ratio ort/ours. Results go to docs/PERF.md.

    python -m pytest tests/bench/test_bench_models.py --benchmark-only -m "gpu"
"""
from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.gpu, pytest.mark.slow]

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import taskmap  # noqa: E402
from taskmap.frontends import onnx_models  # noqa: E402

MODELS = {"resnet50": onnx_models.resnet50, "bert_base": onnx_models.bert_base, "gpt2_small": onnx_models.gpt2_small}


def _ort_cuda_us(model, feeds, repeat=50) -> float | None:
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return None
    session = ort.InferenceSession(model.SerializeToString(), providers=["CUDAExecutionProvider"])
    binding = session.io_binding()
    for name, a in feeds.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(a, "cuda", 0))
    for o in session.get_outputs():
        binding.bind_output(o.name, "cuda")
    for _ in range(5):
        session.run_with_iobinding(binding)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        times.append((time.perf_counter() - start) * 1e6)
    return statistics.median(times)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_replay(benchmark, name):
    from taskmap import gpu
    model = MODELS[name]()
    feeds = onnx_models.random_feeds(model, np.random.default_rng(0), batch=1)
    prog = taskmap.compile(model, backend="cuda")
    exe = prog.executable(prog.dims)
    exe(*feeds.values())                                   # inputs on the device, checked to run
    ours = gpu.time_kernel(lambda s: exe.replay(s), repeat=50)["median_us"]
    theirs = _ort_cuda_us(model, feeds)
    benchmark.extra_info.update({"taskmap_replay_us": ours, "ort_cuda_us": theirs,
                                 "ratio_ort_over_ours": theirs / ours if theirs else None})
    drv = gpu.runtime.driver()

    def once():
        exe.replay()
        drv.Context.synchronize()
    benchmark.pedantic(once, rounds=20, warmup_rounds=2)
