"""The tokenizer a run loads only when it tokenizes, and the chat template read from the files without loading it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.inference.tokenizer import DeferredTokenizer, saved_chat_template
from tests.conftest import CHATML

# layout: what the folder holds besides tokenizer.json, and whether transformers finds a template there
LAYOUTS = {
    "template_file": True,  # chat_template.jinja, as save_pretrained writes it
    "no_template": False,
    "in_config": True,  # the older place: tokenizer_config.json's chat_template entry
    "named_in_config": True,  # a list of {name, template} in tokenizer_config.json
    "named_files": True,  # additional_chat_templates/<name>.jinja only
    "empty_file_wins": False,  # an empty chat_template.jinja hides the config's entry
}


def saved_layout(tokenizer: Any, folder: Path, layout: str) -> Path:
    """The tokenizer saved in `folder`, its chat template then moved to where `layout` says."""
    tokenizer.save_pretrained(folder)
    template_file = folder / "chat_template.jinja"
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if layout != "template_file":
        template_file.unlink()
    if layout == "in_config":
        config["chat_template"] = CHATML
    elif layout == "named_in_config":
        config["chat_template"] = [{"name": "default", "template": CHATML}, {"name": "tool_use", "template": CHATML}]
    elif layout == "named_files":
        (folder / "additional_chat_templates").mkdir()
        (folder / "additional_chat_templates" / "tool_use.jinja").write_text(CHATML, encoding="utf-8")
    elif layout == "empty_file_wins":
        template_file.write_text("", encoding="utf-8")
        config["chat_template"] = CHATML
    config_path.write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_the_chat_template_is_read_from_the_files_as_transformers_reads_them(
    tiny_tokenizer: Any, tmp_path: Path, layout: str
) -> None:
    from transformers import AutoTokenizer

    folder = saved_layout(tiny_tokenizer, tmp_path / layout, layout)
    loaded = AutoTokenizer.from_pretrained(str(folder))
    assert saved_chat_template(folder) is bool(loaded.chat_template) is LAYOUTS[layout]


def test_files_that_cannot_tell_leave_it_to_loading_the_tokenizer(tiny_tokenizer: Any, tmp_path: Path) -> None:
    tiny_tokenizer.save_pretrained(tmp_path)
    (tmp_path / "chat_template.jinja").unlink()
    (tmp_path / "tokenizer_config.json").write_text("{not json", encoding="utf-8")
    assert saved_chat_template(tmp_path) is None
    (tmp_path / "tokenizer_config.json").unlink()
    assert saved_chat_template(tmp_path) is None


def test_the_deferred_tokenizer_loads_once_on_first_use(tiny_tokenizer: Any) -> None:
    loads: list[int] = []

    def load() -> Any:
        loads.append(1)
        return tiny_tokenizer

    deferred = DeferredTokenizer(load)
    assert not deferred.loaded and loads == []
    ids = tiny_tokenizer("billing", add_special_tokens=False)["input_ids"]
    assert deferred("billing", add_special_tokens=False)["input_ids"] == ids
    assert deferred.eos_token_id == tiny_tokenizer.eos_token_id and len(deferred) == len(tiny_tokenizer)
    assert deferred.loaded and deferred.get() is tiny_tokenizer and loads == [1]
