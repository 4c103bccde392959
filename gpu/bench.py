"""GPU benchmarks, each a ratio measured in one run against torch on the same device:
copy bandwidth vs `Tensor.copy_`, SIMT f32 matmul vs cuBLAS SGEMM (TF32 off), f16 tensor-core
matmuls vs cuBLAS HGEMM, and launch overhead of prepared calls and of CUDA-graph replay. Used by tests/bench/test_bench_gpu.py
and scripts/gpu_bench.py.
"""
from __future__ import annotations

from taskmap.lang import (blockIdx, f32, fma, i32, kernel, register_tensor, repeat, shared_tensor, spatial,
                       syncthreads, threadIdx)

from . import graph
from .runtime import compile, device_limits, driver
from .timing import time_batch, time_kernel

COPY_BLOCK, COPY_VEC, COPY_PER_THREAD = 256, 4, 2     # 16-byte vectors, two per thread


@kernel(grid=lambda n: (n + COPY_BLOCK * COPY_VEC * COPY_PER_THREAD - 1) // (COPY_BLOCK * COPY_VEC * COPY_PER_THREAD),
        block=COPY_BLOCK)
def copy_f32(n: i32, a: f32[n], b: f32[n]):
    """b = a; each thread moves COPY_PER_THREAD vectors of COPY_VEC elements (coalesced)."""
    for t in (repeat(COPY_PER_THREAD) * spatial(COPY_BLOCK)).on(threadIdx.x):
        base = (blockIdx.x * (COPY_BLOCK * COPY_PER_THREAD) + t) * COPY_VEC
        if base + COPY_VEC <= n:
            for v in range(COPY_VEC, unroll=True):
                b[base + v] = a[base + v]
        else:
            for v in range(COPY_VEC):
                if base + v < n:
                    b[base + v] = a[base + v]


# SIMT matmul for the benchmark: 128x128x8 block tiles, 256 threads with 8x8 micro tiles
# (2x2 blocks of 4x4, so fragment loads are 16-byte and conflict-free), shared double
# buffering with a register prefetch of the next tile, and explicit fma (SPEC §2.3 forbids
# contracting a*b+c, so a mul+add kernel would issue twice the instructions).
A_LOAD = repeat(4, 1) * spatial(32, 8)        # the 128x8 A tile: coalesced along k
B_LOAD = repeat(4, 1) * spatial(2, 128)       # the 8x128 B tile: coalesced along n
C_MAP = repeat(2, 2) * spatial(16, 16) * repeat(4, 4)


