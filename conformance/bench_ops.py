"""`taskmap bench --suite ops`: operator plans (refimpl.schedules at their default point) on the
GPU beside torch doing the same operator on the same GPU in the same run (cuBLAS / cuDNN /
torch's own kernels; TF32 off), and beside `torch.compile` of the same torch call (a second
row). Every plan's result is checked against torch's before it is timed; ratio = torch time /
our time.

Plans run on torch CUDA tensors without copies: each launch is a prepared call of the
compiled kernel, temporaries are torch allocations, and views are leading slices.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

from taskmap.spec import dtypes as dt

from .bench import Row


@dataclass(frozen=True)
class OpItem:
    label: str
    op: str
    shapes: tuple
    dtype: str                      # f32 / f16 / bf16
    attrs: dict
    baseline: str
    torch_fn: Callable              # (torch, *inputs) -> output tensor
    work: Callable                  # (shapes, element bytes) -> bytes moved or flops
    unit: str                       # "GB/s" or "TFLOP/s"
    tolerance: float                # relative Frobenius error allowed against torch
    torch_inputs: Callable | None = None    # (torch, inputs) -> the baseline's inputs, made before timing
    compiled_row: bool = True               # also time torch.compile of torch_fn (False: it calls the same library)
    point: object = None                    # the schedule's point (None: its template's default)


def _matmul_flops(shapes, _):
    (m, k), (_, n) = shapes
    return 2 * m * n * k


def _rows_bytes(shapes, size):
    return 2 * math.prod(shapes[0]) * size


def _binary_bytes(shapes, size):
    return (math.prod(shapes[0]) * 2 + math.prod(shapes[1])) * size


def _attention_flops(shapes, _, causal: bool = False):
    (b, h, s, d), (_, _, t, _), (_, _, _, e) = shapes
    return 2 * b * h * s * t * (d + e) // (2 if causal else 1)      # causal: half the scores (FlashAttention's count)


def _sdpa_flash(causal: bool):
    """torch SDPA held to its FlashAttention backend (an error, not a silent fallback, if it cannot run)."""
    def sdpa(torch, q, k, v):
        from torch.nn.attention import SDPBackend, sdpa_kernel
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return sdpa


# ResNet-50's convolutions (torchvision, stride on the 3x3): (channels, size, out channels,
# kernel, stride); pads are kernel // 2. Each appears once, however many blocks repeat it.
RESNET50_CONVS = ((3, 224, 64, 7, 2),
                  (64, 56, 64, 1, 1), (64, 56, 64, 3, 1), (64, 56, 256, 1, 1), (256, 56, 64, 1, 1),
                  (256, 56, 128, 1, 1), (128, 56, 128, 3, 2), (128, 28, 512, 1, 1), (256, 56, 512, 1, 2),
                  (512, 28, 128, 1, 1), (128, 28, 128, 3, 1),
                  (512, 28, 256, 1, 1), (256, 28, 256, 3, 2), (256, 14, 1024, 1, 1), (512, 28, 1024, 1, 2),
                  (1024, 14, 256, 1, 1), (256, 14, 256, 3, 1),
                  (1024, 14, 512, 1, 1), (512, 14, 512, 3, 2), (512, 7, 2048, 1, 1), (1024, 14, 2048, 1, 2),
                  (2048, 7, 512, 1, 1), (512, 7, 512, 3, 1))


CONV_LABEL, CONV_BASELINE = "conv2d f16 ResNet-50", "F.conv2d (cuDNN, NHWC)"


def _conv_flops(shapes, _, stride=1, pad=0):
    (n, c, h, w), (o, cg, kh, kw) = shapes[:2]
    oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    return 2 * n * o * oh * ow * cg * kh * kw


def _channels_last(torch, inputs):
    """cuDNN's fastest f16 layout for the baseline (our plan takes NCHW and transposes itself, timed)."""
    return [t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in inputs]


def conv_items() -> list[OpItem]:
    """ResNet-50's conv2d layers, batch 1 and 16, f16, against cuDNN (benchmark mode, channels-last)."""
    items = []
    for batch in (1, 16):
        for c, size, o, k, stride in RESNET50_CONVS:
            pad = k // 2
            items.append(OpItem(f"{CONV_LABEL} {k}x{k}/{stride} batch {batch}", "conv2d",
                                ((batch, c, size, size), (o, c, k, k)), "f16",
                                {"strides": (stride, stride), "pads": (pad,) * 4}, CONV_BASELINE,
                                lambda torch, x, w, s=stride, p=pad: torch.nn.functional.conv2d(x, w, stride=s,
                                                                                                padding=p),
                                lambda shapes, n, s=stride, p=pad: _conv_flops(shapes, n, s, p), "TFLOP/s", 2e-3,
                                torch_inputs=_channels_last, compiled_row=False))
    return items


