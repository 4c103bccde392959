"""Print the GPU benchmark ratio table (docs/PERF.md): copy bandwidth vs torch, SIMT f32
matmul (gpu.bench.matmul_fma, and the mul+add examples.matmul_simt) vs cuBLAS SGEMM
(TF32 off), f16 matmuls (examples.matmul_wgmma on TMA + wgmma, examples.matmul_tc on
mma_sync) vs cuBLAS HGEMM, launch overhead of prepared calls and CUDA-graph replay.

    python scripts/gpu_bench.py [--json out.json]
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys

from tabulate import tabulate


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the raw numbers here")
    parser.add_argument("--size", type=int, default=4096, help="matmul M = N = K")
    args = parser.parse_args(argv)
    from taskmap import gpu
    if not gpu.available():
        print(f"no GPU: {gpu.unavailable_reason()}")
        return 1
    from taskmap.gpu import bench
    copy, _ = bench.copy_bandwidth()
    mm, _ = bench.matmul_throughput(args.size)
    from taskmap.examples.matmul_simt import matmul_simt
    example, _ = bench.matmul_throughput(args.size, matmul_simt)
    from taskmap.examples.matmul_tc import matmul_tc
    from taskmap.examples.matmul_wgmma import matmul_wgmma
    wgmma, _ = bench.hgemm_throughput(matmul_wgmma, args.size, b_transposed=True)
    mma, _ = bench.hgemm_throughput(matmul_tc, args.size)
    launch, _ = bench.launch_overhead()
    rows = [
        ["copy f32, 1 GiB buffer (2 GiB moved)", f"{copy['ours_gbs']:.0f} GB/s", f"torch copy_ {copy['torch_gbs']:.0f} GB/s",
         f"{copy['ratio']:.3f}", ">= 0.9"],
        [f"SIMT f32 matmul {args.size}^3", f"{mm['ours_tflops']:.2f} TFLOP/s",
         f"cuBLAS SGEMM {mm['cublas_tflops']:.2f} TFLOP/s", f"{mm['ratio']:.3f}", ">= 0.5"],
        [f"examples.matmul_simt {args.size}^3 (mul+add)", f"{example['ours_tflops']:.2f} TFLOP/s",
         f"cuBLAS SGEMM {example['cublas_tflops']:.2f} TFLOP/s", f"{example['ratio']:.3f}", ""],
        [f"examples.matmul_wgmma f16 {args.size}^3 (TMA + wgmma, C = A·Bᵀ)", f"{wgmma['ours_tflops']:.1f} TFLOP/s",
         f"cuBLAS HGEMM {wgmma['cublas_tflops']:.1f} TFLOP/s", f"{wgmma['ratio']:.3f}", ">= 0.9"],
        [f"examples.matmul_tc f16 {args.size}^3 (mma_sync)", f"{mma['ours_tflops']:.1f} TFLOP/s",
         f"cuBLAS HGEMM {mma['cublas_tflops']:.1f} TFLOP/s", f"{mma['ratio']:.3f}", ""],
        ["launch, prepared call", f"{launch['prepared_us']:.2f} us/kernel", "", "", ""],
        ["launch, CUDA-graph replay", f"{launch['graph_us']:.3f} us/kernel", "", "", "<= 1 us"],
    ]
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"device: {bench.device_name()}   date: {when}   command: python {' '.join(sys.argv)}")
    print(tabulate(rows, headers=["benchmark", "taskmap", "baseline", "ratio", "target"], tablefmt="github"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": bench.device_name(), "date": when, "copy": copy, "matmul": mm,
                       "example_matmul": example, "hgemm_wgmma": wgmma, "hgemm_mma_sync": mma, "launch": launch}, f,
                      indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
