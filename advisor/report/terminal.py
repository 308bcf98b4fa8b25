"""The results table in the terminal (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from advisor.assessment import Assessment, MetricValue, RungResult

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


def results_table(assessment: Assessment) -> Table:
    """One row per rung: quality ± 95% CI, latency, throughput and tokens per request."""
    task = assessment.task
    env = assessment.environment
    table = Table(
        title=f"{task.name}: {task.n_test} test examples, model {task.model}",
        caption=f"p50/p95: latency at batch size 1; ex/s: batched throughput; tok: mean tokens per request; "
        f"no label: answers naming no label. Measured on {env.device} ({env.precision}, {env.threads} threads)",
    )
    table.add_column("Rung", style="bold", no_wrap=True)
    metric_names = list(dict.fromkeys(name for rung in assessment.rungs for name in rung.metrics))
    for name in metric_names:
        title = METRIC_TITLES.get(name, name.replace("recall_at_", "Recall@"))
        table.add_column(title + " [95% CI]", justify="right", no_wrap=True)
    for title in ("p50", "p95", "ex/s", "tok in", "tok out", "$/1k req", "train $", "forgetting [95% CI]", "no label"):
        table.add_column(title, justify="right", no_wrap=True)
    for rung in assessment.rungs:
        table.add_row(
            rung.name,
            *(_metric(rung.metrics[name]) if name in rung.metrics else "-" for name in metric_names),
            _seconds(rung.latency.p50_s),
            _seconds(rung.latency.p95_s),
            _rate(rung),
            f"{rung.tokens.prompt_mean:.0f}",
            f"{rung.tokens.completion_mean:.1f}",
            _dollars(rung.cost.per_1k if rung.cost else None),
            _dollars(rung.cost.training if rung.cost else None),
            _forgetting(rung),
            str(rung.no_label_outputs),
        )
    return table


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


def print_results(assessment: Assessment, console: Console) -> None:
    """Print the table, and how much of each rung came from the store."""
    console.print(results_table(assessment))
    note = cost_note(assessment)
    if note:
        console.print(f"[dim]{note}[/dim]")
    for rung in assessment.rungs:
        if rung.reused:
            console.print(
                f"[dim]{rung.name}: {rung.reused} of {rung.reused + rung.computed} outputs reused from the store[/dim]"
            )


def _dollars(value: float | None) -> str:
    if value is None:
        return "-"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def _forgetting(rung: RungResult) -> str:
    forgetting = rung.forgetting
    if forgetting is None:
        return "-"
    if not forgetting.weights_changed:
        return "unchanged"
    if forgetting.delta is None:
        return "-"
    flag = " !" if forgetting.exceeds_max else ""
    return f"{forgetting.delta:+.3f} [{forgetting.ci_low:+.3f}, {forgetting.ci_high:+.3f}]{flag}"


def _metric(value: MetricValue) -> str:
    return f"{value.value:.3f} [{value.ci_low:.3f}, {value.ci_high:.3f}]"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _rate(rung: RungResult) -> str:
    rate = rung.latency.batched_examples_per_s
    return "-" if rate is None else f"{rate:.1f}"


def output_console() -> Console:
    """Standard output; wide when it is a file or pipe, so the table never folds (rich assumes 80)."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=200, soft_wrap=True)
