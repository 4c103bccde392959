"""nvcc -> cubin, cached on disk, with errors mapped back to the DSL source.

Cache key: the source, the options, the target arch and nvcc's version. Entries are written
atomically (temp file + rename) and an entry that is not an ELF image is rebuilt.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable

from taskmap.spec.errors import TaskmapError

from .emit import Emitted, emit_kernel
from .emit_wgmma import ARCH_MARK

# SPEC §2.3: no FMA contraction, IEEE division and square root (no fast-math).
OPTIONS = ("-O3", "-std=c++17", "--fmad=false", "-prec-div=true", "-prec-sqrt=true", "-lineinfo")
_ELF = b"\x7fELF"


class CompileError(TaskmapError):
    """nvcc rejected emitted CUDA; the message holds nvcc's text, the CUDA line and the DSL line."""
    phrase = "CUDA compilation failed"


def nvcc() -> str | None:
    found = shutil.which("nvcc")
    home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH") or "/usr/local/cuda"
    fallback = Path(home) / "bin" / "nvcc"
    return found or (str(fallback) if fallback.exists() else None)


@functools.cache
def nvcc_version() -> str:
    exe = nvcc()
    if exe is None:
        raise CompileError("CUDA compilation failed: nvcc not found (install the CUDA toolkit or set CUDA_HOME)")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1]


def cache_dir() -> Path:
    root = os.environ.get("TASKMAP_CACHE") or Path.home() / ".cache" / "taskmap"
    path = Path(root) / "cubin"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_path(source: str, arch: str, options=OPTIONS) -> Path:
    key = hashlib.sha256("\0".join([source, arch, *options, nvcc_version()]).encode()).hexdigest()
    return cache_dir() / f"{key[:40]}.cubin"


def cubin(source: str, arch: str, options=OPTIONS) -> bytes:
    """Compile `source` for `arch` (e.g. "sm_90"), or return the cached image."""
    path = cache_path(source, arch, options)
    if path.exists():
        data = path.read_bytes()
        if data.startswith(_ELF):
            return data
        path.unlink(missing_ok=True)           # corrupt entry: rebuild
    data = run_nvcc(source, arch, options)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return data


def _compile_one(source: str, arch: str) -> None:
    try:
        cubin(source, arch)
    except CompileError:
        pass                    # reported, explained at its DSL line, when the kernel is loaded


def compile_ahead(sources, arch: str, progress: Callable[[str], None] | None = None) -> int:
    """Compile every source not yet in the cubin cache, in parallel processes (nvcc is the slow
    part of building a program or tuning); returns how many were compiled. `progress` gets
    "compiling n/N kernels" after each. A source nvcc rejects is left out of the cache, so loading
    its kernel compiles it again and raises the CompileError with its DSL line."""
    missing = sorted({s for s in sources if not cache_path(s, arch).exists()})
    if not missing:
        return 0
    with ProcessPoolExecutor(max_workers=min(len(missing), os.cpu_count() or 1)) as pool:
        futures = [pool.submit(_compile_one, s, arch) for s in missing]
        for n, _ in enumerate(as_completed(futures), 1):
            if progress is not None:
                progress(f"compiling {n}/{len(missing)} kernels for {arch}")
    return len(missing)


def target_arch(source: str, arch: str) -> str:
    """The arch to compile `source` for on a device of `arch`: its arch-specific variant (sm_90a)
    when the source uses instructions only that variant has (wgmma: gpu/emit_wgmma.py)."""
    return f"{arch}a" if ARCH_MARK in source and arch == "sm_90" else arch


def run_nvcc(source: str, arch: str, options=OPTIONS, output: str = "cubin") -> bytes:
    arch = target_arch(source, arch)
    exe = nvcc()
    nvcc_version()                              # raises the one-line reason when nvcc is absent
    with tempfile.TemporaryDirectory(prefix="taskmap-nvcc-") as d:
        src, out = Path(d) / "kernel.cu", Path(d) / f"kernel.{output}"
        src.write_text(source)
        cmd = [exe, f"-arch={arch}", f"-{output}", *options, "-o", str(out), str(src)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise CompileError(f"CUDA compilation failed (nvcc exit {res.returncode}):\n{res.stderr.strip()}")
        return out.read_bytes()


def compile_kernel(kernel, arch: str) -> tuple[Emitted, bytes]:
    """Emit and compile one kernel; on failure explain each nvcc error at its DSL line."""
    emitted = emit_kernel(kernel)
    try:
        return emitted, cubin(emitted.source, arch)
    except CompileError as e:
        plain = emit_kernel(kernel, line_directives=False)
        try:
            run_nvcc(plain.source, arch)
        except CompileError as again:
            raise CompileError(explain(again, plain)) from None
        raise e from None


_DIAG = re.compile(r"kernel\.cu\((\d+)\): (error|warning)[^:]*: (.*)")


def explain(error: CompileError, emitted: Emitted) -> str:
    """nvcc's message plus, per diagnostic, the emitted CUDA line and the DSL line it came from."""
    lines = emitted.source.splitlines()
    notes = []
    for m in _DIAG.finditer(str(error)):
        n = int(m.group(1))
        loc = emitted.loc_of_line(n)
        cuda = lines[n - 1].strip() if 0 < n <= len(lines) else "?"
        where = f"{loc}" if loc else f"kernel {emitted.name} (no DSL location)"
        notes.append(f"{where}: {m.group(2)}: {m.group(3)}\n    CUDA line {n}: {cuda}")
    head = f"CUDA compilation failed for kernel {emitted.name}"
    return "\n".join([head, *notes, "nvcc said:", str(error).split("\n", 1)[-1]])
