"""`advisor export`: a trained rung of a task as an ONNX model, checked against PyTorch, with its card."""

from __future__ import annotations

from pathlib import Path

import click

from advisor.cli.support import err_console, reports_errors, task_argument


@click.command()
@task_argument
@click.option("--rung", "rung_name", required=True, help="The trained rung of the task to export (lora, full, ...).")
@click.option(
    "--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True, help="The export's format."
)
@click.option(
    "--quantize",
    type=click.Choice(["int8"]),
    help="Quantize the weights: int8 is onnxruntime's dynamic quantization (activations quantized at run time).",
)
@click.option(
    "-o", "--out", type=click.Path(path_type=Path, file_okay=False), help="Also copy the export into this new folder."
)
@reports_errors
def export(task_file: Path, rung_name: str, fmt: str, quantize: str | None, out: Path | None) -> None:
    """Export a trained rung of TASK_FILE: its adapter merged into the base, written as ONNX, its logits checked
    against PyTorch on a few of the task's prompts, and a card beside it.

    The export is kept under the task's .advisor/exports/, where an `{rung: onnx, of: NAME}` rung finds it.
    Exit 2 when the rung cannot be exported (not trained yet, a prompting rung, a method that does not merge).
    """
    from advisor.measure.export import export_rung
    from advisor.report.progress import progress_hooks, stop
    from tuning.onnx_export import ExportRequest

    request = ExportRequest(quantize="int8" if quantize == "int8" else None, format="onnx")
    hooks = progress_hooks(err_console)
    try:
        result = export_rung(task_file, rung_name, request, out, hooks)
    finally:
        stop(hooks)
    card, check = result.card, result.card.verification
    state = "exported" if result.made_now else "already exported (stored)"
    click.echo(f"{rung_name}: {state} as {request.describe()} in {card.seconds:.0f} s: {result.folder}")
    bound = f" (at most {check.tolerance:g})" if check.tolerance is not None else ""
    click.echo(
        f"checked against PyTorch on {check.examples} of the task's prompts ({check.positions} positions): "
        f"max |Δlogit| {check.max_abs_logit_delta:.3g}{bound}, same top token at {100 * check.top1_agreement:.1f}%"
    )
    files = ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in card.files.items() if "onnx" in name)
    click.echo(f"graph: {files}; card: {result.folder / 'card.md'}")
    if result.out is not None:
        click.echo(f"copied to {result.out}")
