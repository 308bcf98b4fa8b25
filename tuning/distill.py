"""The distill rung: a small student (a LoRA on the task's model) trained on a teacher rung's answers.

`teacher:` names another rung of the task (a few-shot or RAG prompt: context distillation; a remote
endpoint; a bigger model's rung); the student answers with the short zero_shot prompt. The teacher
labels the train inputs, plus `data.unlabelled` when the task has it; its answers go through the
result store, so they are computed once. For a label set the student learns the teacher's
distribution over the labels (soft targets at `temperature`, tuning/distill_loop.py); for text it
learns the teacher's written answers (the lora rung's own training on them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from harness.cards import AdapterCard, TrainingReport
from harness.data.hashing import content_hash
from harness.data.labels import match_label
from harness.data.loading import FieldMap, load_inputs
from harness.errors import InputError
from harness.inference.answering import resolve_mode
from harness.rungs import OtherRungs, Predictor, RungContext, rung
from harness.types import Example, Output
from tuning.artifacts import save_artifact
from tuning.distill_loop import DistillReport, DistillSettings, SoftExample, teacher_distribution, train_distillation
from tuning.methods import count_parameters
from tuning.objective import ObjectiveAdapter
from tuning.options import EVALUATION_ONLY, LoraOptions
from tuning.rows import training_rows
from tuning.trainer import Trainer
from tuning.tuning_task import TuningTask

STUDENT_LEARNING_RATE = 4e-4  # what the lora search chose on the shipped example (docs/measurement.md)


class DistillConfig(LoraOptions):
    """A LoRA student of `teacher` (another rung's name), trained for `epochs` at `learning_rate`."""

    teacher: str = Field(min_length=1)
    temperature: float = Field(default=2.0, gt=0, le=20)
    epochs: int = Field(default=3, ge=1, le=100)
    examples_per_batch: int = Field(default=8, ge=1, le=512)
    use_unlabelled: bool = True  # the teacher also labels data.unlabelled's inputs
    search: Literal[False] = False  # the student trains once; the teacher's answers are its data

    def files_needed(self) -> dict[str, str | None]:
        """The task's unlabelled inputs, when asked to label them too."""
        return {"unlabelled": None} if self.use_unlabelled else {}

    def learns_from(self) -> str | None:
        """Its teacher."""
        return self.teacher


DISTILL_ONLY = ("teacher", "temperature", "examples_per_batch", "use_unlabelled")


class DistillPredictor(ObjectiveAdapter):
    """Asks the teacher, trains the student (or loads it), then answers like zero_shot with the student."""

    def __init__(self, config: DistillConfig, context: RungContext):
        options = {k: v for k, v in config.model_dump().items() if k not in DISTILL_ONLY}
        learning_rate = config.learning_rate or STUDENT_LEARNING_RATE
        student = TuningTask.of("lora", LoraOptions(**{**options, "learning_rate": learning_rate}), context)
        super().__init__(student, config.mode, config.max_new_tokens)
        self.config = config

    @property
    def teacher(self) -> OtherRungs:
        """The task's other rungs, the teacher among them (`advisor assess` offers them; a plan needs none)."""
        if self.context.other_rungs is None:
            raise InputError("rungs.distill: its teacher is another rung of the task; run it with `advisor assess`")
        return self.context.other_rungs

    # ---- identity -----------------------------------------------------------------------------

    @cached_property
    def inputs(self) -> list[Example]:
        """What the teacher labels: the train inputs, and the unlabelled ones when asked."""
        inputs = list(self.context.train)
        path = self.context.data_files.get("unlabelled")
        if self.config.use_unlabelled and path is not None:
            inputs += load_inputs(path, FieldMap())
        return inputs

    def artifact_key(self) -> str:
        """The student's options, the teacher's identity and the inputs it labels."""
        options = {k: v for k, v in self.config.model_dump().items() if k not in EVALUATION_ONLY}
        inputs = [(e.id, e.input) for e in self.inputs]
        teacher = self.teacher.fingerprint(self.config.teacher)
        validation = [(e.id, e.input, e.target) for e in self.context.validation]
        ctx = self.context
        return content_hash("distill", options, teacher, inputs, validation, ctx.model_fingerprint, ctx.seed)

    def planned_epochs(self, searched: frozenset[str] = frozenset()) -> float:
        """The student's epochs, each over every label of every input."""
        return float(self.config.epochs * max(len(self.context.labels), 1))

    # ---- training -----------------------------------------------------------------------------

    def train_into(self, folder: Path) -> Any:
        """Ask the teacher, train the student on its answers, save it with its card."""
        inputs = self.inputs
        answers = self.teacher.answers(self.config.teacher, inputs)
        if self.context.labels:
            model, report, skipped = self._train_soft(inputs, answers)
            training, (trainable, total) = _training_report(report, self.lora.metric), count_parameters(model)
        else:
            model, card, skipped = self._train_on_text(inputs, answers)
            report, training, trainable, total = None, card.training, card.trainable_parameters, card.total_parameters
        card = self._card(training, report, len(inputs), skipped, trainable, total)
        save_artifact(folder, model, card)
        self.trained_now = True
        return model

    def _train_soft(self, inputs: Sequence[Example], answers: Sequence[Output]) -> tuple[Any, DistillReport, int]:
        labels = self.context.labels
        prefix = self.trainer.encoded_rows()[0]
        examples = []
        for example, output in zip(inputs, answers, strict=True):
            targets = _soft_targets(output, labels, self.config.temperature)
            rows = training_rows(
                self.prompts, [replace(example, target=label) for label in labels], self.config.max_length, prefix
            )
            if targets is not None and len(rows) == len(labels):
                examples.append(SoftExample(tuple(rows), targets))
        if not examples:
            raise InputError(f"rungs.distill: the teacher '{self.config.teacher}' named no label for any train input")
        model = self.trainer.fresh_model()
        rows = [row for example in examples for row in example.rows]
        settings = DistillSettings(
            epochs=self.config.epochs,
            learning_rate=self.config.learning_rate or STUDENT_LEARNING_RATE,
            temperature=self.config.temperature,
            examples_per_batch=self.config.examples_per_batch,
            micro_batch_tokens=self.trainer.micro_batch_tokens(self.config, model, rows, prefix),  # as SFT's steps
            seed=self.context.seed,
        )
        report = train_distillation(
            model,
            examples,
            settings,
            self.context.engine.pad_id,
            prefix=prefix,
            metric=self.trainer.validation_metric(),
            progress=self.progress_as("distill"),
        )
        return model, report, len(inputs) - len(examples)

    def _train_on_text(self, inputs: Sequence[Example], answers: Sequence[Output]) -> tuple[Any, AdapterCard, int]:
        taught = [replace(e, target=o.text) for e, o in zip(inputs, answers, strict=True) if o.text.strip()]
        # the lora rung's own training, on the teacher's answers: stored (and found again) under its own key
        student = Trainer(TuningTask.of("lora", self.lora.config, replace(self.context, train=tuple(taught))))
        model = student.obtain(self.lora.config)
        card = student.artifacts.card(student.artifacts.folder(self.lora.config))
        assert card is not None  # it has just trained or loaded
        return model, card, len(inputs) - len(taught)

    def _card(
        self,
        training: TrainingReport,
        report: DistillReport | None,
        inputs: int,
        skipped: int,
        trainable: int,
        total: int,
    ) -> AdapterCard:
        distillation = {
            "teacher": self.config.teacher,
            "teacher_fingerprint": self.teacher.fingerprint(self.config.teacher),
            "inputs": inputs,
            "unlabelled": inputs - len(self.context.train),
            "skipped": skipped,
            "targets": "soft (the teacher's label distribution)" if report else "the teacher's written answers",
            "temperature": self.config.temperature if report else None,
            **(asdict(report) if report else {}),
        }
        hyperparameters = {k: v for k, v in self.config.model_dump().items() if k not in EVALUATION_ONLY}
        return AdapterCard(
            method="lora",
            objective="distill",
            base_model=self.context.model_name,
            base_fingerprint=self.context.model_fingerprint,
            data_hash=content_hash([(e.id, e.input) for e in self.inputs]),
            train_examples=inputs - skipped,
            validation_examples=len(self.context.validation),
            hyperparameters=hyperparameters,
            trainable_parameters=trainable,
            total_parameters=total,
            trainable_share=trainable / max(total, 1),
            training=training,
            device=self.context.device,
            distillation=distillation,
        )


def _soft_targets(output: Output, labels: Sequence[str], temperature: float) -> tuple[float, ...] | None:
    """The teacher's distribution over the labels: from its label log-likelihoods, else one-hot on its answer."""
    logprobs = output.detail.get("logprobs")
    if isinstance(logprobs, dict) and any(logprobs.get(label) is not None for label in labels):
        return teacher_distribution([logprobs.get(label) for label in labels], temperature)
    named = match_label(output.text, labels)
    return None if named is None else tuple(1.0 if label == named else 0.0 for label in labels)


def _training_report(report: DistillReport, metric: str) -> TrainingReport:
    return TrainingReport(
        train_losses=report.step_losses,
        learning_rates=report.learning_rates,
        tokens_per_s=report.tokens_per_s,
        validation_metrics=report.validation_metrics[1:],
        selection_metric=metric,
        steps=report.steps,
        epochs_run=report.epochs_run,
        evaluation_epochs=[float(e) for e in range(1, report.epochs_run + 1)],
        best_evaluation=report.best_epoch,
        seconds=report.seconds,
        useful_tokens=report.tokens,
        computed_tokens=report.tokens,
        peak_rss_mb=report.peak_rss_mb,
    )


@rung("distill", config=DistillConfig, sweep=("r",), step=6)
def build_distill(config: DistillConfig, context: RungContext) -> Predictor:
    """Build the distill predictor (the teacher answers, the student trains, on first use)."""
    resolve_mode(config.mode, context.labels, "distill")
    if not context.train:
        raise InputError("rungs.distill: needs a train split whose inputs the teacher labels")
    return DistillPredictor(config, context)
