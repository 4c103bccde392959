"""The interpreter's numbers in docs/PERF.md, each beside Triton's interpreter in the same run.

    python scripts/interp_bench.py [--rounds 3] [--scaling] [--memory]

Every measurement runs in a fresh subprocess, ours and Triton's interleaved round by round;
the table gives medians of wall-clock seconds. Both sides time the second of two identical
launches (the first compiles the kernel and grows the process's heap). Ours: `refimpl.interpret`
with checks on and off, the result compared with NumPy. Triton: `TRITON_INTERPRET=1` on torch
CPU tensors (skipped when triton or torch is missing), the same tiling as our example, the
result compared with torch. `--scaling`: the SIMT matmul 128³…1024³ (checks on);
`--memory`: peak RSS of the 1024³ matmul and a 4096² transpose (checks on).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys

OURS = r'''
import sys, time, numpy as np
from taskmap import refimpl
from taskmap.examples import matmul_simt, transpose, vector_add
what, n, checks = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "on"
rng = np.random.default_rng(0)
if what == "matmul":
    args = matmul_simt.make_args(rng, n, n, n)
    kernel, want, out = matmul_simt.matmul_simt, lambda: matmul_simt.reference(*args)["c"], 5
elif what == "transpose":
    args = (n, n, rng.standard_normal((n, n)).astype(np.float32), np.zeros((n, n), np.float32))
    kernel, want, out = transpose.transpose, lambda: args[2].T, 3
else:
    args = vector_add.make_args(rng, n)
    kernel, want, out = vector_add.vector_add, lambda: vector_add.reference(*args)["c"], 3
refimpl.interpret(kernel, *args, checks=checks)     # warm-up: the same launch, as Triton's below
args[out][...] = 0
start = time.perf_counter()
refimpl.interpret(kernel, *args, checks=checks)
print(time.perf_counter() - start)
sys.exit(0 if np.array_equal(args[out], want()) else 1)
'''

TRITON = r'''
import os, sys, time
os.environ["TRITON_INTERPRET"] = "1"
import torch, triton, triton.language as tl

@triton.jit
def matmul(a, b, c, M, N, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    pm, pn = tl.program_id(0), tl.program_id(1)
    rm, rn, rk = pm * BM + tl.arange(0, BM), pn * BN + tl.arange(0, BN), tl.arange(0, BK)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k in range(0, K, BK):
        x = tl.load(a + rm[:, None] * K + (k + rk)[None, :])
        y = tl.load(b + (k + rk)[:, None] * N + rn[None, :])
        acc += tl.dot(x, y)
    tl.store(c + rm[:, None] * N + rn[None, :], acc)

@triton.jit
def transpose(a, b, M, N, T: tl.constexpr):
    r, c = tl.program_id(1) * T + tl.arange(0, T), tl.program_id(0) * T + tl.arange(0, T)
    x = tl.load(a + r[:, None] * N + c[None, :])
    tl.store(b + c[None, :] * M + r[:, None], x)

@triton.jit
def vector_add(a, b, c, n, BLOCK: tl.constexpr):
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(c + i, tl.load(a + i, mask=i < n) + tl.load(b + i, mask=i < n), mask=i < n)

what, n, tile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if what == "matmul":
    a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    go = lambda: matmul[(n // 64, n // 64)](a, b, c, n, n, n, BM=64, BN=64, BK=tile)
    ok = lambda: torch.allclose(c, a @ b, rtol=1e-3, atol=1e-3)
elif what == "transpose":
    a, b = torch.randn(n, n), torch.empty(n, n)
    go = lambda: transpose[(n // tile, n // tile)](a, b, n, n, T=tile)
    ok = lambda: torch.equal(b, a.T)
else:
    a, b, c = torch.randn(n), torch.randn(n), torch.empty(n)
    go = lambda: vector_add[((n + tile - 1) // tile,)](a, b, c, n, BLOCK=tile)
    ok = lambda: torch.equal(c, a + b)
go()
start = time.perf_counter()
go()
print(time.perf_counter() - start)
sys.exit(0 if ok() else 1)
'''


def peak_rss(source: str, *argv) -> tuple[float, float]:
    """(seconds printed by the child, its peak RSS in MiB from wait4); a wrong result stops."""
    proc = subprocess.Popen([sys.executable, "-c", source, *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "TRITON_INTERPRET": "1"})
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"{argv}: wrong result or failure:\n{err[-2000:]}")
    return float(out.split()[-1]), usage.ru_maxrss / 1024


def have_triton() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("triton", "torch"))


CASES = {"matmul": (512, {"BK=8": 8, "BK=32": 32, "BK=64": 64}),
         "transpose": (2048, {"32×32 tiles": 32}), "vector_add": (1 << 20, {"BLOCK=256": 256})}


def measure(what: str, rounds: int, triton: bool) -> dict[str, float]:
    """Median seconds of ours with checks "on" and "off" and of Triton's interpreter at each
    tiling of CASES[what] (when `triton`), interleaved round by round."""
    n, tilings = CASES[what]
    times: dict[str, list[float]] = {}
    for _ in range(rounds):
        for checks in ("off", "on"):
            times.setdefault(checks, []).append(peak_rss(OURS, what, n, checks)[0])
        for name, tile in tilings.items() if triton else ():
            times.setdefault(name, []).append(peak_rss(TRITON, what, n, tile)[0])
    return {k: statistics.median(v) for k, v in times.items()}


def compare(rounds: int) -> list[str]:
    lines = ["| benchmark | ours, checks off | ours, checks on | on / off | Triton interpreter "
             "| best Triton / ours (on) |", "|---|---|---|---|---|---|"]
    triton = have_triton()
    for what, (n, tilings) in CASES.items():
        med = measure(what, rounds, triton)
        theirs = ", ".join(f"{k} {med[k]:.2f} s" for k in tilings if k in med) or "not installed"
        best = min((med[k] for k in tilings if k in med), default=None)
        size = f"{n}³" if what == "matmul" else f"{n}²" if what == "transpose" else f"{n}"
        lead = f"{best / med['on']:.1f}×" if best else "—"
        lines.append(f"| {what} {size} | {med['off']:.3f} s | {med['on']:.3f} s | {med['on'] / med['off']:.2f}× | "
                     f"{theirs} | {lead} |")
    return lines


def scaling(rounds: int) -> list[str]:
    lines = ["| M = N = K | checks on | ns per M·N·K | checks off |", "|---|---|---|---|"]
    for n in (128, 256, 512, 1024):
        on = statistics.median(peak_rss(OURS, "matmul", n, "on")[0] for _ in range(rounds))
        off = statistics.median(peak_rss(OURS, "matmul", n, "off")[0] for _ in range(rounds))
        lines.append(f"| {n} | {on:.3f} s | {on / n ** 3 * 1e9:.2f} | {off:.3f} s |")
    return lines


def memory() -> list[str]:
    lines = ["| run (checks on) | time | peak RSS |", "|---|---|---|"]
    for what, n in (("matmul", 1024), ("transpose", 4096)):
        seconds, rss = peak_rss(OURS, what, n, "on")
        lines.append(f"| {what} {n} | {seconds:.2f} s | {rss:.0f} MiB |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scaling", action="store_true")
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args(argv)
    out = compare(args.rounds)
    if args.scaling:
        out += [""] + scaling(args.rounds)
    if args.memory:
        out += [""] + memory()
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
