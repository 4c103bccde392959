"""`taskmap bench --suite models`: whole models compiled with `taskmap.compile(model,
backend="cuda")`, replayed as one CUDA graph on torch CUDA tensors, beside baselines measured in
the same run on the same GPU, batch 1, f32 (TF32 off):

- ONNX Runtime's CUDA provider on the same ONNX model (IO bound on the device), where
  onnxruntime-gpu is installed;
- the same architecture in torch (torchvision / transformers from config, frontends.torch_models):
  eager, eager captured in a CUDA graph, and `torch.compile(mode="reduce-overhead")` — the
  graph-replay-vs-graph-replay comparison of issue 11. Inception-V3 has no torch row: our
  builder is Inception-V3-style (no C blocks), not torchvision's network.

A second row per torch model times our PyTorch path, `torch.compile(module, backend="taskmap",
mode="reduce-overhead")` (frontends.torch_backend: ATen graphs, weights frozen, one CUDA graph
per partition on torch's stream, graph breaks included), against torch.compile reduce-overhead
of the same module; its outputs are checked against torch eager first.

Our outputs are checked against ONNX Runtime's CPU provider before anything is timed. Without
a GPU, torch, or a cuda backend of `taskmap.compile`, `unavailable()` says why and nothing is
measured. ratio = baseline time / our time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bench import Row

SDPA = "sdpa"                  # transformers' fused attention: torch at its best (and capturable in a CUDA graph)
TOLERANCE = {None: 1e-3, "f16": 2e-2, "bf16": 8e-2}   # relative Frobenius error allowed, by precision: ours
                                                     # against ONNX Runtime (CPU, f32), torch.compile's against eager
WARMUP_S = 0.25                # every side warms up this long first: the GPU sat idle during the CPU reference


@dataclass(frozen=True)
class ModelItem:
    label: str
    builder: str              # frontends.onnx_models.BUILDERS
    torch_model: str | None   # frontends.torch_models.BUILDERS: the same architecture in torch
    torch_config: dict
    ids_range: int = 0        # token-id inputs: values in [0, ids_range)


ITEMS = (
    ModelItem("ResNet-50", "resnet50", "resnet50", {}),
    ModelItem("MobileNet-V2", "mobilenet_v2", "mobilenet_v2", {}),
    ModelItem("Inception-V3-style", "inception_v3", None, {}),
    ModelItem("BERT-base seq 128", "bert_base", "bert", {"attn_implementation": SDPA}, 30522),
    ModelItem("GPT-2 small seq 128", "gpt2_small", "gpt2_lm", {"use_cache": False, "attn_implementation": SDPA},
              50257),
)


def unavailable() -> str | None:
    from taskmap.frontends.compiler import BACKENDS
    from .backends import cuda_unavailable
    reason = cuda_unavailable()
    if reason:
        return reason
    if "cuda" not in BACKENDS:
        return ("taskmap.compile(model, backend='cuda') does not exist yet (whole-model CUDA executables, "
                "issue 11): there is nothing of ours to time")
    import importlib.util
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (the runs use torch CUDA tensors): pip install torch"
    return None


def _feeds(model, item: ModelItem) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {}
    for vi in model.graph.input:
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        out[vi.name] = (rng.integers(0, item.ids_range, shape) if item.ids_range
                        else rng.uniform(-1, 1, shape).astype(np.float32))
    return out


def _relative_error(got, want) -> float:
    return max(float(np.linalg.norm(np.float64(g) - w) / max(np.linalg.norm(np.float64(w)), 1e-30))
               for g, w in zip(got, want))


def _ort_cuda(model, feeds: dict, torch):
    """A zero-argument call running the model on ONNX Runtime's CUDA provider, IO bound to
    torch CUDA tensors; or None without the provider."""
    import onnxruntime as ort
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return None
    session = ort.InferenceSession(model.SerializeToString(), providers=["CUDAExecutionProvider"])
    binding = session.io_binding()
    keep = []
    for name, a in feeds.items():
        t = torch.from_numpy(a).cuda()
        keep.append(t)
        binding.bind_input(name, "cuda", 0, a.dtype, list(a.shape), t.data_ptr())
    for o in session.get_outputs():
        binding.bind_output(o.name, "cuda")
    session.run_with_iobinding(binding)
    return lambda: session.run_with_iobinding(binding)


def _torch_module(item: ModelItem, feeds: dict, torch, precision: str | None):
    """The torch module of `item` on the GPU and its inputs, in `precision` (float inputs too)."""
    from taskmap.frontends import torch_models
    module = torch_models.build(item.torch_model, item.torch_config, seed=0).cuda()
    args = [torch.from_numpy(a).cuda() for a in feeds.values()]
    if precision is not None:
        t = {"f16": torch.float16, "bf16": torch.bfloat16}[precision]
        module = module.to(t)
        args = [a.to(t) if a.is_floating_point() else a for a in args]
    return module, args


def _torch_baselines(item: ModelItem, feeds: dict, torch, progress, precision=None) -> list[tuple[str, object]]:
    """(name, zero-argument call) for torch eager, eager in a CUDA graph, reduce-overhead; one
    that cannot be built here is left out with its reason said."""
    from taskmap.frontends import torch_models
    if item.torch_model is None or torch_models.unavailable(item.torch_model):
        return []
    module, args = _torch_module(item, feeds, torch, precision)

    def graphed():
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                module(*args)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            module(*args)
        return graph.replay

    def compiled():
        fn = torch.compile(module, mode="reduce-overhead")
        for _ in range(3):
            fn(*args)
        return lambda: fn(*args)

    out = []
    with torch.no_grad():
        for name, make in (("torch eager", lambda: lambda: module(*args)), ("torch eager, CUDA graph", graphed),
                           ("torch.compile reduce-overhead", compiled)):
            try:
                out.append((name, make()))
            except Exception as e:  # noqa: BLE001 — a missing baseline is reported, never estimated
                progress(f"{item.label}: {name} baseline left out: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    return out


def _taskmap_torch_row(item: ModelItem, feeds: dict, baselines: list, torch, gpu, precision=None) -> Row | None:
    """torch.compile(module, backend="taskmap", mode="reduce-overhead") vs torch's reduce-overhead."""
    theirs = dict(baselines).get("torch.compile reduce-overhead")
    if theirs is None:
        return None
    module, args = _torch_module(item, feeds, torch, precision)
    with torch.no_grad():
        want = module(*args)
        compiled = torch.compile(module, backend="taskmap", mode="reduce-overhead")
        for _ in range(3):
            got = compiled(*args)
        first = lambda o: o if isinstance(o, torch.Tensor) else o[0]
        w, g = first(want).float(), first(got).float()
        err = float(torch.linalg.vector_norm(g - w) / torch.linalg.vector_norm(w).clamp_min(1e-30))
        ours = gpu.time_kernel(lambda s: compiled(*args), repeat=50, warmup_s=WARMUP_S)["median_us"]
        baseline_us = gpu.time_kernel(lambda s: theirs(), repeat=50, warmup_s=WARMUP_S)["median_us"]
    tol = TOLERANCE[precision]
    problem = "" if err <= tol else f"relative error {err:.3g} against torch eager > {tol}"
    size = " ".join(f"{n}{list(a.shape)}" for n, a in feeds.items())
    return Row(f"{_label(item, precision)} [torch.compile backend=taskmap reduce-overhead]", size, ours,
               "torch.compile reduce-overhead", baseline_us, f"{ours / 1e3:.3f} ms", problem)


