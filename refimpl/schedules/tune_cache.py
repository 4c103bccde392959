"""The tuner's disk cache: one JSON file per (operator, input shapes, dtypes, attributes,
template, arch, taskmap version) under $TASKMAP_CACHE/tuned (default ~/.cache/taskmap/tuned).

Entries are written to a temporary name then renamed, so a reader sees a whole entry or none
and concurrent tuners each leave a valid one. An entry that does not parse, holds another key
or names a point no longer in the template's space is ignored: the lookup misses.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path

from .template import Template

ARCH = "sm_90"            # the arch of space.SM90, which pruned the spaces


def cached_point(op_name: str, types, attrs: dict, template: Template, arch: str = ARCH):
    """The cached tuned point at these (checked) types and attributes, or None."""
    return lookup_key(cache_key(op_name, types, attrs, template, arch), template)


def cache_dir() -> Path:
    root = os.environ.get("TASKMAP_CACHE") or Path.home() / ".cache" / "taskmap"
    return Path(root) / "tuned"


def cache_key(op_name: str, types, attrs: dict, template: Template, arch: str) -> dict:
    return {"operator": op_name, "shapes": [list(t.shape) for t in types], "dtypes": [t.dtype.short for t in types],
            "attrs": repr(sorted(attrs.items())), "template": template.name, "arch": arch, "version": _version()}


def entry_path(key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return cache_dir() / f"{key['operator']}-{digest[:32]}.json"


def lookup_key(key: dict, template: Template):
    try:
        entry = json.loads(entry_path(key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != key:
        return None                              # a foreign entry (another key under this name)
    return next((p for p in template.space if repr(p) == entry.get("point")), None)


def store(key: dict, point, seconds: float) -> None:
    path = entry_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"key": key, "point": repr(point), "seconds": seconds}, f)
    os.replace(tmp, path)


@functools.cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("taskmap")
    except PackageNotFoundError:
        return "unknown"
