"""One compiled model's CUDA-graph replay timed several ways in one process, to separate what
made `taskmap bench --suite models` read 1.5-1.8x the replay time `taskmap compile --profile`
reports for the same program (docs/PERF.md, 2026-12-05): the GPU's idle clocks after the CPU
reference, the legacy default stream, or the caller's (torch's) buffers.

    source scripts/device_env.sh && python scripts/replay_timing.py [bert_base resnet50 ...]

Every line is the median of 50 CUDA-event-timed replays (gpu.time_kernel).
"""
import sys
import time

import torch

import taskmap
from taskmap import gpu
from taskmap.conformance.bench_models import ITEMS, _feeds
from taskmap.frontends.onnx_models import BUILDERS, onnxruntime_outputs

drv = gpu.runtime.driver()
for name in sys.argv[1:] or ["bert_base", "resnet50"]:
    item = next(i for i in ITEMS if i.builder == name)
    model = BUILDERS[name]()
    feeds = _feeds(model, item)
    prog = taskmap.compile(model, backend="cuda")
    got = prog(*feeds.values())
    ins = [torch.from_numpy(a).cuda() for a in feeds.values()]
    outs = [torch.empty(g.shape, dtype=torch.from_numpy(g).dtype, device="cuda") for g in got]
    side = drv.Stream()

    def line(label, run, stream=None, **kw):
        print(f"{name}: {label}: {gpu.time_kernel(run, repeat=50, stream=stream, **kw)['median_us']:.1f} us", flush=True)

    onnxruntime_outputs(model, feeds)                       # what the bench does first: the GPU idles
    line("run(torch buffers), default stream, right after the CPU reference", lambda s: prog.run(ins, outs))
    onnxruntime_outputs(model, feeds)
    line("run(torch buffers), default stream, 0.25 s warm-up first", lambda s: prog.run(ins, outs), warmup_s=0.25)
    line("run(torch buffers), default stream, warm", lambda s: prog.run(ins, outs))
    line("run(torch buffers), a stream of our own", lambda s: prog.run(ins, outs, s), side)
    line("replay(own buffers), default stream", lambda s: prog.replay(None))
    line("replay(own buffers), a stream of our own", lambda s: prog.replay(s), side)
    torch_side = torch.cuda.Stream()
    line("run(torch buffers), a torch side stream", lambda s: prog.run(ins, outs, s), torch_side.cuda_stream)
    drv.Context.synchronize()
    began = time.perf_counter()
    for _ in range(20):
        prog.run(ins, outs)
    host = (time.perf_counter() - began) / 20 * 1e6
    drv.Context.synchronize()
    print(f"{name}: host time of one run() call (not synchronized): {host:.1f} us")
    per = gpu.time_kernel(lambda s: [prog.replay(s) for _ in range(20)], repeat=5, stream=side)["median_us"] / 20
    print(f"{name}: 20 replays back to back, per replay: {per:.1f} us")
