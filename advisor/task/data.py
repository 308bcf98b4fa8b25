"""A task's data as the rungs see it: the splits, with a classification task's labels applied and checked."""

from __future__ import annotations

from dataclasses import replace

from advisor.task.spec import LoadedTask
from harness.data.labels import check_targets, infer_labels, rename_targets
from harness.data.loading import Splits, load_splits
from harness.task_types import get_task_type


def load_task_data(task: LoadedTask, *, labels_from_every_split: bool = False) -> tuple[Splits, tuple[str, ...]]:
    """The splits and a classification task's labels (named, mapped from raw values, or inferred).

    Inferred labels come from train (test when there is no train), and every target must be one of them.
    The audit infers from every split instead, so a test label that train never shows becomes one of
    its findings rather than an input error.
    """
    splits = load_splits(task.data_spec())
    if not get_task_type(task.spec.type).labelled:
        return splits, ()
    declared = task.spec.labels
    if isinstance(declared, dict):
        mapping = {str(raw): name for raw, name in declared.items()}
        splits = replace(
            splits,
            train=tuple(rename_targets(splits.train, mapping)),
            validation=tuple(rename_targets(splits.validation, mapping)),
            test=tuple(rename_targets(splits.test, mapping)),
        )
        labels: tuple[str, ...] = tuple(mapping.values())
    elif declared is not None:
        labels = tuple(declared)
    elif labels_from_every_split:
        return splits, infer_labels([*splits.train, *splits.validation, *splits.test])
    else:
        labels = infer_labels(splits.train or splits.test)
    files = task.data_spec().files
    for part in ("train", "validation", "test"):
        source = str(files.get(part) or files.get("all"))
        check_targets(getattr(splits, part), labels, f"{source} ({part})" if "all" in files else source)
    return splits, labels
