"""YAML with line numbers, and the small typed accessors every case kind validates with.

A case file is composed (not just loaded) so that each mapping and list remembers where its
keys and items are; every validation error then reads `file:line: what was expected`
instead of a Python traceback. The case schema itself is documented in conformance/README.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import yaml


class CaseError(Exception):
    """A malformed case file (or a case that cannot be built): the message starts with file:line."""

    def __init__(self, message: str, where: Where | None = None):
        super().__init__(message)
        self.where = where


@dataclass(frozen=True)
class Where:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"

    def error(self, message: str) -> CaseError:
        return CaseError(f"{self}: {message}", self)


class YMap(dict):
    """A YAML mapping that knows where it and each of its keys start."""
    where: Where
    wheres: dict

    def at(self, key) -> Where:
        return self.wheres.get(key, self.where)


class YList(list):
    """A YAML sequence that knows where it and each of its items start."""
    where: Where
    wheres: list

    def at(self, index: int) -> Where:
        return self.wheres[index] if index < len(self.wheres) else self.where


def ymap(items: dict, where: Where, wheres: dict) -> YMap:
    out = YMap(items)
    out.where, out.wheres = where, wheres
    return out


def ylist(items: list, where: Where, wheres: list) -> YList:
    out = YList(items)
    out.where, out.wheres = where, wheres
    return out


def load_yaml(path: str):
    """Parse one YAML document into YMap/YList/plain scalars; CaseError on bad YAML."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise Where(path, 1).error(f"cannot read case file: {e.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise Where(path, line).error(f"case file is not UTF-8 text (byte 0x{data[e.start]:02x} at offset "
                                      f"{e.start}); save it as UTF-8") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise Where(path, 1).error("empty case file; expected a mapping with a `cases:` list")
        return _convert(node, loader, path)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        what = f"{e.context}, {e.problem}" if e.context and (e.problem or "").startswith("but ") \
            else e.problem or e.context
        raise Where(path, line).error(f"invalid YAML: {what}") from None
    finally:
        loader.dispose()


def _where(node, path: str) -> Where:
    return Where(path, node.start_mark.line + 1)


def _convert(node, loader, path: str):
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)            # resolves `<<: *anchor` merge keys
        items, wheres = {}, {}
        for key_node, value_node in node.value:
            key = _convert(key_node, loader, path)
            if not isinstance(key, (str, int, float, bool)):
                raise _where(key_node, path).error("mapping keys must be plain scalars")
            if key in items:
                raise _where(key_node, path).error(f"duplicate key {key!r}")
            items[key] = _convert(value_node, loader, path)
            wheres[key] = _where(key_node, path)     # `key:` is what an error about it points at
        return ymap(items, _where(node, path), wheres)
    if isinstance(node, yaml.SequenceNode):
        return ylist([_convert(n, loader, path) for n in node.value], _where(node, path),
                     [_where(n, path) for n in node.value])
    return loader.construct_object(node, deep=True)


# ---------------------------------------------------------------- typed accessors

_MISSING = object()

_TYPE_NAMES = {
    "str": "a string", "int": "an integer", "number": "a number", "bool": "true or false",
    "map": "a mapping", "list": "a list", "str-list": "a list of strings",
}


def _is(kind: str, v) -> bool:
    match kind:
        case "str":
            return isinstance(v, str)
        case "int":
            return isinstance(v, int) and not isinstance(v, bool)
        case "number":
            return isinstance(v, (int, float)) and not isinstance(v, bool)
        case "bool":
            return isinstance(v, bool)
        case "map":
            return isinstance(v, YMap)
        case "list":
            return isinstance(v, YList)
        case "str-list":
            return isinstance(v, YList) and all(isinstance(x, str) for x in v)
    raise ValueError(f"unknown schema type {kind}")


def get(m: YMap, key: str, kind: str, default=_MISSING, what: str = "case"):
    """m[key] checked against `kind`; a missing key gives `default` or a CaseError."""
    if key not in m:
        if default is _MISSING:
            raise m.where.error(f"{what} needs `{key}:` ({_TYPE_NAMES[kind]})")
        return default
    v = m[key]
    if not _is(kind, v):
        raise m.at(key).error(f"`{key}:` must be {_TYPE_NAMES[kind]}, got {_describe(v)}")
    return v


def check_keys(m: YMap, allowed, what: str) -> None:
    """Reject keys not in `allowed`: a typo must not silently drop a check."""
    for key in m:
        if key not in allowed:
            raise m.at(key).error(f"unknown key `{key}` in {what}; expected one of: "
                                  + ", ".join(sorted(allowed)))


def one_of(m: YMap, choices, what: str) -> str:
    """The single key of `choices` present in m (exactly one must be)."""
    present = [c for c in choices if c in m]
    if len(present) != 1:
        found = ", ".join(present) if present else "none"
        raise m.where.error(f"{what} needs exactly one of {', '.join(choices)} (found: {found})")
    return present[0]


def _describe(v) -> str:
    if isinstance(v, YMap):
        return "a mapping"
    if isinstance(v, YList):
        return "a list"
    return f"{type(v).__name__} {v!r}"
