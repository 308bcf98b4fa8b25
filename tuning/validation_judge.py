"""How a tuned rung judges its model on the validation split during training: loss and metric, the metric
answered exactly as the rung will answer the test."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.inference.answering import answer, best_labels, label_scores, resolve_mode
from harness.metrics.scoring import scorer_for
from harness.metrics.task_metrics import point_metric
from harness.types import Output, Record
from tuning.judging import Judge, Judgement, evaluate_loss
from tuning.tuning_task import PreparedTraining


def validation_judge(trainer: PreparedTraining) -> Judge | None:
    """The model's validation loss and metric, the metric answered exactly as the rung answers the test.

    A rung that answers by scoring its labels gets both from one pass: the gold label's score is the
    loss. A generating rung's loss comes from the validation rows, its metric from what it writes.
    None without a validation split (the loop then judges by the train loss).
    """
    rung = trainer.task
    if not rung.validation_set:
        return None
    examples = rung.validation_set
    encoded = [rung.prompts.split(example) for example in examples]
    labels = rung.context.labels
    mode = resolve_mode(rung.config.mode, labels, rung.method)
    scorer = scorer_for(rung.context.task_type, labels)
    task_type, metric = rung.context.task_type, rung.metric

    def measured(outputs: Sequence[Output]) -> float | None:
        if metric == "loss":
            return None
        records = [Record(e, o, scorer(e, o)) for e, o in zip(examples, outputs, strict=True)]
        return point_metric(task_type, metric, records, labels)

    if mode == "score":
        gold = [labels.index(example.target) for example in examples]
        gold_tokens = sum(len(rung.prompts.choice_tokens(example.target)) for example in examples)

        def by_scoring(model: Any) -> Judgement:
            scores = label_scores(rung.engine_for(model), rung.prompts, encoded, labels)
            loss = -sum(row[g] for row, g in zip(scores, gold, strict=True)) / gold_tokens
            return Judgement(loss, measured(best_labels(rung.prompts, encoded, scores, labels)))

        return by_scoring
    prefix, _, rows = trainer.encoded_rows()
    pad_id = rung.context.engine.pad_id

    def by_generating(model: Any) -> Judgement:
        loss = evaluate_loss(model, rows, pad_id, prefix, batch_tokens=rung.config.batch_tokens)
        if metric == "loss":
            return Judgement(loss)
        engine = rung.engine_for(model)
        outputs = answer(engine, rung.prompts, encoded, labels, mode, rung.config.max_new_tokens)
        return Judgement(loss, measured(outputs))

    return by_generating
