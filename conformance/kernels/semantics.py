"""Small kernels that each pin down one rule of SPEC.md §2 / §5 — rounding, conversion,
integer division, shifts, intrinsics, short-circuit, shuffles, atomics, layouts — so both
backends are held to the NumPy expectation in conformance/cases/semantics.yaml.

One element per thread; `make_*` factories take the element type.
"""
from __future__ import annotations

from taskmap.lang import (atomic_add, atomic_max, blockIdx, cast, exp, f16, f32, fma, i32, kernel, ldmatrix, log,
                       mma_sync, register_tensor, shared_tensor, shfl_down, shfl_idx, shfl_up, shfl_xor, sin,
                       spatial, sqrt, swizzle, syncthreads, tanh, threadIdx, u32)

BLOCK = 64


def _grid(n):
    return (n + BLOCK - 1) // BLOCK


def make_divmod(dtype=i32):
    """§2.3: `//` truncates toward zero, `%` takes the dividend's sign (C, not Python)."""
    @kernel(grid=_grid, block=BLOCK, name=f"divmod_{dtype.short}")
    def divmod_(n: i32, a: dtype[n], b: dtype[n], q: dtype[n], r: dtype[n]):
        i = blockIdx.x * BLOCK + threadIdx.x
        if i < n:
            q[i] = a[i] // b[i]
            r[i] = a[i] % b[i]
    return divmod_


def make_shift(dtype=i32):
    """§2.3: `>>` is arithmetic on signed types, logical on unsigned; `<<` wraps."""
    @kernel(grid=_grid, block=BLOCK, name=f"shift_{dtype.short}")
    def shift(n: i32, s: i32, a: dtype[n], left: dtype[n], right: dtype[n]):
        i = blockIdx.x * BLOCK + threadIdx.x
        if i < n:
            left[i] = a[i] << s
            right[i] = a[i] >> s
    return shift


def make_convert(src=f32, dst=i32):
    """§2.4: float -> integer truncates and saturates (NaN -> 0); float -> float rounds to
    nearest even; integer -> integer keeps the low bits."""
    @kernel(grid=_grid, block=BLOCK, name=f"convert_{src.short}_{dst.short}")
    def convert(n: i32, a: src[n], b: dst[n]):
        i = blockIdx.x * BLOCK + threadIdx.x
        if i < n:
            b[i] = cast(a[i], dst)
    return convert


def make_mul_add(dtype=f16):
    """§2.3: `a * b + c` rounds after the multiply and after the add (no FMA contraction,
    no wider intermediate for f16/bf16); `fma` rounds once."""
    @kernel(grid=_grid, block=BLOCK, name=f"mul_add_{dtype.short}")
    def mul_add(n: i32, a: dtype[n], b: dtype[n], c: dtype[n], separate: dtype[n], fused: dtype[n]):
        i = blockIdx.x * BLOCK + threadIdx.x
        if i < n:
            separate[i] = a[i] * b[i] + c[i]
            fused[i] = fma(a[i], b[i], c[i])
    return mul_add


@kernel(grid=_grid, block=BLOCK)
def intrinsics(n: i32, a: f32[n], e: f32[n], lg: f32[n], th: f32[n], sn: f32[n], sq: f32[n]):
    """§4.6 / §2.5: transcendentals within 4 ulp, sqrt correctly rounded."""
    i = blockIdx.x * BLOCK + threadIdx.x
    if i < n:
        x = a[i]
        e[i] = exp(x)
        lg[i] = log(x)
        th[i] = tanh(x)
        sn[i] = sin(x)
        sq[i] = sqrt(x)


@kernel(grid=1, block=BLOCK)
def short_circuit(n: i32, a: f32[n], b: f32[BLOCK]):
    """§2.3: `i < n and a[i] > 0` never reads a[n...]: the block is wider than `a`."""
    i = threadIdx.x
    b[i] = 0.0
    if i < n and a[i] > 0.0:
        b[i] = a[i]
    b[i] = b[i] + (a[i] if i < n else -1.0)


@kernel(grid=1, block=32)
def shuffles(a: f32[32], x: f32[32], down: f32[32], up: f32[32], idx: f32[32]):
    """§5.6: source lanes per segment of `width`; out-of-segment sources read their own value."""
    lane = threadIdx.x
    v = a[lane]
    x[lane] = shfl_xor(v, 5, width=16)
    down[lane] = shfl_down(v, 3, width=8)
    up[lane] = shfl_up(v, 2, width=32)
    idx[lane] = shfl_idx(v, 7, width=4)


