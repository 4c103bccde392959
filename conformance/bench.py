"""`taskmap bench`: the example kernels timed beside a baseline measured in the same run.

- `--suite kernels` (needs a CUDA GPU and torch): each example kernel, CUDA-event timed
  (gpu.time_kernel, median of many launches), beside torch doing the same job on the same
  GPU: `torch.add`, `Tensor.copy_`, `a.t().contiguous()`, `a.sum()`, `torch.mm` (cuBLAS;
  TF32 off for f32). Every kernel's result is checked before it is timed.
- `--suite ops` (bench_ops.py): operator plans beside torch / cuBLAS / cuDNN.
- `--suite models` (bench_models.py): whole models by CUDA-graph replay beside ONNX Runtime's
  CUDA provider, torch eager, eager in a CUDA graph and torch.compile reduce-overhead.
- `--suite all`: kernels, ops and models in one run (a part that cannot run is left out, with why).
- `--suite interp`: the interpreter on the CPU, each example at its largest test size,
  beside the example's NumPy reference (`reference()`), with the outputs compared.

ratio = baseline time / our time: above 1 we are faster. docs/PERF.md is built from `--markdown`.
"""
from __future__ import annotations

import datetime
import importlib
import importlib.util
import platform
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from tabulate import tabulate

from .backends import cuda_unavailable
from taskmap.examples import MODULES


@dataclass(frozen=True)
class Row:
    kernel: str
    size: str
    ours_us: float
    baseline: str
    baseline_us: float
    throughput: str          # ours, in the unit that matters for the kernel (GB/s, TFLOP/s)
    problem: str = ""        # what was wrong with our result, checked before timing ("" = correct)

    @property
    def ratio(self) -> float:
        return self.baseline_us / self.ours_us


@dataclass(frozen=True)
class GpuItem:
    kernel: str
    size: str
    compiled_kernel: object                       # spec.ir.Kernel
    args: tuple                                   # torch CUDA tensors and scalars
    baseline: str
    run_baseline: Callable[[], object]
    check: Callable[[], str | None]               # after one launch of ours: None, or what is wrong
    work: float                                   # bytes moved, or flops
    unit: str                                     # "GB/s" or "TFLOP/s"
    repeat: int = 50


def example(name: str):
    return importlib.import_module(f"taskmap.examples.{name}")


# ---------------------------------------------------------------- GPU suite

def _gpu_items(torch) -> list[GpuItem]:
    from taskmap.gpu.bench import copy_f32
    cuda = {"device": "cuda"}
    items = []
    n = 1 << 26
    src, dst = torch.randn(n, **cuda), torch.empty(n, **cuda)
    ref = torch.empty_like(dst)
    items.append(GpuItem("copy_f32 (gpu.bench)", f"n={n}", copy_f32, (n, src, dst), "dst.copy_(src)",
                         lambda: ref.copy_(src), lambda: None if torch.equal(dst, src) else "wrong copy",
                         8 * n, "GB/s"))
    va = example("vector_add")
    for dtype, tdt in (("f32", torch.float32), ("f16", torch.float16)):
        a, b, c = (torch.randn(n, **cuda).to(tdt) for _ in range(3))
        out = torch.empty_like(c)
        items.append(GpuItem(f"vector_add {dtype}", f"n={n}", va.kernel_for[dtype], (n, a, b, c),
                             "torch.add(a, b, out=c)", lambda a=a, b=b, out=out: torch.add(a, b, out=out),
                             lambda a=a, b=b, c=c: None if torch.equal(c, (a.double() + b).to(c.dtype))
                             else "c != a + b rounded once",
                             3 * n * a.element_size(), "GB/s"))
    m = 8192
    a, bt = torch.randn(m, m, **cuda), torch.empty(m, m, **cuda)
    items.append(GpuItem("transpose f32", f"{m}x{m}", example("transpose").transpose, (m, m, a, bt),
                         "a.t().contiguous()", lambda a=a: a.t().contiguous(),
                         lambda a=a, bt=bt: None if torch.equal(bt, a.t()) else "b != a.T", 8 * m * m, "GB/s"))
    rs = example("reduce_sum")
    x, total = torch.randn(n, **cuda), torch.zeros(1, **cuda)

    def sum_error():
        want = x.double().sum().item()
        got = total.double().item()
        bound = 1e-6 * x.double().abs().sum().item()
        return None if abs(got - want) <= bound else f"sum {got} vs {want} (bound {bound:.3g})"
    items.append(GpuItem("reduce_sum_atomic f32", f"n={n}", rs.reduce_sum_atomic, (n, x, total), "a.sum()",
                         lambda: x.sum(), sum_error, 4 * n, "GB/s"))
    size = 4096
    flops = 2 * size ** 3
    for name, kernel, tdt, tol in (
            ("matmul_simt f32", example("matmul_simt").matmul_simt, torch.float32, 1e-5),
            ("matmul_tc f16", example("matmul_tc").kernel_for["f16"], torch.float16, 1e-3),
            ("matmul_tc bf16", example("matmul_tc").kernel_for["bf16"], torch.bfloat16, 1e-3)):
        a, b = torch.randn(size, size, **cuda).to(tdt), torch.randn(size, size, **cuda).to(tdt)
        c = torch.empty(size, size, **cuda)

        def mm_error(a=a, b=b, c=c, tol=tol):
            want = torch.mm(a.double(), b.double())
            err = ((c.double() - want).norm() / want.norm()).item()
            return None if err < tol else f"relative error {err:.3g} >= {tol}"
        items.append(GpuItem(name, f"{size}^3", kernel, (size, size, size, a, b, c), f"torch.mm ({str(tdt)[6:]})",
                             lambda a=a, b=b: torch.mm(a, b), mm_error, flops, "TFLOP/s", repeat=20))
    return items


