"""What a regular (non-editable) install ships: pyproject.toml lists every package by hand
(the folders are mapped into `taskmap` by package-dir, which setuptools' discovery cannot
follow), so a new subpackage or case folder that is not listed would be missing from the
wheel while every editable-install test still passed."""
from __future__ import annotations

import fnmatch
import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def _folder(package: str) -> pathlib.Path:
    """The source folder of `package` under the package-dir mapping (longest prefix wins)."""
    dirs = SETUPTOOLS["package-dir"]
    root = max((p for p in dirs if package == p or package.startswith(p + ".")), key=len)
    return ROOT / dirs[root] / pathlib.Path(*package[len(root):].split(".")[1:])


def test_every_package_folder_is_listed():
    found = set()
    for package, folder in SETUPTOOLS["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            found.add(".".join((package, *init.parent.relative_to(ROOT / folder).parts)))
    listed = set(SETUPTOOLS["packages"])
    assert not found - listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
    assert all(_folder(p).is_dir() for p in listed), "a listed package has no folder"


def test_every_case_file_is_package_data():
    patterns = SETUPTOOLS["package-data"]["taskmap.conformance"]
    folder = _folder("taskmap.conformance")
    shipped = lambda rel: any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(rel, p.replace("**/", ""))
                              for p in patterns)
    cases = [f.relative_to(folder).as_posix() for f in (folder / "cases").rglob("*.yaml")]
    assert cases and all(shipped(c) for c in cases), [c for c in cases if not shipped(c)]
