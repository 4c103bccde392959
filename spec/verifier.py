"""Static checks on kernel IR (SPEC.md §9). Placeholder entry point; see verify()."""
from __future__ import annotations

from . import ir


def verify(kernel: ir.Kernel) -> None:
    return None
