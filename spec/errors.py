"""Errors raised by the language front end, the verifier (SPEC.md §9) and the launch binding (§3.4)."""
from __future__ import annotations

import os


class TaskmapError(Exception):
    """Base of every error taskmap raises on bad input."""


class DSLError(TaskmapError):
    """A kernel function uses Python the DSL does not accept (raised at decoration time)."""

    def __init__(self, message: str, loc=None, hint: str = "", source_line: str = ""):
        self.phrase = message
        self.loc = loc
        self.hint = hint
        text = f"{loc}: {message}" if loc else message
        if source_line:
            text += f"\n    {source_line.strip()}"
        if hint:
            text += f"\n  hint: {hint}"
        super().__init__(text)


class VerifyError(TaskmapError):
    """A kernel's IR breaks a static rule. `phrase` is the stable error phrase (SPEC.md §9.1)."""

    def __init__(self, phrase: str, detail: str = "", node=None, window: str = "", kernel: str = ""):
        self.phrase = phrase
        self.detail = detail
        self.node = node
        self.kernel = kernel
        loc = getattr(node, "loc", None)
        head = f"{loc}: " if loc else ""
        text = f"{head}{phrase}" + (f": {detail}" if detail else "")
        if kernel:
            text += f" (in kernel {kernel})"
        if window:
            text += "\n" + window
        super().__init__(text)


class PassError(TaskmapError):
    """A compiler pass produced IR the verifier rejects: a bug in the pass, not in the kernel
    (raised only when passes are re-verified: `run(..., verify=True)`, TASKMAP_VERIFY_PASSES=1)."""

    def __init__(self, name: str, error: VerifyError):
        self.pass_name = name
        self.error = error
        super().__init__(f"pass {name} produced invalid IR ({error.phrase}): the kernel verified before "
                         f"the pass, so the pass is at fault; report it with this output:\n{error}")


class LaunchError(TaskmapError):
    """A launch refused before any thread runs (SPEC.md §1.1, §3.4): arguments that do not match
    the kernel's parameters, or a grid and block no device runs. Every backend raises it alike
    (spec/binding.py); `phrase` is one of PHRASES, `param` the parameter (or tensor) concerned,
    `loc` its DSL location (the kernel's for the launch configuration)."""
    kind = "launch"
    PHRASES = ("not a kernel", "wrong number of arguments", "dtype mismatch", "scalar out of range",
               "shape mismatch", "non-contiguous array", "read-only output", "invalid tensor shape",
               "invalid launch configuration")

    def __init__(self, phrase: str, detail: str, *, kernel: str = "", param: str | None = None, loc=None):
        self.phrase = phrase
        self.detail = detail
        self.kernel = kernel
        self.param = param
        self.loc = loc
        where = f" ({os.path.basename(loc.file)}:{loc.line})" if loc is not None else ""
        super().__init__(f"{phrase}: {detail}{where}")
