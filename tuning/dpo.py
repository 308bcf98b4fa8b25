"""The dpo rung: a LoRA adapter tuned on the task (SFT), then on preference pairs with DPO or IPO.

The SFT stage is the `lora` rung's own training with the same options (its artifact is shared with
a `lora` rung of those options); the DPO stage continues the same adapter against the frozen SFT
adapter as reference (tuning/preference_loop.py). Pairs come from `data.preferences`, or, when the
task gives none, are mined from the task: chosen = the gold answer, rejected = the likeliest wrong
label under the SFT adapter (or the base model), or its wrong greedy answer for tasks without labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from harness.cards import AdapterCard, TrainingReport
from harness.data.hashing import content_hash, file_sha256
from harness.data.preferences import PreferencePair, load_preferences
from harness.errors import InputError
from harness.inference.answering import answer_by_generating, answer_by_scoring, resolve_mode
from harness.inference.engine import Engine
from harness.metrics.scoring import scorer_for
from harness.rungs import Predictor, RungContext, rung
from harness.types import Example
from tuning.artifacts import save_artifact
from tuning.micro_batch import CPU_MICRO_BATCH_TOKENS
from tuning.objective import ObjectiveAdapter
from tuning.options import EVALUATION_ONLY, LoraOptions
from tuning.preference_loop import PairRows, PreferenceReport, PreferenceSettings, train_preferences
from tuning.rows import training_rows
from tuning.tuned import TunedPredictor

VALIDATION_SHARE = 0.1  # of a preference file's pairs, held out to judge the epochs by


class DpoConfig(LoraOptions):
    """SFT with the LoRA options, then `dpo_epochs` of DPO (`loss_type: sigmoid`) or IPO at `beta`."""

    beta: float = Field(default=0.1, gt=0, le=10)
    loss_type: Literal["sigmoid", "ipo"] = "sigmoid"
    dpo_epochs: int = Field(default=2, ge=1, le=50)
    dpo_learning_rate: float = Field(default=5e-5, gt=0, le=1)
    pairs_per_batch: int = Field(default=8, ge=1, le=512)
    mine_from: Literal["sft", "base"] = "sft"  # whose wrong answers are the rejected ones, without data.preferences

    def files_needed(self) -> dict[str, str | None]:
        """The task's preference pairs, when it names them (without, they are mined)."""
        return {"preferences": None}


PREFERENCE_ONLY = ("beta", "loss_type", "dpo_epochs", "dpo_learning_rate", "pairs_per_batch", "mine_from")


