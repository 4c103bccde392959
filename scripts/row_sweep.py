"""Row norms (softmax, layer norm, RMS norm: the ops suite's rows) at several points of their
schedule space beside torch in one run, and the device copy bandwidth they are held to.

    source scripts/device_env.sh && python scripts/row_sweep.py [OP ...]

Each row is `taskmap bench --suite ops`'s measurement (conformance.bench_ops.measure: our
result checked against torch's, then both CUDA-event timed) at the point named.
"""
import sys
from dataclasses import replace

from taskmap.conformance.bench_ops import bench_items, measure, setup_gpu
from taskmap.refimpl.schedules.rows import RowPoint

POINTS = {"default": RowPoint(), "streamed": RowPoint(cache=0), "block 256": RowPoint(block_threads=256),
          "block 1024 streamed": RowPoint(block_threads=1024, cache=0)}

torch, gpu = setup_gpu()
ops = sys.argv[1:] or ["softmax", "layer_norm", "rms_norm"]
src = torch.empty(1 << 28, dtype=torch.float32, device="cuda")
dst = torch.empty_like(src)
copy = gpu.time_kernel(lambda s: dst.copy_(src), repeat=20)["median_us"]
print(f"device copy (torch copy_, 1 GiB): {2 * src.numel() * 4 / copy / 1e3:.0f} GB/s", flush=True)
for item in (i for i in bench_items() if i.op in ops):
    for name, point in POINTS.items():
        row, *_ = measure(replace(item, point=point), torch, gpu)
        print(f"{item.label:14s} {'x'.join(map(str, item.shapes[0])):11s} {name:20s} {row.kernel.split('[')[1][:-1]:40s} "
              f"ours {row.ours_us:7.1f} us  {item.baseline} {row.baseline_us:7.1f} us  ratio {row.ratio:5.2f}  "
              f"{row.throughput}{'  WRONG: ' + row.problem if row.problem else ''}", flush=True)
