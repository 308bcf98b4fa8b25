"""Warnings that libraries raise from their own code, which we cannot fix: each silenced alone, with why.

Our own calls follow the current APIs (the transformers `cache=` argument, not `past_key_values=`),
so nothing here comes from a call we make. pyproject.toml's pytest `filterwarnings` repeats these
entries (it turns every other FutureWarning and DeprecationWarning into a test failure).
"""

from __future__ import annotations

import warnings

UNFIXABLE: list[tuple[type[Warning], str, str]] = [
    (
        FutureWarning,
        r"`is_gradient_checkpointing` is deprecated",
        "peft 0.21.2 reads PreTrainedModel.is_gradient_checkpointing whenever it wraps a model "
        "(peft_model.py, PeftModel.__init__); transformers 5.24 deprecates that property. We never read it.",
    ),
    (
        UserWarning,
        r"Detected pickle protocol \d+ in the checkpoint",
        "torch's weights-only unpickler notes the pickle protocol of a user's .bin checkpoint, loaded only with "
        "--allow-pickle; the file's format is the user's, and it loads correctly.",
    ),
    (
        UserWarning,
        r".*bitsandbytes::gemv_4bit.*autograd kernel.*",
        "torch notes that bitsandbytes' 4-bit matmul has no autograd kernel registered; the adapters above it "
        "still get their gradients (tests/tuning/test_tuning.py checks every LoRA weight of a QLoRA model).",
    ),
    (
        FutureWarning,
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        "torch 2.13's own ONNX exporter (torch.onnx.export(dynamo=True), `advisor export` and the onnx rung) "
        "deep-copies its pytree specs, and torch.utils._pytree deprecates the LeafSpec check its copy makes; "
        "nothing we pass changes it.",
    ),
]


def silence_unfixable_warnings() -> None:
    """Ignore exactly the warnings listed in UNFIXABLE, nothing broader."""
    for category, message, _why in UNFIXABLE:
        warnings.filterwarnings("ignore", message=message, category=category)
