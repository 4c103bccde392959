"""Sweep matmul_tc tile configurations at 4096³ f16 against torch.mm (cuBLAS) in one run."""
import sys
import torch
from taskmap import gpu
from taskmap.examples.matmul_tc import make_matmul_tc
from taskmap.lang import f16

gpu.runtime.driver()
size = 4096
a = torch.randn(size, size, device="cuda").half()
b = torch.randn(size, size, device="cuda").half()
c = torch.empty(size, size, device="cuda")
want = torch.mm(a.double(), b.double())
theirs = gpu.time_kernel(lambda s: torch.mm(a, b), repeat=30)["median_us"]
print(f"torch.mm f16: {theirs:.1f} us", flush=True)
configs = [
    (64, 64, 32, (2, 2), 3), (128, 128, 32, (2, 2), 3), (128, 128, 32, (2, 4), 3),
    (128, 128, 32, (2, 2), 4), (128, 256, 32, (2, 4), 3), (256, 128, 32, (4, 2), 3),
    (128, 128, 64, (2, 2), 3), (128, 64, 32, (2, 2), 4),
]
for bm, bn, bk, warps, stages in configs:
    try:
        k = make_matmul_tc(f16, bm, bn, bk, warps, stages)
        go = gpu.compile(k).prepared(size, size, size, a, b, c)
        c.zero_()
        go(); torch.cuda.synchronize()
        err = ((c.double() - want).norm() / want.norm()).item()
        ours = gpu.time_kernel(lambda s: go(), repeat=30)["median_us"]
        print(f"{bm}x{bn}x{bk} warps={warps} stages={stages}: {ours:.1f} us ratio {theirs / ours:.3f} "
              f"{2 * size**3 / ours / 1e6:.1f} TFLOP/s relerr {err:.2e}", flush=True)
    except Exception as e:
        print(f"{bm}x{bn}x{bk} warps={warps} stages={stages}: FAILED {type(e).__name__}: {str(e)[:300]}", flush=True)
