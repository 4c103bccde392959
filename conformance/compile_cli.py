"""`taskmap compile MODEL [--backend interp|cuda] [--run] [--profile] [--dims N=2] [--graph] [--save FILE]`.

MODEL is an .onnx file or the name of a built-in model builder (frontends.onnx_models.REDUCED:
mlp, cnn, transformer_encoder, ...; FULL: resnet50, bert_base, gpt2_small, and with --full
mobilenet_v2, inception_v3 at full size). Prints the fusion groups (steps) with their kernels and the
memory plan; --graph also prints the graph after the pipeline; --run runs the program on seeded
random inputs and, where onnxruntime is installed, prints the largest difference from it;
--profile (cuda) prints each launch's GPU time (CUDA events around each launch, launches one by
one) and the whole program's CUDA-graph replay time; --save writes the compiled program
(`taskmap.load` reads it back).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def add_parser(sub) -> None:
    c = sub.add_parser("compile", help="compile an ONNX model (or a built-in one) and print its kernels",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("model", metavar="MODEL", help="an .onnx file, or a built-in model: mlp, cnn, transformer_encoder, ...")
    c.add_argument("--full", action="store_true",
                   help="the full-size built-in model of that name (mobilenet_v2, inception_v3: reduced by default)")
    c.add_argument("--backend", choices=("interp", "cuda"), default="interp", help="where the program runs (interp)")
    c.add_argument("--run", dest="execute", action="store_true", help="run it on random inputs (and compare with onnxruntime)")
    c.add_argument("--profile", action="store_true", help="cuda: time every kernel on the GPU (and the CUDA-graph replay)")
    c.add_argument("--repeat", type=int, default=20, help="--profile: timed runs per kernel (default 20)")
    c.add_argument("--dims", default="", metavar="N=2,...", help="sizes of the model's symbolic dimensions")
    c.add_argument("--no-fusion", dest="fusion", action="store_false",
                   help="schedule every node alone (default: post-scheduling fusion)")
    c.add_argument("--tune", choices=("cached", "quick", "default", "full"),
                   help="schedule anchors at the tuner's cached points (cached), tuning misses on the GPU first "
                        "at that level (cuda); default: the templates' default points")
    c.add_argument("--precision", choices=("f16", "bf16"),
                   help="compute an f32 model in f16 or bf16 (f32 inputs and outputs; default: its own dtypes)")
    c.add_argument("--graph", action="store_true", help="also print the graph after the passes")
    c.add_argument("--save", metavar="FILE", help="write the compiled program to FILE (taskmap.load reads it)")
    c.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    c.set_defaults(run=run)


def _dims(text: str) -> dict[str, int]:
    out = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"--dims {item!r}: expected NAME=SIZE with a positive SIZE, e.g. N=2")
        out[name.strip()] = int(value)
    return out


def _model(name: str, full: bool = False):
    """The ONNX model MODEL names: a reduced built-in, a full-size one (FULL: resnet50, bert_base,
    ...; --full for a name both have), or an .onnx path."""
    from taskmap.frontends import onnx_models
    if full and name not in onnx_models.FULL:
        raise ValueError(f"--full {name}: no full-size built-in of that name (full size: {', '.join(onnx_models.FULL)}); "
                         "leave --full out for the reduced built-ins and .onnx files")
    if name in onnx_models.FULL and (full or name not in onnx_models.REDUCED):
        return onnx_models.FULL[name]()
    if name in onnx_models.REDUCED:
        return onnx_models.REDUCED[name]()
    if not name.endswith(".onnx"):
        raise ValueError(f"{name}: not an .onnx file nor a built-in model (reduced: {', '.join(onnx_models.REDUCED)}; "
                         f"full size: {', '.join(onnx_models.FULL)})")
    return name


def _inputs(prog, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    exe_graph = prog.executable(prog.dims).graph
    out = []
    for v in exe_graph.inputs:
        t = v.type
        if t.dtype.is_float:
            out.append(rng.standard_normal(t.shape).astype(t.dtype.storage))
        else:                                   # token ids and indices: small and in range
            out.append(rng.integers(0, 8, t.shape).astype(t.dtype.storage))
    return out


def run(args) -> int:
    from taskmap.spec.errors import TaskmapError
    if args.profile and args.backend != "cuda":
        print("taskmap compile: --profile times GPU kernels; add --backend cuda", file=sys.stderr)
        return 2
    try:
        from taskmap.frontends.compiler import compile as compile_model
        model = _model(args.model, args.full)
        prog = compile_model(model, backend=args.backend, fusion=args.fusion, tune=args.tune, precision=args.precision,
                             dims=_dims(args.dims), progress=lambda line: print(line, file=sys.stderr, flush=True))
    except (TaskmapError, ValueError) as e:
        print(f"taskmap compile: {e}", file=sys.stderr)
        return 2
    if args.graph:
        print(prog.executable(prog.dims).graph)
    print(prog.describe())
    if args.execute or args.profile:
        inputs = _inputs(prog, args.seed)
        outputs = prog(*inputs)
        for o in outputs:
            print(f"output {o.dtype}{list(o.shape)}: mean {float(np.mean(o)):.6g}, max |x| {float(np.max(np.abs(o))):.6g}")
        _compare(model, prog, inputs, outputs)
    if args.profile:
        print(profile_table(*prog.profile(*inputs, repeat=args.repeat)))
    if args.save:
        prog.save(args.save)
        print(f"saved to {args.save}")
    return 0


def profile_table(rows: list[dict], replay_us: float) -> str:
    """Per launch: step, kernel, grid, block, median µs and share; then the sum and the replay."""
    from tabulate import tabulate
    total = sum(r["us"] for r in rows) or 1.0
    table = [[r["step"], r["kernel"], "x".join(map(str, r["grid"])), "x".join(map(str, r["block"])),
              f"{r['us']:.2f}", f"{100 * r['us'] / total:.1f}%"] for r in rows]
    return (tabulate(table, headers=["step", "kernel", "grid", "block", "us", "share"], disable_numparse=True)
            + f"\nsum of launches one by one: {total:.1f} us; whole program as one CUDA-graph replay: {replay_us:.1f} us")


def _compare(model, prog, inputs, outputs) -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        print("onnxruntime not installed: outputs not compared")
        return
    from taskmap.frontends import onnx_models
    from taskmap.frontends.onnx_import import read_model
    proto = read_model(model)
    feeds = {vi.name: a for vi, a in zip([i for i in proto.graph.input
                                          if i.name not in {t.name for t in proto.graph.initializer}], inputs)}
    want = onnx_models.onnxruntime_outputs(proto, feeds)
    worst = max(float(np.max(np.abs(np.asarray(o, np.float64) - w))) for o, w in zip(outputs, want))
    print(f"largest difference from onnxruntime: {worst:.3g}")
