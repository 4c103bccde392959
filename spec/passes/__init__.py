"""IR -> IR passes, one per file, and the pipelines that run them.

A pipeline is a tuple of (name, pass), each pass a pure function Kernel -> Kernel. `LOWERING`
is what every backend runs first; each backend appends its own stages and states the whole
sequence as one tuple (`refimpl.passes.PIPELINE`, `gpu.passes.PIPELINE`). `run(pipeline,
kernel)` applies it; with `verify=True`, or TASKMAP_VERIFY_PASSES=1 in the environment, the
verifier re-checks the IR after every pass and a broken one is named (`PassError`).
`describe` prints a pipeline.
`replace_tensor` (fusion's rewrite of a tensor's loads and stores, SPEC §6.3) is a pass that
callers run themselves, not a pipeline stage.
"""
from __future__ import annotations

import os
from typing import Callable

from ..errors import PassError, VerifyError
from .lower_task_mappings import lower_task_mappings
from .replace_tensor import replace_tensor  # noqa: F401 (public: spec.passes.replace_tensor)

Pass = tuple[str, Callable]

LOWERING: tuple[Pass, ...] = (("lower_task_mappings", lower_task_mappings),)


def run(pipeline: tuple[Pass, ...], kernel, verify: bool | None = None):
    """`kernel` after every pass of `pipeline`, in order."""
    if verify is None:
        verify = os.environ.get("TASKMAP_VERIFY_PASSES", "0") not in ("", "0")
    for name, stage in pipeline:
        out = stage(kernel)
        if verify:
            try:
                out.verify()
            except VerifyError as e:
                if _verifies(kernel):
                    raise PassError(name, e) from None
                verify = False     # invalid before the pass (built with verify=False): not the pass's doing
        kernel = out
    return kernel


def _verifies(kernel) -> bool:
    try:
        kernel.verify()
        return True
    except VerifyError:
        return False


def lower(kernel):
    """`kernel` after the lowering every backend shares (task mappings become loops)."""
    return run(LOWERING, kernel)


def describe(pipeline: tuple[Pass, ...]) -> str:
    """One line per pass: its number, name and what it does (its docstring's first line)."""
    return "\n".join(f"{i}. {name}: {next(iter((stage.__doc__ or '').strip().splitlines()), '')}"
                     for i, (name, stage) in enumerate(pipeline, 1))
