"""How rows for different adapters share one forward pass: the protocol an engine calls, and peft's way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

BASE_ADAPTER = "__base__"  # peft's name for "no adapter" in a mixed-adapter batch


class AdapterRouting(Protocol):
    """How a model answers rows for different adapters in one forward pass."""

    def forward(self, model: Any, adapter_names: Sequence[str], **inputs: Any) -> Any:
        """The model's output for `inputs`, row i answered by adapter `adapter_names[i]`."""
        ...


class PeftRouting:
    """peft's mixed-adapter batches: the names go to the model as `adapter_names`."""

    def forward(self, model: Any, adapter_names: Sequence[str], **inputs: Any) -> Any:
        return model(**inputs, adapter_names=list(adapter_names))
