"""Warpgroup MMA in CUDA C (SPEC.md §5.12): one inline-PTX helper per wgmma shape a kernel uses.

`wgmma.mma_async` names its shape and takes every accumulator register as an operand (n/2 of
them, up to 128), so the helpers are generated per (n, dtype, A in registers or shared), each
behind an include guard so kernels of one module may share them. A translation unit holding
one carries ARCH_MARK: wgmma exists only on sm_90a (gpu/build.py compiles it for that arch).
"""
from __future__ import annotations

from taskmap.spec import dtypes as dt
from taskmap.spec import ir

ARCH_MARK = "// taskmap: wgmma needs the arch-specific target sm_90a"
SWIZZLE_CODE = {0: 0, 128: 1, 64: 2, 32: 3}      # a descriptor's layout type field (bits 62–63)
PTX_TYPE = {dt.float16: "f16", dt.bfloat16: "bf16"}


def helper_name(s: ir.Wgmma) -> str:
    return f"tm_wgmma_m64n{s.n}k16_{PTX_TYPE[s.b.buffer.dtype]}_{'rs' if s.a_in_registers else 'ss'}"


def helpers(k: ir.Kernel) -> list[str]:
    """The C lines defining the wgmma helpers kernel `k` calls (none if it calls none)."""
    shapes = sorted({(s.n, PTX_TYPE[s.b.buffer.dtype], s.a_in_registers, helper_name(s))
                     for s in ir.walk(k) if isinstance(s, ir.Wgmma)})
    lines = [ARCH_MARK] if shapes else []
    for n, ptx_type, regs, name in shapes:
        lines += [f"#ifndef {name.upper()}", f"#define {name.upper()}", *_helper(n, ptx_type, regs, name), "#endif"]
    return lines


def _helper(n: int, ptx_type: str, regs: bool, name: str) -> list[str]:
    """acc (n/2 f32) += A·B; A from four 32-bit registers (two 16-bit elements each) or a
    descriptor, B from a descriptor. After the operands: the scale-d predicate (true:
    accumulate), imm-scale-a and -b (1: no negation), the transposes (0: K-major; none for A in
    registers)."""
    d = n // 2
    outs = ", ".join(f"%{i}" for i in range(d))
    if regs:
        a_ops, b_op, scale, tail = "{" + ", ".join(f"%{d + i}" for i in range(4)) + "}", f"%{d + 4}", d + 5, "p, 1, 1, 0"
        params, ins = "const void* a, uint64_t db", ", ".join(f'"r"(A[{i}])' for i in range(4)) + ', "l"(db), "r"(1)'
        prologue = ["    const uint32_t* A = (const uint32_t*)a;"]
    else:
        a_ops, b_op, scale, tail = f"%{d}", f"%{d + 1}", d + 2, "p, 1, 1, 0, 0"
        params, ins, prologue = "uint64_t da, uint64_t db", '"l"(da), "l"(db), "r"(1)', []
    body = (f'"{{ .reg .pred p; setp.ne.b32 p, %{scale}, 0; wgmma.mma_async.sync.aligned.m64n{n}k16.f32.{ptx_type}.{ptx_type} '
            f'{{{outs}}}, {a_ops}, {b_op}, {tail}; }}"')
    outputs = ", ".join(f'"+f"(d[{i}])' for i in range(d))
    return [f"__device__ __forceinline__ void {name}(float* d, {params}) {{", *prologue,
            f"    asm volatile({body}", f"                 : {outputs}", f"                 : {ins});", "}"]


def fenced_registers(k: ir.Kernel) -> set[str]:
    """The register tensors wgmmas use (accumulators, A fragments): the compiler must not move
    their accesses across wgmma_fence / wgmma_wait_group (SPEC §5.12)."""
    return {r.buffer.name for s in ir.walk(k) if isinstance(s, ir.Wgmma)
            for r in ((s.acc, s.a) if s.a_in_registers else (s.acc,))}


def fence_registers(b: ir.Buffer, cname: str) -> str:
    """An empty asm that reads and writes every 32-bit word of register tensor `b`."""
    words = b.dtype.nbytes * _elements(b) // 4
    if b.dtype == dt.float32:
        return f"tm_fence_registers<{words}>({cname});"
    return f"tm_fence_registers<{words}>((float*){cname});"


def _elements(b: ir.Buffer) -> int:
    n = 1
    for e in b.shape:
        n *= e.value
    return n
