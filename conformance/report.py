"""Conformance results as a table, a summary line, the failure list and JSON."""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from tabulate import tabulate

from .cases import STATUSES, Case
from .runner import Result


def _err(v: float | None) -> str:
    return "-" if v is None else f"{v:.2e}"


def table(results: list[Result]) -> str:
    rows = [(r.case.id, r.backend, _err(r.outcome.max_abs), _err(r.outcome.max_rel),
             f"{r.outcome.seconds * 1e3:.1f} ms", r.outcome.status) for r in results]
    return tabulate(rows, headers=("case", "backend", "max abs err", "max rel err", "time", "status"),
                    disable_numparse=True)


def counts(results: list[Result]) -> dict[str, int]:
    out = dict.fromkeys(STATUSES, 0)
    for r in results:
        out[r.outcome.status] += 1
    return out


def summary(results: list[Result]) -> str:
    c = counts(results)
    return f"{c['passed']} passed, {c['failed']} failed, {c['error']} errors, {c['skipped']} skipped"


def problems(results: list[Result]) -> str:
    """One line per failed run, with why, and per case that could not be run (its message
    starts with file:line); then the distinct reasons runs were skipped."""
    lines = [f"FAILED {r.case.id} [{r.backend}] ({r.case.where}): {r.outcome.message}"
             for r in results if r.outcome.status == "failed"]
    lines += [f"ERROR {r.case.id}: {r.outcome.message}" for r in results if r.outcome.status == "error"]
    skipped = {}
    for r in results:
        if r.outcome.status == "skipped":
            skipped.setdefault(r.outcome.message, []).append(r)
    lines += [f"SKIPPED {len(rs)} {rs[0].backend} run(s): {why}" for why, rs in skipped.items()]
    return "\n".join(lines)


def _json_number(v: float | None) -> float | None:
    """JSON has no inf/NaN: an unbounded error (a NaN where a number was expected) is null."""
    return v if v is None or math.isfinite(v) else None


def json_summary(results: list[Result]) -> dict[str, int]:
    """The JSON summary's three counts (issue 12): an `error` run (the case itself could not
    run) counts as failed there; each case entry keeps its own `error` status."""
    c = counts(results)
    return {"passed": c["passed"], "failed": c["failed"] + c["error"], "skipped": c["skipped"]}


def as_json(results: list[Result]) -> dict:
    """`{"cases": [{"id", "backend", "status", "max_abs", "max_rel", "seconds", "message"}],
    "summary": {"passed", "failed", "skipped"}}`."""
    return {
        "cases": [{"id": r.case.id, "backend": r.backend, "status": r.outcome.status,
                   "max_abs": _json_number(r.outcome.max_abs),
                   "max_rel": _json_number(r.outcome.max_rel),
                   "seconds": r.outcome.seconds, "message": r.outcome.message} for r in results],
        "summary": json_summary(results),
    }


def coverage(cases: list[Case]) -> str:
    """Which registry operators the `op` cases cover, and which have none (no schedule yet);
    "" without op cases."""
    from taskmap.spec.ops import OPERATORS
    from .op_case import OpCase
    covered = {c.op.name for c in cases if isinstance(c, OpCase)}
    if not covered:
        return ""
    missing = sorted(set(OPERATORS) - covered)
    return (f"operators with op cases: {len(covered)} of {len(OPERATORS)}"
            + (f"; none for: {', '.join(missing)}" if missing else ""))


def write_junit(results: list[Result], path: str) -> None:
    """JUnit XML for CI systems: one testcase per run (classname = backend)."""
    c = counts(results)
    suite = ET.Element("testsuite", name="taskmap-conform", tests=str(len(results)), failures=str(c["failed"]),
                       errors=str(c["error"]), skipped=str(c["skipped"]),
                       time=f"{sum(r.outcome.seconds for r in results):.3f}")
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=r.backend, name=r.case.id, file=r.case.where.file,
                             line=str(r.case.where.line), time=f"{r.outcome.seconds:.6f}")
        tag = {"failed": "failure", "error": "error", "skipped": "skipped"}.get(r.outcome.status)
        if tag:
            ET.SubElement(case, tag, message=r.outcome.message[:500]).text = r.outcome.message
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