@kernel(grid=lambda n: (n + 127) // 128, block=128)
def histogram(n: i32, a: i32[n], counts: i32[8], peak: i32[1]):
    """§5.8: integer atomics are exact whatever their order."""
    i = blockIdx.x * 128 + threadIdx.x
    if i < n:
        atomic_add(counts[a[i] % 8], 1)
        atomic_max(peak[0], a[i])


@kernel(grid=1, block=256)
def swizzled_transpose(a: f32[32, 32], b: f32[32, 32]):
    """§3.3: a swizzled shared layout is invisible to the program — only the offsets move."""
    tile = shared_tensor(f32, [32, 32], layout=swizzle(3, 2, 3))
    for i, j in spatial(8, 32).on(threadIdx.x):
        for k in range(4):
            tile[i * 4 + k, j] = a[i * 4 + k, j]
    syncthreads()
    for i, j in spatial(8, 32).on(threadIdx.x):
        for k in range(4):
            b[i * 4 + k, j] = tile[j, i * 4 + k]


@kernel(grid=_grid, block=BLOCK)
def unsigned_wrap(n: i32, a: u32[n], b: u32[n], total: u32[n], diff: u32[n]):
    """§2.3: unsigned arithmetic wraps modulo 2^32."""
    i = blockIdx.x * BLOCK + threadIdx.x
    if i < n:
        total[i] = a[i] + b[i]
        diff[i] = a[i] - b[i]


def make_ldmatrix_x4(trans: bool = False):
    """§5.7 ldmatrix: four 8x8 f16 matrices stacked in a [32, 8] tile; lane l points at
    tile row l (row l % 8 of matrix l // 8) and receives, in elements 2i, 2i+1, matrix i's
    row l // 4, columns 2(l % 4) + {0, 1} (transposed: that column, those rows)."""
    @kernel(grid=1, block=32, name=f"ldmatrix_x4{'_trans' if trans else ''}")
    def ldmatrix_x4(a: f16[32, 8], out: f16[32, 8]):
        tile = shared_tensor(f16, [32, 8])
        lane = threadIdx.x
        for j in range(8):
            tile[lane, j] = a[lane, j]
        syncthreads()
        frag = register_tensor(f16, [8])
        ldmatrix(frag, tile[lane, 0], num=4, trans=trans)
        for j in range(8, unroll=True):
            out[lane, j] = frag[j]
    return ldmatrix_x4


def make_mma_m16n8k16(dtype=f16):
    """§5.7 mma_sync m16n8k16: fragments loaded straight from global memory by the
    documented per-lane layouts, one warp computing C = A @ B in f32."""
    @kernel(grid=1, block=32, name=f"mma_m16n8k16_{dtype.short}")
    def mma_m16n8k16(a: dtype[16, 16], b: dtype[16, 8], c: f32[16, 8]):
        lane = threadIdx.x
        g = lane // 4
        q = lane % 4
        fa = register_tensor(dtype, [8])
        fb = register_tensor(dtype, [4])
        acc = register_tensor(f32, [4])
        for i in range(8, unroll=True):
            fa[i] = a[g + 8 * (i // 2 % 2), 2 * q + i % 2 + 8 * (i // 4)]
        for i in range(4, unroll=True):
            fb[i] = b[2 * q + i % 2 + 8 * (i // 2), g]
            acc[i] = 0.0
        mma_sync(fa, fb, acc)
        for i in range(4, unroll=True):
            c[g + 8 * (i // 2), 2 * q + i % 2] = acc[i]
    return mma_m16n8k16


@kernel(grid=1, block=32)
def mma_m16n8k8_tf32(a: f32[16, 8], b: f32[8, 8], c: f32[16, 8]):
    """§5.7 mma_sync m16n8k8 on f32 operands (tf32), by the documented fragment layouts."""
    lane = threadIdx.x
    g = lane // 4
    q = lane % 4
    fa = register_tensor(f32, [4])
    fb = register_tensor(f32, [2])
    acc = register_tensor(f32, [4])
    for i in range(4, unroll=True):
        fa[i] = a[g + 8 * (i % 2), q + 4 * (i // 2)]
        acc[i] = 0.0
    for i in range(2, unroll=True):
        fb[i] = b[q + 4 * i, g]
    mma_sync(fa, fb, acc)
    for i in range(4, unroll=True):
        c[g + 8 * (i // 2), 2 * q + i % 2] = acc[i]
