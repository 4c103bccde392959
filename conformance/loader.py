"""Load case files: validate the shared structure, merge defaults, expand `each`, build cases.

    cases = load_paths(["conformance/cases"])      # every *.yaml below, sorted
    cases = load_file("conformance/cases/transpose.yaml")

Every problem in a file raises schema.CaseError with file:line (see conformance/README.md).
"""
from __future__ import annotations

import itertools
import os
import re

from . import kernel_case  # noqa: F401  (registers the `kernel` kind)
from .backends import BACKENDS
from .cases import COMMON_FIELDS, KINDS, Case, CaseInfo
from .schema import CaseError, YList, YMap, check_keys, get, load_yaml, ylist, ymap

CASES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases")
FILE_FIELDS = {"kind", "description", "defaults", "cases"}
MERGED_MAPS = {"sizes", "args"}        # merged key by key with the file's defaults (case wins)


def load_paths(paths: list[str] | None = None) -> list[Case]:
    """Cases from files and directories (recursively, *.yaml / *.yml), ids unique."""
    files = []
    for p in paths or [CASES_DIR]:
        if os.path.isdir(p):
            for root, _, names in os.walk(p):
                files += [os.path.join(root, n) for n in names if n.endswith((".yaml", ".yml"))]
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise CaseError(f"{p}: no such case file or directory")
    cases, seen = [], {}
    for f in sorted(set(files)):
        for case in load_file(f):
            if case.id in seen:
                raise case.where.error(f"duplicate case id {case.id!r} (also at {seen[case.id]})")
            seen[case.id] = case.where
            cases.append(case)
    return cases


def load_file(path: str) -> list[Case]:
    rel = os.path.relpath(path)
    doc = load_yaml(path if rel.startswith("..") else rel)
    if not isinstance(doc, YMap):
        raise CaseError(f"{path}:1: a case file is a mapping with a `cases:` list")
    check_keys(doc, FILE_FIELDS, "a case file")
    file_kind = get(doc, "kind", "str", "kernel", what="a case file")
    defaults = get(doc, "defaults", "map", None, what="a case file")
    entries = get(doc, "cases", "list", what="a case file")
    if not entries:
        raise doc.at("cases").error("`cases:` is empty; a case file needs at least one case")
    stem = os.path.splitext(os.path.basename(path))[0]
    base_dir = os.path.dirname(os.path.abspath(path))
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, YMap):
            raise entries.at(i).error("each entry of `cases:` must be a mapping (a case)")
        kind = _kind(entry if "kind" in entry else doc, file_kind)
        merged = _merge(defaults, entry, kind.alternatives) if defaults else entry
        for case_map in _expand(merged):
            out.append(_build(case_map, kind, stem, base_dir, explicit="backends" in entry))
    return out


def _kind(m: YMap, default: str):
    name = get(m, "kind", "str", default)
    if name not in KINDS:
        raise m.at("kind").error(f"unknown case kind {name!r}; known: {', '.join(sorted(KINDS))}")
    return KINDS[name]


def _build(m: YMap, kind, stem: str, base_dir: str, explicit: bool) -> Case:
    check_keys(m, COMMON_FIELDS | kind.fields, f"a `{kind.name}` case")
    name = get(m, "name", "str")
    if not re.fullmatch(r"[\w.+-]+", name):
        raise m.at("name").error(f"case name {name!r} may use letters, digits and _ . + - only")
    backends = tuple(get(m, "backends", "str-list", kind.backends))
    for b in backends:
        if b not in BACKENDS:
            raise m.at("backends").error(f"unknown backend {b!r}; known: {', '.join(BACKENDS)}")
    info = CaseInfo(id=f"{stem}/{name}", where=m.where, base_dir=base_dir, backends=backends,
                    backends_explicit=explicit, tags=tuple(get(m, "tags", "str-list", ())))
    return kind.build(m, info)


def _merge(defaults: YMap, case: YMap, alternatives: frozenset) -> YMap:
    dropped = alternatives if any(k in case for k in alternatives) else ()
    items = {k: v for k, v in defaults.items() if k not in dropped}
    wheres = {k: w for k, w in defaults.wheres.items() if k not in dropped}
    for key, value in case.items():
        if key in MERGED_MAPS and isinstance(value, YMap) and isinstance(defaults.get(key), YMap):
            base = defaults[key]
            value = ymap({**base, **value}, value.where, {**base.wheres, **value.wheres})
        items[key], wheres[key] = value, case.at(key)
    return ymap(items, case.where, wheres)


def _expand(m: YMap) -> list[YMap]:
    """`each:` as a mapping expands to the product of its lists; as a list of mappings, one
    case per row. `{var}` in any string is replaced; a string that is exactly `{var}` takes
    the value itself (a number, a mapping...)."""
    if "each" not in m:
        return [m]
    each = m["each"]
    rest = ymap({k: v for k, v in m.items() if k != "each"}, m.where, m.wheres)
    if isinstance(each, YMap):
        for var, values in each.items():
            if not isinstance(values, YList) or not values:
                raise each.at(var).error(f"`each: {var}:` must be a non-empty list of values")
        envs = [dict(zip(each, combo)) for combo in itertools.product(*each.values())]
    elif isinstance(each, YList) and each and all(isinstance(r, YMap) for r in each):
        envs = [dict(row) for row in each]
    else:
        raise m.at("each").error("`each:` must be a mapping of lists or a non-empty list of mappings")
    if len(envs) > 1 and not _placeholders(rest.get("name", "")):
        raise rest.at("name").error("a case with `each:` needs {placeholders} in its name "
                                    "so the expanded cases get distinct ids")
    cases = [_substitute(rest, env) for env in envs]
    if isinstance(each, YList):                      # point each expanded case at its row
        for case, row in zip(cases, each):
            case.where = row.where
    return cases


def _placeholders(s) -> list[str]:
    return re.findall(r"\{(\w+)\}", s) if isinstance(s, str) else []


def _substitute(v, env: dict):
    if isinstance(v, YMap):
        return ymap({k: _substitute(x, env) for k, x in v.items()}, v.where, v.wheres)
    if isinstance(v, YList):
        return ylist([_substitute(x, env) for x in v], v.where, v.wheres)
    if not isinstance(v, str):
        return v
    whole = re.fullmatch(r"\{(\w+)\}", v)
    if whole and whole.group(1) in env:
        return env[whole.group(1)]
    return re.sub(r"\{(\w+)\}", lambda mt: str(env[mt.group(1)]) if mt.group(1) in env else mt.group(0), v)
