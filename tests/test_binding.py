"""The one launch binding (spec/binding.py, SPEC.md §1.1, §3.4): what it computes for a launch,
that SPEC's phrase table is LaunchError's, that both backends raise that one class, and that
an interpreter-only conformance run never loads the CUDA backend."""
from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from taskmap.lang import bf16, blockIdx, f16, f32, i32, kernel, register_tensor, shared_tensor, syncthreads, threadIdx
from taskmap.spec import binding
from taskmap.spec import ir
from taskmap.spec.errors import LaunchError

ROOT = pathlib.Path(__file__).resolve().parents[1]


@kernel(grid=lambda m, n: ((n + 31) // 32, m), block=32)
def tiles(m: i32, n: i32, h: f16, g: bf16, a: f32[m, n], out: f32[m, n]):
    tile = shared_tensor(f32, [n + 1])
    acc = register_tensor(f32, [4])
    j = blockIdx.x * 32 + threadIdx.x
    if j < n:
        tile[j] = a[blockIdx.y, j]
    syncthreads()
    acc[0] = f32(h) + f32(g)
    if j < n:
        out[blockIdx.y, j] = tile[j] + acc[0]


def test_a_binding_holds_scalars_shapes_strides_grid_and_block():
    a, out = np.zeros((3, 40), np.float32), np.zeros((3, 40), np.float32)
    b = binding.bind(tiles, (np.int64(3), 40, 0.1, 1 + 2**-8 + 2**-30, a, out))
    assert b.scalars == {"m": 3, "n": 40, "h": float(np.float16(0.1)), "g": 1.0078125}
    assert type(b.scalars["m"]) is int                 # Python values of the parameter's type (§2.4)
    assert (b.grid, b.block) == ((2, 3, 1), (32, 1, 1))
    assert b.shapes == {"a": (3, 40), "out": (3, 40), "tile": (41,), "acc": (4,)}
    assert b.strides == {}
    n = tiles.params[1]
    strided = ir.Buffer("s", f32, (n,), "shared", ir.Strided((ir.binary("+", n, 1),)))
    k = ir.Kernel("k", (n,), (ir.const(1),) * 3, (ir.const(1),) * 3, (ir.DeclareBuffer(strided),))
    assert binding.bind(k, (5,)).strides == {"s": (6,)}
    assert b.written == {"out"} and [p.name for p, _ in b.tensors((3, 40, 0.1, 1.0, a, out))] == ["a", "out"]


def test_interpreter_runs_on_the_bound_geometry():
    rng = np.random.default_rng(0)
    a, out = rng.standard_normal((3, 40)).astype(np.float32), np.zeros((3, 40), np.float32)
    from taskmap import refimpl
    refimpl.interpret(tiles, 3, 40, 0.5, -2.0, a, out)
    np.testing.assert_array_equal(out, a + np.float32(0.5 - 2.0))


def test_spec_phrase_table_is_launch_errors():
    text = (ROOT / "spec" / "SPEC.md").read_text()
    section = text[text.index("3.4 **Arguments.**"):text.index("## 4.")]
    rows = re.findall(r"^\| ([a-z][^|]*?) \| [^|]+ \|$", section, re.M)
    assert tuple(r for r in rows if r != "phrase") == LaunchError.PHRASES


def test_both_backends_raise_the_one_launch_error():
    from taskmap import gpu, refimpl
    assert gpu.LaunchError is LaunchError
    errors = []
    for launch in (refimpl.interpret, gpu.launch):
        with pytest.raises(LaunchError) as info:
            launch(tiles, 3, 40, 0.5, 1.0, np.zeros((3, 41), np.float32), np.zeros((3, 40), np.float32))
        errors.append(str(info.value))
    assert errors[0] == errors[1] and errors[0].startswith("shape mismatch: parameter a of kernel tiles")


def test_interpreter_conformance_run_never_imports_the_gpu_backend():
    cases = ROOT / "conformance" / "cases" / "fold_traps.yaml"
    code = ("import sys\nfrom taskmap.conformance.cli import main\n"
            f"rc = main(['conform', '--backend', 'interp', {str(cases)!r}])\n"
            "print('RESULT', rc, sorted(m for m in sys.modules if m.startswith('taskmap.gpu')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "RESULT 0 []"
