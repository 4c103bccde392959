"""b = aᵀ through a shared-memory tile.

Each 256-thread block moves one 32×32 tile. Reading: `repeat(4, 1) * spatial(8, 32)` puts
the 32 lanes of a warp on 32 consecutive columns of `a` (coalesced), each thread taking rows
i, i+8, i+16, i+24. After the barrier the same mapping reads the tile transposed, so the
writes to `b` are coalesced too. The tile row is padded to 33 floats: column reads
`tile[j, i]` for 32 consecutive j then hit 32 different banks instead of one.
"""
from __future__ import annotations

import numpy as np

from taskmap.lang import blockIdx, f32, i32, kernel, repeat, shared_tensor, spatial, syncthreads, threadIdx

TILE = 32


@kernel(grid=lambda m, n: ((n + TILE - 1) // TILE, (m + TILE - 1) // TILE), block=256)
def transpose(m: i32, n: i32, a: f32[m, n], b: f32[n, m]):
    tile = shared_tensor(f32, [TILE, TILE + 1])
    for i, j in (repeat(4, 1) * spatial(8, TILE)).on(threadIdx.x):
        r = blockIdx.y * TILE + i
        c = blockIdx.x * TILE + j
        if r < m and c < n:
            tile[i, j] = a[r, c]
    syncthreads()
    for i, j in (repeat(4, 1) * spatial(8, TILE)).on(threadIdx.x):
        r = blockIdx.x * TILE + i
        c = blockIdx.y * TILE + j
        if r < n and c < m:
            b[r, c] = tile[j, i]


SIZES = ({"m": 1, "n": 1}, {"m": 32, "n": 32}, {"m": 45, "n": 70})


def make_args(rng: np.random.Generator, m: int, n: int):
    return m, n, rng.standard_normal((m, n)).astype(np.float32), np.zeros((n, m), np.float32)


def reference(m, n, a, b):
    return {"b": np.ascontiguousarray(a.T)}


if __name__ == "__main__":
    print(transpose)
