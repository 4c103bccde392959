"""torch.compile(backend="taskmap") on CPU tensors (the interpreter) against torch eager: a table
of ATen ops, small torch.nn models, graph breaks, training, dynamic batch, the entry point.

An op test turns GraphBreakWarning into an error, so an op that silently fell back to eager
torch fails here instead of passing against itself."""
from __future__ import annotations

import importlib.metadata
import warnings

import pytest

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional

from taskmap.frontends.torch_backend import (GraphBreakWarning, check_devices, compile_options,  # noqa: E402
                                              taskmap_backend)
from taskmap.spec.errors import TaskmapError  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def compiled(fn, **kw):
    return torch.compile(fn, backend="taskmap", **kw)


def run_strict(fn, *args, **kw):
    """fn compiled with every op in taskmap (a graph break is an error), and eager."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphBreakWarning)
        with torch.no_grad():
            return compiled(fn, **kw)(*args), fn(*args)


def check(got, want, atol=1e-5):
    if isinstance(want, (tuple, list)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            check(g, w, atol)
        return
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    if want.dtype.is_floating_point:
        torch.testing.assert_close(got, want, atol=atol, rtol=1e-5)
    else:
        assert torch.equal(got, want)


def r(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape) + len(shape)))


def ri(high, *shape):
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(7))


X, Y = r(2, 3), r(2, 3)
ATEN = {
    "relu": (torch.relu, X), "sigmoid": (torch.sigmoid, X), "tanh": (torch.tanh, X), "exp": (torch.exp, X),
    "log": (lambda x: torch.log(x.abs() + 1), X), "sqrt": (lambda x: x.abs().sqrt(), X),
    "log1p": (lambda x: torch.log1p(x.abs() * 1e-3), X), "rsqrt": (lambda x: (x.abs() + 1).rsqrt(), X), "reciprocal": (lambda x: 1 / (x.abs() + 1), X),
    "erf": (torch.erf, X), "floor": (torch.floor, X), "ceil": (torch.ceil, X), "round": (torch.round, X * 3),
    "sign": (torch.sign, X), "sin": (torch.sin, X), "cos": (torch.cos, X), "abs": (torch.abs, X),
    "neg": (torch.neg, X), "silu": (F.silu, X), "hardswish": (F.hardswish, X * 4), "mish": (F.mish, X),
    "gelu": (F.gelu, X), "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), X),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), X), "hardsigmoid": (F.hardsigmoid, X * 4),
    "elu": (F.elu, X), "softplus": (F.softplus, X), "clamp": (lambda x: x.clamp(-0.5, 0.5), X),
    "clamp_tensor": (lambda x, y: torch.clamp(x, min=y), X, Y),
    "add_alpha": (lambda x, y: torch.add(x, y, alpha=2), X, Y), "sub_scalar": (lambda x: x - 1.5, X),
    "mul": (torch.mul, X, Y), "div": (torch.div, X, Y.abs() + 1),
    "div_floor": (lambda x, y: torch.div(x, y, rounding_mode="floor"), X * 4, Y.abs() + 1),
    "div_trunc": (lambda x, y: torch.div(x, y, rounding_mode="trunc"), X * 4, Y.abs() + 1),
    "int_true_div": (lambda a: a / 2, ri(9, 2, 3)),
    "maximum": (torch.maximum, X, Y), "minimum": (torch.minimum, X, Y), "pow_scalar": (lambda x: x ** 2, X),
    "pow_tensor": (lambda x, y: (x.abs() + 1) ** y, X, Y), "remainder": (torch.remainder, X * 5, Y.abs() + 1),
    "fmod": (torch.fmod, X * 5, Y.abs() + 1), "compare": (lambda x, y: (x < y, x <= 0, x > y, x >= y, x == x, x != y), X, Y),
    "where": (lambda x, y: torch.where(x > 0, x, y), X, Y), "where_scalar": (lambda x: torch.where(x > 0, x, 0.0), X),
    "logical": (lambda x, y: ((x > 0) & (y > 0), (x > 0) | (y > 0), (x > 0) ^ (y > 0), ~(x > 0)), X, Y),
    "to_dtype": (lambda a: a.to(torch.float32) * 0.5, ri(9, 2, 3)), "int_arith": (lambda a: a * 3 + a, ri(9, 2, 3)),
    "sum": (lambda x: (x.sum(), x.sum(1), x.sum(0, keepdim=True)), X), "mean": (lambda x: x.mean(-1), X),
    "amax_amin": (lambda x: (x.amax(1), x.amin(0, keepdim=True)), X), "prod": (lambda x: x.prod(1), X),
    "argmax": (lambda x: (x.argmax(1), x.argmin(0, keepdim=True), x.argmax()), X),
    "topk": (lambda x: (torch.topk(x, 2), torch.topk(x, 3, dim=0, largest=False)), r(4, 5)),
    "triu_tril": (lambda x: (x.triu(1), x.tril(-1), torch.triu(x[None], -2)), r(4, 5)),
    "any_all": (lambda x: ((x > 1).any(1), (x > -1).all()), X), "var": (lambda x: (x.var(1), x.var(0, correction=0)), X),
    "mm": (lambda a, b: a @ b, r(2, 3), r(3, 4)), "bmm": (torch.bmm, r(2, 2, 3), r(2, 3, 4)),
    "linear": (F.linear, r(2, 3), r(4, 3), r(4)), "matmul_4d": (lambda a, b: a @ b, r(2, 2, 2, 3), r(2, 2, 3, 2)),
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), r(1, 2, 5, 5), r(4, 2, 3, 3), r(4)),
    "conv2d_groups": (lambda x, w: F.conv2d(x, w, groups=2, dilation=2), r(1, 4, 6, 6), r(4, 2, 2, 2)),
    "conv1d": (lambda x, w: F.conv1d(x, w, padding=1), r(1, 2, 6), r(3, 2, 3)),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), r(1, 2, 4, 4)),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, 2, 1), r(1, 2, 5, 5)),
    "adaptive_avg_pool2d": (lambda x: (F.adaptive_avg_pool2d(x, 2), F.adaptive_avg_pool2d(x, 1)), r(1, 2, 4, 4)),
    "softmax": (lambda x: (x.softmax(-1), x.log_softmax(0)), X),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (3,), w, b), X, r(3), r(3)),
    "batch_norm": (lambda x, m, v, w, b: F.batch_norm(x, m, v, w, b, eps=1e-3), r(2, 3, 2, 2), r(3), r(3).abs(), r(3), r(3)),
    "group_norm": (lambda x, w, b: F.group_norm(x, 2, w, b), r(2, 4, 3), r(4), r(4)),
    "view_permute": (lambda x: x.reshape(3, 2).t().permute(1, 0).reshape(-1), X),
    "expand": (lambda x: x[:, None].expand(2, 4, 3), X), "squeeze": (lambda x: x.unsqueeze(0).squeeze(0).squeeze(), X),
    "cat": (lambda x, y: (torch.cat([x, y], 0), torch.cat([x, y], -1)), X, Y), "split": (lambda x: torch.split(x, [1, 2], 1), X),
    "chunk": (lambda x: x.chunk(2, 0), X), "slice": (lambda x: (x[:, 1:], x[1, ::2], x[-1]), X),
    "index_select": (lambda x, i: x.index_select(1, i), X, torch.tensor([2, 0])),
    "gather": (lambda x, i: x.gather(1, i), X, ri(3, 2, 2)),
    "index": (lambda x, i, j: (x[i, j], x[:, j], x[i], x[i[:, None], j[None]], r(2, 3, 4)[:, i.abs() % 3, j]),
              X, torch.tensor([1, -2, 0]), torch.tensor([2, 0, -1])),
    "cumsum": (lambda x, m: (x.cumsum(1), x.cumsum(-2), (m > 0).cumsum(-1), torch.cumsum(m, 0, dtype=torch.float32)),
               X, ri(9, 2, 40)),
    "hardtanh": (lambda x: (F.hardtanh(x * 2), F.relu6(x * 8), F.hardtanh(x, -0.5, 0.25)), X),
    "embedding": (F.embedding, ri(5, 2, 3), r(5, 4)),
    "pad": (lambda x: F.pad(x, (1, 2, 0, 1), value=0.5), X), "flip": (lambda x: x.flip(0, 1), X),
    "factories": (lambda x: (x + torch.zeros_like(x), x * torch.arange(3), torch.full_like(x, 2.0) - x), X),
    "sdpa": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v), r(1, 2, 3, 4), r(1, 2, 5, 4), r(1, 2, 5, 4)),
    "round_keeps_zero_sign": (lambda x: 1 / torch.round(x), torch.tensor([-0.3, 0.3, -0.5, 0.5, 2.5, -0.0])),
    "inverse_trig": (lambda x: (torch.atan(x * 3), torch.asin(x.clamp(-1, 1)), torch.acos(x.clamp(-1, 1)),
                                torch.asinh(x * 5), torch.acosh(x.abs() + 1), torch.atanh(x.clamp(-0.9, 0.9))), X),
    "tan_sinh_cosh": (lambda x: (torch.tan(x), torch.sinh(x), torch.sinh(x * 1e-3), torch.cosh(x)), X),
    "log1p_expm1": (lambda x: (torch.log1p(x.abs() / 0.0), torch.expm1(x), torch.expm1(x * 1e-6), torch.expm1(x * 1e3)), X),
    "trunc": (lambda x, a: (torch.trunc(x * 3), torch.trunc(a)), X, ri(9, 2, 3)),
    "isnan_isinf": (lambda x, a: (torch.isnan(x / x.round()), torch.isinf(1 / x.round()), torch.isposinf(1 / x.round()),
                                  torch.isneginf(1 / x.round()), torch.isinf(a), torch.isnan(a)), X, ri(9, 2, 3)),
    "max_min_dim": (lambda x: (torch.max(x, 1), torch.min(x, 0, keepdim=True), x.max(dim=-1).indices), r(3, 4)),
    "repeat": (lambda x: (x.repeat(2, 3), x.repeat(2, 1, 2), x[0].repeat(3)), X),
    "setitem": (lambda x, y: _assigned(x, y), r(3, 5), r(3, 2)),
    "sdpa_causal_mask": (lambda q, k, v, m: (F.scaled_dot_product_attention(q, k, v, is_causal=True),
                                           F.scaled_dot_product_attention(q, k, v, attn_mask=m)),
                         r(1, 2, 3, 4), r(1, 2, 3, 4), r(1, 2, 3, 4), r(3, 3) > 0),
}


def _assigned(x, y):
    """In-place slice and index assignment (slice_scatter, select_scatter, copy once functionalized)."""
    z = x.clone()
    z[:, 1:3] = y
    z[-1] = 0.5
    z[:, -1:] = z[:, :1] * 2
    z[1, -2:] = y[0]
    return z


@pytest.mark.parametrize("name", sorted(ATEN))
def test_aten_op_matches_eager(name):
    fn, *args = ATEN[name]
    check(*run_strict(fn, *args))


# What AOTAutograd records for SDPA on CUDA (flash, memory-efficient, cuDNN), traced here with
# fake tensors (their meta kernels) and run on the interpreter against the CPU's SDPA.
CUDA_SDPA = {
    "flash": (lambda q, k, v: torch.ops.aten._scaled_dot_product_flash_attention.default(q, k, v, 0.0, True)[0],
              lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), False),
    "efficient": (lambda q, k, v, m: torch.ops.aten._scaled_dot_product_efficient_attention.default(
                      q, k, v, m, False, 0.0, False, scale=0.3)[0],
                  lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=0.3), True),
    "cudnn": (lambda q, k, v, m: torch.ops.aten._scaled_dot_product_cudnn_attention.default(
                  q, k, v, m, False, 0.0, False, False)[0],
              lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m), True),
}


@pytest.mark.parametrize("variant", sorted(CUDA_SDPA))
def test_cuda_sdpa_variants_lower_to_the_attention_operator(variant):
    from torch.fx.experimental.proxy_tensor import make_fx

    from taskmap.frontends.torch_graph import to_graph
    from taskmap.spec.graph.reference import run_reference
    fn, reference, masked = CUDA_SDPA[variant]
    args = (r(1, 2, 3, 4), r(1, 2, 5, 4), r(1, 2, 5, 4)) + ((r(1, 1, 3, 5),) if masked else ())
    graph, _ = to_graph(make_fx(fn, tracing_mode="fake")(*args), args)
    assert [n.op for n in graph.nodes] == ["attention"]
    (got,) = run_reference(graph, *[a.numpy() for a in args])
    torch.testing.assert_close(torch.from_numpy(got), reference(*args), atol=1e-5, rtol=1e-5)


class Attention(nn.Module):
    """A pre-norm transformer block: LayerNorm, softmax attention written out, GELU MLP."""

    def __init__(self, d=8, heads=2):
        super().__init__()
        self.heads, self.ln1, self.ln2 = heads, nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x):
        n, s, d = x.shape
        q, k, v = (t.reshape(n, s, self.heads, -1).transpose(1, 2) for t in self.qkv(self.ln1(x)).chunk(3, -1))
        a = torch.softmax(q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5, dim=-1)
        x = x + self.proj((a @ v).transpose(1, 2).reshape(n, s, d))
        return x + self.mlp(self.ln2(x))


class MHABlock(nn.Module):
    def __init__(self, d=8):
        super().__init__()
        self.ln, self.att = nn.LayerNorm(d), nn.MultiheadAttention(d, 2, batch_first=True)

    def forward(self, x):
        h = self.ln(x)
        return x + self.att(h, h, h, need_weights=False)[0]


def _seeded(make):
    torch.manual_seed(0)
    m = make().eval()
    for b in m.modules():
        if isinstance(b, nn.BatchNorm2d):               # non-trivial running statistics
            b.running_mean.uniform_(-0.5, 0.5)
            b.running_var.uniform_(0.5, 2.0)
    return m


MODELS = {
    "mlp": (lambda: nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4)), (3, 6)),
    "conv_bn": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(4, 4, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)),
                (2, 3, 6, 6)),
    "transformer_block": (Attention, (2, 4, 8)),
    "multihead_attention": (MHABlock, (2, 4, 8)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_nn_module_matches_eager(name):
    make, shape = MODELS[name]
    check(*run_strict(_seeded(make), r(*shape)))


def test_graph_input_names_never_collide_with_the_names_of_new_values():
    """A partition's inputs are named after the parent graph's nodes (`add_1`, ...)."""
    from taskmap.frontends.torch_graph import to_graph
    from taskmap.spec.graph.reference import run_reference
    args = (r(2, 3), r(2, 3))
    g = torch.fx.Graph()
    a, b = g.placeholder("add_1"), g.placeholder("mul_2")
    total = g.call_function(torch.ops.aten.add.Tensor, (a, b))
    product = g.call_function(torch.ops.aten.mul.Tensor, (total, b))
    g.output(product)
    for node, value in zip((a, b, total, product), (*args, args[0] + args[1], (args[0] + args[1]) * args[1])):
        node.meta["val"] = value                # what tracing records
    graph, _ = to_graph(torch.fx.GraphModule(torch.nn.Module(), g), args)
    assert [v.name for v in graph.inputs] == ["add_1", "mul_2"]
    (got,) = run_reference(graph, *[x.numpy() for x in args])
    torch.testing.assert_close(torch.from_numpy(got), (args[0] + args[1]) * args[1])


def test_unsupported_ops_break_the_graph_with_one_warning_naming_each():
    def fn(x):
        return torch.relu(torch.cumprod(x, 0)) + torch.sort(x).values.sum() * 2
    x = r(3, 4)
    with pytest.warns(GraphBreakWarning) as got:
        y = compiled(fn)(x)
    check(y, fn(x))
    (message,) = [str(w.message) for w in got if issubclass(w.category, GraphBreakWarning)]
    assert "aten.cumprod.default" in message and "aten.sort.default" in message
    assert "aten.relu" not in message


def test_an_op_the_registry_rejects_runs_in_torch_too():
    """float64 is not a taskmap dtype: the op is reported with its reason, the result still right."""
    x = r(2, 3).double()
    with pytest.warns(GraphBreakWarning, match=r"aten\.exp\.default .*float64"):
        y = compiled(torch.exp)(x)
    check(y, torch.exp(x))


def test_training_backward_matches_eager():
    m = _seeded(lambda: nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))).train()
    x = r(3, 4)
    compiled(m)(x).square().sum().backward()
    got = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    m(x).square().sum().backward()
    for g, p in zip(got, m.parameters()):
        torch.testing.assert_close(g, p.grad, atol=1e-5, rtol=1e-5)


def test_a_new_batch_size_recompiles_symbolically_and_matches():
    m = _seeded(MODELS["mlp"][0])
    c = compiled(m)
    with torch.no_grad():
        for n in (2, 3, 5):
            x = r(n, 6)
            check(c(x), m(x))


def test_modes_pass_and_unknown_modes_and_options_are_refused():
    m = _seeded(MODELS["mlp"][0])
    x = r(2, 6)
    check(*run_strict(m, x, mode="reduce-overhead"))
    with pytest.raises(Exception, match="unknown option.*warp_size"):
        compiled(m, options={"warp_size": 32})(x)
    with pytest.raises(TaskmapError, match="unknown mode"):
        taskmap_backend(None, [], mode="fastest")


def test_a_mode_can_be_named_among_the_options():      # torch.compile refuses mode= with options=
    settings = compile_options(None, {"mode": "max-autotune", "tune": "quick"})
    assert settings.cuda_graphs and settings.compile == {"tune": "quick"}
    assert compile_options(None, {"mode": "reduce-overhead"}).cuda_graphs
    with pytest.raises(TaskmapError, match="both given; name the mode once"):
        compile_options("reduce-overhead", {"mode": "max-autotune"})
    with pytest.raises(TaskmapError, match="unknown mode 'fast'"):
        compile_options(None, {"mode": "fast"})


def test_tensors_off_the_cpu_get_a_clear_error():
    with pytest.raises(TaskmapError, match="tensors on meta.*CPU tensors"):
        check_devices([torch.empty(2, device="meta")])


def test_a_0d_cpu_tensor_may_join_cuda_ones_but_no_other_cpu_tensor():
    """As torch lets it (a scalar from eager code after a graph break); fake CUDA tensors, so
    no GPU is needed to see the rule."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode():
        x, scalar, vector = torch.empty(4, device="cuda"), torch.empty(()), torch.empty(3)
    check_devices([x, scalar])
    with pytest.raises(TaskmapError, match="tensors on cpu, cuda:0"):
        check_devices([x, scalar, vector])


