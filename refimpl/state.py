"""Execution state of one batch of blocks running in lockstep (SPEC.md §1).

Lane `l` is thread `l % T` of the batch's block `l // T`; all per-thread values are arrays
over lanes. An "active set" `sel` is None (every lane) or a sorted array of lane indices.
"""
from __future__ import annotations

import numpy as np

from .traps import KernelTrap


class State:
    def __init__(self, prog, binding, blocks: np.ndarray, spaces: list, checks: bool, trace, asyncs,
                 max_steps: int):
        self.prog = prog
        self.max_steps = max_steps                 # iterations of one loop execution (SPEC §5.2)
        self.kernel = prog.kernel.name
        self.binding = binding                     # the launch's spec.binding.Binding: grid, block, shapes
        self.grid, self.bdim = binding.grid, binding.block
        self.T = self.bdim[0] * self.bdim[1] * self.bdim[2]
        self.blocks = blocks                       # global linear ids of the batch's blocks
        self.B = len(blocks)
        self.L = self.B * self.T
        self.all_lanes = np.arange(self.L)
        self.tid = np.tile(np.arange(self.T, dtype=np.int64), self.B)
        self.lane_block = np.repeat(np.arange(self.B, dtype=np.int64), self.T)
        self.WPB = (self.T + 31) // 32
        self.lane_warp = self.lane_block * self.WPB + self.tid // 32
        self.gid = (np.repeat(blocks.astype(np.int64) * self.T, self.T) + self.tid).astype(np.int32)
        self.special = self._specials()
        self.vars: list = [None] * len(prog.var_slots)
        self.cache: list = [None] * prog.cache_slots
        self.var_init: list = [None] * len(prog.var_slots)
        self.spaces = spaces
        self.wbar = np.zeros(self.L, np.int32)        # bb, wbar: changed in place by collectives only (memory.RaceShadow)
        self.barriers = 0                             # bumped by the collectives whenever bb or wbar change
        self.gblock = np.repeat(blocks.astype(np.int32), self.T)
        self.gwarp = (self.gblock.astype(np.int64) * self.WPB + self.tid // 32).astype(np.int32)
        self.bb = self.gblock.astype(np.int64) << 32                  # block << 32 | syncthreads count (memory.Who)
        self.checks = checks
        self.trace = trace
        self.asyncs = asyncs
        self.clock = None                          # ordering through mbarriers (refimpl/mbarrier.Clock), on first use
        self.wgmma = None                          # wgmma groups in flight (refimpl/wgmma.Groups), on first use
        self.tiles: dict = {}                      # lane fields repeated for register-nest accesses (memory._me)

    def _specials(self) -> dict:
        bx, by, _ = self.bdim
        gx, gy, _ = self.grid
        b = np.repeat(self.blocks.astype(np.int64), self.T)
        i32 = np.int32
        return {
            "threadIdx.x": (self.tid % bx).astype(i32), "threadIdx.y": (self.tid // bx % by).astype(i32),
            "threadIdx.z": (self.tid // (bx * by)).astype(i32),
            "blockIdx.x": (b % gx).astype(i32), "blockIdx.y": (b // gx % gy).astype(i32),
            "blockIdx.z": (b // (gx * gy)).astype(i32),
            **{f"blockDim.{a}": i32(v) for a, v in zip("xyz", self.bdim)},
            **{f"gridDim.{a}": i32(v) for a, v in zip("xyz", self.grid)},
        }

    # ------------------------------------------------------------ coordinates
    def coords_of_gid(self, gid: int) -> tuple[tuple, tuple]:
        b, t = divmod(int(gid), self.T)
        gx, gy, _ = self.grid
        bx, by, _ = self.bdim
        return (b % gx, b // gx % gy, b // (gx * gy)), (t % bx, t // bx % by, t // (bx * by))

    def block_of(self, lane: int) -> tuple:
        return self.coords_of_gid(self.gid[lane])[0]

    def thread_of(self, lane: int) -> tuple:
        return self.coords_of_gid(self.gid[lane])[1]

    # ------------------------------------------------------------ traps
    def trap(self, phrase: str, detail: str, node, lane: int, *, thread=None, hint: str = "",
             buffer=None, index=None) -> KernelTrap:
        """The trap of SPEC §10 raised by lane `lane` at IR node `node`."""
        return KernelTrap(phrase, detail, kernel=self.kernel, loc=getattr(node, "loc", None),
                          block=self.block_of(lane), thread=thread if thread is not None else self.thread_of(lane),
                          buffer=buffer, index=index, code=self.prog.code_of(node), hint=hint)
