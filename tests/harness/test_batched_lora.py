"""Stacked LoRA adapters answer every row as peft's own mixed-adapter path does, for prefill and decode."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from harness.inference import batched_lora
from harness.inference.adapter_routing import BASE_ADAPTER
from harness.inference.batched_lora import BatchedLora, unbatchable
from harness.inference.engine import Engine

RANKS = (2, 4, 8, 2, 4, 8, 16, 2, 4, 8, 2, 4, 8, 2, 4, 8)  # mixed ranks, up to 16 adapters


@pytest.fixture(scope="module")
def folders(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """16 LoRA adapters of mixed ranks (r 2 to 16, some rsLoRA) with random (not zero) B, saved as peft saves them."""
    from peft import LoraConfig, get_peft_model

    folder = tmp_path_factory.mktemp("adapters")
    saved = []
    for index, rank in enumerate(RANKS):
        torch.manual_seed(100 + index)
        config = LoraConfig(
            r=rank,
            lora_alpha=2 * rank + index,
            target_modules="all-linear",
            init_lora_weights=False,
            use_rslora=index % 3 == 1,
            task_type="CAUSAL_LM",
        )
        path = folder / f"a{index}"
        get_peft_model(copy.deepcopy(tiny_model), config).save_pretrained(str(path))
        saved.append(path)
    return saved


@pytest.fixture(scope="module")
def reference(tiny_model: Any, folders: list[Path]) -> Any:
    """peft's own mixed-adapter model over all 16: adapter i is named a{i}."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(copy.deepcopy(tiny_model), str(folders[0]), adapter_name="a0")
    for index, path in enumerate(folders[1:], 1):
        model.load_adapter(str(path), adapter_name=f"a{index}")
    return model.eval()


def stacked(model: Any, folders: list[Path]) -> tuple[Any, BatchedLora]:
    base = copy.deepcopy(model).eval()
    lora = BatchedLora(base)
    for index, path in enumerate(folders):
        lora.load(f"a{index}", path)
    return base, lora


@pytest.mark.parametrize("path", ["gathered", "masked"])
@pytest.mark.parametrize("count", [1, 4, 16])
def test_stacked_adapters_give_peft_s_logits_row_by_row(
    tiny_model: Any, folders: list[Path], reference: Any, count: int, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both ways of mixing adapters in a pass, each row's adapter gathered or every slot masked, forced here
    (the engine picks by the rows' length)."""
    monkeypatch.setattr(batched_lora, "_MASKED_SLOT_TOKENS", 0 if path == "gathered" else 10**9)
    base, lora = stacked(tiny_model, folders[:count])
    torch.manual_seed(0)
    rows = 2 * count + 1
    ids = torch.randint(3, 400, (rows, 9))
    names = [f"a{i % count}" for i in range(rows - 1)] + [BASE_ADAPTER]
    with torch.no_grad():
        expected = reference(input_ids=ids, adapter_names=names).logits
        got = lora.forward(base, names, input_ids=ids).logits
        one = lora.forward(base, ["a0"], input_ids=ids[:1]).logits  # one adapter for the whole batch
        plain = base(input_ids=ids).logits  # outside routing: the base
        reference_base = reference(input_ids=ids, adapter_names=[BASE_ADAPTER] * rows).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
    torch.testing.assert_close(one, expected[:1], rtol=0, atol=1e-4)
    torch.testing.assert_close(plain, reference_base, rtol=0, atol=1e-5)
    assert not torch.allclose(expected[0], reference_base[0], atol=1e-3)  # the adapters do change the answers
    lora.close()


def test_generation_through_the_stacks_writes_what_peft_writes(
    tiny_model: Any, tiny_tokenizer: Any, folders: list[Path], reference: Any
) -> None:
    peft_engine = Engine(reference, tiny_tokenizer)
    base, lora = stacked(tiny_model, folders[:4])
    ours = Engine(base, tiny_tokenizer, routing=lora)
    prompts = [[5, 9, 14, 22], [7, 8], [30, 31, 32, 33, 34, 35], [12, 13, 14], [40, 41]]
    names = ["a0", "a1", "a2", "a3", BASE_ADAPTER]
    expected = peft_engine.generate(prompts, max_new_tokens=6, adapters=names)
    got = ours.generate(prompts, max_new_tokens=6, adapters=names)
    assert [g.tokens for g in got] == [g.tokens for g in expected]
    lora.close()


def test_an_adapter_dropped_and_another_loaded_in_its_slot_answer_as_alone(
    tiny_model: Any, folders: list[Path], reference: Any
) -> None:
    """The LRU's eviction: a freed slot is reused by the next load (a larger rank grows the stacks) without a
    restart, and the adapters left answer as before."""
    base, lora = stacked(tiny_model, folders[:3])
    before = lora.bytes()
    ids = torch.randint(3, 400, (3, 7))
    with torch.no_grad():
        kept = lora.forward(base, ["a2"], input_ids=ids).logits
        lora.drop("a1")
        lora.load("a6", folders[6])  # rank 16: the stacks grow
        assert lora.names == ["a0", "a2", "a6"] and lora.bytes() > before
        got = lora.forward(base, ["a0", "a2", "a6"], input_ids=ids).logits
        expected = reference(input_ids=ids, adapter_names=["a0", "a2", "a6"]).logits
        again = lora.forward(base, ["a2"], input_ids=ids).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
    torch.testing.assert_close(again, kept, rtol=0, atol=1e-5)
    with pytest.raises(KeyError, match="a1 is not resident"):
        lora.forward(base, ["a1"], input_ids=ids)
    lora.close()


def test_what_cannot_join_the_stacks_says_why(tmp_path: Path) -> None:
    assert unbatchable({"peft_type": "LORA", "r": 8}) is None
    assert "DoRA" in str(unbatchable({"peft_type": "LORA", "use_dora": True}))
    assert "IA3" in str(unbatchable({"peft_type": "IA3"}))
    assert "biases" in str(unbatchable({"peft_type": "LORA", "bias": "all"}))
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "use_dora": True}))
    with pytest.raises(ValueError, match="cannot be batched with other adapters: DoRA"):
        BatchedLora(None).load("x", tmp_path)