def test_weights_are_frozen_in_inference_and_an_in_place_update_rebuilds(monkeypatch):
    """No-grad: the Linear weights are constants of the program (only x is an input); a weight
    changed in place gives the new values, not stale ones; freeze=False passes them per call."""
    from taskmap.frontends import torch_backend
    compiled_inputs = []

    def recording(graph, **kw):
        compiled_inputs.append([tuple(v.type.shape) for v in graph.inputs])
        return real(graph, **kw)
    real = torch_backend.compile_graph
    monkeypatch.setattr(torch_backend, "compile_graph", recording)
    m, x = _seeded(MODELS["mlp"][0]), r(3, 6)
    c = compiled(m)
    with torch.no_grad():
        check(c(x), m(x))
        assert compiled_inputs == [[(3, 6)]]
        m[0].weight.mul_(-2)
        check(c(x), m(x))
        check(c(x), m(x))
        m[2].bias.data = m[2].bias.data + 1                  # new storage, version 0 again
        check(c(x), m(x))
    assert compiled_inputs == [[(3, 6)]] * 3               # rebuilt once per change of weights, else reused
    torch._dynamo.reset()
    compiled_inputs.clear()
    with torch.no_grad():
        check(compiled(m, options={"freeze": False})(x), m(x))
    assert sorted(compiled_inputs[0]) == sorted([(3, 6), (16, 6), (16,), (4, 16), (4,)])


