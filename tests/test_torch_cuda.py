"""torch.compile(backend="taskmap") on CUDA tensors (the GPU: gpu.executable.DeviceProgram run
zero-copy on torch's tensors and stream) against torch eager on the same GPU, in every mode:
small torch.nn models, a transformers BERT / GPT-2 from config, a graph break, a non-default
stream, weights updated in place, training. The CPU side of the same backend:
tests/test_torch_backend.py."""
from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from test_torch_backend import MODELS, _seeded, check, r  # noqa: E402
from taskmap.frontends.torch_backend import GraphBreakWarning  # noqa: E402

pytestmark = pytest.mark.gpu
MODES = ("default", "reduce-overhead")            # max-autotune (tuning): its own test, on a small cache


@pytest.fixture(autouse=True)
def _cuda():
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    from taskmap import gpu
    if gpu.unavailable_reason():
        pytest.skip(gpu.unavailable_reason())
    torch.backends.cuda.matmul.allow_tf32 = False          # eager at full f32, as taskmap computes
    torch.backends.cudnn.allow_tf32 = False
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def strict(model, mode=None, **kw):
    """`model` compiled for taskmap with every op in taskmap (a graph break is an error)."""
    c = torch.compile(model, backend="taskmap", mode=mode, **kw)

    def call(*args):
        with warnings.catch_warnings():
            warnings.simplefilter("error", GraphBreakWarning)
            return c(*args)
    return call


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_nn_module_on_cuda_matches_eager(name, mode):
    make, shape = MODELS[name]
    m = _seeded(make).cuda()
    c = strict(m, mode)
    with torch.no_grad():
        for seed in range(3):                   # new inputs each call: replays must not keep old bindings
            x = r(*shape).cuda() + seed
            got = c(x)
            assert got.is_cuda
            check(got, m(x), atol=1e-4)


def test_f16_transformer_block_matches_eager():
    m = _seeded(MODELS["transformer_block"][0]).cuda().half()
    x = r(*MODELS["transformer_block"][1]).cuda().half()
    with torch.no_grad():
        torch.testing.assert_close(strict(m, "reduce-overhead")(x), m(x), atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("name", ["bert", "gpt2"])
def test_transformers_model_from_config_matches_eager(name):
    from taskmap.frontends import torch_models
    if torch_models.unavailable(name):
        pytest.skip(torch_models.unavailable(name))
    config = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
              "vocab_size": 50} if name == "bert" else {"n_embd": 32, "n_layer": 2, "n_head": 2, "vocab_size": 50}
    m = torch_models.build(name, config, seed=0).cuda().eval()
    ids = torch.randint(0, 50, (2, 8), generator=torch.Generator().manual_seed(0)).cuda()
    c = torch.compile(m, backend="taskmap", mode="reduce-overhead")
    with torch.no_grad():
        want = m(input_ids=ids).last_hidden_state
        got = c(input_ids=ids).last_hidden_state           # a graph break is allowed, the result must match
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_max_autotune_tunes_on_the_gpu_once_then_reuses_the_cache(tmp_path, monkeypatch):
    from taskmap.gpu import tuning
    monkeypatch.setenv("TASKMAP_CACHE", str(tmp_path))
    reports = []
    real = tuning.tune_report
    monkeypatch.setattr(tuning, "tune_report", lambda *a, **kw: reports.append(real(*a, **kw)) or reports[-1])
    m = _seeded(MODELS["mlp"][0]).cuda()
    x = r(*MODELS["mlp"][1]).cuda()
    with torch.no_grad():
        for _ in range(2):
            torch._dynamo.reset()
            check(strict(m, options={"mode": "max-autotune", "tune": "quick"})(x), m(x), atol=1e-4)
    first, second = reports[:len(reports) // 2], reports[len(reports) // 2:]
    assert first and not any(t.cached for t in first) and all(t.cached for t in second)
    assert any((tmp_path / "tuned").iterdir())


@pytest.mark.parametrize("mode", MODES)
def test_a_graph_break_on_cuda_runs_the_rest_in_taskmap(mode):
    m = _seeded(lambda: nn.Sequential(nn.Linear(8, 8), nn.ReLU())).cuda()
    fn = lambda x: m(torch.cumprod(m(x), 0))
    x = r(4, 8).cuda()
    with torch.no_grad(), pytest.warns(GraphBreakWarning, match="cumprod"):
        check(torch.compile(fn, backend="taskmap", mode=mode)(x), fn(x), atol=1e-4)


@pytest.mark.parametrize("mode", MODES)
def test_a_cpu_scalar_tensor_among_cuda_inputs_is_read_like_eager(mode):
    """torch lets a 0-d CPU tensor join CUDA ones (a partition after a graph break receives
    such scalars from eager code); the partition copies it to the GPU."""
    fn = lambda x, s: torch.relu(x * s + 1)
    x, s = r(4, 8).cuda(), torch.tensor(0.5)
    check(strict(fn, mode)(x, s), fn(x, s))


@pytest.mark.parametrize("mode", MODES)
def test_cuda_weights_and_only_a_cpu_scalar_input_run_on_the_gpu(mode):
    """The partition's one CUDA tensor is a frozen weight: the program is still the GPU's, the
    scalar copied there, the result on the weight's device like eager's."""
    m = _seeded(lambda: nn.Linear(4, 8)).cuda()
    fn = lambda s: torch.relu(m.weight * s + 1)
    s = torch.tensor(-0.5)
    with torch.no_grad():
        got, want = strict(fn, mode)(s), fn(s)
    assert got.is_cuda
    check(got, want)


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_runs_in_order_on_a_non_default_stream(mode):
    m = _seeded(MODELS["conv_bn"][0]).cuda()
    c = strict(m, mode)
    x = r(*MODELS["conv_bn"][1]).cuda()
    with torch.no_grad():
        want, _ = m(x), c(x)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            x2 = x * 2                                    # written on s just before the program reads it
            got = c(x2) + 0                               # read on s just after the program writes it
        s.synchronize()
        check(got, m(x2), atol=1e-4)


def test_replays_on_two_streams_do_not_overlap():
    """One arena per program: a replay on a second stream waits for the first stream's."""
    m = _seeded(MODELS["transformer_block"][0]).cuda()
    c = strict(m, "reduce-overhead")
    xs = [r(*MODELS["transformer_block"][1]).cuda() * (k + 1) for k in range(2)]
    streams = [torch.cuda.Stream() for _ in xs]
    with torch.no_grad():
        c(xs[0])                                          # compiled and captured
        got = []
        for s, x in zip(streams, xs):
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for _ in range(20):                       # long enough to overlap if nothing orders them
                    y = c(x)
                got.append(y + 0)
        torch.cuda.synchronize()
        for x, y in zip(xs, got):
            check(y, m(x), atol=1e-4)


def test_a_weight_updated_in_place_is_seen_on_cuda():
    m = _seeded(MODELS["mlp"][0]).cuda()
    c = strict(m, "reduce-overhead")
    x = r(*MODELS["mlp"][1]).cuda()
    with torch.no_grad():
        check(c(x), m(x), atol=1e-4)
        m[2].bias.add_(1.0)
        check(c(x), m(x), atol=1e-4)


def test_training_on_cuda_matches_eager_gradients():
    m = _seeded(lambda: nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))).cuda().train()
    x = r(3, 4).cuda()
    strict(m)(x).square().sum().backward()
    got = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    m(x).square().sum().backward()
    for g, p in zip(got, m.parameters()):
        torch.testing.assert_close(g, p.grad, atol=1e-4, rtol=1e-4)
