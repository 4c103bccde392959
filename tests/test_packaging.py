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


DATA_SUFFIXES = (".yaml", ".yml", ".onnxtxt", ".md")      # what the package folders hold besides code


def _data_files() -> dict[str, list[str]]:
    """package -> the data files of its folder, relative to it (a folder's own files only)."""
    out = {}
    for package, folder in SETUPTOOLS["package-dir"].items():
        for f in (ROOT / folder).rglob("*"):
            if f.suffix in DATA_SUFFIXES and "__pycache__" not in f.parts:
                name = ".".join((package, *f.parent.relative_to(ROOT / folder).parts))
                out.setdefault(name, []).append(f.name)
    return out


def test_every_data_folder_is_listed():
    """A folder of case files has no __init__.py, but setuptools still sees an importable
    (namespace) package in it and warns that it will drop it unless `packages` lists it."""
    unlisted = sorted(set(_data_files()) - set(SETUPTOOLS["packages"]))
    assert not unlisted, f"folders with data files missing from `packages` in pyproject.toml: {unlisted}"


def test_every_data_file_is_package_data():
    """Every case file, the ONNX node tests' expected list, the READMEs and SPEC.md ship:
    each matches a package-data pattern of its own package or of a package above it."""
    patterns = SETUPTOOLS["package-data"]
    def shipped(package: str, name: str) -> bool:
        parts = package.split(".")
        for i in range(len(parts), 0, -1):
            rel = "/".join((*parts[i:], name))
            if any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(rel, p.replace("**/", ""))
                   for p in patterns.get(".".join(parts[:i]), ())):
                return True
        return False
    files = _data_files()
    assert sum(len(v) for k, v in files.items() if k.startswith("taskmap.conformance.cases")) >= 20
    missing = [f"{k}: {n}" for k, names in sorted(files.items()) for n in names if not shipped(k, n)]
    assert not missing, f"data files no package-data pattern in pyproject.toml ships: {missing}"


def test_ci_runs_the_readme_test_command():
    """README.md promises its test command is exactly what .ci/run runs."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line.split("&&")[-1].strip() for line in readme.splitlines() if "python -m pytest -q -m" in line]
    assert len(commands) == 1, commands
    assert f"{commands[0]} || status=$?" in ci, commands[0]