def test_weights_of_a_broken_graph_are_frozen_in_each_partition(monkeypatch):
    from taskmap.frontends import torch_backend
    compiled_inputs = []
    real = torch_backend.compile_graph
    monkeypatch.setattr(torch_backend, "compile_graph", lambda graph, **kw: (
        compiled_inputs.append(len(graph.inputs)), real(graph, **kw))[1])
    m = _seeded(lambda: nn.Sequential(nn.Linear(4, 4), nn.ReLU()))
    fn = lambda x: m(torch.cumprod(m(x), 0))
    x = r(3, 4)
    with torch.no_grad(), pytest.warns(GraphBreakWarning, match="cumprod"):
        check(compiled(fn)(x), fn(x))
    assert compiled_inputs == [1, 1]                        # each partition: its activation only


def test_max_autotune_builds_at_the_tuned_points(monkeypatch):
    from taskmap.frontends import torch_backend
    seen = []
    real = torch_backend.compile_graph
    monkeypatch.setattr(torch_backend, "compile_graph", lambda graph, **kw: (seen.append(kw["tune"]),
                                                                             real(graph, **kw))[1])
    m, x = _seeded(MODELS["mlp"][0]), r(2, 6)
    check(*run_strict(m, x, mode="max-autotune"))
    torch._dynamo.reset()
    check(*run_strict(m, x))
    assert seen == ["cached", None]                  # on the CPU: the cached winners, no GPU tuning


def test_every_table_entry_is_an_aten_overload():
    from taskmap.frontends.torch_ops import CONVERTERS
    for name in CONVERTERS:
        _, packet, overload = name.split(".")
        assert overload in getattr(torch.ops.aten, packet).overloads(), name


def test_the_backend_is_registered_by_entry_point():
    (ep,) = [e for e in importlib.metadata.entry_points(group="torch_dynamo_backends") if e.name == "taskmap"]
    assert ep.load() is taskmap_backend
    assert "taskmap" in torch._dynamo.list_backends()