@kernel(grid=lambda M, N: (N // 128, M // 128), block=256)
def matmul_fma(M: i32, N: i32, K: i32, a: f32[M, K], b: f32[K, N], c: f32[M, N]):
    assert M % 128 == 0 and N % 128 == 0 and K % 8 == 0, "matmul_fma needs M, N % 128 == 0 and K % 8 == 0"
    sa = shared_tensor(f32, [2, 8, 132])      # k-major A, rows padded: conflict-free stores
    sb = shared_tensor(f32, [2, 8, 128])
    ra = register_tensor(f32, [4])
    rb = register_tensor(f32, [4])
    fa = register_tensor(f32, [8])
    fb = register_tensor(f32, [8])
    acc = register_tensor(f32, [8, 8])
    tid = threadIdx.x
    ty = tid // 16
    tx = tid % 16
    m0 = blockIdx.y * 128
    n0 = blockIdx.x * 128
    for i, j in repeat(8, 8).on(0):
        acc[i, j] = 0.0
    for i, k in A_LOAD.on(tid):
        sa[0, k, i] = a[m0 + i, k]
    for k, j in B_LOAD.on(tid):
        sb[0, k, j] = b[k, n0 + j]
    syncthreads()
    k_tiles = K // 8
    for t in range(k_tiles):
        if t + 1 < k_tiles:                   # prefetch tile t+1 while computing tile t
            for i, k in A_LOAD.on(tid):
                ra[i // 32] = a[m0 + i, (t + 1) * 8 + k]
            for k, j in B_LOAD.on(tid):
                rb[k // 2] = b[(t + 1) * 8 + k, n0 + j]
        for kk in range(8, unroll=True):
            for r in range(8, unroll=True):
                fa[r] = sa[t % 2, kk, r // 4 * 64 + ty * 4 + r % 4]
                fb[r] = sb[t % 2, kk, r // 4 * 64 + tx * 4 + r % 4]
            for i, j in repeat(8, 8).on(0):
                acc[i, j] = fma(fa[i], fb[j], acc[i, j])
        if t + 1 < k_tiles:                   # stage (t+1)%2 was last read before the previous barrier
            for i, k in A_LOAD.on(tid):
                sa[(t + 1) % 2, k, i] = ra[i // 32]
            for k, j in B_LOAD.on(tid):
                sb[(t + 1) % 2, k, j] = rb[k // 2]
        syncthreads()
    for i, j in C_MAP.on(tid):
        c[m0 + i, n0 + j] = acc[i // 64 * 4 + i % 4, j // 64 * 4 + j % 4]


@kernel(grid=1, block=32)
def empty(n: i32, a: f32[n]):
    if threadIdx.x == 0 and n < 0:
        a[0] = 0.0


def _torch():
    import torch
    driver()                                  # pycuda pushes the primary context torch uses
    return torch


def copy_bandwidth(n: int = 1 << 28) -> dict:
    """GB/s (bytes read + written) of copy_f32 and of torch's device-to-device copy, and a
    synchronized runner of copy_f32 (as do the other two benchmarks)."""
    torch = _torch()
    src = torch.randn(n, device="cuda")
    dst = torch.empty_like(src)
    go = compile(copy_f32).prepared(n, src, dst)
    ours = time_kernel(lambda s: go(), repeat=30)["median_us"]
    if not torch.equal(src, dst):
        raise AssertionError("copy_f32 produced a wrong copy")
    torch.cuda.synchronize()
    theirs = time_kernel(lambda s: dst.copy_(src), repeat=30)["median_us"]
    gbs = lambda us: 2 * 4 * n / us / 1e3       # noqa: E731
    return {"bytes": 8 * n, "ours_gbs": gbs(ours), "torch_gbs": gbs(theirs), "ratio": theirs / ours}, \
        _synchronized(go)


def matmul_throughput(size: int = 4096, kernel=None) -> dict:
    """TFLOP/s of a SIMT f32 matmul kernel (default matmul_fma; any kernel with the parameters
    (M, N, K, a, b, c)) and of cuBLAS SGEMM (torch.mm with TF32 disabled)."""
    torch = _torch()
    torch.backends.cuda.matmul.allow_tf32 = False
    a = torch.randn(size, size, device="cuda")
    b = torch.randn(size, size, device="cuda")
    c = torch.empty(size, size, device="cuda")
    go = compile(kernel or matmul_fma).prepared(size, size, size, a, b, c)
    ours = time_kernel(lambda s: go(), repeat=10, warmup=2)["median_us"]
    ref = torch.mm(a.double(), b.double())
    err = ((c.double() - ref).norm() / ref.norm()).item()
    if not err < 1e-5:
        raise AssertionError(f"{(kernel or matmul_fma).name}: relative error {err}")
    theirs = time_kernel(lambda s: torch.mm(a, b), repeat=10, warmup=2)["median_us"]
    tflops = lambda us: 2 * size ** 3 / us / 1e6   # noqa: E731
    return {"size": size, "ours_tflops": tflops(ours), "cublas_tflops": tflops(theirs),
            "ratio": theirs / ours, "rel_error": err}, _synchronized(go)


def hgemm_throughput(kernel, size: int = 4096, b_transposed: bool = False) -> dict:
    """TFLOP/s of an f16 tensor-core matmul kernel with the parameters (M, N, K, a, b, c), c in
    f32 and b [K, N] — or [N, K] with `b_transposed` (C = A·Bᵀ) — and of cuBLAS HGEMM on the
    same operands (torch.matmul, f16 out, b.T a transposed view where b is [N, K])."""
    torch = _torch()
    a = torch.randn(size, size, device="cuda", dtype=torch.float16)
    b = torch.randn(size, size, device="cuda", dtype=torch.float16)
    c = torch.empty(size, size, device="cuda")
    go = compile(kernel).prepared(size, size, size, a, b, c)
    ours = time_kernel(lambda s: go(), repeat=10, warmup=2)["median_us"]
    bb = b.T if b_transposed else b
    ref = a.double() @ bb.double()
    err = ((c.double() - ref).norm() / ref.norm()).item()
    if not err < 1e-5:
        raise AssertionError(f"{kernel.name}: relative error {err}")
    theirs = time_kernel(lambda s: torch.matmul(a, bb), repeat=10, warmup=2)["median_us"]
    tflops = lambda us: 2 * size ** 3 / us / 1e6   # noqa: E731
    return {"size": size, "kernel": kernel.name, "ours_tflops": tflops(ours), "cublas_tflops": tflops(theirs),
            "ratio": theirs / ours, "rel_error": err}, _synchronized(go)


def launch_overhead(count: int = 1000) -> dict:
    """Microseconds per launch of an empty kernel: prepared calls issued from Python, and the
    same launches captured once into a CUDA graph and replayed."""
    drv = driver()
    mem = drv.mem_alloc(4)
    go = compile(empty).prepared(1, mem)
    stream = drv.Stream()

    def burst(s):
        for _ in range(count):
            go(s)
    prepared = time_batch(burst, count, stream=stream)
    with graph.capture(stream) as g:
        burst(stream)
    replayed = time_batch(lambda s: g.replay(s), count, stream=stream)
    return {"launches": count, "prepared_us": prepared, "graph_us": replayed}, \
        _synchronized(lambda: g.replay(stream))


def _synchronized(run):
    """A zero-argument callable that runs `run()` and waits for the device (for host timers)."""
    drv = driver()

    def go():
        run()
        drv.Context.synchronize()
    return go


def device_name() -> str:
    return device_limits()["name"]
