"""`advisor estimate` in the terminal: the header, the memory table, the GPUs x methods table, the serving table.

The numbers are computed by advisor/measure/estimate.py; this module only lays them out.
"""

from __future__ import annotations

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from advisor.measure.estimate import EstimateReport
from harness.estimates.tuning_memory import TrainingOption


def render_estimate(report: EstimateReport) -> list[RenderableType]:
    """The header, the memory table, the GPUs x methods table, the serving table and the assumptions."""
    shape = report.shape
    header = Text(
        f"Model {report.model}: {_count(shape.params)} parameters; shape from {shape.source}: {shape.layers} layers, "
        f"hidden {shape.hidden}, MLP {shape.intermediate}, {shape.heads} heads ({shape.kv_heads} KV), "
        f"vocabulary {shape.vocab}. LoRA r={report.lora_r} on {report.lora_targets}.",
        style="bold",
    )
    runs = [Text("What Ladder can train today:", style="bold")]
    for method, line in report.ladder_runs.items():
        one_gpu = any(o.fits_one for o in report.training if o.method == method)
        runs.append(Text(f"  {line}", style="green" if one_gpu else "yellow"))
    tables: list[RenderableType] = [header, _memory_table(report), _training_table(report), *runs]
    return tables + [_serving_table(report)] + [Text(line, style="dim") for line in report.assumptions]


def _memory_table(report: EstimateReport) -> Table:
    table = Table(title=f"Training memory per GPU (GiB), seq {report.seq_len} x batch {report.batch_size}")
    table.add_column("")
    for method in report.memory:
        table.add_column(method, justify="right")
    rows = ("weights", "adapter", "gradients", "optimizer", "activations", "overhead", "total")
    for row in rows:
        cells = [f"{getattr(b, f'{row}_gb'):.1f}" for b in report.memory.values()]
        table.add_row(row, *cells, style="bold" if row == "total" else None)
    table.add_row("checkpointing", *("yes" if b.gradient_checkpointing else "no" for b in report.memory.values()))
    table.add_row("trainable", *(_count(b.trainable_params) for b in report.memory.values()))
    table.add_row("fits one", *(", ".join(report.fits_on[m]) or "none" for m in report.memory))
    return table


def _training_table(report: EstimateReport) -> Table:
    table = Table(
        title=f"Training {report.tokens:,} tokens: GPUs needed, wall-clock hours, dollars ($ per 1M tokens)",
        caption="1×: runs on one GPU; N× (sharded): needs FSDP/ZeRO-3 over N GPUs, not supported by Ladder yet; "
        "-: no estimate (no datasheet peak for this GPU)",
    )
    table.add_column("GPU")
    table.add_column("memory", justify="right")
    table.add_column("$/h", justify="right")
    methods = list(report.memory)
    for method in methods:
        table.add_column(method, justify="right")
    by_gpu: dict[str, dict[str, TrainingOption]] = {}
    for option in report.training:
        by_gpu.setdefault(option.gpu, {})[option.method] = option
    for gpu in report.gpus:
        options = by_gpu.get(gpu.name, {})
        cells = (_option_cell(options[m]) if m in options else "-" for m in methods)
        table.add_row(gpu.name, f"{gpu.memory_gb:g} GB", f"${gpu.per_hour:.2f}", *cells)
    return table


def _option_cell(option: TrainingOption) -> str:
    if option.gpus is None:
        return "does not fit"
    count = "1×" if option.fits_one else f"{option.gpus}× (sharded)"
    if option.hours is None or option.cost_usd is None or option.usd_per_million_tokens is None:
        return f"{count} -"
    return f"{count} {option.hours:.3g} h ${option.cost_usd:,.2f} (${option.usd_per_million_tokens:.3g})"


def _serving_table(report: EstimateReport) -> Table:
    table = Table(
        title="Serving cost per 1k requests",
        caption="self-hosted: the cheapest GPU type (tensor-parallel over up to 8) that holds the model, kept busy; "
        "API: the list-price alternative",
    )
    for title in ("rung", "prompt tok", "output tok", "self-hosted $/1k", "GPUs (batch)", "API $/1k", "API model"):
        table.add_column(title, justify="left" if title in ("rung", "GPUs (batch)", "API model") else "right")
    for row in report.serving:
        hosted = f"${row.self_hosted_per_1k:.4f}" if row.self_hosted_per_1k is not None else "does not fit"
        where = f"{row.gpus}× {row.gpu} ({row.batch})" if row.gpu else "-"
        table.add_row(
            row.rung,
            str(row.prompt_tokens),
            str(row.completion_tokens),
            hosted,
            where,
            f"${row.api_per_1k:.4f}",
            row.api_model,
        )
    return table


def _count(n: int) -> str:
    return f"{n / 1e9:.3g}B" if n >= 1e9 else f"{n / 1e6:.3g}M"


def print_estimate(report: EstimateReport, console: Console) -> None:
    """Print every part of the estimate, in order."""
    for renderable in render_estimate(report):
        console.print(renderable)
