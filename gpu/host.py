"""Host-side launch geometry: grid, block, tensor shapes and dynamic shared memory, evaluated
from a kernel's scalar arguments with the C integer semantics of SPEC.md §2.3."""
from __future__ import annotations

from taskmap.spec import ir
from taskmap.spec import semantics
from taskmap.spec.errors import TaskmapError

from .emit import shared_bytes


class LaunchError(TaskmapError):
    """A launch the device cannot run or arguments that do not match the kernel (SPEC §1.1, §3.4)."""
    kind = "launch"

    def __init__(self, phrase: str, detail: str):
        self.phrase = phrase
        super().__init__(f"{phrase}: {detail}")


def evaluate(e: ir.Expr, env: dict) -> int | float | bool:
    """Value of a scalar expression over constants and scalar parameters (no memory, no threads)."""
    try:
        return semantics.evaluate(e, env)
    except semantics.Trap as trap:
        raise LaunchError("invalid launch configuration", f"{trap.phrase} in a launch expression") from None
    except semantics.Unknown as unknown:
        raise LaunchError("invalid launch configuration", f"{type(unknown.node).__name__} cannot appear in a "
                                                          "launch dimension or tensor shape") from None


def dims(exprs, env) -> tuple[int, int, int]:
    return tuple(int(evaluate(e, env)) for e in exprs)


def shape(buf: ir.Buffer, env) -> tuple[int, ...]:
    return tuple(int(evaluate(s, env)) for s in buf.shape)


def dynamic_shared_bytes(buffers, env) -> int:
    return sum(shared_bytes(b, shape(b, env)) for b in buffers)
