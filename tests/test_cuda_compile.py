"""nvcc compiles the emitted CUDA of every example kernel, every conformance kernel that
verifies, and the GPU benchmark kernels (one translation unit, `nvcc -arch=sm_90 -cubin`);
compile errors name the DSL line; the cubin cache is atomic and self-repairing."""
from __future__ import annotations

import dataclasses
import importlib
import pathlib

import pytest

from taskmap.gpu import build as cc
from taskmap.gpu.emit import cuda_source
from taskmap.spec import ir
from taskmap.spec.errors import TaskmapError

ROOT = pathlib.Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(cc.nvcc() is None, reason="nvcc not found")


def _dsl_files():
    files = sorted((ROOT / "examples").glob("*.py")) + sorted((ROOT / "conformance").rglob("*.py"))
    return [f for f in files if "taskmap.lang" in f.read_text()] + [ROOT / "gpu" / "bench.py"]


def _kernels_of(path: pathlib.Path) -> list[ir.Kernel]:
    module = importlib.import_module(".".join(("taskmap", *path.relative_to(ROOT).with_suffix("").parts)))
    found = []
    for v in vars(module).values():
        for k in (v.values() if isinstance(v, dict) else [v]):
            if isinstance(k, ir.Kernel) and all(k is not f for f in found):
                found.append(k)
    return found


def _valid(k: ir.Kernel) -> bool:
    try:
        k.verify()
        return True
    except TaskmapError:
        return False                # the invalid-kernel catalogues: nothing to compile


def all_kernels() -> list[ir.Kernel]:
    out = []
    for path in _dsl_files():
        out += [k for k in _kernels_of(path) if _valid(k)]
    return out


def assert_compile_for_sm90(kernels):
    """nvcc compiles `kernels` as one translation unit (renamed apart); on failure the message
    holds each failing kernel's own compile error."""
    unique = tuple(dataclasses.replace(k, name=f"{k.name}_{i}") for i, k in enumerate(kernels))
    source = cuda_source(ir.Module("all", unique))
    try:
        image = cc.run_nvcc(source, "sm_90")
    except cc.CompileError:
        failing = []
        for k in kernels:                      # find the culprits with per-kernel messages
            try:
                cc.compile_kernel(k, "sm_90")
            except cc.CompileError as e:
                failing.append(str(e))
        pytest.fail("\n\n".join(failing) or "the combined translation unit failed to compile")
    assert image.startswith(b"\x7fELF")
    return unique, image


def test_every_example_and_conformance_kernel_compiles_for_sm90():
    kernels = all_kernels()
    names = {k.name for k in kernels}
    assert {"transpose", "reduce_sum", "matmul_fma", "copy_f32"} <= names, names
    unique, image = assert_compile_for_sm90(kernels)
    _assert_parameter_layouts(unique, image)


def _assert_parameter_layouts(kernels, image):
    """The argument buffer gpu.runtime packs follows the compiler's parameter layout: natural
    alignment for plain parameters (struct's own rule, independent of the cubin reader), and
    padding in front of the first TMA tensor map, which the compiler aligns in the constant bank."""
    from taskmap.gpu.cubin_params import packing_format, param_offsets
    from taskmap.gpu.emit import emit_kernel
    from taskmap.gpu.runtime import parameter_codes
    with_maps = 0
    for k in kernels:
        maps = len(emit_kernel(k).tensor_maps)
        codes = parameter_codes(k, maps)
        got = packing_format(codes, param_offsets(image, k.name))
        if maps:
            with_maps += 1
            assert got.startswith("48x128s"), (k.name, got)       # sm_90's constant bank puts map 0 at 0x30
        else:
            assert got == "".join(codes), (k.name, got)
    assert with_maps >= 2


def test_nvcc_errors_name_the_dsl_line_and_the_cuda_line():
    from taskmap.lang import i8, kernel, mma_sync, register_tensor, threadIdx

    @kernel(grid=1, block=32, verify=False)
    def int_mma(out: i8[32]):
        a = register_tensor(i8, [8])
        b = register_tensor(i8, [4])
        acc = register_tensor(i8, [4])
        mma_sync(a, b, acc)                    # no tensor-core form for i8 fragments
        out[threadIdx.x] = acc[0]

    with pytest.raises(cc.CompileError) as info:
        cc.compile_kernel(int_mma, "sm_90")
    text = str(info.value)
    mma_line = next(n.loc.line for n in ir.walk(int_mma) if isinstance(n, ir.MmaSync))
    assert f"{__file__}:{mma_line}:" in text
    assert "CUDA line" in text and "tm_mma_m16n8k16(a, b, acc);" in text
    assert "nvcc said:" in text