def _label(item: ModelItem, precision: str | None) -> str:
    return item.label if precision is None else f"{item.label} {precision}"


def models_rows(progress=print, precision: str | None = None) -> list[Row]:
    """The suite's rows; `precision` "f16" / "bf16": ours through taskmap.compile(precision=...),
    torch's module and float inputs cast to it (f32 in and out for ours, as the model is)."""
    import torch

    import taskmap
    from taskmap import gpu
    from taskmap.frontends.onnx_models import BUILDERS, onnxruntime_outputs
    gpu.runtime.driver()                       # the primary context, shared with torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    rows = []
    for item in ITEMS:
        model = BUILDERS[item.builder]()
        feeds = _feeds(model, item)
        prog = taskmap.compile(model, backend="cuda", precision=precision)
        got = prog(*feeds.values())
        err = _relative_error(got, onnxruntime_outputs(model, feeds))
        tol = TOLERANCE[precision]
        problem = "" if err <= tol else f"relative error {err:.3g} against ONNX Runtime > {tol}"
        ins = [torch.from_numpy(a).cuda() for a in feeds.values()]
        outs = [torch.empty(g.shape, dtype=torch.from_numpy(g).dtype, device="cuda") for g in got]
        ours = gpu.time_kernel(lambda s: prog.run(ins, outs), repeat=50, warmup_s=WARMUP_S)["median_us"]
        baselines = []
        ort_cuda = _ort_cuda(model, feeds, torch)
        if ort_cuda is None:
            progress(f"{item.label}: no ONNX Runtime CUDA provider (onnxruntime-gpu): that baseline is left out")
        else:
            baselines.append(("ONNX Runtime CUDA EP", ort_cuda))
        baselines += _torch_baselines(item, feeds, torch, progress, precision)
        size = " ".join(f"{n}{list(a.shape)}" for n, a in feeds.items())
        for name, run in baselines:
            with torch.no_grad():
                theirs = gpu.time_kernel(lambda s: run(), repeat=50, warmup_s=WARMUP_S)["median_us"]
            rows.append(Row(f"{_label(item, precision)} [{len(prog.kernels)} kernels, CUDA graph]", size, ours, name,
                            theirs, f"{ours / 1e3:.3f} ms", problem))
            progress(f"{item.label}: ours {ours:.1f} us, {name} {theirs:.1f} us, ratio {theirs / ours:.3f}"
                     + (f"; WRONG RESULT: {problem}" if problem else ""))
        if not baselines:
            progress(f"{item.label}: ours {ours:.1f} us; no baseline available here, no row")
        try:
            via_torch = _taskmap_torch_row(item, feeds, baselines, torch, gpu, precision)
        except Exception as e:  # noqa: BLE001 — our torch path failing is reported in its row's place
            via_torch = None
            progress(f"{item.label}: torch.compile(backend='taskmap') FAILED: {type(e).__name__}: "
                     f"{str(e).splitlines()[0][:300]}")
        if via_torch is not None:
            rows.append(via_torch)
            progress(f"{item.label}: torch.compile(backend='taskmap') {via_torch.ours_us:.1f} us, torch.compile "
                     f"reduce-overhead {via_torch.baseline_us:.1f} us, ratio {via_torch.ratio:.3f}"
                     + (f"; WRONG RESULT: {via_torch.problem}" if via_torch.problem else ""))
    return rows
