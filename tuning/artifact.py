"""Where a tuned rung's weights are kept: the content hash of each configuration, its folder and card, and
loading what is stored over a fresh copy of the base.

The keys are hashes of what determines the weights (base model, data, prompt, method, options, selection
metric, seed), so a warm run of a store finds every adapter it trained before.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.cards import AdapterCard
from harness.data.hashing import content_hash
from harness.distributed import writes_files
from tuning.artifacts import is_complete, read_card, write_card
from tuning.methods import quantized_base, sharing_weights
from tuning.options import EVALUATION_ONLY, TuneConfig
from tuning.tuning_task import TuningTask


class TunedArtifacts:
    """The artifacts of one tuning task: keys, folders, cards, loading."""

    def __init__(self, task: TuningTask):
        self.task = task

    def key(self, config: TuneConfig | None = None) -> str:
        """Base model, data, prompt, method, options, selection metric and seed: what determines the weights."""
        task, ctx = self.task, self.task.context
        config = config or task.config
        options = {k: v for k, v in config.model_dump().items() if k not in EVALUATION_ONLY}
        search = config.search.model_dump() if config.search and task.space else None
        fmt = asdict(task.prompts.format)
        data = self._data()
        return content_hash(task.method, options, search, task.metric, ctx.model_fingerprint, fmt, data, ctx.seed)

    def folder(self, config: TuneConfig) -> Path:
        """The folder of this fixed configuration's artifact."""
        return self.task.context.cache_dir / "adapters" / self.key(config)

    def trial_folder(self, name: str) -> Path:
        """The folder of a search trial's artifact, by the name its outcome recorded."""
        return self.task.context.cache_dir / "adapters" / name

    def search_folder(self) -> Path:
        """The folder of the task's search (its journal and result)."""
        return self.task.context.cache_dir / "searches" / self.key()

    def family_key(self) -> str:
        """What makes searches of the method's family comparable: base, data, prompt, selection metric, seed."""
        task, ctx = self.task, self.task.context
        fmt = asdict(task.prompts.format)
        return content_hash(task.spec.family, ctx.model_fingerprint, self._data(), fmt, task.metric, ctx.seed)

    def _data(self) -> list[tuple[str, Any, str]]:
        return [(e.id, e.input, e.target) for e in (*self.task.train_set, *self.task.validation_set)]

    def card(self, folder: Path) -> AdapterCard | None:
        """The card of the artifact in `folder`; None before it is complete."""
        return read_card(folder) if is_complete(folder) else None

    def update_card(self, folder: Path, **update: Any) -> None:
        """Rewrite fields of the stored card (evaluated metrics, the search)."""
        card = self.card(folder)
        if card is not None:
            write_card(folder, card.model_copy(update=update))

    def base(self) -> Any:
        """The base this method wraps: the engine's model, or a module tree over the run's one 4-bit base."""
        ctx = self.task.context
        if self.task.spec.base == "quantized":
            return quantized_base(ctx.model_path, ctx.device)
        return ctx.engine.model

    def load(self, folder: Path, trainable: bool = False) -> Any:
        """A stored artifact of this method over a fresh copy of the base (trainable: to train it further)."""
        engine = self.task.context.engine
        if self.task.spec.artifact == "model":
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True, dtype=engine.model.dtype)
            return model.to(engine.device).eval()
        from peft import PeftModel

        base = self.base() if self.task.spec.base == "quantized" else sharing_weights(engine.model)
        adapter = PeftModel.from_pretrained(base, str(folder), use_safetensors=True, is_trainable=trainable)
        return adapter if trainable else adapter.eval()


def remove(folder: Path) -> None:
    """Delete an artifact folder (a partial one, or a trial not chosen); under a launch only rank 0 does."""
    import shutil

    if writes_files():
        shutil.rmtree(folder, ignore_errors=True)