def conv_geomean(rows) -> float | None:
    """The geometric mean of the conv_items rows' ratios (issue 10's conv target), None without any."""
    ratios = [r.ratio for r in rows if r.kernel.startswith(CONV_LABEL) and r.baseline == CONV_BASELINE]
    return math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else None


def wgmma_items() -> list[OpItem]:
    """The Hopper matmul (refimpl.schedules.matmul's WgmmaPoint, sm_90 only) on row-major B (the
    plan transposes B first) and on B given [N, K] (gemm trans_b: cuBLAS's TN layout, no transpose)."""
    from taskmap.refimpl.schedules.matmul import WgmmaPoint
    items = []
    for dtype, tol in (("f16", 2e-3), ("bf16", 1e-2)):
        for n in (4096, 8192):
            items.append(OpItem(f"matmul {dtype} wgmma", "matmul", ((n, n), (n, n)), dtype, {}, "torch.mm (cuBLAS)",
                                lambda torch, a, b: torch.mm(a, b), _matmul_flops, "TFLOP/s", tol,
                                compiled_row=False, point=WgmmaPoint()))
            items.append(OpItem(f"gemm trans_b {dtype} wgmma", "gemm", ((n, n), (n, n)), dtype, {"trans_b": 1},
                                "torch.mm(a, b.t()) (cuBLAS)", lambda torch, a, b: torch.mm(a, b.t()), _matmul_flops,
                                "TFLOP/s", tol, compiled_row=False, point=WgmmaPoint()))
    return items


def bench_items() -> list[OpItem]:
    items = []
    for dtype, tol in (("f32", 1e-5), ("f16", 2e-3), ("bf16", 1e-2)):
        for n in ((4096,) if dtype != "f16" else (4096, 8192)):
            items.append(OpItem(f"matmul {dtype}", "matmul", ((n, n), (n, n)), dtype, {}, "torch.mm (cuBLAS)",
                                lambda torch, a, b: torch.mm(a, b), _matmul_flops, "TFLOP/s", tol))
    items += wgmma_items()
    for dtype, tol in (("f32", 1e-5), ("f16", 2e-3)):
        for rows, cols in ((16384, 4096), (2048, 32768)):
            shape = (rows, cols)
            items.append(OpItem(f"softmax {dtype}", "softmax", (shape,), dtype, {}, "torch.softmax",
                                lambda torch, x: torch.softmax(x, -1), _rows_bytes, "GB/s", tol))
            items.append(OpItem(f"layer_norm {dtype}", "layer_norm", (shape, (cols,), (cols,)), dtype, {},
                                "F.layer_norm",
                                lambda torch, x, g, b: torch.nn.functional.layer_norm(x, x.shape[-1:], g, b, 1e-5),
                                _rows_bytes, "GB/s", tol))
            items.append(OpItem(f"rms_norm {dtype}", "rms_norm", (shape, (cols,)), dtype, {}, "F.rms_norm",
                                lambda torch, x, g: torch.nn.functional.rms_norm(x, x.shape[-1:], g, 1e-5),
                                _rows_bytes, "GB/s", tol))
    for dtype in ("f32", "f16"):
        items.append(OpItem(f"add (broadcast row) {dtype}", "add", ((8192, 8192), (8192,)), dtype, {}, "torch.add",
                            lambda torch, a, b: torch.add(a, b), _binary_bytes, "GB/s", 1e-6))
        items.append(OpItem(f"gelu {dtype}", "gelu", ((1 << 26,),), dtype, {}, "F.gelu",
                            lambda torch, x: torch.nn.functional.gelu(x), _rows_bytes, "GB/s", 2e-3))
    items += conv_items()
    for d in (64, 128):                         # 16 heads, batch · sequence = 4096 tokens
        for seq, batch in ((128, 32), (1024, 4), (4096, 1)):
            for causal in (False, True):
                shape = (batch, 16, seq, d)
                items.append(OpItem(f"attention f16 d{d}{' causal' if causal else ''}", "attention", (shape,) * 3,
                                    "f16", {"is_causal": int(causal)}, "torch SDPA (flash)", _sdpa_flash(causal),
                                    lambda s, n, c=causal: _attention_flops(s, n, c), "TFLOP/s", 2e-3))
    return items


def prepare_plan(plan, tensors: dict, torch, gpu) -> Callable[[], None]:
    """One zero-argument call running every launch of `plan` on the torch tensors `tensors`."""
    from taskmap.refimpl.schedules.plan import argument
    env = dict(tensors)
    for t in plan.temps:
        env[t.name] = torch.empty(t.shape, dtype=torch_dtype(torch, t.dtype), device="cuda")
    calls = [gpu.compile(launch.kernel).prepared(*(argument(env, a) for a in launch.args))
             for launch in plan.launches]

    def run():
        for call in calls:
            call()
    return run


