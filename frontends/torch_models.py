"""torchvision / transformers modules built from config with seeded random weights (no
downloads), exported to ONNX for `taskmap.compile` — the `torch:` source of model cases.

    module = build("bert", {"hidden_size": 16, "num_hidden_layers": 1, ...}, seed=0)
    model = to_onnx(module, {"input_ids": ids})          # an onnx.ModelProto
    outputs = run(module, {"input_ids": ids})            # the torch reference, NumPy arrays

torch, torchvision and transformers are optional: `unavailable(name)` says which is missing.
The modules run in eval mode, on the CPU, in float32.
"""
from __future__ import annotations

import importlib.util
import inspect
import io

# name -> (package it needs, factory(config) -> torch.nn.Module)
BUILDERS = {
    "resnet50": ("torchvision", lambda c: _torchvision("resnet50", c)),
    "mobilenet_v2": ("torchvision", lambda c: _torchvision("mobilenet_v2", c)),
    "inception_v3": ("torchvision", lambda c: _torchvision("inception_v3", {"aux_logits": False,
                                                                           "init_weights": True, **c})),
    "bert": ("transformers", lambda c: _transformers("BertModel", "BertConfig", c)),
    "gpt2": ("transformers", lambda c: _transformers("GPT2Model", "GPT2Config", c)),
    "gpt2_lm": ("transformers", lambda c: _transformers("GPT2LMHeadModel", "GPT2Config", c)),   # with the LM head
}
OPSET = 17


def unavailable(name: str) -> str | None:
    """Why the torch model `name` cannot be built here, or None."""
    for package in ("torch", BUILDERS[name][0]):
        if importlib.util.find_spec(package) is None:
            return f"torch model {name}: {package} is not installed (pip install {package})"
    return None


def build(name: str, config: dict, seed: int):
    import torch
    torch.manual_seed(seed)
    return BUILDERS[name][1](dict(config)).eval()


def _torchvision(fn: str, config: dict):
    import torchvision
    return getattr(torchvision.models, fn)(weights=None, **config)


def _transformers(model_class: str, config_class: str, config: dict):
    import transformers
    # eager attention unless the config says otherwise: plain MatMul / Softmax in the export rather
    # than a fused SDPA call (the benchmarks' torch baselines ask for "sdpa", torch's fastest)
    cfg = getattr(transformers, config_class)(**{"attn_implementation": "eager", **config})
    return getattr(transformers, model_class)(cfg)


def _tensors(inputs: dict):
    import torch
    return tuple(torch.from_numpy(a) for a in inputs.values())


def _by_name(module, names):
    """`module` called with its inputs by keyword, returning plain tensors: transformers 5 models
    traced with positional inputs fail ("got multiple values for argument 'use_cache'"), and the
    TorchScript exporter cannot pass keywords itself."""
    import torch

    class ByName(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = module

        def forward(self, *tensors):
            out = self.inner(**dict(zip(names, tensors)))
            return out.to_tuple() if hasattr(out, "to_tuple") else out   # transformers' ModelOutput

    return ByName()


def run(module, inputs: dict) -> list:
    """The module's outputs on `inputs` (NumPy arrays), flattened as the ONNX export orders them."""
    import torch
    with torch.no_grad():
        out = _by_name(module, list(inputs))(*_tensors(inputs))
    flat = list(out) if isinstance(out, (tuple, list)) else [out]
    return [t.numpy() for t in flat if isinstance(t, torch.Tensor)]


def to_onnx(module, inputs: dict):
    """The module exported (TorchScript exporter, opset OPSET) on example `inputs` by name. A copy is
    traced: tracing changes a transformers 5 module's later eager outputs."""
    import copy

    import onnx
    import torch
    buffer = io.BytesIO()
    options = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    with torch.no_grad():
        torch.onnx.export(_by_name(copy.deepcopy(module), list(inputs)), _tensors(inputs), buffer,
                          input_names=list(inputs), opset_version=OPSET, do_constant_folding=True, **options)
    return onnx.shape_inference.infer_shapes(onnx.load_from_string(buffer.getvalue()))
