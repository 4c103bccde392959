"""Load case files: validate the shared structure, merge defaults, expand `each`, build cases.

    cases = load_paths(["conformance/cases"])      # every *.yaml below, sorted
    cases = load_file("conformance/cases/transpose.yaml")

Every problem in a file is a schema.CaseError with file:line (see conformance/README.md); the
loader turns it into a BrokenCase, which runs as an `error` result, so one malformed file or
case never stops the others.
"""
from __future__ import annotations

import itertools
import os
import re

from . import fusion_case, kernel_case, model_case, op_case  # noqa: F401  (register the case kinds)
from .backends import BACKENDS
from .cases import COMMON_FIELDS, KINDS, BrokenCase, Case, CaseInfo
from .schema import CaseError, Where, YList, YMap, check_keys, get, load_yaml, ylist, ymap

CASES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases")
FILE_FIELDS = {"kind", "description", "defaults", "cases"}
MERGED_MAPS = {"sizes", "args"}        # merged key by key with the file's defaults (case wins)
NAME = r"[\w.+-]+"                      # what a case name may hold


def load_paths(paths: list[str] | None = None) -> list[Case]:
    """Cases from files and directories (recursively, *.yaml / *.yml), ids unique. A path that
    does not exist, or a directory without case files, raises CaseError (nothing to run); a
    malformed file or case becomes a BrokenCase, so the others still run."""
    files = []
    for p in paths or [CASES_DIR]:
        if os.path.isdir(p):
            found = [os.path.join(root, n) for root, _, names in os.walk(p) for n in names
                     if n.endswith((".yaml", ".yml"))]
            if not found:
                raise CaseError(f"{p}: no case files (*.yaml, *.yml) in this directory or below")
            files += found
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise CaseError(f"{p}: no such case file or directory")
    cases, seen = [], {}
    for f in sorted(set(files)):
        for case in load_file(f):
            if case.id in seen and not isinstance(case, BrokenCase):
                error = case.where.error(f"duplicate case id {case.id!r} (also at {seen[case.id]}); rename one")
                case = _broken(case.id, error, case.info.base_dir)
            seen.setdefault(case.id, case.where)
            cases.append(case)
    return cases


def load_file(path: str) -> list[Case]:
    """The cases of one file; a malformed file is one BrokenCase, a malformed case one each."""
    rel = os.path.relpath(path)
    shown = path if rel.startswith("..") else rel
    stem = os.path.splitext(os.path.basename(path))[0]
    base_dir = os.path.dirname(os.path.abspath(path))
    try:
        doc = load_yaml(shown)
        if not isinstance(doc, YMap):
            raise Where(shown, 1).error("a case file is a mapping with a `cases:` list")
        check_keys(doc, FILE_FIELDS, "a case file")
        get(doc, "description", "str", "", what="a case file")
        file_kind = get(doc, "kind", "str", "kernel", what="a case file")
        defaults = get(doc, "defaults", "map", None, what="a case file")
        entries = get(doc, "cases", "list", what="a case file")
        if not entries:
            raise doc.at("cases").error("`cases:` is empty; a case file needs at least one case")
    except CaseError as e:
        return [_broken(stem, e, base_dir, whole_file=True)]
    out = []
    for i, entry in enumerate(entries):
        try:
            if not isinstance(entry, YMap):
                raise entries.at(i).error("each entry of `cases:` must be a mapping (a case)")
            kind = _kind(entry if "kind" in entry else doc, file_kind)
            merged = _merge(defaults, entry, kind.alternatives) if defaults else entry
            expanded = _expand(merged)
        except CaseError as e:
            out.append(_broken(f"{stem}/{_label(entry, i)}", e, base_dir))
            continue
        for case_map in expanded:
            try:
                out.append(_build(case_map, kind, stem, base_dir, explicit="backends" in entry))
            except CaseError as e:
                out.append(_broken(f"{stem}/{_label(case_map, i)}", e, base_dir))
    return out


def _label(m, index: int) -> str:
    """A broken case's name: its own if it has a usable one, else its position in `cases:`."""
    name = m.get("name") if isinstance(m, YMap) else None
    return name if isinstance(name, str) and re.fullmatch(NAME, name) else f"#{index + 1}"


def _broken(case_id: str, error: CaseError, base_dir: str, whole_file: bool = False) -> BrokenCase:
    where = error.where or Where(case_id, 1)
    info = CaseInfo(id=case_id, where=where, base_dir=base_dir, backends=tuple(BACKENDS),
                    backends_explicit=False, tags=())
    return BrokenCase(info, backends=tuple(BACKENDS), message=str(error), whole_file=whole_file)


def _kind(m: YMap, default: str):
    name = get(m, "kind", "str", default)
    if name not in KINDS:
        raise m.at("kind").error(f"unknown case kind {name!r}; known: {', '.join(sorted(KINDS))}")
    return KINDS[name]


def _build(m: YMap, kind, stem: str, base_dir: str, explicit: bool) -> Case:
    check_keys(m, COMMON_FIELDS | kind.fields, f"a `{kind.name}` case")
    name = get(m, "name", "str")
    if not re.fullmatch(NAME, name):
        raise m.at("name").error(f"case name {name!r} may use letters, digits and _ . + - only")
    backends = tuple(get(m, "backends", "str-list", kind.backends))
    for b in backends:
        if b not in BACKENDS:
            raise m.at("backends").error(f"unknown backend {b!r}; known: {', '.join(BACKENDS)}")
    info = CaseInfo(id=f"{stem}/{name}", where=m.where, base_dir=base_dir, backends=backends,
                    backends_explicit=explicit, tags=tuple(get(m, "tags", "str-list", ())), kind=kind.name)
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
    for env in envs:
        for var in _placeholders(rest.get("name", "")):
            if var not in env:
                raise rest.at("name").error(f"{{{var}}} in the name is not a variable of `each:` "
                                            f"({', '.join(env) or 'none'})")
    cases = [_substitute(rest, env, rest.where) for env in envs]
    if isinstance(each, YList):                      # point each expanded case at its row
        for case, row in zip(cases, each):
            case.where = row.where
    return cases


def _placeholders(s) -> list[str]:
    return re.findall(r"\{(\w+)\}", s) if isinstance(s, str) else []


def _substitute(v, env: dict, where: Where | None = None):
    """`v` with each `{var}` of `env` replaced; `where`: v's place, for a string that is a
    whole placeholder of no variable (a typo that would otherwise pass on as text)."""
    if isinstance(v, YMap):
        return ymap({k: _substitute(x, env, v.at(k)) for k, x in v.items()}, v.where, v.wheres)
    if isinstance(v, YList):
        return ylist([_substitute(x, env, v.at(i)) for i, x in enumerate(v)], v.where, v.wheres)
    if not isinstance(v, str):
        return v
    whole = re.fullmatch(r"\{(\w+)\}", v)
    if whole and whole.group(1) not in env:
        raise where.error(f"{v} is not a variable of `each:` ({', '.join(env)})")
    if whole:
        return env[whole.group(1)]
    return re.sub(r"\{(\w+)\}", lambda mt: str(env[mt.group(1)]) if mt.group(1) in env else mt.group(0), v)