class DpoPredictor(ObjectiveAdapter):
    """Trains (or loads) SFT, then DPO, on first use; answers like zero_shot with the preference-tuned adapter."""

    def __init__(self, config: DpoConfig, context: RungContext):
        sft_options = {k: v for k, v in config.model_dump().items() if k not in PREFERENCE_ONLY}
        self.sft = TunedPredictor("lora", LoraOptions(**sft_options), context)  # the lora rung of these options
        super().__init__(self.sft.task, config.mode, config.max_new_tokens, self.sft.trainer)
        self.config = config
        self.preferences: Path | None = context.data_files.get("preferences")

    # ---- identity -----------------------------------------------------------------------------

    def pairs_key(self) -> str:
        """What decides the pairs: the file's bytes, or how they are mined from the task's data."""
        if self.preferences is not None:
            return content_hash("file", file_sha256(self.preferences))
        data = [(e.id, e.input, e.target) for e in (*self.context.train, *self.context.validation)]
        return content_hash("mined", self.config.mine_from, data, self.context.labels)

    def artifact_key(self) -> str:
        """The SFT adapter, the pairs and the preference options: what determines the weights."""
        options = {k: getattr(self.config, k) for k in PREFERENCE_ONLY}
        return content_hash("dpo", self.sft.artifact_key(), self.pairs_key(), options, self.context.seed)

    def planned_epochs(self, searched: frozenset[str] = frozenset()) -> float:
        """SFT's epochs (over its search) and the DPO epochs, two answers per pair counted as two rows."""
        return self.sft.planned_epochs(searched) + 2 * self.config.dpo_epochs

    # ---- pairs and training -------------------------------------------------------------------

    def pairs(self, sft: Engine) -> tuple[list[PreferencePair], list[PreferencePair]]:
        """(train pairs, validation pairs): from the file (a seeded tenth held out), or mined."""
        if self.preferences is not None:
            pairs = load_preferences(self.preferences)
            held = max(1, int(len(pairs) * VALIDATION_SHARE)) if len(pairs) >= 10 else 0
            order = sorted(pairs, key=lambda p: content_hash(self.context.seed, p.id))
            return order[held:], order[:held]
        miner = sft if self.config.mine_from == "sft" else self.context.engine
        return self.mine(miner, self.context.train), self.mine(miner, self.context.validation)

    def mine(self, engine: Engine, examples: Sequence[Example]) -> list[PreferencePair]:
        """Gold answer against the miner's likeliest wrong label (labels), or its wrong greedy answer (text)."""
        if not examples:
            return []
        encoded = [self.prompts.split(e) for e in examples]
        labels = self.context.labels
        source = f"mined: {self.config.mine_from}"
        if labels:
            outputs = answer_by_scoring(engine, self.prompts, encoded, labels)
            pairs = []
            for example, output in zip(examples, outputs, strict=True):
                wrong = {label: lp for label, lp in output.detail["logprobs"].items() if label != example.target}
                if wrong:
                    rejected = max(wrong, key=wrong.__getitem__)
                    pairs.append(PreferencePair(example.id, example.input, example.target, rejected, source))
            return pairs
        scorer = scorer_for(self.context.task_type, labels)
        generated = answer_by_generating(engine, self.prompts, encoded, self.config.max_new_tokens)
        return [
            PreferencePair(e.id, e.input, e.target, o.text, source)
            for e, o in zip(examples, generated, strict=True)
            if o.text.strip() and o.text.strip() != e.target.strip() and not scorer(e, o).correct
        ]

    def rows(self, pairs: Sequence[PreferencePair]) -> tuple[tuple[int, ...], list[PairRows]]:
        """The shared prefix and each pair as two training rows (prompt + answer) within max_length."""
        chosen = [Example(p.id, p.prompt, p.chosen) for p in pairs]
        rejected = [Example(p.id, p.prompt, p.rejected) for p in pairs]
        prefix = self.trainer.encoded_rows()[0]
        length = self.config.max_length
        kept = []
        for good, bad in zip(chosen, rejected, strict=True):
            a, b = (
                training_rows(self.prompts, [good], length, prefix),
                training_rows(self.prompts, [bad], length, prefix),
            )
            if a and b:
                kept.append(PairRows(a[0], b[0]))
        return prefix, kept

    def train_into(self, folder: Path) -> Any:
        """SFT (or its stored adapter), the pairs, then DPO on the same adapter; saved with its card."""
        sft_engine = self.sft.engine()
        sft_card = self.sft.card()
        train_pairs, validation_pairs = self.pairs(sft_engine)
        prefix, train_rows = self.rows(train_pairs)
        _, validation_rows = self.rows(validation_pairs)
        if not train_rows:
            where = str(self.preferences) if self.preferences else "the mined pairs"
            raise InputError(f"rungs.dpo: no preference pair fits max_length {self.config.max_length} ({where})")
        model = self.artifacts.load(self.sft.artifact_dir, trainable=True)
        answers = [row for pair in train_rows for row in (pair.chosen, pair.rejected)]
        micro_batch = self.trainer.micro_batch_tokens(self.config, model, answers, prefix)  # SFT steps' size
        if self.config.micro_batch_tokens == "auto" and micro_batch > CPU_MICRO_BATCH_TOKENS:
            micro_batch //= 2  # measured on CUDA for SFT steps; a DPO step also runs the reference pass
        settings = PreferenceSettings(
            epochs=self.config.dpo_epochs,
            learning_rate=self.config.dpo_learning_rate,
            beta=self.config.beta,
            loss_type=self.config.loss_type,
            pairs_per_batch=self.config.pairs_per_batch,
            micro_batch_tokens=micro_batch,
            seed=self.context.seed,
        )
        report = train_preferences(
            model,
            train_rows,
            validation_rows,
            settings,
            self.context.engine.pad_id,
            prefix=prefix,
            metric=self.trainer.validation_metric(),
            progress=self.progress_as("dpo"),
        )
        card = self._card(sft_card, report, train_pairs, validation_pairs, len(train_rows))
        save_artifact(folder, model, card)
        self.trained_now = True
        return model

    def _card(
        self,
        sft: AdapterCard | None,
        report: PreferenceReport,
        train_pairs: Sequence[PreferencePair],
        validation_pairs: Sequence[PreferencePair],
        kept: int,
    ) -> AdapterCard:
        assert sft is not None  # the SFT stage has just trained or loaded
        sources: dict[str, int] = {}
        for pair in (*train_pairs, *validation_pairs):
            sources[pair.source] = sources.get(pair.source, 0) + 1
        preference = {
            **asdict(report),
            "pairs": {"train": len(train_pairs), "validation": len(validation_pairs), "from": sources},
            "pairs_kept": kept,
            "pairs_hash": self.pairs_key(),
            "beta": self.config.beta,
            "loss_type": self.config.loss_type,
            "sft_artifact": self.sft.artifact_dir.name,
            "sft_seconds": _sft_seconds(sft),
        }
        training = TrainingReport(
            train_losses=report.step_losses,
            learning_rates=report.learning_rates,
            tokens_per_s=report.tokens_per_s,
            validation_losses=report.validation_losses,
            validation_metrics=report.validation_metrics[1:],
            selection_metric=self.lora.metric,
            steps=report.steps,
            epochs_run=report.epochs_run,
            evaluation_epochs=[float(e) for e in range(1, report.epochs_run + 1)],
            best_evaluation=report.best_epoch,
            seconds=report.seconds,
            useful_tokens=report.tokens,
            computed_tokens=report.tokens,
            peak_rss_mb=report.peak_rss_mb,
        )
        hyperparameters = {k: v for k, v in self.config.model_dump().items() if k not in EVALUATION_ONLY}
        return sft.model_copy(
            update={
                "objective": "dpo",
                "hyperparameters": hyperparameters,
                "training": training,
                "search": None,
                "metrics": {},
                "preference": preference,
            }
        )


def _sft_seconds(card: AdapterCard) -> float:
    """What the SFT stage cost, its whole search included."""
    if card.search and "seconds" in card.search:
        return float(card.search["seconds"])
    return card.training.seconds


@rung("dpo", config=DpoConfig, sweep=("r",), step=5)
def build_dpo(config: DpoConfig, context: RungContext) -> Predictor:
    """Build the dpo predictor (SFT then DPO on first use, or the stored adapter)."""
    resolve_mode(config.mode, context.labels, "dpo")
    return DpoPredictor(config, context)
