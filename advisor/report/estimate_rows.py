"""The text of `advisor estimate`'s parts, shared by its terminal and Markdown forms: titles, header rows and cells."""

from __future__ import annotations

from dataclasses import dataclass

from advisor.measure.estimate import EstimateReport
from advisor.measure.launch import launch_command, row_name
from harness.estimates.sharding import NODE_GPUS
from harness.estimates.training_cost import TrainingOption


@dataclass(frozen=True)
class Grid:
    """One table: its title, caption, column headers and rows of text (a section ends after the rows listed)."""

    title: str
    caption: str
    headers: list[str]
    rows: list[list[str]]
    section_ends: frozenset[int] = frozenset()


def header_line(report: EstimateReport) -> str:
    """The model's size and shape, and the adapter settings."""
    shape = report.shape
    return (
        f"Model {report.model}: {count(shape.params)} parameters; shape from {shape.source}: {shape.layers} layers, "
        f"hidden {shape.hidden}, MLP {shape.intermediate}, {shape.heads} heads ({shape.kv_heads} KV), "
        f"vocabulary {shape.vocab}. LoRA r={report.lora_r} on {report.lora_targets}."
    )


def memory_grid(report: EstimateReport) -> Grid:
    """Memory of one whole replica per method, by what holds it."""
    rows = []
    for part in ("weights", "adapter", "gradients", "optimizer", "activations", "overhead", "total"):
        rows.append([part, *(f"{getattr(b, f'{part}_gb'):.1f}" for b in report.memory.values())])
    rows.append(["checkpointing", *("yes" if b.gradient_checkpointing else "no" for b in report.memory.values())])
    rows.append(["trainable", *(count(b.trainable_params) for b in report.memory.values())])
    rows.append(["fits one", *(", ".join(report.fits_on[m]) or "none" for m in report.memory)])
    return Grid(
        f"Training memory of one replica (GiB), seq {report.seq_len} x batch {report.batch_size}",
        "",
        ["", *report.memory],
        rows,
    )


def training_grid(report: EstimateReport) -> Grid:
    """One row per method and GPU: the way Ladder runs it, GPUs, memory per GPU, CPU RAM, hours, dollars, command."""
    marks = command_marks(report)
    rows: list[list[str]] = []
    ends: set[int] = set()
    for option in report.training:
        if rows and rows[-1][0] != option.method:
            ends.add(len(rows) - 1)
        rows.append(_training_row(option, marks))
    return Grid(
        f"Training {report.tokens:,} tokens: the way Ladder runs each method on each GPU",
        "GiB/GPU: peak memory per GPU; CPU RAM: the offloaded state on the machine; hours on the GPUs listed; "
        "$ (per 1M tokens); -: no estimate (no datasheet peak for this GPU); launch: the command below",
        ["method", "GPU", "way", "GPUs", "GiB/GPU", "CPU RAM", "hours", "$ ($/1M tok)", "launch"],
        rows,
        frozenset(ends),
    )


def _training_row(option: TrainingOption, marks: dict[str, int]) -> list[str]:
    if option.way is None or option.gpus is None or option.per_gpu_gb is None:
        way = "not yet (engine)" if option.without_engine else "does not fit one machine"
        return [option.method, option.gpu, way, "-", "-", "-", "-", "-", "-"]
    ram = f"{option.cpu_ram_gb:.0f} GiB" if option.cpu_ram_gb else "-"
    hours = f"{option.hours:.3g}" if option.hours is not None else "-"
    dollars = "-"
    if option.cost_usd is not None and option.usd_per_million_tokens is not None:
        dollars = f"${option.cost_usd:,.2f} (${option.usd_per_million_tokens:.3g})"
    mark = f"[{marks[launch_command(option.way, option.gpus)]}]"
    return [
        option.method,
        option.gpu,
        option.way,
        str(option.gpus),
        f"{option.per_gpu_gb:.1f}",
        ram,
        hours,
        dollars,
        mark,
    ]


def command_marks(report: EstimateReport) -> dict[str, int]:
    """Each launch command's number in the list under the training table."""
    return {launch.command: n for n, launch in enumerate(report.launches, start=1)}


def launch_items(report: EstimateReport) -> list[tuple[str, str]]:
    """Each numbered command with the way it runs: ("[2] FSDP over 3 GPUs", "accelerate launch ...")."""
    items = []
    for n, launch in enumerate(report.launches, start=1):
        where = launch.way if launch.way == "one GPU" else f"{launch.way} over {plural(launch.gpus, 'GPU')}"
        items.append((f"[{n}] {where}", launch.command))
    return items


def launch_notes(report: EstimateReport) -> list[str]:
    """What the commands leave unsaid: DDP for speed, and the rows no way fits."""
    notes = []
    if not report.num_gpus:
        notes.append("A row on one GPU also runs data-parallel over N GPUs, for speed: --num-gpus N plans DDP.")
    unplaced = [row_name(o) for o in report.training if o.way is None and o.without_engine is None]
    if unplaced:
        notes.append(f"Not on one machine of up to {NODE_GPUS} of these GPUs, even offloaded: {', '.join(unplaced)}.")
    for option in report.training:
        alone = option.without_engine
        if option.way is None and alone is not None:
            notes.append(
                f"Not yet in Ladder: {row_name(option)}. The step alone runs {alone.way} over "
                f"{plural(alone.gpus, 'GPU')} at {alone.per_gpu_gb:.1f} GiB each, but Ladder's engine keeps the "
                f"whole base ({report.engine_gb:.0f} GiB) on every GPU beside it: a sharded engine is missing "
                "(docs/scale.md)."
            )
    return notes


def serving_grid(report: EstimateReport) -> Grid:
    """Each rung's serving cost per 1k requests, self-hosted and through an API."""
    rows = []
    for row in report.serving:
        hosted = f"${row.self_hosted_per_1k:.4f}" if row.self_hosted_per_1k is not None else "does not fit"
        where = f"{row.gpus}× {row.gpu} ({row.batch})" if row.gpu else "-"
        rows.append(
            [
                row.rung,
                str(row.prompt_tokens),
                str(row.completion_tokens),
                hosted,
                where,
                f"${row.api_per_1k:.4f}",
                row.api_model,
            ]
        )
    return Grid(
        "Serving cost per 1k requests",
        "self-hosted: the cheapest GPU type (tensor-parallel over up to 8) that holds the model, kept busy; "
        "API: the list-price alternative",
        ["rung", "prompt tok", "output tok", "self-hosted $/1k", "GPUs (batch)", "API $/1k", "API model"],
        rows,
    )


LEFT_ALIGNED = frozenset({"", "rung", "GPUs (batch)", "API model", "method", "GPU", "way", "launch"})


def plural(n: int, noun: str) -> str:
    """ "1 GPU", "3 GPUs"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def count(n: int) -> str:
    """A parameter count in B or M."""
    return f"{n / 1e9:.3g}B" if n >= 1e9 else f"{n / 1e6:.3g}M"
