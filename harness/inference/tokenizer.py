"""A model's tokenizer that loads when something must be tokenized, and what its files say without loading it.

Loading a tokenizer imports transformers, which takes seconds; a run that finds every answer stored
tokenizes nothing. So the tokenizer that a run's prompts and engine share is a stand-in that loads
the real one on first use. Whether the model has a chat template decides the prompt format (part of
every stored result's key), so it is read from the same files transformers reads it from.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOKENIZER_CONFIG = "tokenizer_config.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"
CHAT_TEMPLATE_DIR = "additional_chat_templates"


class DeferredTokenizer:
    """Stands in for a tokenizer: its attributes and calls go to the real one, loaded once on first use."""

    def __init__(self, load: Callable[[], Any]):
        self._load = load
        self._tokenizer: Any = None

    @property
    def loaded(self) -> bool:
        """Whether the real tokenizer is in memory."""
        return self._tokenizer is not None

    def get(self) -> Any:
        """The real tokenizer (loaded now, if it was not)."""
        if self._tokenizer is None:
            self._tokenizer = self._load()
        return self._tokenizer

    def __getattr__(self, name: str) -> Any:
        # only reached for names this class lacks; private ones (asked by copy and pickle on a
        # half-built instance) must not recurse into get()
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.get(), name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Tokenize, as the real tokenizer does."""
        return self.get()(*args, **kwargs)

    def __len__(self) -> int:
        """The vocabulary size, as the real tokenizer reports it."""
        return len(self.get())


def saved_chat_template(folder: Path) -> bool | None:
    """Whether the tokenizer saved in `folder` has a chat template; None when its files cannot tell.

    transformers takes chat_template.jinja and the named templates in additional_chat_templates/
    before the `chat_template` entry of tokenizer_config.json. None (no tokenizer_config.json, or
    one that is not JSON) leaves the answer, and any error, to loading the tokenizer.
    """
    config_path = folder / TOKENIZER_CONFIG
    if not config_path.is_file():
        return None
    templates: dict[str, str] = {}
    if (folder / CHAT_TEMPLATE_FILE).is_file():
        templates["default"] = (folder / CHAT_TEMPLATE_FILE).read_text(encoding="utf-8")
    if (folder / CHAT_TEMPLATE_DIR).is_dir():
        for path in (folder / CHAT_TEMPLATE_DIR).glob("*.jinja"):
            templates[path.name.removesuffix(".jinja")] = path.read_text(encoding="utf-8")
    if templates:
        return bool(templates["default"]) if list(templates) == ["default"] else True
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except ValueError:  # not UTF-8 or not JSON: loading the tokenizer reports it as it always did
        return None
    return bool(config.get("chat_template")) if isinstance(config, dict) else None
