"""Scalar data types of the kernel language (SPEC.md §2 "Data types").

Each dtype knows its NumPy storage type, its CUDA C spelling and its byte size.
bfloat16 has no NumPy type: it is stored as its uint16 bit pattern (`storage`) and
computed in float32; `round_to`/`half_bits` give the one rounding of a Python number to a
type that every backend and the verifier follow (bf16: once, never through f32 nearest).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DType:
    name: str
    kind: str        # "bool" | "int" | "uint" | "float"
    bits: int
    short: str       # DSL spelling: i32, f16, ...
    ctype: str       # CUDA C spelling

    @property
    def nbytes(self) -> int:
        return max(1, self.bits // 8)

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def is_integer(self) -> bool:
        return self.kind in ("int", "uint")

    @property
    def is_signed(self) -> bool:
        return self.kind in ("int", "float")

    @property
    def storage(self) -> np.dtype:
        """NumPy dtype that holds values of this type in memory (bf16 as raw uint16 bits)."""
        return np.dtype("uint16") if self is bfloat16 else np.dtype(self.name)

    @property
    def compute(self) -> np.dtype:
        """NumPy dtype arithmetic is carried out in before rounding back (SPEC.md §2.3)."""
        if self in (float16, bfloat16):
            return np.dtype("float32")
        return self.storage

    @property
    def min(self) -> int | float:
        """The least value of the type: -2^(bits-1) for signed integers, 0 for unsigned ones and
        bool (False), -inf for floats."""
        if self.is_float:
            return -math.inf
        return -(1 << (self.bits - 1)) if self.kind == "int" else 0

    @property
    def max(self) -> int | float:
        """The greatest value: 2^(bits-1) - 1, 2^bits - 1, 1 (True) for bool, inf for floats."""
        if self.is_float:
            return math.inf
        return 1 if self is boolean else (1 << (self.bits - (self.kind == "int"))) - 1

    def accepts(self, value) -> bool:
        """Whether a Python/NumPy scalar argument is a value of this type (§3.4): bools for bool,
        integers in [min, max] for integer types, for floats any real number (not a bool) that
        does not overflow to infinity when rounded to the type (inf and NaN themselves do)."""
        if self.kind == "bool":
            return isinstance(value, (bool, np.bool_))
        if isinstance(value, (bool, np.bool_)):
            return False
        if self.is_integer:
            return isinstance(value, (int, np.integer)) and self.min <= int(value) <= self.max
        if not isinstance(value, (int, float, np.integer, np.floating)):
            return False
        try:
            x = float(value)
        except OverflowError:                        # an int beyond float64
            return False
        return not math.isfinite(x) or math.isfinite(round_to(x, self))

    def __repr__(self) -> str:
        return self.short

    # Tensor-parameter annotation: `f32[m, n]` (SPEC.md §6.1).
    def __getitem__(self, shape):
        from .lang import TensorType
        return TensorType(self, shape if isinstance(shape, tuple) else (shape,))


boolean = DType("bool", "bool", 8, "bool", "bool")
int8 = DType("int8", "int", 8, "i8", "int8_t")
int16 = DType("int16", "int", 16, "i16", "int16_t")
int32 = DType("int32", "int", 32, "i32", "int32_t")
int64 = DType("int64", "int", 64, "i64", "int64_t")
uint8 = DType("uint8", "uint", 8, "u8", "uint8_t")
uint32 = DType("uint32", "uint", 32, "u32", "uint32_t")
float16 = DType("float16", "float", 16, "f16", "half")
bfloat16 = DType("bfloat16", "float", 16, "bf16", "__nv_bfloat16")
float32 = DType("float32", "float", 32, "f32", "float")
float64 = DType("float64", "float", 64, "f64", "double")

ALL = (boolean, int8, int16, int32, int64, uint8, uint32, float16, bfloat16, float32, float64)
BY_NAME = {d.name: d for d in ALL} | {d.short: d for d in ALL}


def by_name(name: str) -> DType:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; expected one of {', '.join(d.short for d in ALL)}") from None


def from_numpy(dt) -> DType:
    dt = np.dtype(dt)
    if dt == np.dtype("uint16"):
        raise ValueError("uint16 arrays are ambiguous: pass bfloat16 data with dtype=bf16 explicitly")
    return by_name("bool" if dt == np.bool_ else dt.name)


# Promotion for binary arithmetic (SPEC.md §2.2): floats beat integers, wider beats
# narrower, bf16 and f16 together give f32, signed and unsigned of one width give unsigned.
def promote(a: DType, b: DType) -> DType:
    if a == b:
        return a
    if a.is_float or b.is_float:
        if not (a.is_float and b.is_float):
            return a if a.is_float else b
        if {a, b} == {float16, bfloat16}:
            return float32
        return a if a.bits >= b.bits else b
    if a is boolean:
        return b
    if b is boolean:
        return a
    if a.bits != b.bits:
        return a if a.bits > b.bits else b
    return a if a.kind == "uint" else b


def bf16_round(x: np.ndarray) -> np.ndarray:
    """Round float32 values to the nearest bfloat16 (ties to even), returned as float32."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    rounded = np.where(nan, np.uint32(0x7FC00000), rounded)
    return rounded.astype(np.uint32).view(np.float32)


def to_bf16_bits(x: np.ndarray) -> np.ndarray:
    return (bf16_round(x).view(np.uint32) >> np.uint32(16)).astype(np.uint16)


def from_bf16_bits(bits: np.ndarray) -> np.ndarray:
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)


def round_to_odd_f32(x64) -> np.ndarray:
    """f64 -> f32 rounding to odd: a later round-to-nearest to <= 22 bits is then correct."""
    x64 = np.asarray(x64, np.float64)
    y = x64.astype(np.float32)
    back = y.astype(np.float64)
    inexact = (back != x64) & np.isfinite(x64)
    even = (y.view(np.uint32) & np.uint32(1)) == 0
    toward = np.where(back < x64, np.float32(np.inf), np.float32(-np.inf))
    return np.where(inexact & even, np.nextafter(y, toward), y)


def round_to(value: float, t: DType) -> float:
    """A Python number rounded once to float type t (the value a constant of type t holds, §2.4)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if t is bfloat16:
            return float(bf16_round(round_to_odd_f32(value)))
        return float(t.storage.type(value))


def half_bits(value: float, t: DType) -> int:
    """The f16/bf16 bit pattern of a Python number rounded once to t."""
    with np.errstate(over="ignore", invalid="ignore"):
        if t is float16:
            return int(np.float16(value).view(np.uint16))
        return int(to_bf16_bits(round_to_odd_f32(value)))
