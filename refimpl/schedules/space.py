"""Schedule spaces: hardware-centric points (tiles, warps, stages) and the one pruning rule.

A template lists its candidate points independently of the input sizes (the Hidet paper's
argument: a good tile for one large matmul is good for most) and says what one point needs
(`Resources`); `prune` keeps the points a device can run. Sizes enter only when a point is
turned into a plan (predication handles any remainder).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Per-block limits of a device; the defaults are sm_90's (H100/H200)."""
    threads: int = 1024
    shared: int = 48 * 1024               # without opting in
    shared_opt_in: int = 227 * 1024       # cudaFuncAttributeMaxDynamicSharedMemorySize (the runtime opts in)
    registers: int = 255                  # 32-bit registers a thread can address
    registers_per_block: int = 65536      # the register file of one SM
    multiprocessors: int = 132            # H100 / H200 SXM: blocks one wave runs at one block per SM


SM90 = Limits()


@dataclass(frozen=True)
class Resources:
    threads: int
    shared_bytes: int
    registers: int                        # an estimate of 32-bit registers per thread


# Registers a thread needs besides its register tensors: indices, addresses, loop counters.
REGISTER_OVERHEAD = 40


def register_estimate(*register_words: int) -> int:
    """Registers per thread for register tensors of these sizes (in 32-bit words)."""
    return REGISTER_OVERHEAD + sum(register_words)


def fits(r: Resources, limits: Limits = SM90, opt_in: bool = True) -> bool:
    """Whether a block with resources `r` can run: threads, shared memory (opt-in limit when
    `opt_in`), registers per thread and per block (one resident block at least)."""
    shared = limits.shared_opt_in if opt_in else limits.shared
    return (1 <= r.threads <= limits.threads and r.shared_bytes <= shared and r.registers <= limits.registers
            and r.registers * r.threads <= limits.registers_per_block)


def prune(points, resources, limits: Limits = SM90, opt_in: bool = True) -> tuple:
    """The points whose `resources(point)` fit; `resources` returns None for a point that is
    not constructible (a tile the warps cannot split evenly, ...)."""
    kept = []
    for p in points:
        r = resources(p)
        if r is not None and fits(r, limits, opt_in):
            kept.append(p)
    return tuple(kept)


MAX_SPLITS = 16
MIN_SPLIT_TILES = 4          # k tiles a split keeps at least: fewer, and the partial sums' traffic dominates


def k_splits(split_k: int | None, tile, M: int, N: int, K: int, copies: int = 1, limits: Limits = SM90) -> int:
    """A point's split-K count: `split_k`, or when None the most splits (a power of two, at most
    MAX_SPLITS) that still fit one wave of blocks on the multiprocessors, as far as the k tiles
    go, for `copies` (batch, groups) M×N×K GEMMs in tiles of `tile` (bm, bn, bk). A GEMM of few
    output tiles (a linear layer at batch 1, a deep conv layer on a small image) otherwise runs
    on a few SMs; a second wave would only add partial sums' traffic."""
    if split_k is not None:
        return split_k
    bm, bn, bk = tile
    blocks, k_tiles = -(-M // bm) * -(-N // bn) * copies, -(-K // bk)
    splits = 1
    fits = lambda n: blocks * n <= limits.multiprocessors and k_tiles >= n * MIN_SPLIT_TILES
    while splits < MAX_SPLITS and fits(2 * splits):
        splits *= 2
    return splits


def product(cls, **options) -> list:
    """Every combination of the option lists as a `cls(**combination)`."""
    names = list(options)
    return [cls(**dict(zip(names, values))) for values in itertools.product(*(options[n] for n in names))]
