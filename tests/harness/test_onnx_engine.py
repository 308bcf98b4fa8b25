"""An exported logits graph answers as the PyTorch engine does: the same choice scores, the same generations.

The tiny random llama is exported once for the module (torch's exporter, about ten seconds); its int8 graph
is quantized from it. Skipped, with the reason, when the `onnx` extra is not installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install 'ladder-advisor[onnx]'")

import numpy as np
import torch

from harness.inference.choice_rows import ChoiceRequest
from harness.inference.engine import Engine
from harness.inference.onnx_engine import OnnxEngine, TokenIds
from harness.inference.onnx_graph import export_logits_graph
from harness.inference.onnx_quantize import int8_layers, quantize_int8


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory, tiny_model: Any) -> Path:
    folder = tmp_path_factory.mktemp("onnx")
    export_logits_graph(tiny_model, folder / "model.onnx")
    quantize_int8(folder / "model.onnx", folder / "model.int8.onnx")
    return folder


def engines(graphs: Path, tiny_model: Any, tiny_tokenizer: Any, graph: str = "model.onnx") -> tuple[Engine, OnnxEngine]:
    torch_engine = Engine(tiny_model, tiny_tokenizer, max_batch_tokens=64)  # small batches: padding inside them
    ids = TokenIds(torch_engine.pad_id, frozenset(torch_engine.end_ids))
    return torch_engine, OnnxEngine(graphs / graph, tiny_tokenizer, ids, threads=1, max_batch_tokens=64)


def encode(tokenizer: Any, text: str) -> tuple[int, ...]:
    return tuple(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_choice_scores_equal_the_engines_with_a_prefix_multi_token_choices_and_padding(
    graphs: Path, tiny_model: Any, tiny_tokenizer: Any
) -> None:
    torch_engine, onnx_engine = engines(graphs, tiny_model, tiny_tokenizer)
    choices = tuple(encode(tiny_tokenizer, c) for c in (" billing", " technical issue", " account access", "x"))
    texts = ["The app crashes when I upload a file.", "I was charged twice", "How do I reset my password? Please"]
    requests = [ChoiceRequest(encode(tiny_tokenizer, text), choices) for text in texts]
    prefix = encode(tiny_tokenizer, "Ticket: Route the ticket.")
    for shared in ((), prefix):
        expected = torch_engine.score(requests, prefix=shared)
        got = onnx_engine.score(requests, prefix=shared)
        assert np.allclose(got, expected, atol=1e-4), (got, expected)
    single = [ChoiceRequest(r.context, tuple(c[:1] for c in choices)) for r in requests]  # the plain causal path
    assert np.allclose(onnx_engine.score(single), torch_engine.score(single), atol=1e-4)


def test_generation_gives_the_engines_tokens_and_stops_where_it_stops(
    graphs: Path, tiny_model: Any, tiny_tokenizer: Any
) -> None:
    torch_engine, onnx_engine = engines(graphs, tiny_model, tiny_tokenizer)
    prompts = [list(encode(tiny_tokenizer, t)) for t in ("I was charged", "Please add a dark mode and")]
    prefix = encode(tiny_tokenizer, "Ticket:")
    for stop in ((), ("e",)):
        expected = torch_engine.generate(prompts, max_new_tokens=6, stop=stop, prefix=prefix)
        got = onnx_engine.generate(prompts, max_new_tokens=6, stop=stop, prefix=prefix)
        assert [(g.tokens, g.text, g.completion_tokens) for g in got] == [
            (g.tokens, g.text, g.completion_tokens) for g in expected
        ]


def test_the_graphs_logits_match_a_plain_forward_pass(graphs: Path, tiny_model: Any, tiny_tokenizer: Any) -> None:
    _, onnx_engine = engines(graphs, tiny_model, tiny_tokenizer)
    row = encode(tiny_tokenizer, "Delete all my personal data. I want to cancel my subscription.")
    with torch.inference_mode():
        expected = tiny_model(input_ids=torch.tensor([row])).logits[0].numpy()
    assert np.abs(onnx_engine.sequence_logits(row) - expected).max() < 1e-4


def test_int8_quantizes_the_linear_layers_but_the_down_projections_and_the_head(
    graphs: Path, tiny_model: Any, tiny_tokenizer: Any
) -> None:
    layers = int8_layers(graphs / "model.onnx")
    assert (len(layers.quantized), len(layers.kept_float)) == (2 * 6, 2 + 1)  # two layers of q k v o gate up
    torch_engine, int8_engine = engines(graphs, tiny_model, tiny_tokenizer, "model.int8.onnx")
    assert (graphs / "model.int8.onnx").stat().st_size + (graphs / "model.int8.onnx.data").stat().st_size < (
        graphs / "model.onnx"
    ).stat().st_size + (graphs / "model.onnx.data").stat().st_size
    choices = (encode(tiny_tokenizer, " billing"), encode(tiny_tokenizer, " technical issue"))
    request = [ChoiceRequest(encode(tiny_tokenizer, "I was charged twice"), choices)]
    assert np.allclose(int8_engine.score(request), torch_engine.score(request), atol=0.5)  # close, not equal


def test_rows_cannot_name_adapters(graphs: Path, tiny_model: Any, tiny_tokenizer: Any) -> None:
    _, onnx_engine = engines(graphs, tiny_model, tiny_tokenizer)
    with pytest.raises(ValueError, match="adapters"):
        onnx_engine.score([ChoiceRequest((5, 6), ((7,),))], adapters=["a"])
