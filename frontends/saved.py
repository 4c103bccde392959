"""Saved programs: `prog.save(path)` and `taskmap.load(path)`, format "taskmap-program" version 1.

The file is a zip archive (docs/GRAPH.md shows an example):

    manifest.json           format, version, the taskmap version that wrote it, backend, arch
                            (cuda), name, inputs (symbolic shapes), dims (the default binding),
                            symbolic (the graph every binding is specialized from; null for a
                            model imported once per binding), and per binding built so far:
                            dims, graph (its static graph after the passes), kernels ([step,
                            kernel, IR digest, code digest] per launch, in launch order) and
                            memory (arena peak and the offset of every buffer)
    constants/DIGEST.npy    every constant array once (NumPy .npy, no pickles)
    cuda/DIGEST.cubin       cuda: each distinct kernel's cubin for `arch` (DIGEST: the code digest
    cuda/DIGEST.cu          of gpu.emit.Emitted), and its CUDA source, for reading

Loading needs neither the model nor nvcc: each saved binding is rebuilt from its graph (the
schedules run again, in Python) and must give exactly the saved kernels and memory plan, whose
cubins then load from the file. A file of another format version, of another GPU architecture,
or written by a taskmap whose schedules give other kernels is refused with what to do instead.
A binding not in the file is specialized from the symbolic graph (compiling kernels the file
does not hold), or refused for a model imported once per binding.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from taskmap.spec.errors import TaskmapError
from taskmap.spec.graph import GraphError, Value
from taskmap.spec.graph.passes import PIPELINE, infer_shapes, run
from taskmap.spec.graph.serialize import from_data, to_data, type_data, type_from_data
from taskmap.spec.printer import print_kernel

FORMAT, VERSION = "taskmap-program", 1


class SavedProgramError(TaskmapError):
    """A file `load` cannot run: not a saved program, another version or arch, other kernels."""
    phrase = "cannot load the saved program"


def save(prog, path) -> None:
    arrays, bindings, images, sources = {}, [], {}, {}
    symbolic = None
    if prog.symbolic is not None:
        symbolic, found = to_data(prog.symbolic)
        arrays.update(found)
    arch = None
    for dims in prog.bindings:
        exe = prog.executable(dims)
        data, found = to_data(exe.graph)
        arrays.update(found)
        bindings.append({"dims": dims, "graph": data, "kernels": kernel_list(exe),
                         "memory": {"peak": exe.memory.peak, "offsets": [list(o) for o in exe.memory.offsets]}})
        if prog.backend == "cuda":
            images.update(exe.images)
            sources.update(exe.sources)
            arch = exe.arch
    manifest = {"format": FORMAT, "version": VERSION, "taskmap": _version(), "backend": prog.backend, "arch": arch,
                "name": prog.name, "inputs": [[v.name, *type_data(v.type, v.name)] for v in prog.inputs],
                "dims": prog.dims, "fusion": prog.fusion, "symbolic": symbolic, "bindings": bindings,
                "tune": prog.tune and "cached"}       # loading rebuilds at the cached points, tuning nothing
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", json.dumps(manifest, indent=1))
        for digest, a in arrays.items():
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
            z.writestr(f"constants/{digest}.npy", buf.getvalue())
        for digest, image in images.items():
            z.writestr(f"cuda/{digest}.cubin", image)
            z.writestr(f"cuda/{digest}.cu", sources[digest])
    tmp.replace(path)                       # a reader never sees half a file


def kernel_list(exe) -> list[list[str]]:
    """[step, kernel, IR digest, code digest (cuda) or None] per launch, in launch order."""
    code = getattr(exe, "code_digest", None)
    return [[s.name, launch.kernel.name, hashlib.sha256(print_kernel(launch.kernel).encode()).hexdigest()[:32],
             code(launch.kernel) if code else None] for s in exe.steps for launch in s.plan.launches]


def load(path, progress=None):
    """The CompiledModel saved at `path` (SavedProgramError when it cannot run here)."""
    from .compiler import CompiledModel, _terminal
    path = Path(path)
    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise SavedProgramError(f"{path}: not a saved taskmap program ({e}); write one with prog.save(path)") from None
    with z:
        manifest = _manifest(z, path)
        backend, arch = manifest["backend"], manifest["arch"]
        if backend == "cuda":
            _check_device(path, arch)
        arrays = {Path(n).stem: np.load(io.BytesIO(z.read(n)), allow_pickle=False)
                  for n in z.namelist() if n.startswith("constants/")}
        images = {Path(n).stem: z.read(n) for n in z.namelist() if n.endswith(".cubin")}
    symbolic = from_data(manifest["symbolic"], arrays) if manifest["symbolic"] else None
    saved = {_key(b["dims"]): b for b in manifest["bindings"]}
    graphs = {key: from_data(b["graph"], arrays) for key, b in saved.items()}

    def specialize(dims):
        key = _key(dims)
        if key in graphs:
            return graphs[key]
        if symbolic is None:
            raise GraphError(f"{manifest['name']}: saved for {', '.join(map(str, map(dict, graphs)))} only; its shapes "
                             f"depend on its symbols, so {dims} needs the model: compile it from the ONNX file")
        return run(PIPELINE, infer_shapes(symbolic, dims))

    def expect(dims, exe):
        b = saved.get(_key(dims))
        if b is None:
            return
        got, want = [k[:3] for k in kernel_list(exe)], [k[:3] for k in b["kernels"]]    # the code digest: cuda only
        memory = [exe.memory.peak, [list(o) for o in exe.memory.offsets]]
        if got != want or memory != [b["memory"]["peak"], b["memory"]["offsets"]]:
            first = next((f"step {w[0]} kernel {w[1]}" for g, w in zip(got, want) if g != w), "the memory plan")
            raise SavedProgramError(f"{path}: {first} of binding {dims} is not what this taskmap builds (the file was "
                                    f"written by taskmap {manifest['taskmap']}, whose schedules differ); compile the "
                                    "model again")

    inputs = [Value(n, type_from_data(t, s)) for n, t, s in manifest["inputs"]]
    prog = CompiledModel(manifest["name"], inputs, specialize, manifest["dims"], backend, progress or _terminal,
                         symbolic, images, expect, fusion=manifest.get("fusion", False),
                         tune=manifest.get("tune"))
    for key in saved:
        prog.executable(dict(key))
    return prog


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("taskmap")
    except PackageNotFoundError:            # a source tree that was never installed
        return "0+unknown"


def _key(dims: dict) -> tuple:
    return tuple(sorted((k, int(v)) for k, v in dims.items()))


def _manifest(z: zipfile.ZipFile, path: Path) -> dict:
    try:
        manifest = json.loads(z.read("manifest.json"))
    except (KeyError, ValueError) as e:
        raise SavedProgramError(f"{path}: not a saved taskmap program (no readable manifest.json: {e})") from None
    if manifest.get("format") != FORMAT:
        raise SavedProgramError(f"{path}: format {manifest.get('format')!r}, not a saved taskmap program")
    if manifest.get("version") != VERSION:
        raise SavedProgramError(f"{path}: format version {manifest.get('version')} (written by taskmap "
                                f"{manifest.get('taskmap')}); this taskmap reads version {VERSION}: compile the "
                                "model again")
    if manifest.get("backend") not in ("interp", "cuda"):
        raise SavedProgramError(f"{path}: unknown backend {manifest.get('backend')!r}")
    return manifest


def _check_device(path: Path, arch: str) -> None:
    from taskmap.gpu import unavailable_reason
    reason = unavailable_reason()
    if reason:
        raise SavedProgramError(f"{path}: a cuda program, and {reason}; save it from a program compiled with "
                                "backend='interp' to run it here")
    from taskmap.gpu.runtime import device_limits
    here = device_limits()["arch"]
    if here != arch:
        raise SavedProgramError(f"{path}: compiled for {arch}, this GPU is {here} ({device_limits()['name']}); "
                                "compile the model again on this GPU")
