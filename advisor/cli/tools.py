"""The smaller `advisor` commands: check, report, train, init, audit, estimate."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from advisor.cli.support import err_console, existing_folder, reports_errors, task_argument
from harness.distributed import current_ranks


@click.command()
@task_argument
@click.option(
    "--allow-pickle",
    is_flag=True,
    help="Accept a model folder whose weights are only pickle files (.bin/.pt), as `assess --allow-pickle` does.",
)
@reports_errors
def check(task_file: Path, allow_pickle: bool) -> None:
    """Validate TASK_FILE as `assess` would (data, rungs, models, endpoints, metrics) without loading a model.

    Exit 0 when valid, 2 when not.
    """
    from advisor.cli.check import check_task

    click.echo(check_task(task_file, allow_pickle=allow_pickle).summary(task_file))


@click.command()
@click.argument("run_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "md", "json"]),
    default="html",
    show_default=True,
    help="Report format.",
)
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False), help="Write here (default: stdout).")
@reports_errors
def report(run_file: Path, fmt: str, out: Path | None) -> None:
    """Render an Assessment JSON (from `advisor assess`) as HTML, Markdown or validated JSON."""
    from advisor.decision.assessment import read_assessment
    from advisor.report.html import render_html
    from advisor.report.markdown import render_markdown
    from harness.data.atomic import write_text_atomically

    if out is not None:
        existing_folder("-o", out)  # before the work: a typo must not create folders anywhere
    assessment = read_assessment(run_file)
    if fmt == "html":
        text = render_html(assessment)
    elif fmt == "md":
        text = render_markdown(assessment)
    else:
        text = assessment.model_dump_json(indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        write_text_atomically(out, text)
        click.echo(f"{fmt} report written to {out}", err=True)


@click.command()
@task_argument
@click.option(
    "--rung", "rung_name", required=True, help="The tuned rung of the task to train (lora, qlora, ia3, full, ...)."
)
@click.option(
    "-o", "--out", type=click.Path(path_type=Path, file_okay=False), help="Export the adapter (or merged model) here."
)
@click.option(
    "--merge", is_flag=True, help="LoRA only: export the base model with the adapter merged in, ready to serve."
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@reports_errors
def train(task_file: Path, rung_name: str, out: Path | None, merge: bool, device: str) -> None:
    """Train one tuned rung of TASK_FILE on its train split, without evaluating it.

    The adapter is cached like every result: an unchanged task trains nothing the second time.
    A run that is killed resumes from its last checkpoint.
    """
    from advisor.measure.prepare import QuietHooks
    from advisor.measure.train import train_rung
    from advisor.report.progress import progress_hooks, stop

    main_rank = current_ranks().is_main  # under torchrun / accelerate launch, rank 0 alone draws and writes
    hooks = progress_hooks(err_console) if main_rank else QuietHooks()
    try:
        result = train_rung(task_file, rung_name, out, merge, hooks)
    finally:
        stop(hooks)
    if not main_rank:
        return
    card = result.card
    state = "trained" if result.trained_now else "already trained (cached)"
    if card is not None:
        training = card.training
        click.echo(
            f"{rung_name}: {state} in {training.seconds:.0f} s, {card.trainable_parameters:,} trainable "
            f"parameters ({100 * card.trainable_share:.2f}%), validation loss "
            f"{', '.join(f'{x:.3f}' for x in training.validation_losses)}"
        )
    click.echo(f"artifact: {result.artifact}")
    if result.exported is not None:
        click.echo(f"exported to {result.exported}" + (" (merged model)" if merge else ""))


@click.command()
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False), default=".")
@click.option("--force", is_flag=True, help="Overwrite task.yaml and data.jsonl if they exist.")
@reports_errors
def init(folder: Path, force: bool) -> None:
    """Write a starter task.yaml and data.jsonl into FOLDER that `advisor assess` runs as is."""
    import shlex

    from advisor.task.starter import write_starter

    written = write_starter(folder, force=force)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"next: advisor assess {shlex.quote(str(written[0]))}")


@click.command()
@task_argument
@click.option("--json", "as_json", is_flag=True, help="Print the audit as JSON on stdout instead of a table.")
@click.option(
    "--near-threshold",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.95,
    show_default=True,
    help="Cosine similarity (all-MiniLM-L6-v2) at or above which two inputs count as near-duplicates.",
)
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False), help="Also write the audit JSON here.")
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning"]),
    help="For CI: exit 1 when the audit finds an error (or, with 'warning', a warning or an error).",
)
@reports_errors
def audit(task_file: Path, as_json: bool, near_threshold: float, out: Path | None, fail_on: str | None) -> None:
    """Audit the data of TASK_FILE before anyone trains: duplicates, leakage, label conflicts, balance, lengths.

    Exits 0 when the audit ran, whatever it found (unless --fail-on says otherwise); 2 when the task or its data
    cannot be read.
    """
    import json

    from advisor.report.audit import print_audit
    from advisor.report.terminal import output_console
    from advisor.task.audit import AuditOptions, audit_failures, run_audit, to_json
    from harness.data.atomic import write_text_atomically

    if out is not None:
        existing_folder("-o", out)
    report = run_audit(task_file, AuditOptions(near_threshold=near_threshold))
    data = json.dumps(to_json(report).model_dump(), indent=2, ensure_ascii=False)
    if out is not None:
        write_text_atomically(out, data + "\n")
    if as_json:
        click.echo(data)
    else:
        print_audit(report, output_console())
        if out is not None:
            click.echo(f"Audit written to {out}")
    failing = audit_failures(report, fail_on)
    if failing:
        click.echo(f"audit: {failing} (--fail-on {fail_on})", err=True)
        sys.exit(1)


@click.command()
@click.option("--params", help="Model size: 7B, 70B, 135M or 1.5e9.")
@click.option("--model", help="A local model folder or config.json, or a Hugging Face id already in the local cache.")
@click.option("--seq-len", type=click.IntRange(1), default=512, show_default=True, help="Tokens per training sequence.")
@click.option("--batch-size", type=click.IntRange(1), default=1, show_default=True, help="Sequences per step.")
@click.option(
    "--tokens", type=click.IntRange(1), default=10_000_000, show_default=True, help="Training tokens, all epochs."
)
@click.option("--lora-r", type=click.IntRange(1), default=16, show_default=True, help="LoRA rank.")
@click.option("--gpus", multiple=True, help="Price-table GPUs to consider (repeat or comma-separate; default: all).")
@click.option(
    "--num-gpus",
    type=click.IntRange(1, 8),
    help="GPUs of one machine to train on: DDP where a replica fits one, FSDP where not. Default: the fewest.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the estimate as JSON on stdout instead of tables.")
@click.option("--markdown", "as_markdown", is_flag=True, help="Print the estimate as Markdown on stdout.")
@reports_errors
def estimate(
    params: str | None,
    model: str | None,
    seq_len: int,
    batch_size: int,
    tokens: int,
    lora_r: int,
    gpus: tuple[str, ...],
    num_gpus: int | None,
    as_json: bool,
    as_markdown: bool,
) -> None:
    """Memory, hours and dollars to fine-tune with full, LoRA and QLoRA on each GPU, the way Ladder runs each
    (one GPU, DDP, FSDP, FSDP + CPU offload) with its launch command, and each rung's serving cost.

    Give a size (--params 7B) or a model whose config.json is on this machine (--model); nothing is downloaded.
    """
    import json

    from advisor.measure.estimate import cli_request, run_estimate, to_json
    from advisor.report.estimate import print_estimate
    from advisor.report.estimate_markdown import estimate_markdown
    from advisor.report.terminal import output_console

    if as_json and as_markdown:
        raise click.UsageError("--json and --markdown: choose one")
    report = run_estimate(cli_request(params, model, seq_len, batch_size, tokens, lora_r, gpus, num_gpus))
    if as_json:
        click.echo(json.dumps(to_json(report), indent=2))
    elif as_markdown:
        click.echo(estimate_markdown(report), nl=False)
    else:
        print_estimate(report, output_console())
