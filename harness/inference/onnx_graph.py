"""A causal LM as an ONNX graph: logits at chosen positions, and the keys and values it attended to.

The graph takes what the engine gives a model: token ids, a 4D boolean attention mask (a tree of answer
blocks over a shared context, or causal rows with left padding), position ids, the positions whose logits are
wanted, and the keys and values of the tokens before them (`past.<layer>.key` / `.value`, batch 1 for a prefix
every row shares, or one per row; length 0 for none). It returns those logits and the keys and values of
everything it saw (`present.<layer>.key` / `.value`). So an ONNX model scores a row exactly as the PyTorch
engine does (a shared prefix once, the context once for every choice, logits only where a choice token is
predicted), and generates one token per step over its cache.

torch's own exporter (`dynamo=True`) does the work; optimum-onnx is not used (no release of it installs
beside transformers 5). The libraries are imported only here and in onnx_quantize.py, when asked to export.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from harness.errors import InputError

ONNX_PACKAGES = ("onnxruntime", "onnx", "onnxscript")
INSTALL_HINT = "pip install 'ladder-advisor[onnx]'"
INPUTS = ("input_ids", "attention_mask", "position_ids", "keep")
OUTPUT = "logits"
PAST, PRESENT = "past", "present"  # past.<layer>.key in, present.<layer>.key out (and .value)
# torch.export specialises a dimension of size 0 or 1 to a constant: the sample is larger on every axis
_SAMPLE_ROWS, _SAMPLE_LENGTH, _SAMPLE_PAST = 2, 8, 3


def require_onnx(what: str) -> None:
    """Refuse (bad input: the extra is not installed) before any work, naming the command that installs it."""
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise InputError(f"{what} needs {', '.join(missing)} (the onnx extra): {INSTALL_HINT}")


def library_versions() -> dict[str, str]:
    """The versions that made and run an export, for its card."""
    versions = {}
    for name in ("torch", "transformers", "peft", *ONNX_PACKAGES):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def cache_names(layers: int, prefix: str) -> list[str]:
    """`<prefix>.<layer>.key`, `<prefix>.<layer>.value` for every layer, in the graph's order."""
    return [f"{prefix}.{layer}.{part}" for layer in range(layers) for part in ("key", "value")]


def export_logits_graph(model: Any, target: Path) -> None:
    """Write `model` (a causal LM on the CPU, float32, in eval mode) to `target` as the graph described above.

    Its weights go to an external data file beside it (`<target>.data`), which the graph names; models past
    the protobuf limit of 2 GB could not be written otherwise.
    """
    import torch

    past = _sample_cache(model, _SAMPLE_PAST)
    rows, length, before = _SAMPLE_ROWS, _SAMPLE_LENGTH, _SAMPLE_PAST
    mask = torch.ones((rows, 1, length, before + length), dtype=torch.bool)
    mask[..., before:] = torch.ones((length, length), dtype=torch.bool).tril()
    sample = (
        torch.ones((rows, length), dtype=torch.long),
        mask,
        torch.arange(before, before + length).expand(rows, length).contiguous(),
        torch.tensor([length - 2, length - 1]),
        *past,
    )
    # Each dimension is named once; the other inputs' axes follow from the graph (naming the same dimension on
    # several inputs makes the exporter warn that it keeps only one of the names).
    auto = torch.export.Dim.AUTO
    cache_axes = [{0: auto, 2: auto} for _ in past]
    cache_axes[0] = {0: auto, 2: torch.export.Dim("past")}
    dynamic = {
        "input_ids": {0: torch.export.Dim("batch"), 1: torch.export.Dim("length")},
        "attention_mask": {0: auto, 2: auto, 3: auto},
        "position_ids": {0: auto, 1: auto},
        "keep": {0: torch.export.Dim("kept")},
        "past": tuple(cache_axes),
    }
    layers = len(past) // 2
    target.parent.mkdir(parents=True, exist_ok=True)
    with _quiet_exporter(), torch.no_grad():
        torch.onnx.export(
            _graph_module(model, layers).eval(),
            sample,
            str(target),
            input_names=[*INPUTS, *cache_names(layers, PAST)],
            output_names=[OUTPUT, *cache_names(layers, PRESENT)],
            dynamic_shapes=dynamic,
            dynamo=True,
            external_data=True,
            verbose=False,
        )


def _sample_cache(model: Any, length: int) -> list[Any]:
    """Keys and values of `length` tokens for every layer, shaped as the model's own cache holds them."""
    import torch
    from transformers import DynamicCache

    cache: Any = DynamicCache()
    with torch.no_grad():
        model(input_ids=torch.ones((1, length), dtype=torch.long), cache=cache, use_cache=True)
    return [tensor.clone() for layer in cache.layers for tensor in (layer.keys, layer.values)]


def _graph_module(model: Any, layers: int) -> Any:
    """The model as a module of (input_ids, attention_mask, position_ids, keep, *past) -> (logits, *present)
    (defined here so that torch is imported only when exporting)."""
    import torch
    from transformers import DynamicCache

    class Graph(torch.nn.Module):
        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, position_ids: Any, keep: Any, *past: Any) -> Any:
            rows = input_ids.shape[0]
            cache: Any = DynamicCache()
            for layer in range(layers):  # a prefix's keys and values (batch 1) serve every row
                keys, values = past[2 * layer], past[2 * layer + 1]
                cache.update(keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1), layer)
            logits = self.inner(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                cache=cache,
                logits_to_keep=keep,
                use_cache=True,
            ).logits
            return (logits, *(tensor for layer in cache.layers for tensor in (layer.keys, layer.values)))

    return Graph(model)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter logs every optional operator library it does not find (torchvision's) at warning level;
    none of it is ours to act on. Its own warnings that we cannot fix are harness/library_warnings.py's."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
