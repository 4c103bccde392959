"""Kernel parameter offsets read from a cubin, for packing a launch's argument buffer.

pycuda launches with one packed buffer (CU_LAUNCH_PARAM_BUFFER_POINTER) that the driver copies
to the kernel's parameter space as it is, so the buffer must follow the compiler's layout. Plain
parameters sit at their natural alignment from offset 0, which a struct format reproduces; an
over-aligned parameter does not: the compiler aligns a 64-byte aligned TMA tensor map (SPEC
§5.11) by its address in the constant bank, which on sm_90 puts the first one at offset 0x30,
not 0. The layout is in the ELF section `.nv.info.<kernel>`: one EIATTR_KPARAM_INFO attribute
per parameter (ordinal, offset, size).
"""
from __future__ import annotations

import struct

_EIFMT_NVAL, _EIFMT_BVAL, _EIFMT_HVAL, _EIFMT_SVAL = 1, 2, 3, 4
_EIATTR_KPARAM_INFO = 0x17


def _sections(image: bytes) -> dict[str, bytes]:
    """The named sections of a 64-bit little-endian ELF image."""
    if image[:4] != b"\x7fELF" or image[4] != 2:
        raise ValueError("not a 64-bit ELF image")
    shoff, = struct.unpack_from("<Q", image, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", image, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", image, shoff + k * shentsize) for k in range(shnum)]
    names_at, names_size = headers[shstrndx][4], headers[shstrndx][5]
    names = image[names_at:names_at + names_size]
    out = {}
    for name_offset, _, _, _, offset, size in headers:
        name = names[name_offset:names.index(b"\0", name_offset)].decode()
        out[name] = image[offset:offset + size]
    return out


def param_offsets(image: bytes, kernel: str) -> dict[int, int]:
    """Parameter ordinal -> byte offset in the parameter buffer, for `kernel` in cubin `image`."""
    info = _sections(image).get(f".nv.info.{kernel}")
    if info is None:
        raise ValueError(f"the cubin has no .nv.info section for kernel {kernel}")
    offsets, at = {}, 0
    while at + 2 <= len(info):
        fmt, attr = info[at], info[at + 1]
        if fmt == _EIFMT_SVAL:
            size, = struct.unpack_from("<H", info, at + 2)
            if attr == _EIATTR_KPARAM_INFO:
                _, ordinal, offset = struct.unpack_from("<IHH", info, at + 4)
                offsets[ordinal] = offset
            at += 4 + size
        elif fmt in (_EIFMT_HVAL, _EIFMT_BVAL):
            at += 4
        elif fmt == _EIFMT_NVAL:
            at += 2
        else:
            raise ValueError(f"unknown .nv.info attribute format {fmt} at byte {at}")
    return offsets


def packing_format(codes: list[str], offsets: dict[int, int]) -> str:
    """A pycuda/struct format for parameters of struct `codes` (one per ordinal), with pad bytes
    ("Nx") wherever the compiler placed a parameter beyond its natural position."""
    out, at = [], 0
    for ordinal, code in enumerate(codes):
        natural = struct.calcsize(code)
        align = struct.calcsize("c" + code) - natural if not code.endswith("s") else 1
        at = -(-at // align) * align
        want = offsets[ordinal]
        if want < at:
            raise ValueError(f"parameter {ordinal} sits at offset {want}, before its natural position {at}")
        if want > at:
            out.append(f"{want - at}x")
        out.append(code)
        at = want + natural
    return "".join(out)