def torch_dtype(torch, t: dt.DType):
    return {dt.float32: torch.float32, dt.float16: torch.float16, dt.bfloat16: torch.bfloat16,
            dt.int32: torch.int32, dt.int64: torch.int64}[t]


def setup_gpu():
    """torch and taskmap.gpu on one primary context, TF32 off, cuDNN picking its fastest
    algorithm per shape (the suite's conditions)."""
    from taskmap import gpu
    import torch
    gpu.runtime.driver()                       # the primary context, shared with torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    return torch, gpu


def measure(item: OpItem, torch, gpu) -> tuple[Row, Callable[[], None], list, int]:
    """One item on the GPU: its row (our result checked against torch's, then both timed), the
    prepared call of our plan, its torch inputs and the repeat count used."""
    from taskmap.refimpl.schedules import schedule
    from taskmap.spec.ops import get
    t = dt.by_name(item.dtype)
    types = [t[shape] for shape in item.shapes]
    (out_type,) = get(item.op).infer(types, **item.attrs)
    gen = torch.Generator(device="cuda").manual_seed(0)
    inputs = [torch.randn(s, device="cuda", generator=gen).to(torch_dtype(torch, t)) for s in item.shapes]
    output = torch.empty(out_type.shape, dtype=torch_dtype(torch, out_type.dtype), device="cuda")
    plan = schedule(item.op, types, item.attrs, item.point)
    params = plan.inputs + plan.outputs
    go = prepare_plan(plan, {p.name: a for p, a in zip(params, [*inputs, output])}, torch, gpu)
    go()
    torch.cuda.synchronize()
    baseline_inputs = item.torch_inputs(torch, inputs) if item.torch_inputs else inputs
    want = item.torch_fn(torch, *baseline_inputs)
    err = ((output.double() - want.double()).norm() / want.double().norm().clamp_min(1e-30)).item()
    problem = "" if err <= item.tolerance else f"relative error {err:.3g} > {item.tolerance}"
    first = gpu.time_kernel(lambda s: go(), repeat=3, warmup=1)["median_us"]
    repeat = max(5, min(50, int(5e5 / first)))
    ours = gpu.time_kernel(lambda s: go(), repeat=repeat)["median_us"]
    theirs = gpu.time_kernel(lambda s: item.torch_fn(torch, *baseline_inputs), repeat=repeat)["median_us"]
    work = item.work(item.shapes, t.bits // 8)
    scale = 1e3 if item.unit == "GB/s" else 1e6
    size = " x ".join("x".join(map(str, s)) for s in item.shapes)
    kernels = "+".join(k.name for k in plan.kernels)
    row = Row(f"{item.label} [{kernels}]", size, ours, item.baseline, theirs, f"{work / ours / scale:.1f} {item.unit}",
              problem)
    return row, go, inputs, repeat


def ops_rows(progress=print) -> list[Row]:
    torch, gpu = setup_gpu()
    rows = []
    for item in bench_items():
        row, _, inputs, repeat = measure(item, torch, gpu)
        progress(f"{row.kernel} {row.size}: {row.ours_us:.1f} us, {item.baseline} {row.baseline_us:.1f} us, "
                 f"ratio {row.ratio:.3f}" + (f"; WRONG RESULT: {row.problem}" if row.problem else ""))
        rows.append(row)
        if not item.compiled_row:
            continue
        compiled = _compiled_time(torch, gpu, item, inputs, repeat, progress)
        if compiled is not None:
            rows.append(replace(row, baseline="torch.compile", baseline_us=compiled))
            progress(f"{row.kernel} {row.size}: torch.compile {compiled:.1f} us, ratio {compiled / row.ours_us:.3f}")
    geomean = conv_geomean(rows)
    if geomean is not None:
        progress(f"{CONV_LABEL} layers, batch 1 and 16: geometric mean ratio {geomean:.3f} against {CONV_BASELINE}")
    return rows


def _compiled_time(torch, gpu, item: OpItem, inputs, repeat: int, progress) -> float | None:
    """torch.compile (default mode) of the same torch call, timed like it; None, with the reason
    said, where torch.compile cannot build it here (no Triton, an unsupported GPU)."""
    torch._dynamo.reset()       # one compile per item: past dynamo's recompile limit it would run eager
    fn = torch.compile(lambda *xs: item.torch_fn(torch, *xs))
    try:
        fn(*inputs)
    except Exception as e:  # noqa: BLE001 — a missing baseline is reported, never estimated
        progress(f"{item.label}: torch.compile baseline left out: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
        return None
    return gpu.time_kernel(lambda s: fn(*inputs), repeat=repeat)["median_us"]
