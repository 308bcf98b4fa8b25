"""The side-by-side table as text cells, shared by the terminal, Markdown and HTML reports."""

from __future__ import annotations

import statistics

from advisor.decision.assessment import Assessment, MetricValue, RungResult
from advisor.decision.claims import seed_values
from advisor.decision.majority import majority_baseline
from harness.metrics.measurement import Measurement

METRIC_TITLES = {
    "accuracy": "Accuracy",
    "macro_f1": "Macro-F1",
    "exact_match": "Exact match",
    "f1": "F1",
    "mrr": "MRR",
    "contains_answer": "Contains answer",
    "field_f1": "Field F1",
    "field_precision": "Field P",
    "field_recall": "Field R",
    "json_valid": "Valid JSON",
    "rouge_l": "ROUGE-L",
    "chrf": "chrF",
    "embedding_similarity": "Emb. sim.",
}
FIXED_COLUMNS = ("p50", "p95", "ex/s", "tok in", "tok out", "$/1k req", "train $", "forgetting [95% CI]")


def metric_names(assessment: Assessment) -> list[str]:
    """Every metric any rung reports, primary first, in first-seen order."""
    names = [r.primary_metric for r in assessment.rungs[:1]]
    names += [name for rung in assessment.rungs for name in rung.metrics]
    return list(dict.fromkeys(names))


def metric_title(name: str) -> str:
    """A metric's column title."""
    return METRIC_TITLES.get(name, name.replace("recall_at_", "Recall@"))


def table_cells(assessment: Assessment) -> tuple[list[str], list[list[str]]]:
    """Column titles and one row of cells per rung."""
    names = metric_names(assessment)
    headers = ["Rung", *(metric_title(n) + " [95% CI]" for n in names), *FIXED_COLUMNS]
    rows = []
    for rung in assessment.rungs:
        rows.append(
            [
                rung.name,
                *(metric_text(rung.metrics[n]) + seeds_text(rung, n) if n in rung.metrics else "-" for n in names),
                seconds_text(rung.latency.p50_s),
                seconds_text(rung.latency.p95_s),
                rate_text(rung),
                f"{rung.tokens.prompt_mean:.0f}",
                f"{rung.tokens.completion_mean:.1f}",
                dollars_text(rung.cost.per_1k if rung.cost else None),
                dollars_text(rung.cost.one_off_training() if rung.cost else None),
                forgetting_text(rung),
            ]
        )
    baseline = majority_baseline(assessment, Measurement(seed=assessment.task.seed))
    if baseline is not None:  # a reference row: what answering the commonest label scores
        quality = [metric_text(baseline.metrics[n]) if n in baseline.metrics else "-" for n in names]
        rows.append([baseline.name, *quality, *["-"] * len(FIXED_COLUMNS)])
    return headers, rows


def ranking_line(assessment: Assessment) -> str:
    """Which metric ranked the rungs, and why that one."""
    task = assessment.task
    metric = task.primary_metric or (assessment.rungs[0].primary_metric if assessment.rungs else "")
    if not metric:
        return ""
    return f"Rungs are ranked on {metric}: {task.primary_metric_reason}." if task.primary_metric_reason else ""


def metric_text(value: MetricValue) -> str:
    """0.812 [0.741, 0.873]."""
    return f"{value.value:.3f} [{value.ci_low:.3f}, {value.ci_high:.3f}]"


def seeds_text(rung: RungResult, metric: str) -> str:
    """A retrained rung's seed mean and spread beside its test CI (" · 3 seeds 0.771 ± 0.020"), or ""."""
    values = seed_values(rung, metric)
    if len(values) < 2:
        return ""
    return f" · {len(values)} seeds {statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"


def seconds_text(value: float | None) -> str:
    """Milliseconds below a second."""
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def rate_text(rung: RungResult) -> str:
    """Batched examples per second."""
    rate = rung.latency.batched_examples_per_s
    return "-" if rate is None else f"{rate:.1f}"


def dollars_text(value: float | None) -> str:
    """Four decimals below a dollar."""
    if value is None:
        return "-"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def forgetting_text(rung: RungResult) -> str:
    """Probe accuracy delta against the base model, or 'unchanged' for a prompting rung."""
    forgetting = rung.forgetting
    if forgetting is None:
        return "-"
    if not forgetting.weights_changed:
        return "unchanged"
    if forgetting.delta is None or forgetting.ci_low is None or forgetting.ci_high is None:
        return "-"
    flag = " (over the limit)" if forgetting.exceeds_max else ""
    return f"{forgetting.delta:+.3f} [{forgetting.ci_low:+.3f}, {forgetting.ci_high:+.3f}]{flag}"


def cost_note(assessment: Assessment) -> str | None:
    """The prices the $ columns assume, in one line."""
    costed = next((r.cost for r in assessment.rungs if r.cost is not None), None)
    if costed is None:
        return None
    basis = costed.assumptions
    served = basis.get("serving_hardware") if costed.hosting == "self_hosted" else basis.get("api_model")
    trained = next((r.cost.assumptions.get("training_hardware") for r in assessment.rungs if r.training and r.cost), "")
    training = f"; training on {trained}" if trained else ""
    return (
        f"$ assume {costed.hosting.replace('_', '-')} serving on {served}{training} "
        f"(prices as of {basis.get('prices_as_of')}); {costed.requests_per_month:,.0f} requests/month"
    )


def measured_on(assessment: Assessment) -> str:
    """Where the numbers were measured."""
    env = assessment.environment
    spread = ""
    if env.executor == "torchrun":
        spread = f", {env.processes} ranks of torchrun"
    elif env.executor == "ray":
        spread = f", Ray ({env.processes} tasks at once)"
    return f"{env.device} ({env.precision}, {env.threads} threads{spread}; {env.cpu})"


def audit_lines(assessment: Assessment) -> list[str]:
    """The data audit's errors and warnings, one line each (a clean audit says so)."""
    audit = assessment.audit
    if audit is None:
        return []
    serious = [f for f in audit.findings if f.severity in ("error", "warning")]
    if not serious:
        return ["Data audit: clean (no duplicates, leakage, label conflicts, length or format problems)."]
    lines = []
    for finding in serious:
        shown = ", ".join(finding.row_ids[:5])
        more = f" (rows {shown}{', ...' if finding.count > 5 else ''})" if shown else ""
        lines.append(f"{finding.severity}: {finding.message}{more}")
    return lines
