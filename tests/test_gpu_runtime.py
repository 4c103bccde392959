"""The pycuda runtime on a real device: argument kinds, launch checks, dynamic shared memory,
CUDA graphs, timing. Expected values come from NumPy."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from taskmap.spec import dtypes as dt
from taskmap.lang import bf16, blockIdx, f16, f32, i32, kernel, shared_tensor, syncthreads, threadIdx

pytestmark = pytest.mark.gpu
ROOT = pathlib.Path(__file__).resolve().parents[1]


@kernel(grid=lambda n: (n + 127) // 128, block=128)
def axpy(n: i32, alpha: f32, x: f32[n], y: f32[n]):
    i = blockIdx.x * 128 + threadIdx.x
    if i < n:
        y[i] = alpha * x[i] + y[i]


@kernel(grid=1, block=lambda t: t)
def reverse_dynamic(t: i32, n: i32, a: f32[n], b: f32[n]):
    """A dynamically sized shared tile (n floats): b = reversed a."""
    tile = shared_tensor(f32, [n])
    for i in range(threadIdx.x, n, t):
        tile[i] = a[i]
    syncthreads()
    for i in range(threadIdx.x, n, t):
        b[i] = tile[n - 1 - i]


@kernel(grid=1, block=256)
def scale_halves(h: f16, g: bf16, x: f16[256], y: bf16[256]):
    x[threadIdx.x] = x[threadIdx.x] * h
    y[threadIdx.x] = y[threadIdx.x] * g


@kernel(grid=1, block=32)
def increment(a: i32[32]):
    a[threadIdx.x] = a[threadIdx.x] + 1


def test_numpy_launch_copies_back_into_the_same_arrays():
    from taskmap import gpu
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(1000).astype(np.float32), rng.standard_normal(1000).astype(np.float32)
    want = (np.float32(0.5) * x) + y             # two roundings: SPEC §2.3 forbids contraction
    gpu.launch(axpy, 1000, 0.5, x, y)
    np.testing.assert_array_equal(y, want)


def test_a_launch_from_a_new_thread_makes_the_context_current_there():
    """A context is current per thread (autograd runs torch's backward in threads of its own)."""
    import threading
    from taskmap import gpu
    x, y = np.arange(300, dtype=np.float32), np.ones(300, np.float32)
    gpu.launch(axpy, 300, 1.0, x, y)                 # the context made current in this thread
    errors = []

    def other():
        try:
            gpu.launch(axpy, 300, 2.0, x, y)
        except Exception as e:  # noqa: BLE001 — reported below, in the test's thread
            errors.append(e)
    for _ in range(3):                  # each thread pops what it pushed when it ends (pycuda aborts if not)
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert not errors, errors
    np.testing.assert_array_equal(y, 1 + 7 * np.arange(300, dtype=np.float32))


def test_half_scalars_are_passed_by_value():
    from taskmap import gpu
    x = np.arange(256, dtype=np.float16)
    y = dt.to_bf16_bits(np.arange(256, dtype=np.float32))
    gpu.launch(scale_halves, 1.5, -2.0, x, y)
    np.testing.assert_array_equal(x, (np.arange(256) * 1.5).astype(np.float16))
    np.testing.assert_array_equal(dt.from_bf16_bits(y), dt.from_bf16_bits(dt.to_bf16_bits(np.arange(256) * -2.0)))


def test_device_arrays_torch_tensors_and_raw_pointers_run_without_copies():
    from taskmap import gpu
    import pycuda.gpuarray as gpuarray
    torch = pytest.importorskip("torch")
    ck = gpu.compile(axpy)
    x = np.arange(300, dtype=np.float32)
    gx, gy = gpuarray.to_gpu(x), gpuarray.to_gpu(np.ones(300, np.float32))
    ck(300, 2.0, gx, gy)
    np.testing.assert_array_equal(gy.get(), 2 * x + 1)
    ck(300, 1.0, int(gx.gpudata), gy.gpudata)        # raw pointer, DeviceAllocation
    np.testing.assert_array_equal(gy.get(), 3 * x + 1)
    tx, ty = torch.arange(300, dtype=torch.float32, device="cuda"), torch.zeros(300, device="cuda")
    ck(300, 3.0, tx, ty)
    torch.cuda.synchronize()
    np.testing.assert_array_equal(ty.cpu().numpy(), 3 * x)


def test_dynamic_shared_memory_over_48k_is_granted():
    from taskmap import gpu
    n = 30000                                   # 120 000 bytes of shared memory
    a = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    b = np.zeros(n, np.float32)
    gpu.launch(reverse_dynamic, 512, n, a, b)
    np.testing.assert_array_equal(b, a[::-1])



@kernel(grid=1, block=256)
def reverse_static_and_dynamic(n: i32, a: f32[n], b: f32[n]):
    """16 KiB of static shared memory beside an n-float dynamic tile."""
    scratch = shared_tensor(f32, [4096])
    tile = shared_tensor(f32, [n])
    for i in range(threadIdx.x, 4096, 256):
        scratch[i] = 1.0
    for i in range(threadIdx.x, n, 256):
        tile[i] = a[i]
    syncthreads()
    for i in range(threadIdx.x, n, 256):
        b[i] = tile[n - 1 - i] * scratch[i % 4096]


def test_dynamic_shared_below_48k_beside_static_shared_is_granted():
    from taskmap import gpu
    n = 10000                                   # 40 000 dynamic bytes + 16 384 static: over 48 KiB together
    a = np.random.default_rng(2).standard_normal(n).astype(np.float32)
    b = np.zeros(n, np.float32)
    gpu.launch(reverse_static_and_dynamic, n, a, b)
    np.testing.assert_array_equal(b, a[::-1])


BAD_LAUNCHES = [
    (axpy, (10, 1.0, np.zeros(10, np.float32), np.zeros(11, np.float32)), "shape mismatch.*parameter y"),
    (axpy, (10, 1.0, np.zeros(10, np.float64), np.zeros(10, np.float32)), "dtype mismatch.*parameter x"),
    (reverse_dynamic, (2048, 4, np.zeros(4, np.float32), np.zeros(4, np.float32)),
     "2048 threads, over the limit of 1024 by 1024"),
    (reverse_dynamic, (32, 100_000, np.zeros(100_000, np.float32), np.zeros(100_000, np.float32)),
     "shared memory per block, over the device limit of .* by"),
]


@pytest.mark.parametrize("k, args, message", BAD_LAUNCHES, ids=["shape", "dtype", "threads", "shared"])
def test_bad_launches_say_what_and_by_how_much(k, args, message):
    from taskmap import gpu
    with pytest.raises(gpu.LaunchError, match=message):
        gpu.launch(k, *args)


def test_graph_replays_the_captured_launch_sequence():
    from taskmap import gpu
    import pycuda.gpuarray as gpuarray
    drv = gpu.runtime.driver()
    a = gpuarray.zeros(32, np.int32)
    go = gpu.compile(increment).prepared(a)
    stream = drv.Stream()
    with gpu.graph.capture(stream) as g:
        for _ in range(10):
            go(stream)
    assert not a.get().any()                    # captured, not run
    for _ in range(3):
        g.replay(stream)
    stream.synchronize()
    np.testing.assert_array_equal(a.get(), np.full(32, 30))


def test_a_prepared_call_keeps_its_arguments_alive():
    """It holds their raw pointers: a buffer freed under it would be written after its free."""
    import gc
    import weakref
    from taskmap import gpu
    import pycuda.gpuarray as gpuarray
    a = gpuarray.zeros(32, np.int32)
    alive = weakref.ref(a)
    go = gpu.compile(increment).prepared(a)
    del a
    gc.collect()
    go()
    assert alive() is not None
    np.testing.assert_array_equal(alive().get(), np.ones(32))
    del go
    gc.collect()
    assert alive() is None


def test_time_kernel_reports_device_time():
    from taskmap import gpu
    import pycuda.gpuarray as gpuarray
    a = gpuarray.zeros(32, np.int32)
    go = gpu.compile(increment).prepared(a)
    t = gpu.time_kernel(go, repeat=20)
    assert 0 < t["min_us"] <= t["median_us"] <= t["max_us"] < 1e5
    np.testing.assert_array_equal(a.get(), np.full(32, 25))     # 5 warm-up + 20 timed runs


def test_a_failed_assert_is_reported_as_a_kernel_fault(tmp_path):
    """A trapped kernel poisons its CUDA context, so it runs in a child process."""
    script = tmp_path / "fault.py"
    script.write_text(textwrap.dedent('''\
        from __future__ import annotations
        import numpy as np
        from taskmap import gpu
        from taskmap.lang import i32, kernel, threadIdx

        @kernel(grid=1, block=32)
        def checked(n: i32, a: i32[32]):
            assert a[threadIdx.x] < n, "value below n"
            a[threadIdx.x] = n

        try:
            gpu.launch(checked, 5, np.arange(32, dtype=np.int32))
        except gpu.KernelFault as e:
            print("FAULT", e, flush=True)
    '''))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert "FAULT kernel checked failed on the device" in res.stdout, res.stdout + res.stderr
    assert f"{script}:8:" in res.stdout and "assertion failed: value below n" in res.stdout


@kernel(grid=1, block=8)
def min_max(a: f32[8], b: f32[8], lo: f32[8], hi: f32[8]):
    lo[threadIdx.x] = min(a[threadIdx.x], b[threadIdx.x])
    hi[threadIdx.x] = max(a[threadIdx.x], b[threadIdx.x])


def test_min_max_order_signed_zeros_and_skip_nan_like_the_interpreter():
    """SPEC §2.3: minimumNumber/maximumNumber, -0 below +0 (fminf/fmaxf must agree bit for bit)."""
    from tests.gpu_compare import run_both
    nan = np.float32("nan")
    a = np.array([0.0, -0.0, nan, 1.0, -0.0, 0.0, nan, -2.0], np.float32)
    b = np.array([-0.0, 0.0, -0.0, nan, -0.0, 0.0, nan, 3.0], np.float32)
    on_gpu, on_ref = run_both(min_max, a, b, np.zeros(8, np.float32), np.zeros(8, np.float32))
    for g, r in zip(on_gpu[2:], on_ref[2:]):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(r))
        np.testing.assert_array_equal(np.where(np.isnan(g), 0, g).view(np.uint32),
                                      np.where(np.isnan(r), 0, r).view(np.uint32))
    assert np.signbit(on_ref[2][:2]).all() and not np.signbit(on_ref[3][:2]).any()