def gpu_rows(progress=print) -> list[Row]:
    from taskmap import gpu
    import torch
    gpu.runtime.driver()                       # the primary context, shared with torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    rows = []
    for item in _gpu_items(torch):
        go = gpu.compile(item.compiled_kernel).prepared(*item.args)
        go()
        torch.cuda.synchronize()
        problem = item.check() or ""
        ours = gpu.time_kernel(lambda s: go(), repeat=item.repeat)["median_us"]
        theirs = gpu.time_kernel(lambda s: item.run_baseline(), repeat=item.repeat)["median_us"]
        scale = 1e3 if item.unit == "GB/s" else 1e6            # bytes/us -> GB/s, flops/us -> TFLOP/s
        row = Row(item.kernel, item.size, ours, item.baseline, theirs, f"{item.work / ours / scale:.1f} {item.unit}",
                  problem)
        progress(f"{row.kernel} {row.size}: {ours:.1f} us, {item.baseline} {theirs:.1f} us"
                 + (f"; WRONG RESULT: {problem}" if problem else ""))
        rows.append(row)
    return rows


def gpu_header() -> list[str]:
    from taskmap import gpu
    import torch
    version = gpu.runtime.driver().get_driver_version()
    limits = gpu.runtime.device_limits()
    return [f"GPU: {limits['name']} ({limits['arch']}), "
            f"CUDA driver {version // 1000}.{version % 1000 // 10}, torch {torch.__version__}"]


# ---------------------------------------------------------------- interpreter suite

def interp_rows(progress=print) -> list[Row]:
    from taskmap import refimpl
    rows = []
    for name in MODULES:                   # each example module's main kernel has the module's name
        mod = example(name)
        kernel = getattr(mod, name)
        sizes = mod.SIZES[-1]
        args = mod.make_args(np.random.default_rng(0), **sizes)
        expected = mod.reference(*args)
        start = time.perf_counter()
        refimpl.interpret(kernel, *args)
        ours = (time.perf_counter() - start) * 1e6
        by_name = {p.name: a for p, a in zip(kernel.params, args)}
        wrong = [name for name, want in expected.items() if not np.array_equal(by_name[name], want)]
        problem = f"output {', '.join(wrong)} differs from reference()" if wrong else ""
        theirs = _median_us(lambda: mod.reference(*args))
        size = "x".join(f"{k}={v}" for k, v in sizes.items())
        row = Row(name, size, ours, "NumPy reference()", theirs, f"{_elements(expected) / ours * 1e6:.3g} elem/s",
                  problem)
        progress(f"{name} {size}: interp {ours / 1e3:.1f} ms, NumPy {theirs:.1f} us")
        rows.append(row)
    return rows


