"""`ConvShape`: a conv2d's sizes and window attributes, as its implicit-GEMM kernels take them."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .injective import MAX_INDEX


@dataclass(frozen=True)
class ConvShape:
    """NCHW input, OIHW weights. One group's GEMM: M = N·OH·OW output positions, N = O/group
    output channels, K = C/group·KH·KW window elements."""
    batch: int
    channels: int
    height: int
    width: int
    out_channels: int
    kernel: tuple[int, int]
    out_size: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int] = (0, 0)                 # top, left (bottom and right only shape the output)
    dilations: tuple[int, int] = (1, 1)
    groups: int = 1

    @property
    def group_channels(self) -> int:
        return self.channels // self.groups

    @property
    def gemm(self) -> tuple[int, int, int]:
        """M, N, K of one group's GEMM."""
        return (self.batch * self.out_size[0] * self.out_size[1], self.out_channels // self.groups,
                self.kernel[0] * self.kernel[1] * self.group_channels)


def conv_shape(types, attrs, y_shape) -> ConvShape:
    """The ConvShape of a conv2d at these input types and attributes (y_shape: its output's)."""
    (N, C, H, W), (O, _, KH, KW) = types[0].shape, types[1].shape
    return ConvShape(N, C, H, W, O, (KH, KW), tuple(y_shape[2:]), tuple(attrs["strides"]), tuple(attrs["pads"][:2]),
                     tuple(attrs["dilations"]), attrs["group"])


def check_index_space(s: ConvShape, splits: int = 1) -> None:
    """The kernels index x, w and the (split-stacked) output with i32 arithmetic: each must have
    fewer than 2^31 elements."""
    sizes = {"x": s.batch * s.channels * s.height * s.width, "w": s.out_channels * s.gemm[2],
             "y": splits * s.batch * s.out_channels * math.prod(s.out_size)}
    for name, n in sizes.items():
        if n > MAX_INDEX:
            raise ValueError(f"conv2d: {name} has {n} elements, beyond the i32 index space of the implicit GEMM")
