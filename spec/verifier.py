"""Static checks on kernel IR (SPEC.md §9). `verify(kernel)` raises VerifyError on the first
broken rule; `@kernel` runs it at decoration time. The checks run in dependency order: later
ones rely on what earlier ones established (names resolve, dtypes fit, the block is legal).
"""
from __future__ import annotations

from . import ir
from .verify_barriers import check_barriers
from .verify_launch import check_launch
from .verify_memory import check_memory
from .verify_scopes import check_scopes
from .verify_types import check_types

CHECKS = (check_launch, check_scopes, check_types, check_memory, check_barriers)

# The stable error phrases (VerifyError.phrase) and the rule each enforces: SPEC.md §9.1
# repeats this table, and tests/test_verifier.py checks the two agree.
PHRASES = {
    "invalid launch dimension": "grid/block extents are integer expressions of scalar parameters; constant "
                                "ones lie in CUDA's ranges",
    "too many threads per block": "a constant block has at most 1024 threads",
    "undeclared variable": "a variable is used only inside the scope that declares it",
    "undeclared tensor": "a tensor is used only inside the scope that declares it",
    "duplicate name": "every variable and tensor of a kernel has its own name",
    "assignment to kernel parameter": "scalar parameters are read-only",
    "assignment to loop variable": "range and task-mapping loop variables are read-only",
    "type mismatch": "values match their target's dtype (declarations, assignments, stores, atomics, "
                     "cp_async/ldmatrix operands); uses match declarations",
    "constant out of range": "a constant's value is representable in its dtype",
    "condition is not bool": "if/while/assert/select/valid= conditions and the operands of && || not are bool",
    "arithmetic on bool": "+ - * / % neg min max take numbers, not bool",
    "bitwise operation on non-integer": "& | ^ ~ take integers (or bools for & | ^); << >> take integers",
    "math intrinsic on non-float": "math intrinsics take floats; abs also signed integers",
    "index is not an integer": "tensor indices and shuffle lanes are integers",
    "wrong number of indices": "element accesses (load, store, atomic) give exactly ndim indices; views at "
                               "most ndim",
    "loop bound is not an integer": "range bounds, loop variables and task workers are integers",
    "loop step is zero": "a constant range step is non-zero",
    "task mapping arity mismatch": "a task-mapping loop binds one variable per mapping dimension",
    "unknown operation": "operators, intrinsics, special registers and atomics are the ones SPEC §4-§5 define",
    "invalid shuffle width": "shuffle width is a power of two from 1 to 32",
    "unsupported shuffle type": "shuffles move i32 u32 i64 f16 bf16 f32 f64 values",
    "invalid tensor scope": "parameters are global tensors; the body declares shared or register tensors",
    "tensor shape is not an integer": "extents and strides are integers",
    "tensor shape must depend only on scalar parameters": "global and shared shapes use constants and scalar "
                                                          "parameters only",
    "register tensor shape must be constant": "register tensor extents are compile-time constants",
    "invalid tensor shape": "constant extents are >= 1; strides match ndim; swizzle parameters are >= 0",
    "cp_async must copy global to shared": "cp_async's source is global and its destination shared",
    "invalid cp_async size": "cp_async moves 4, 8 or 16 bytes",
    "invalid wait count": "cp_async_wait_group(n) has n >= 0",
    "ldmatrix must load shared to registers": "ldmatrix's source is shared and its destination a register view",
    "invalid ldmatrix fragment": "num in {1, 2, 4}; 16-bit elements; the destination view holds 2*num "
                                 "row-major elements",
    "mma_sync operands must be registers": "a, b and acc are register views",
    "invalid mma_sync fragment": "m16n8k16: a 8, b 4 f16/bf16 (alike), acc 4 f32; m16n8k8 (tf32): a 4, b 2, "
                                 "acc 4, all f32; views row-major",
    "atomic must target global or shared memory": "atomics update global or shared elements",
    "unsupported atomic type": "the atomic exists natively in CUDA for the element dtype",
    "shared memory exceeds device limit": "constant-size shared tensors of a block total <= 232448 bytes",
    "register tensors exceed per-thread limit": "register tensors of a thread total <= 1020 bytes",
    "barrier in thread-dependent branch": "syncthreads is not under a condition that may differ within a "
                                          "block; syncwarp not under one that may differ within a warp",
    "warp collective in thread-dependent branch": "shuffles, ldmatrix, mma_sync are not under a condition "
                                                  "that may differ within a warp",
    "task mapping has more workers than threads": "when the worker is an exact function of the thread index, "
                                                  "every worker of the mapping has a thread",
}


def verify(kernel: ir.Kernel) -> None:
    for check in CHECKS:
        check(kernel)