def test_cubin_cache_is_reused_and_repairs_corrupt_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("TASKMAP_CACHE", str(tmp_path))
    source = 'extern "C" __global__ void k(int* a) { a[threadIdx.x] = 1; }\n'
    first = cc.cubin(source, "sm_90")
    path = cc.cache_path(source, "sm_90")
    assert path.read_bytes() == first and not list(tmp_path.rglob("*.tmp"))

    def no_nvcc(*args, **kwargs):
        raise AssertionError("nvcc ran although the cache holds the cubin")
    monkeypatch.setattr(cc, "run_nvcc", no_nvcc)
    assert cc.cubin(source, "sm_90") == first
    monkeypatch.undo()
    monkeypatch.setenv("TASKMAP_CACHE", str(tmp_path))
    path.write_bytes(b"garbage")
    rebuilt = cc.cubin(source, "sm_90")
    assert rebuilt.startswith(b"\x7fELF") and path.read_bytes() == rebuilt
    assert cc.cache_path(source, "sm_80") != path       # the arch is part of the key


@pytest.mark.slow
def test_every_kernel_of_the_built_in_models_compiles_for_sm90():
    """What backend="cuda" emits for each reduced model (frontends.onnx_models.REDUCED), at
    batch 2, one translation unit."""
    pytest.importorskip("onnx")
    import taskmap
    from taskmap.frontends import onnx_models
    kernels, seen = [], set()
    for name, builder in onnx_models.REDUCED.items():
        prog = taskmap.compile(builder(), dims={"N": 2})
        for k in prog.kernels:
            text = str(k)
            if text not in seen:
                seen.add(text)
                kernels.append(k)
    assert len(kernels) > 10
    assert_compile_for_sm90(kernels)


def test_wgmma_kernels_build_for_sm90a_and_others_for_sm90():
    """wgmma exists only on the arch-specific target: a translation unit using it compiles for
    sm_90a on an sm_90 device (nvcc rejects it for sm_90), every other one for the device's arch."""
    from taskmap.conformance.kernels import wgmmas
    from taskmap.examples.vector_add import vector_add
    from taskmap.gpu import emit_wgmma
    with_wgmma, without = cuda_source(wgmmas.wgmma_gemm_sw32_n16), cuda_source(vector_add)
    assert cc.target_arch(with_wgmma, "sm_90") == "sm_90a"
    assert cc.target_arch(without, "sm_90") == "sm_90"
    assert cc.target_arch(with_wgmma, "sm_100") == "sm_100"
    if cc.nvcc() is None:
        pytest.skip("nvcc not installed")
    assert cc.run_nvcc(with_wgmma, "sm_90").startswith(b"\x7fELF")
    plain = with_wgmma.replace(emit_wgmma.ARCH_MARK, "")     # the same code, compiled for plain sm_90
    with pytest.raises(cc.CompileError, match="not supported on .target 'sm_90'"):
        cc.run_nvcc(plain, "sm_90")


def test_the_simt_matmul_keeps_its_register_tensors_in_registers():
    """The default SIMT point's fragment and accumulator indices are task indices composed of
    several mapping levels (`(((r·8 + w)·2 + h)·4 + s) / 64`); simplify_divmod in the CUDA
    pipeline makes them constants after unrolling, so ptxas keeps the 8×8 accumulators in
    registers (before it: a 320-byte stack frame and a third of the throughput)."""
    import subprocess
    import tempfile
    from taskmap.lang import f32
    from taskmap.refimpl.schedules import schedule
    k = schedule("matmul", [f32[512, 512], f32[512, 512]], {}).kernels[0]     # then split-K's epilogue
    assert k.name.startswith("matmul_simt_128x128x8_w8x1"), k.name
    with tempfile.TemporaryDirectory() as d:
        src = pathlib.Path(d, "k.cu")
        src.write_text(cuda_source(k))
        res = subprocess.run([cc.nvcc(), "-cubin", "-arch=sm_90", *cc.OPTIONS, "-Xptxas", "-v", str(src),
                              "-o", str(pathlib.Path(d, "k.cubin"))], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "0 bytes stack frame" in res.stderr, res.stderr
