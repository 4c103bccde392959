"""docs/OPERATORS.md, generated from the registry (tests/test_ops_defs.py checks it is current).

    python -m taskmap.spec.ops.table docs/OPERATORS.md
"""
from __future__ import annotations

import sys

from . import OPERATORS
from .registry import REQUIRED


def _attr(a) -> str:
    if a.default is REQUIRED:
        return f"{a.name} (required)"
    d = a.default.short if hasattr(a.default, "short") else repr(a.default)
    return f"{a.name}={d}"


def markdown() -> str:
    rows = ["| operator | family | ONNX | inputs | attributes | dtypes | kind | definition |",
            "|---|---|---|---|---|---|---|---|"]
    for op in sorted(OPERATORS.values(), key=lambda o: (o.family, o.name)):
        kind = "anchor" if op.is_anchor else "injective"
        rows.append(f"| {op.name} | {op.family} | {op.onnx or '—'} | {', '.join(op.inputs)} | "
                    f"{', '.join(_attr(a) for a in op.attrs) or '—'} | {' '.join(d.short for d in op.dtypes)} | "
                    f"{kind} | {op.doc.replace('|', '/')} |")
    return ("# Operators\n\n"
            "Generated from `taskmap.spec.ops.OPERATORS` by `python -m taskmap.spec.ops.table docs/OPERATORS.md`;\n"
            "do not edit by hand (tests/test_ops_defs.py fails when it is stale). Semantics and the numeric\n"
            "contract: spec/SPEC.md §11 and the family modules' docs in spec/ops/. `dtypes` are those of the\n"
            "data input; *anchor* operators reduce (not injective: fusion builds around them), *injective*\n"
            "ones are pure index maps plus element-wise arithmetic (fusion inlines them). Inputs ending in\n"
            "`?` are optional, `*` variadic.\n\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "docs/OPERATORS.md"
    with open(path, "w") as f:
        f.write(markdown())
    print(f"wrote {path} ({len(OPERATORS)} operators)")
