"""TMA tensor maps (SPEC.md §5.11) encoded on the host with the driver's cuTensorMapEncodeTiled,
through ctypes (pycuda has no binding for it): a 128-byte descriptor of one global tensor
(address, extents, row pitches) and the box a TMA copy moves, passed to the kernel by value as
a `__grid_constant__` parameter."""
from __future__ import annotations

import ctypes
import functools

from taskmap.spec import dtypes as dt
from taskmap.spec import ir

MAP_BYTES = 128
MAP_ALIGN = 64                   # the driver writes the map at a 64-byte aligned address

# CUtensorMapDataType: a TMA copy only moves bytes, so each dtype is encoded by its width (signed
# and float names where one exists, for readability in a debugger)
_DATA_TYPE = {dt.boolean: 0, dt.int8: 0, dt.uint8: 0, dt.int16: 1, dt.float16: 6, dt.bfloat16: 9, dt.int32: 3,
              dt.uint32: 2, dt.float32: 7, dt.int64: 5, dt.float64: 8}
_INTERLEAVE_NONE, _L2_PROMOTION_128B, _OOB_FILL_ZERO = 0, 2, 0
SWIZZLE = {0: 0, 32: 1, 64: 2, 128: 3}        # CUtensorMapSwizzle by swizzle mode in bytes (§5.11)


class TensorMapError(RuntimeError):
    """The driver refused a tensor map (the verifier and the launch checks should have said why first)."""


@functools.cache
def _driver_api():
    lib = ctypes.CDLL("libcuda.so.1")
    u32p, u64p = ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint64)
    fn = lib.cuTensorMapEncodeTiled
    fn.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_void_p, u64p, u64p, u32p, u32p,
                   ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int)
    fn.restype = ctypes.c_int
    lib.cuGetErrorString.argtypes = (ctypes.c_int, ctypes.POINTER(ctypes.c_char_p))
    return lib


def encode(tensor: ir.Buffer, shape: tuple[int, ...], address: int, box: tuple[int, ...], swizzle: int = 0) -> bytes:
    """The tensor map of a row-major global tensor of `shape` at device `address`, for boxes of
    extents `box` (both outermost first, as the DSL indexes; the driver takes them innermost first)
    written to or read from shared memory swizzled in mode `swizzle` (bytes; 0: none)."""
    rank, nbytes = len(shape), tensor.dtype.nbytes
    dims = (ctypes.c_uint64 * rank)(*reversed(shape))
    pitches, acc = [], nbytes
    for n in reversed(shape[1:]):
        acc *= n
        pitches.append(acc)
    strides = (ctypes.c_uint64 * max(1, rank - 1))(*pitches)
    boxes = (ctypes.c_uint32 * rank)(*reversed(box))
    ones = (ctypes.c_uint32 * rank)(*([1] * rank))
    raw = ctypes.create_string_buffer(MAP_BYTES + MAP_ALIGN)
    at = (ctypes.addressof(raw) + MAP_ALIGN - 1) // MAP_ALIGN * MAP_ALIGN
    lib = _driver_api()
    result = lib.cuTensorMapEncodeTiled(at, _DATA_TYPE[tensor.dtype], rank, address, dims, strides, boxes, ones,
                                        _INTERLEAVE_NONE, SWIZZLE[swizzle], _L2_PROMOTION_128B, _OOB_FILL_ZERO)
    if result != 0:
        msg = ctypes.c_char_p()
        lib.cuGetErrorString(result, ctypes.byref(msg))
        raise TensorMapError(f"cuTensorMapEncodeTiled refused the map of {tensor.name} (shape {shape}, box {box}, "
                             f"swizzle {swizzle}, "
                             f"address {address:#x}): CUDA error {result} ({(msg.value or b'?').decode()})")
    return ctypes.string_at(at, MAP_BYTES)