def _elements(outputs: dict) -> int:
    return sum(np.size(v) for v in outputs.values())


def _median_us(fn, repeat: int = 20) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e6)
    return float(np.median(times))


# ---------------------------------------------------------------- reports

HEADERS = ("kernel", "size", "ours (us)", "baseline", "baseline (us)", "ours", "ratio", "result")


def table(rows: list[Row], fmt: str = "simple") -> str:
    body = [(r.kernel, r.size, f"{r.ours_us:.1f}", r.baseline, f"{r.baseline_us:.1f}", r.throughput,
             f"{r.ratio:.3g}", f"WRONG: {r.problem}" if r.problem else "checked") for r in rows]
    return tabulate(body, headers=HEADERS, tablefmt=fmt, disable_numparse=True)


def markdown(rows: list[Row], suite: str, header: list[str]) -> str:
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"Measured {when} with `taskmap bench --suite {suite}` (Python {platform.python_version()}).",
             *header, "",
             "ratio = baseline time / our time (above 1: faster than the baseline). Times are medians.", "",
             table(rows, "github"), ""]
    return "\n".join(lines)


def plot(rows: list[Row], path: str, title: str) -> str | None:
    """Bar chart of the ratios; returns why not when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib); no plot written"
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.5))
    labels = [f"{r.kernel} {r.size}" for r in rows]
    ax.barh(labels, [r.ratio for r in rows])
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xlabel("baseline time / our time (>1: faster)")
    ax.set_title(title)
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


SUITES = ("kernels", "ops", "models", "all", "interp")
GPU_SUITES = ("kernels", "ops", "models")


def _gpu_suite_rows(suite: str, precision: str | None = None) -> list[Row]:
    if suite == "ops":
        from .bench_ops import ops_rows
        return ops_rows()
    if suite == "models":
        from .bench_models import models_rows
        return models_rows(precision=precision)
    return gpu_rows()


def main(suite: str, markdown_file: str | None, plot_file: str | None, precision: str | None = None) -> int:
    """`all` runs kernels, ops and models in one run; a part that cannot run here (models
    before `taskmap.compile` has a cuda backend) is left out with its reason, never estimated.
    `precision` ("f16", "bf16"): the models suite computes in it, ours and torch's alike."""
    if plot_file and importlib.util.find_spec("matplotlib") is None:     # said before minutes of measuring
        print("taskmap bench: --plot needs matplotlib, which is not installed (pip install matplotlib); "
              "run without --plot, or install it", file=sys.stderr)
        return 2
    if suite == "interp":
        rows, header = interp_rows(), [f"CPU: {platform.processor() or platform.machine()}"]
    else:
        reason = cuda_unavailable()
        if reason:
            print(f"taskmap bench: the {suite} suite needs a CUDA GPU ({reason}); "
                  "`taskmap bench --suite interp` times the interpreter on the CPU", file=sys.stderr)
            return 1
        from .bench_models import unavailable
        parts = GPU_SUITES if suite == "all" else (suite,)
        models_reason = unavailable() if "models" in parts else None
        if models_reason:
            print(f"taskmap bench: models suite left out: {models_reason}", file=sys.stderr)
            parts = tuple(p for p in parts if p != "models")
            if not parts:
                return 1
        rows, header = [], gpu_header()
        for part in parts:
            rows += _gpu_suite_rows(part, precision)
        if models_reason:
            header.append(f"models suite left out: {models_reason}")
    print()
    print(table(rows))
    if markdown_file:
        with open(markdown_file, "w", encoding="utf-8") as f:
            f.write(markdown(rows, suite, header))
        print(f"\nmarkdown written to {markdown_file}")
    if plot_file:
        problem = plot(rows, plot_file, f"taskmap bench --suite {suite}")
        if problem:
            print(f"taskmap bench: {problem}", file=sys.stderr)
            return 1
        print(f"plot written to {plot_file}")
    wrong = [r for r in rows if r.problem]
    for r in wrong:
        print(f"taskmap bench: {r.kernel} {r.size}: wrong result: {r.problem}", file=sys.stderr)
    return 1 if wrong else 0
