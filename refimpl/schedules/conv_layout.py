"""The channels-last copies the tensor-core implicit GEMM reads: x NCHW -> NHWC, w OIHW -> OHWI.

`channels_last_kernel(lead, channels, pixels, dtype, groups, padded)`: dst[a, p, ch] =
src[a, channel of ch, p] for src viewed [lead, channels, pixels] (pixels = H·W or KH·KW),
each group's channels padded with zeros to `padded` (dst channel g · padded + c is src
channel g · (channels / groups) + c where c < channels / groups; 0 past it).

A transpose through a shared tile as in examples/transpose.py: each 256-thread block moves a
32 (channels) × 32 (pixels) tile, reading along pixels and writing along channels, so both
sides are coalesced; the tile row is padded by one element so the transposed reads spread
over the banks. `blockIdx.z` walks the leading axis (images, or output channels of w).
"""
from __future__ import annotations

from taskmap.lang import blockIdx, kernel, repeat, shared_tensor, spatial, syncthreads, threadIdx

TILE = 32


def channels_last_kernel(lead: int, channels: int, pixels: int, dtype, groups: int = 1, padded: int | None = None):
    per_group = channels // groups
    padded = per_group if padded is None else padded
    out = groups * padded
    moves = repeat(4, 1) * spatial(8, TILE)
    name = f"conv2d_channels_last_{dtype.short}_{lead}x{channels}x{pixels}" + \
        (f"_g{groups}" if groups > 1 else "") + (f"_pad{padded}" if padded != per_group else "")

    @kernel(grid=((pixels + TILE - 1) // TILE, (out + TILE - 1) // TILE, lead), block=256, name=name)
    def channels_last(src: dtype[lead, channels, pixels], dst: dtype[lead, pixels, out]):
        tile = shared_tensor(dtype, [TILE, TILE + 1])
        a = blockIdx.z
        for i, j in moves.on(threadIdx.x):              # i: a channel of dst, j: a pixel
            ch = blockIdx.y * TILE + i
            p = blockIdx.x * TILE + j
            c = ch % padded
            if ch < out and p < pixels:
                tile[i, j] = src[a, ch // padded * per_group + c, p] if c < per_group else 0.0
        syncthreads()
        for i, j in moves.on(threadIdx.x):              # i: a pixel, j: a channel
            p = blockIdx.x * TILE + i
            ch = blockIdx.y * TILE + j
            if p < pixels and ch < out:
                dst[a, p, ch] = tile[j, i]
    return channels_last
