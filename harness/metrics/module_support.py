"""What Ladder's `evaluate` metric scripts share: their input features, their info, and a per-example mean.

The scripts in harness/metrics/modules stay thin: evaluate copies each script into its cache and
imports it from there, so shared code lives in this ordinary module and is imported absolutely.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import datasets
import evaluate


def text_pairs() -> datasets.Features:
    """One predicted text and one reference text per example."""
    return datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")})


def answer_lists() -> list[datasets.Features]:
    """One predicted text and a list of accepted answers (or a single one) per example."""
    listed = datasets.Sequence(datasets.Value("string"))
    return [datasets.Features({"predictions": datasets.Value("string"), "references": listed}), text_pairs()]


def labels() -> list[datasets.Features]:
    """Label names or label ids."""
    ids = datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")})
    return [text_pairs(), ids]


def metric_info(
    description: str,
    citation: str,
    inputs: str,
    features: datasets.Features | list[datasets.Features],
    urls: Sequence[str] = (),
) -> evaluate.MetricInfo:
    """The MetricInfo every script returns from `_info`."""
    return evaluate.MetricInfo(
        description=description,
        citation=citation,
        inputs_description=inputs,
        features=features,
        reference_urls=list(urls),
    )


def mean_per_example(
    name: str, score: Callable[[Any, Any], float], predictions: Sequence[Any], references: Sequence[Any]
) -> dict[str, float]:
    """{name: the mean of score(prediction, reference)}, NaN for no examples."""
    if not references:
        return {name: float("nan")}
    values = [float(score(p, r)) for p, r in zip(predictions, references, strict=True)]
    return {name: sum(values) / len(values)}
