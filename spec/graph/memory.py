"""The memory plan of a compiled graph: every intermediate buffer placed in one arena, buffers
whose lifetimes do not overlap sharing addresses.

A buffer lives from the step that writes it to the last step that reads it (a graph output to
the end; a plan's temporary only during its step). Placement is greedy by size (largest first,
each at the lowest aligned offset free for its whole lifetime), the heuristic TFLite's and
ONNX Runtime's arena planners use; `peak` is the arena's size, `total` what one allocation per
buffer would take. Graph inputs and constants are not in the arena (the caller owns them).
"""
from __future__ import annotations

from dataclasses import dataclass

ALIGN = 256                  # bytes: what cudaMalloc guarantees, so any vector access stays aligned


@dataclass(frozen=True)
class Buffer:
    name: str
    nbytes: int
    first: int               # the step that writes it
    last: int                # the last step that reads it


@dataclass(frozen=True)
class MemoryPlan:
    buffers: tuple[Buffer, ...]
    offsets: tuple[tuple[str, int], ...]      # (buffer name, byte offset), in `buffers` order
    peak: int
    total: int

    def offset(self, name: str) -> int:
        return dict(self.offsets)[name]

    def describe(self) -> str:
        saved = 1 - self.peak / self.total if self.total else 0.0
        return (f"memory: arena {format_bytes(self.peak)} for {len(self.buffers)} buffers "
                f"({format_bytes(self.total)} without reuse, {saved:.0%} saved)")


def format_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _live_together(a: Buffer, b: Buffer) -> bool:
    return a.first <= b.last and b.first <= a.last


def plan_memory(buffers) -> MemoryPlan:
    buffers = tuple(buffers)
    placed: list[tuple[Buffer, int]] = []
    for b in sorted(buffers, key=lambda b: (-b.nbytes, b.first, b.name)):
        offset = 0
        for other, at in sorted(((o, at) for o, at in placed if _live_together(o, b)), key=lambda p: p[1]):
            if offset + b.nbytes <= at:
                break
            offset = max(offset, _aligned(at + other.nbytes))
        placed.append((b, offset))
    where = {b.name: at for b, at in placed}
    peak = max((_aligned(where[b.name] + b.nbytes) for b in buffers), default=0)
    return MemoryPlan(buffers, tuple((b.name, where[b.name]) for b in buffers), peak,
                      sum(_aligned(b.nbytes) for b in buffers))


def conflicts(plan: MemoryPlan) -> list[str]:
    """Pairs of buffers that are live together and overlap in the arena (none, for a plan
    from plan_memory; graph_exec.build checks every plan it makes)."""
    where = dict(plan.offsets)
    out = []
    for i, a in enumerate(plan.buffers):
        for b in plan.buffers[i + 1:]:
            if _live_together(a, b) and where[a.name] < where[b.name] + b.nbytes and \
                    where[b.name] < where[a.name] + a.nbytes:
                out.append(f"{a.name} and {b.name}")
    return out
