"""`kernel:` references: `path/to/file.py::name` or `path/to/file.py::factory(arg, key=arg)`.

The path is relative to the YAML file. Factory arguments are Python literals or DSL dtype
names (`f16`, `bf16`, ...). Importing the file may itself fail with a DSL error (a kernel
that does not parse): that error is kept and re-raised on every use, so one bad kernel file
fails the cases that use it, not the whole run.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass

from taskmap.spec import dtypes, ir

from .schema import Where

_modules: dict[str, object] = {}          # absolute path -> module, or the exception importing it raised
_kernels: dict[tuple[str, str], object] = {}   # (path, text) -> kernel: one IR object, so backends' caches hit


@dataclass(frozen=True)
class KernelRef:
    path: str             # absolute
    attr: str
    args: tuple
    kwargs: tuple         # ((name, value), ...)
    call: bool            # `factory(...)`: call the attribute to get the kernel
    text: str             # as written, for messages
    where: Where          # the `kernel:` key in the case file

    def load(self):
        """The kernel (or, for DSL-error cases, the plain function) this reference names.
        Raises whatever importing the file or calling the factory raises."""
        key = (self.path, self.text)
        if key not in _kernels:
            module = import_file(self.path)
            if not hasattr(module, self.attr):
                kernels = [n for n, v in vars(module).items() if isinstance(v, ir.Kernel) and not n.startswith("_")]
                raise LookupError(f"{os.path.basename(self.path)} has no {self.attr!r}; its kernels: "
                                  + (", ".join(kernels) or "none"))
            obj = getattr(module, self.attr)
            _kernels[key] = obj(*self.args, **dict(self.kwargs)) if self.call else obj
        return _kernels[key]


def parse_ref(text: str, base_dir: str, where: Where) -> KernelRef:
    path, sep, target = text.partition("::")
    if not sep or not path.endswith(".py") or not target:
        raise where.error(f"kernel reference {text!r} must look like `file.py::name` "
                          "or `file.py::factory(args)`")
    abspath = os.path.normpath(os.path.join(base_dir, path))
    if not os.path.isfile(abspath):
        raise where.error(f"kernel file {path!r} not found (looked for {abspath})")
    try:
        call = ast.parse(target.strip(), mode="eval").body
    except SyntaxError:
        raise where.error(f"cannot parse kernel target {target!r}") from None
    if isinstance(call, ast.Name):
        return KernelRef(abspath, call.id, (), (), False, text, where)
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
        raise where.error(f"kernel target {target!r} must be a name or a call `factory(args)`")
    args = tuple(_literal(a, where) for a in call.args)
    kwargs = tuple((kw.arg, _literal(kw.value, where)) for kw in call.keywords)
    return KernelRef(abspath, call.func.id, args, kwargs, True, text, where)


def _literal(node, where: Where):
    if isinstance(node, ast.Name):
        try:
            return dtypes.by_name(node.id)
        except ValueError as e:
            raise where.error(f"factory argument {node.id!r}: {e}") from None
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise where.error(f"factory arguments must be literals or dtype names, got {ast.unparse(node)!r}") from None


def import_file(path: str):
    """The module at `path` (imported once; a failure is re-raised on every later call)."""
    if path not in _modules:
        name = "taskmap_case_kernels." + os.path.splitext(os.path.basename(path))[0] \
               + "_" + hashlib.sha1(path.encode()).hexdigest()[:8]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
            _modules[path] = module
        except Exception as e:    # noqa: BLE001 — kept and re-raised per case (see module doc)
            del sys.modules[name]
            _modules[path] = e
    result = _modules[path]
    if isinstance(result, Exception):
        raise result
    return result
