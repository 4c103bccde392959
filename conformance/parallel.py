"""`taskmap conform -n N|auto`: the same (case, backend) runs spread over worker processes by
pytest-xdist, an existing engine (which can also spread the same items over hosts), rather
than a scheduler of our own.

Every worker loads the same cases and plans the same runs (the loader is deterministic), so
run i is the same (case, backend) everywhere; xdist hands runs to idle workers. Each run's
Outcome travels back to this process in its test report's user_properties and lands at its
index, so the results — and the table, JSON and JUnit built from them — are in the order of
a serial run. With cuda runs there is one worker per visible GPU, and worker k sees only
GPU k (CUDA_VISIBLE_DEVICES is set before the worker imports anything that touches CUDA).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import tempfile
from dataclasses import asdict
from typing import TextIO

from .cases import Outcome
from .runner import Progress, Result

SELECTION_ENV = "TASKMAP_CONFORM_SELECTION"     # what the workers load and run, as JSON
GPUS_ENV = "TASKMAP_CONFORM_GPUS"               # the GPUs the workers split, one each

# The test module every worker imports: it rebuilds the run list and runs run `i` per item.
WORKER_MODULE = '''
import json, os
from taskmap.conformance import parallel
selection = json.loads(os.environ[parallel.SELECTION_ENV])
parallel.pin_gpu(os.environ.get("PYTEST_XDIST_WORKER", "gw0"))
PAIRS = parallel.pairs_for(selection)

def pytest_generate_tests(metafunc):
    metafunc.parametrize("index", range(len(PAIRS)), ids=[f"{c.id}:{b}" for c, b in PAIRS])

def test_run(index, record_property):
    parallel.run_item(PAIRS, index, record_property)
'''


def pairs_for(selection: dict):
    """The (case, backend) runs of a selection, in serial order."""
    from . import runner
    from .loader import load_paths
    if selection.get("onnx_node_tests"):
        from .onnx_node import load_cases
        cases = load_cases()
    else:
        cases = load_paths(selection["paths"] or None)
    cases = runner.select(cases, selection["pattern"], selection["slow"])
    return runner.plan(cases, tuple(selection["backends"]))


def run_item(pairs, index: int, record_property) -> None:
    from .runner import run_one
    case, backend = pairs[index]
    record_property("outcome", json.dumps({"index": index, **asdict(run_one(case, backend))}))


def pin_gpu(worker: str) -> None:
    """Worker gwK sees only the K-th of the GPUs to split (none to split: leave it alone)."""
    gpus = [g for g in os.environ.get(GPUS_ENV, "").split(",") if g]
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[int(worker.removeprefix("gw")) % len(gpus)]


def visible_gpus() -> list[str]:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES if set, else those nvidia-smi lists."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return [g.strip() for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(listing.splitlines()) if line.startswith("GPU ")]


def worker_count(requested: str, backends: tuple[str, ...]) -> tuple[int, list[str]]:
    """(workers, GPUs to split): `auto` is one per CPU core, or one per visible GPU when cuda
    runs; a number is taken as given (with cuda, the GPUs are shared round-robin)."""
    gpus = visible_gpus() if "cuda" in backends else []
    if requested == "auto":
        return (len(gpus) if gpus else len(os.sched_getaffinity(0))), gpus
    return int(requested), gpus


class _Collector:
    """pytest plugin of this (controlling) process: each finished item's Outcome, by index."""

    def __init__(self, pairs, out: TextIO | None):
        self.pairs, self.outcomes = pairs, {}
        self.progress = Progress(out, len(pairs))

    def pytest_runtest_logreport(self, report):
        props = dict(report.user_properties)
        if "outcome" not in props or report.when != "call":
            return
        data = json.loads(props["outcome"])
        index = data.pop("index")
        outcome = Outcome(**data)
        self.outcomes[index] = outcome
        case, backend = self.pairs[index]
        self.progress.start(case, backend)
        self.progress.finish(case, backend, outcome)


def run(selection: dict, pairs, workers: int, gpus: list[str], out: TextIO | None) -> list[Result]:
    """Run `pairs` (as pairs_for(selection) gives them) on `workers` xdist workers."""
    import pytest
    collector = _Collector(pairs, out)
    env = {SELECTION_ENV: json.dumps(selection), GPUS_ENV: ",".join(gpus)}
    with tempfile.TemporaryDirectory(prefix="taskmap-conform-") as tmp, _environ(env):
        module = os.path.join(tmp, "test_conform_runs.py")
        with open(module, "w", encoding="utf-8") as f:
            f.write(WORKER_MODULE)
        ini = os.path.join(tmp, "pytest.ini")
        with open(ini, "w", encoding="utf-8") as f:
            f.write("[pytest]\n")
        # no:benchmark: pytest-benchmark's "disabled under xdist" warning, printed by every worker
        args = [module, "-c", ini, "--rootdir", tmp, "-n", str(workers), "-p", "no:cacheprovider", "-p", "no:benchmark",
                "-q", "--no-header", "-o", "console_output_style=classic"]
        noise = io.StringIO()
        with contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
            code = pytest.main(args, plugins=[collector])
    missing = [i for i in range(len(pairs)) if i not in collector.outcomes]
    if missing:
        tail = "\n".join(noise.getvalue().splitlines()[-15:])
        raise RuntimeError(f"pytest-xdist returned no result for {len(missing)} of {len(pairs)} runs "
                           f"(pytest exit {int(code)}):\n{tail}")
    return [Result(case, backend, collector.outcomes[i]) for i, (case, backend) in enumerate(pairs)]


@contextlib.contextmanager
def _environ(values: dict):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
