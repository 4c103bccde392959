"""Static checks on kernel IR (SPEC.md §9). `verify(kernel)` raises VerifyError on the first
broken rule; `@kernel` runs it at decoration time. The checks run in dependency order: later
ones rely on what earlier ones established (names resolve, dtypes fit, the block is legal).
"""
from __future__ import annotations

import functools

from . import ir
from .verify_barriers import check_barriers
from .verify_launch import check_launch
from .verify_mbarrier import check_mbarriers
from .verify_memory import check_memory
from .verify_scopes import check_scopes
from .verify_types import check_types
from .verify_wgmma import check_wgmma

CHECKS = (check_launch, check_scopes, check_types, check_memory, check_mbarriers, check_wgmma,
          check_barriers)

# The stable error phrases (VerifyError.phrase) -> the SPEC.md section of the rule each
# enforces. SPEC.md §9.1 tabulates them with their rules; tests/test_verifier.py checks the two agree.
PHRASES = {
    "invalid launch dimension": "9.5",
    "too many threads per block": "9.5",
    "undeclared variable": "9.2",
    "undeclared tensor": "9.2",
    "duplicate name": "9.2",
    "assignment to kernel parameter": "9.2",
    "assignment to loop variable": "9.2",
    "write to input tensor": "9.2",
    "type mismatch": "9.2, 9.3",
    "constant out of range": "9.3",
    "condition is not bool": "9.3",
    "arithmetic on bool": "9.3",
    "bitwise operation on non-integer": "9.3",
    "math intrinsic on non-float": "9.3",
    "index is not an integer": "9.3",
    "wrong number of indices": "9.3",
    "loop bound is not an integer": "9.3",
    "loop step is zero": "9.3",
    "task mapping arity mismatch": "9.3",
    "unknown operation": "9.3",
    "invalid shuffle width": "9.3",
    "invalid tensor scope": "9.4",
    "tensor shape is not an integer": "9.4",
    "tensor shape must depend only on scalar parameters": "9.4",
    "register tensor shape must be constant": "9.4",
    "invalid tensor shape": "9.4",
    "cp_async must copy global to shared": "9.4",
    "invalid cp_async size": "9.4",
    "invalid wait count": "9.4",
    "invalid mbarrier": "9.4",
    "bulk_copy must copy global to shared": "9.4",
    "invalid bulk copy size": "9.4",
    "invalid TMA operands": "9.4",
    "invalid TMA box": "9.4",
    "ldmatrix must load shared to registers": "9.4",
    "invalid ldmatrix fragment": "9.4",
    "mma_sync operands must be registers": "9.4",
    "invalid mma_sync fragment": "9.4",
    "invalid wgmma operands": "9.4",
    "invalid wgmma descriptor": "9.4",
    "atomic must target global or shared memory": "9.4",
    "unsupported atomic type": "9.4",
    "shared memory exceeds device limit": "9.4",
    "register tensors exceed per-thread limit": "9.4",
    "barrier in thread-dependent branch": "9.6",
    "warp collective in thread-dependent branch": "9.6",
    "task mapping has more workers than threads": "9.6",
}


def verify(kernel: ir.Kernel) -> None:
    _verified(kernel)


@functools.lru_cache(maxsize=512)
def _verified(kernel: ir.Kernel) -> None:
    """The checks, remembered for kernels that pass them: a model schedules equal kernels for many
    layers (ResNet-50: 57 kernels, 28 distinct) and fusion re-verifies each candidate, so a compile
    re-checked the same IR ~190 times (80% of its time). Safe because the rules read only what IR
    equality compares (`loc` only names where an error is, and a failure is never cached)."""
    for check in CHECKS:
        check(kernel)
