"""gpu/tensor_map.py hands cuTensorMapEncodeTiled the PTX ISA's order (innermost dimension first:
extents, byte strides of the outer dimensions, box) and refuses a map the driver rejects with
the tensor, shape and box in the message. A stand-in for libcuda records the call, so this runs
without a GPU; the GPU tests (tests/test_gpu_mbarrier.py) run the maps for real."""
from __future__ import annotations

import ctypes

import pytest

from taskmap.gpu import tensor_map
from taskmap.spec import dtypes as dt
from taskmap.spec import ir


class _FakeDriver:
    def __init__(self, result: int = 0):
        self.result, self.calls = result, []

    def cuTensorMapEncodeTiled(self, at, dtype, rank, address, dims, strides, box, element_strides, *modes):
        self.calls.append(dict(aligned=at % 64 == 0, dtype=dtype, rank=rank, address=address,
                               dims=list(dims[:rank]), strides=list(strides[:max(1, rank - 1)]),
                               box=list(box[:rank]), element_strides=list(element_strides[:rank]), modes=modes))
        ctypes.memmove(at, bytes(range(128)), 128)
        return self.result

    def cuGetErrorString(self, result, out):
        out._obj.value = b"CUDA_ERROR_INVALID_VALUE"
        return 0


def _tensor(dtype, rank):
    return ir.Buffer("a", dtype, tuple(ir.const(1) for _ in range(rank)), "global")


def test_dimensions_go_innermost_first(monkeypatch):
    fake = _FakeDriver()
    monkeypatch.setattr(tensor_map, "_driver_api", lambda: fake)
    out = tensor_map.encode(_tensor(dt.float16, 3), (5, 70, 40), 0x7000, (1, 32, 16))
    assert out == bytes(range(128))
    call = fake.calls[0]
    assert call["aligned"] and call["rank"] == 3 and call["address"] == 0x7000 and call["dtype"] == 6
    assert call["dims"] == [40, 70, 5]
    assert call["strides"] == [40 * 2, 70 * 40 * 2]        # bytes between rows, between planes
    assert call["box"] == [16, 32, 1] and call["element_strides"] == [1, 1, 1]
    assert call["modes"] == (0, 0, 2, 0)                     # no interleave, no swizzle, L2 128B, zero fill


@pytest.mark.parametrize("mode, code", [(0, 0), (32, 1), (64, 2), (128, 3)])
def test_the_swizzle_mode_is_the_drivers_enum(monkeypatch, mode, code):
    fake = _FakeDriver()
    monkeypatch.setattr(tensor_map, "_driver_api", lambda: fake)
    tensor_map.encode(_tensor(dt.float16, 2), (64, 64), 0x8000, (64, mode // 2 or 8), swizzle=mode)
    assert fake.calls[0]["modes"] == (0, code, 2, 0)      # CU_TENSOR_MAP_SWIZZLE_NONE, _32B, _64B, _128B


def test_a_refused_map_names_tensor_shape_and_box(monkeypatch):
    monkeypatch.setattr(tensor_map, "_driver_api", lambda: _FakeDriver(result=1))
    with pytest.raises(tensor_map.TensorMapError, match=r"map of a \(shape \(8, 8\), box \(8, 8\), swizzle 0.*error 1"):
        tensor_map.encode(_tensor(dt.float32, 2), (8, 8), 0x1000, (8, 8))
