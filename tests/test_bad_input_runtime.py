"""Bad runtime input: every wrong argument of `interpret`, `gpu.launch` and `empty` is one
clear `LaunchError` (SPEC.md §3.4) naming its phrase, the parameter and its DSL line — the
same error from both backends, raised before anything runs (gpu.launch binds its arguments
before it needs a device, so its rows run here without one)."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from taskmap import gpu, refimpl
from taskmap.lang import bf16, blockIdx, boolean, f16, f32, i32, kernel, shared_tensor, threadIdx, u32
from taskmap.spec import ir
from taskmap.spec.errors import LaunchError, TaskmapError


@kernel(grid=lambda n: (n + 127) // 128, block=128)
def axpy(n: i32, alpha: f32, x: f32[n], y: f32[n]):
    i = blockIdx.x * 128 + threadIdx.x
    if i < n:
        y[i] = alpha * x[i] + y[i]


@kernel(grid=1, block=32)
def fill(n: i32, flag: boolean, count: u32, h: f16, a: f32[n], b: bf16[n]):
    i = threadIdx.x
    if flag and i < n:
        a[i] = f32(h) + f32(count)
        b[i] = bf16(a[i])


@kernel(grid=lambda n, d: n // d, block=lambda t: (1, 1, t))
def shaped(n: i32, d: i32, t: i32, a: f32[n]):
    a[blockIdx.x] = 1.0


@kernel(grid=1, block=32)
def halves(n: i32, d: i32, a: f32[n], b: f32[n // d]):
    a[threadIdx.x] = 1.0


def _local_shape():
    """A shared tensor sized by a local: the verifier rejects it, so built with verify=False."""
    @kernel(grid=1, block=32, verify=False)
    def local_shape(n: i32, a: f32[n]):
        k = n + 1
        t = shared_tensor(f32, [k])
        t[threadIdx.x] = 1.0
    return local_shape


local_shape = _local_shape()


def z(n, dtype=np.float32):
    return np.zeros(n, dtype)


def readonly(a):
    a.setflags(write=False)
    return a


def fill_args(**changes):
    args = dict(n=4, flag=True, count=3, h=0.5, a=z(4), b=z(4, np.uint16)) | changes
    return tuple(args.values())


AXPY = dict(n=10, alpha=2.0, x=z(10), y=z(10))


def axpy_args(**changes):
    return tuple((AXPY | changes).values())


# id -> (kernel, args, phrase, parameter named (None: the kernel), text the message holds)
LAUNCHES = {
    "not-a-kernel": (print, (1,), "not a kernel", None, "takes a kernel (a function decorated with @kernel)"),
    "kernel-called-with-a-string": ("axpy", (), "not a kernel", None, "got str 'axpy'"),
    "too-few-arguments": (axpy, (10, 2.0, z(10)), "wrong number of arguments", None,
                          "kernel axpy(n, alpha, x, y) takes 4 arguments, got 3"),
    "too-many-arguments": (axpy, axpy_args() + (1,), "wrong number of arguments", None, "got 5"),
    "float-for-i32": (axpy, axpy_args(n=10.0), "dtype mismatch", "n", "expects a i32 scalar, got float 10.0"),
    "bool-for-i32": (axpy, axpy_args(n=True), "dtype mismatch", "n", "got bool True"),
    "string-for-f32": (axpy, axpy_args(alpha="2"), "dtype mismatch", "alpha", "expects a f32 scalar, got str"),
    "int-for-bool": (fill, fill_args(flag=1), "dtype mismatch", "flag", "expects a bool scalar"),
    "none-for-f16": (fill, fill_args(h=None), "dtype mismatch", "h", "got NoneType None"),
    "i32-beyond-range": (axpy, axpy_args(n=2**31), "scalar out of range", "n", "2147483648 lies outside"),
    "negative-u32": (fill, fill_args(count=-1), "scalar out of range", "count", "[0, 4294967295]"),
    "numpy-u32-beyond-range": (fill, fill_args(count=np.int64(2**32)), "scalar out of range", "count", "u32"),
    "f32-overflows-to-inf": (axpy, axpy_args(alpha=1e39), "scalar out of range", "alpha", "would round to infinity in f32"),
    "f16-overflows-to-inf": (fill, fill_args(h=70000.0), "scalar out of range", "h", "is f16"),
    "list-for-tensor": (axpy, axpy_args(x=[0.0] * 10), "dtype mismatch", "x", "expects a NumPy array of float32, "
                                                                               "got list"),
    "float64-array": (axpy, axpy_args(x=z(10, np.float64)), "dtype mismatch", "x", "got float64"),
    "float32-array-for-bf16": (fill, fill_args(b=z(4)), "dtype mismatch", "b", "uint16 (bf16 bit patterns)"),
    "wrong-shape": (axpy, axpy_args(y=z(11)), "shape mismatch", "y", "expects shape (10,) from (n), got (11,)"),
    "2d-array-for-1d": (axpy, axpy_args(y=z((2, 5))), "shape mismatch", "y", "got (2, 5)"),
    "strided-view": (axpy, axpy_args(x=z(20)[::2]), "non-contiguous array", "x", "np.ascontiguousarray"),
    "read-only-output": (axpy, axpy_args(y=readonly(z(10))), "read-only output", "y", "is written by the kernel"),
    "negative-size": (fill, fill_args(n=-4), "invalid tensor shape", "a", "shape (n) = (-4,) for these arguments"),
    "empty-grid": (axpy, axpy_args(n=0, x=z(0), y=z(0)), "invalid launch configuration", None,
                   "grid (0, 1, 1) and block (128, 1, 1)"),
    "too-many-threads": (shaped, (4, 2, 2048, z(4)), "invalid launch configuration", None,
                         "has 2048 threads, over the limit of 1024 by 1024"),
    "block-z-over-64": (shaped, (4, 2, 65, z(4)), "invalid launch configuration", None,
                        "block.z = 65 for these arguments, over CUDA's limit of 64"),
    "grid-divides-by-zero": (shaped, (4, 0, 32, z(4)), "invalid launch configuration", None,
                             "grid.x = `n / d` traps for these arguments (integer divide by zero"),
    "shape-divides-by-zero": (halves, (4, 0, z(4), z(1)), "invalid launch configuration", "b",
                              "parameter b of kernel halves has extent `n / d`, which traps for these arguments"),
    "shape-reads-a-local": (local_shape, (4, z(4)), "invalid launch configuration", "t",
                            "has extent `k`, which uses `k`; launch dimensions and tensor shapes are expressions"),
}
BACKENDS = {"interp": refimpl.interpret, "cuda": gpu.launch}


def _location(err: LaunchError, k, param):
    """The DSL line the error names: the parameter's, or the kernel's."""
    if not isinstance(k, ir.Kernel):
        return None
    named = next((n for n in ir.walk(k) if isinstance(n, (ir.Var, ir.Buffer)) and n.name == param), None)
    return (named.loc if named is not None else None) or k.loc


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", LAUNCHES.values(), ids=LAUNCHES.keys())
def test_bad_launch_arguments_are_one_clear_error(case, backend):
    k, args, phrase, param, text = case
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # no NumPy RuntimeWarning leaks (1e39 -> inf)
        with pytest.raises(LaunchError) as info:
            BACKENDS[backend](k, *args)
    err = info.value
    assert err.phrase == phrase and str(err).startswith(phrase + ": ")
    assert err.param == param and text in str(err)
    if param is not None:
        assert f" {param} of kernel {k.name} " in str(err)
    loc = _location(err, k, param)
    assert err.loc == loc
    if loc is not None:
        assert f"({os.path.basename(loc.file)}:{loc.line})" in str(err)
    assert "Traceback" not in str(err) and "\n" not in str(err)


ARRAYS = {
    "unknown-dtype-name": ((4, "float33"), "dtype mismatch", "dtype", "unknown dtype 'float33'; expected one of"),
    "ambiguous-uint16": ((4, np.uint16), "dtype mismatch", "dtype", "pass bfloat16 data with dtype=bf16"),
    "not-a-dtype": ((4, 3.5), "dtype mismatch", "dtype", "empty(dtype=3.5)"),
    "no-dtype": ((4, None), "dtype mismatch", "dtype", "give the element type"),
    "negative-extent": ((-4, "f32"), "invalid tensor shape", "shape", "empty(shape=-4): extents must be >= 0"),
    "negative-in-a-tuple": (((2, -1), f32), "invalid tensor shape", "shape", "empty(shape=(2, -1))"),
    "fractional-extent": (((2, 2.5), f32), "invalid tensor shape", "shape", "a tuple of integers"),
}


@pytest.mark.parametrize("case", ARRAYS.values(), ids=ARRAYS.keys())
def test_bad_empty_arguments_name_the_argument(case):
    args, phrase, param, text = case
    with pytest.raises(LaunchError) as info:
        refimpl.empty(*args)
    assert (info.value.phrase, info.value.param) == (phrase, param) and text in str(info.value)


def test_valid_edge_arguments_are_accepted():
    """The other side of the table: inf, the largest finite f32, NumPy scalars, a read-only
    input, empty() by name, by DType and by NumPy dtype."""
    x = readonly(np.arange(10, dtype=np.float32))
    for alpha in (np.float32("inf"), 3.4e38, np.float64(-2.5)):
        out = z(10)
        with np.errstate(invalid="ignore", over="ignore"):
            want = np.float32(alpha) * x + out
        refimpl.interpret(axpy, np.int32(10), alpha, x, out)
        np.testing.assert_array_equal(out, want)
    assert refimpl.empty((2, 3), bf16).dtype == np.uint16 and refimpl.empty(np.int64(3), "i32").shape == (3,)
    assert refimpl.empty([4], np.float16).dtype == np.float16


def test_gpu_launch_without_a_gpu_says_how_to_install():
    if gpu.available():
        pytest.skip("a GPU is available here")
    with pytest.raises(gpu.Unavailable) as info:
        gpu.launch(axpy, *axpy_args())
    assert isinstance(info.value, TaskmapError)
    if str(info.value).startswith("pycuda"):
        assert "pip install -e '.[gpu]'" in str(info.value)


def test_every_launch_phrase_has_a_row():
    rows = {case[2] for case in LAUNCHES.values()} | {case[1] for case in ARRAYS.values()}
    assert rows == set(LaunchError.PHRASES)
