"""`taskmap`: the command line.

    taskmap conform [PATHS...] [-k PATTERN] [--backend interp|cuda|all] [--slow] [-n N|auto]
                    [--json FILE] [--junit FILE] [--onnx-node-tests]
    taskmap bench [--suite kernels|ops|models|all|interp] [--markdown FILE] [--plot FILE.png]
    taskmap debug ...            (the interpreter's debugger: refimpl.debug)
    taskmap passes [FILE.py::KERNEL] [--backend interp|cuda]
    taskmap tune OP [--dtypes f32,f16] --shapes 4096x4096,4096x4096 [--level quick|default|full]
    taskmap compile MODEL.onnx [--backend interp|cuda] [--run] [--profile]   (conformance/compile_cli.py)
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from .. import __version__
from . import compile_cli
from .backends import BACKENDS
from .schema import CaseError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="taskmap", description="taskmap: a kernel compiler built on task mappings")
    p.add_argument("--version", action="version", version=f"taskmap {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="{conform,bench,tune,debug,passes,compile}")

    c = sub.add_parser("conform", help="run the YAML conformance suite on the interpreter and/or the GPU",
                       description="Run conformance cases (conformance/README.md describes the YAML schema).")
    c.add_argument("paths", nargs="*", help="case files or directories (default: the built-in suite)")
    c.add_argument("-k", dest="pattern", help="only cases whose id contains / glob-matches PATTERN, or tagged so")
    c.add_argument("--backend", choices=(*BACKENDS, "all"),
                   help="default: all when a CUDA GPU is available, else interp")
    c.add_argument("--slow", action="store_true", help="also run the cases tagged slow")
    c.add_argument("-n", dest="workers", metavar="N|auto", type=_workers,
                   help="run on N worker processes (pytest-xdist); auto: one per CPU core, or per GPU with cuda runs")
    c.add_argument("--json", dest="json_file", metavar="FILE", help="also write the results as JSON")
    c.add_argument("--junit", dest="junit_file", metavar="FILE", help="also write the results as JUnit XML")
    c.add_argument("--onnx-node-tests", action="store_true",
                   help="run ONNX's own backend node tests through the ONNX frontend instead of the case files, "
                        "against conformance/onnx_node_expected.yaml")
    c.set_defaults(run=_conform)

    b = sub.add_parser("bench", help="time the example kernels against torch (GPU) or NumPy (interp)")
    b.add_argument("--suite", choices=("kernels", "ops", "models", "all", "interp"), default="kernels",
                   help="kernels: GPU kernels vs torch (default); ops: operator plans on the GPU vs torch; "
                        "models: whole models (CUDA graph) vs ONNX Runtime CUDA and torch; all: kernels + ops + "
                        "models; interp: interpreter on the CPU vs NumPy")
    b.add_argument("--markdown", metavar="FILE", help="also write the report as a markdown table")
    b.add_argument("--plot", metavar="FILE.png", help="also plot the ratios (needs matplotlib)")
    b.add_argument("--precision", choices=("f16", "bf16"),
                   help="models suite: compute in f16 or bf16 (ours: taskmap.compile(precision=...); torch: the "
                        "module and its float inputs in that dtype); default f32, TF32 off")
    b.set_defaults(run=_bench)

    t = sub.add_parser("tune", help="tune an operator's schedule on the GPU; tuned vs default vs torch",
                       description="Search the operator's schedule space on the GPU and cache the winner "
                                   "(refimpl/schedules/tune.py, docs/PERF.md).")
    t.add_argument("op", help="operator name, e.g. matmul")
    t.add_argument("--dtypes", default="f32", help="comma-separated input dtypes, tuned one after another (default f32)")
    t.add_argument("--shapes", required=True, type=_shapes, help="input shapes, e.g. 4096x4096,4096x4096")
    t.add_argument("--attrs", default="{}", type=json.loads, help="operator attributes as JSON (default {})")
    t.add_argument("--level", choices=("quick", "default", "full"), default="default", help="search level")
    t.set_defaults(run=_tune)

    sub.add_parser("debug", help="step through a kernel in the interpreter (taskmap debug --help)", add_help=False)

    s = sub.add_parser("passes", help="list each backend's pass pipeline, or print a kernel's IR after every pass")
    s.add_argument("target", nargs="?", metavar="FILE.py::KERNEL", help="a kernel to run through the pipeline")
    s.add_argument("--backend", choices=("interp", "cuda"), default="interp", help="whose pipeline (default interp)")
    s.set_defaults(run=_passes)

    compile_cli.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["debug"]:
        try:
            from taskmap.refimpl import debug
        except ImportError as e:
            print(f"taskmap debug: the interpreter's debugger is not available ({e})", file=sys.stderr)
            return 2
        return debug.main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:              # `taskmap conform | head`: the reader left, stop quietly
        sys.stdout = open(os.devnull, "w")
        return 1


def _workers(text: str) -> str:
    if text == "auto" or text.isdigit() and int(text) >= 1:
        return text
    raise argparse.ArgumentTypeError(f"expected a number of workers (1 or more) or auto, got {text!r}")


def _conform(args) -> int:
    from . import report, runner
    from .loader import load_paths
    for flag, path in (("--json", args.json_file), ("--junit", args.junit_file)):
        problem = path and _unwritable(path)
        if problem:                           # found before the run, not after it
            print(f"taskmap conform: {flag} {path}: {problem}; give a file in an existing, "
                  "writable directory", file=sys.stderr)
            return 2
    if args.workers and not _have_xdist():
        print("taskmap conform: -n needs pytest-xdist; pip install pytest-xdist (it is in the dev extra)",
              file=sys.stderr)
        return 2
    if args.onnx_node_tests and args.paths:
        print("taskmap conform: --onnx-node-tests runs ONNX's node tests, not case files; drop the PATHS "
              "(select tests with -k)", file=sys.stderr)
        return 2
    try:
        cases = _node_tests() if args.onnx_node_tests else load_paths(args.paths or None)
    except CaseError as e:
        print(f"taskmap conform: {e}", file=sys.stderr)
        return 2
    default_run = not args.paths and not args.pattern and not args.onnx_node_tests
    short = default_run and runner.below_floor(cases)
    if short:
        print(f"taskmap conform: built-in suite: {short} (runner.MIN_CASES_BY_KIND): the case loader "
              "lost cases", file=sys.stderr)
        return 2
    selected = runner.select(cases, args.pattern, args.slow)
    backends, why = runner.choose_backends(args.backend)
    print(f"backend: {' + '.join(backends)} ({why})")
    pairs = runner.plan(selected, backends)
    if not pairs:
        print(f"taskmap conform: no case matched (pattern {args.pattern!r}, backends {', '.join(backends)})",
              file=sys.stderr)
        return 2
    if args.workers:
        from . import parallel
        workers, gpus = parallel.worker_count(args.workers, backends)
        print(f"workers: {workers}" + (f" (GPUs {', '.join(gpus)}, one each)" if gpus and workers == len(gpus) else ""))
        selection = {"paths": args.paths, "pattern": args.pattern, "slow": args.slow, "backends": list(backends),
                     "onnx_node_tests": args.onnx_node_tests}
        results = parallel.run(selection, pairs, workers, gpus, sys.stdout)
    else:
        results = runner.run(pairs, out=sys.stdout)
    print()
    print(report.table(results))
    details = report.problems(results)
    if details:
        print("\n" + details)
    if default_run:
        print("\n" + report.coverage(cases))
    doc = report.as_json(results)
    if args.onnx_node_tests:
        from . import onnx_node
        print("\n" + onnx_node.op_table(results))
        doc = onnx_node.add_json(doc, results)
    print("\n" + report.summary(results))
    if args.json_file:
        with open(args.json_file, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
    if args.junit_file:
        report.write_junit(results, args.junit_file)
    counts = report.counts(results)
    if counts["failed"] or counts["error"]:
        return 1
    if not counts["passed"]:
        print("taskmap conform: every run was skipped, nothing was checked", file=sys.stderr)
        return 1
    return 0


def _node_tests():
    from . import onnx_node
    return onnx_node.load_cases()


def _have_xdist() -> bool:
    import importlib.util
    return importlib.util.find_spec("xdist") is not None


def _unwritable(path: str) -> str | None:
    """Why `path` cannot be written as a new or replaced file, or None."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        return "is a directory"
    if not os.path.isdir(directory):
        return f"directory {directory} does not exist"
    if not os.access(directory, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        return "not writable"
    return None


def _bench(args) -> int:
    from . import bench
    return bench.main(args.suite, args.markdown, args.plot, args.precision)


def _shapes(text: str) -> list[tuple[int, ...]]:
    try:
        return [tuple(int(d) for d in s.split("x")) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected shapes like 4096x4096,4096x4096, got {text!r}") from None


def _tune(args) -> int:
    from . import tune
    return tune.main(args.op, args.dtypes.split(","), args.shapes, args.attrs, args.level)


def _passes(args) -> int:
    from taskmap.gpu.passes import PIPELINE as cuda
    from taskmap.refimpl.debug import UsageError, load_kernel
    from taskmap.refimpl.passes import PIPELINE as interp
    from taskmap.spec.passes import describe
    pipelines = {"interp": interp, "cuda": cuda}
    if args.target is None:
        print("\n\n".join(f"{name}:\n{describe(p)}" for name, p in pipelines.items()))
        return 0
    try:
        k = load_kernel(args.target)
    except UsageError as e:
        print(f"taskmap passes: {e}", file=sys.stderr)
        return 2
    print(k)
    for name, stage in pipelines[args.backend]:
        k = stage(k)
        print(f"\n# after {name}\n{k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
