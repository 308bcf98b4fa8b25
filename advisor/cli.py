"""The `advisor` command line: the only place errors become exit codes and one-line messages."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from harness.distributed import current_ranks
from harness.errors import LadderError
from harness.library_warnings import silence_unfixable_warnings
from harness.metrics.measurement import Measurement

F = TypeVar("F", bound=Callable[..., Any])
err_console = Console(stderr=True)


def _quiet_libraries() -> None:
    """Library progress bars and advice would bury our own output."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")  # e.g. transformers' GGUF conversion bar, which ignores its own switch
    # bitsandbytes warns at import that an optional hub-fetched CPU kernel is absent; we never fetch it
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    silence_unfixable_warnings()  # library-internal warnings we cannot fix, each listed with why


# every character str.splitlines() breaks a line at, besides "\n" (which becomes a space)
_BREAKING = "\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_LINE_BREAKS: dict[int, str | int | None] = {
    ord(c): f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}" for c in _BREAKING
}


def one_line(text: str) -> str:
    """The message on one line: newlines become spaces, other line-breaking characters their escapes."""
    return " ".join(text.translate(_LINE_BREAKS).split("\n"))


def reports_errors(command: F) -> F:
    """Turn a LadderError into one line on stderr and its exit code; bugs keep their traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except LadderError as error:
            message = escape(one_line(str(error)))
            if not current_ranks().is_main:  # every rank of a launch meets the same error; one says it
                sys.exit(error.exit_code)
            err_console.print(f"[bold red]error:[/bold red] {message}", markup=True, highlight=False, soft_wrap=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            err_console.print("interrupted: finished results are kept in the store; run again to resume")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


@click.group(name="advisor", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ladder-advisor", prog_name="advisor")
def main() -> None:
    """Ladder: should you fine-tune? Measure every rung of the adaptation ladder on your own data.

    Rungs, cheapest first: zero_shot, few_shot, rag, lora/qlora, full. Start with `advisor init`,
    then `advisor assess task.yaml`.
    """
    _quiet_libraries()


@main.command()
@click.argument("task_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the Assessment JSON. Default: .advisor/<task name>.assessment.json beside the task file.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), help="Use only the first N test examples (a quick look, wider intervals)."
)
@click.option(
    "--rungs", "rung_names", metavar="NAMES", help="Comma-separated rung names from the task to run (default: all)."
)
@click.option(
    "--store",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The SQLite result store. Default: .advisor/store.sqlite beside the task file.",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where the model runs: a GPU in bfloat16 when present, else the CPU in float32.",
)
@click.option(
    "--allow-pickle",
    is_flag=True,
    help="Accept a model folder whose weights are only pickle files (.bin/.pt): they can run code when loaded.",
)
@click.option(
    "--plan",
    "plan_only",
    is_flag=True,
    help="Print each rung's expected time and cost on this machine (a short calibration), then stop.",
)
@click.option(
    "--baseline",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Gate against this earlier Assessment right after assessing (the task's `gates:`); exit 1 on a regression.",
)
@click.option(
    "--suggest-labels",
    "suggest",
    type=click.IntRange(min=1),
    help="Write the N inputs of data.unlabelled on which the close rivals disagree most, to label next.",
)
@click.option(
    "--track",
    metavar="BACKENDS",
    help="Also log the assessment to these tracking backends, comma-separated: mlflow, tensorboard "
    "(default: the task's tracking.to). MLflow is embedded in .advisor/mlflow.db unless tracking.uri or "
    "MLFLOW_TRACKING_URI names a server.",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Where the rungs run: this process (or each rank of a torchrun / accelerate launch), or Ray tasks "
    "(rungs and evaluation shards; results come back here, to one store).",
)
@click.option(
    "--address",
    metavar="ADDRESS",
    help="With --executor ray: the cluster (auto, ray://host:10001, host:6379). Default: Ray started on this machine.",
)
@click.option(
    "--cpus-per-task",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="With --executor ray: CPUs each task asks for (its torch threads).",
)
@click.option(
    "--shard-size",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="With --executor ray: test examples per evaluation task of a prompting rung.",
)
@reports_errors
def assess(
    task_file: Path,
    out: Path | None,
    limit: int | None,
    rung_names: str | None,
    store: Path | None,
    device: str,
    allow_pickle: bool,
    plan_only: bool,
    baseline: Path | None,
    suggest: int | None,
    track: str | None,
    executor: str,
    address: str | None,
    cpus_per_task: int,
    shard_size: int,
) -> None:
    """Run every rung of TASK_FILE on its test split and print the results side by side.

    Finished outputs are kept in a store keyed by content hashes: a re-run with nothing changed
    computes nothing, and an interrupted run resumes where it stopped.
    """
    from advisor.assess import measure_rungs, summarize_assessment
    from advisor.assessment import read_assessment, write_assessment
    from advisor.report.files import write_reports
    from advisor.report.terminal import output_console, print_results
    from advisor.run import AssessOptions, QuietHooks, default_store_path, prepare_run

    only = tuple(n.strip() for n in rung_names.split(",") if n.strip()) if rung_names else None
    options = AssessOptions(rungs=only, limit=limit, store_path=store, device=device, allow_pickle=allow_pickle)
    before = read_assessment(baseline) if baseline is not None else None  # a bad baseline fails before any work
    from advisor.report.progress import BarHooks, LineHooks, progress_hooks, stop

    main_rank = current_ranks().is_main  # under torchrun / accelerate launch, rank 0 alone draws and writes
    hooks = progress_hooks(err_console) if main_rank else QuietHooks()
    if plan_only:
        _plan(task_file, options, hooks)
        return
    from advisor.task import load_task
    from advisor.tracking.track import chosen_backends

    task = load_task(task_file)
    backends = chosen_backends(task, track)  # an unknown backend or a missing library: before any work
    if suggest is not None:
        from harness.errors import InputError

        if task.spec.data.unlabelled is None:  # before any work
            raise InputError(f"{task_file}: data.unlabelled: --suggest-labels needs a file of unlabelled inputs")
    ray_target = _ray_target(executor, address, cpus_per_task, shard_size)  # before any work
    try:
        run = prepare_run(task_file, options, hooks)
        fanned = None
        if ray_target is not None:
            from advisor.fanout.ray_executor import fan_out

            sent = fan_out(run, options, hooks, ray_target)
            fanned = sent.parallel if sent.tasks else None
        announce = None
        if isinstance(hooks, (BarHooks, LineHooks)) and ray_target is None and not current_ranks().distributed:
            announce = functools.partial(_announce_plan, run, options, hooks)  # once something must be computed
        measured = measure_rungs(run, options, hooks, announce)  # from the store alone, when Ray computed it
        if not main_rank:
            return
        assessment = summarize_assessment(run, options, hooks, measured, fanned)
    finally:
        stop(hooks)
    console = output_console()
    print_results(assessment, console)
    target = out or task_file.parent / ".advisor" / f"{_slug(assessment.task.name)}.assessment.json"
    write_assessment(assessment, target)
    reports = write_reports(assessment, target)
    console.print(f"Assessment written to {target}; reports: {', '.join(str(p) for p in reports)}")
    if backends:
        from advisor.tracking.track import track_assessment

        folder = (options.store_path or default_store_path(run.task)).parent
        for line in track_assessment(assessment, run.task, backends, [target, *reports], folder):
            (err_console if line.startswith("warning:") else console).print(line, highlight=False, soft_wrap=True)
    from advisor.report.plan import plan_check_table

    checked = plan_check_table(assessment)
    if checked is not None:
        console.print(checked)
    if suggest is not None:
        from advisor.label_suggestions import suggest_labels

        made = suggest_labels(run, assessment, options.store_path or default_store_path(run.task), suggest)
        console.print(made.describe(suggest), highlight=False)
    if before is not None:
        _gate_and_exit(assessment, before, task.spec.gates, None, None)


@main.command()
@click.argument("current", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--baseline", type=click.Path(path_type=Path, dir_okay=False), required=True, help="The earlier run.")
@click.option("--task", "task_file", type=click.Path(path_type=Path, dir_okay=False), help="Read limits from `gates:`.")
@click.option("--max-drop", type=float, help="Largest allowed absolute drop in a quality metric (0-1 scale).")
@click.option("--max-relative-drop", type=float, help="Largest allowed relative drop in a quality metric (0.05 = 5%).")
@click.option("--max-latency-rise", type=float, help="Largest allowed relative rise in p95 latency (0.5 = 50%).")
@click.option("--max-cost-rise", type=float, help="Largest allowed relative rise in $ per 1k requests.")
@click.option("--max-forgetting", type=float, help="Largest allowed drop in probe accuracy against the base model.")
@click.option("--confidence", type=float, help="Confidence of the significance test (default 0.95).")
@click.option("--rung", "rungs", multiple=True, help="Gate only these rungs (repeatable).")
@click.option("--metric", "metrics", multiple=True, help="Gate only these quality metrics (repeatable).")
@click.option("--strict", is_flag=True, default=None, help="Fail on any drop past a limit, significant or not.")
@click.option("--junit", type=click.Path(path_type=Path, dir_okay=False), help="Write JUnit XML (one case per check).")
@click.option("--markdown", type=click.Path(path_type=Path, dir_okay=False), help="Write a pull-request comment.")
@reports_errors
def gate(
    current: Path, baseline: Path, task_file: Path | None, junit: Path | None, markdown: Path | None, **flags: Any
) -> None:
    """Fail when CURRENT (an Assessment JSON) is worse than --baseline: exit 0 pass, 1 regression, 2 bad input.

    A quality drop past a limit fails only when it is significant (paired on the shared test examples),
    unless --strict. p95 latency and $ per 1k requests fail on a relative rise past their limits.
    """
    from advisor.assessment import read_assessment
    from advisor.task import GatesSection, load_task

    settings = load_task(task_file).spec.gates if task_file else GatesSection()
    renames = {"max_latency_rise": "max_p95_latency_rise"}
    updates = {renames.get(k, k): (list(v) if isinstance(v, tuple) else v) for k, v in flags.items()}
    updates = {k: v for k, v in updates.items() if v is not None and v != []}
    settings = _validated_gates(settings, updates)
    _gate_and_exit(read_assessment(current), read_assessment(baseline), settings, junit, markdown)


def _ray_target(executor: str, address: str | None, cpus_per_task: int, shard_size: int) -> Any:
    """The Ray target of `--executor ray`, or None to run here; options that need Ray fail without it."""
    from harness.errors import InputError

    if executor != "ray":
        if address is not None:
            raise InputError("--address: names a Ray cluster; add --executor ray")
        return None
    if current_ranks().distributed:
        raise InputError("--executor ray: under torchrun / accelerate launch the ranks share the work; pick one")
    from advisor.fanout.ray_executor import RayTarget

    return RayTarget(address=address, cpus_per_task=cpus_per_task, shard_size=shard_size)


def _announce_plan(run: Any, options: Any, hooks: Any) -> None:
    """Before the first computation: the plan (the one `--plan` stored for this task, else made now) gives the
    total and, from then on, what is left."""
    from advisor.plan import make_plan
    from advisor.plan_store import load_plan, plan_key, plan_path, save_plan
    from advisor.run import default_store_path

    path = plan_path(options.store_path or default_store_path(run.task), run.task.spec.name)
    plan = load_plan(path, plan_key(run.task.spec, run.splits.file_hashes, run.context.device))
    if plan is None:
        hooks.stage("calibrating this machine for the plan")
        plan = make_plan(run)
        save_plan(plan, path)
    hooks.plan({rung["name"]: rung["total_s"] for rung in plan["rungs"]})


def _plan(task_file: Path, options: Any, hooks: Any) -> None:
    from advisor.plan import make_plan
    from advisor.plan_store import plan_path, save_plan
    from advisor.report.plan import plan_table
    from advisor.report.terminal import output_console
    from advisor.run import default_store_path, prepare_run

    run = prepare_run(task_file, options, hooks)
    hooks.stage("calibrating this machine")
    plan = make_plan(run)
    path = plan_path(options.store_path or default_store_path(run.task), run.task.spec.name)
    save_plan(plan, path)
    console = output_console()
    console.print(plan_table(plan))
    console.print(f"Plan written to {path}; the next `advisor assess` compares it with what it measures.")


def _validated_gates(settings: Any, updates: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    from advisor.task import GatesSection, describe_validation_error
    from harness.errors import InputError

    try:
        return GatesSection.model_validate({**settings.model_dump(), **updates})
    except ValidationError as error:
        raise InputError(f"gate options: {describe_validation_error(error)}") from None


def _gate_and_exit(current: Any, baseline: Any, settings: Any, junit: Path | None, markdown: Path | None) -> None:
    from advisor.gate import gate_passed, run_gate
    from advisor.report.gate import gate_markdown, gate_table, junit_xml
    from advisor.report.terminal import output_console
    from harness.data.atomic import write_text_atomically

    checks = run_gate(current, baseline, settings, Measurement(seed=current.task.seed))
    output_console().print(gate_table(checks))
    if junit is not None:
        write_text_atomically(junit, junit_xml(checks))
    if markdown is not None:
        write_text_atomically(markdown, gate_markdown(checks))
    if not gate_passed(checks):
        sys.exit(1)


@main.command()
@click.argument("task_file", type=click.Path(path_type=Path, dir_okay=False))
@reports_errors
def check(task_file: Path) -> None:
    """Validate TASK_FILE, its data and its rungs without loading a model: exit 0 when valid, 2 when not."""
    from advisor.check import check_task

    click.echo(check_task(task_file).summary(task_file))


@main.command()
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
    from advisor.assessment import read_assessment
    from advisor.report.html import render_html
    from advisor.report.markdown import render_markdown
    from harness.data.atomic import write_text_atomically

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


@main.command()
@click.argument("task_file", type=click.Path(path_type=Path, dir_okay=False))
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
    from advisor.report.progress import progress_hooks, stop
    from advisor.run import QuietHooks
    from advisor.train import train_rung

    main_rank = current_ranks().is_main  # under torchrun / accelerate launch, rank 0 alone draws and writes
    hooks = progress_hooks(err_console) if main_rank else QuietHooks()
    try:
        result = train_rung(task_file, rung_name, out, merge, hooks)
    finally:
        stop(hooks)
    if not main_rank:
        return
    card = result["card"]
    state = "trained" if result["trained_now"] else "already trained (cached)"
    if card is not None:
        training = card.training
        click.echo(
            f"{rung_name}: {state} in {training.seconds:.0f} s, {card.trainable_parameters:,} trainable "
            f"parameters ({100 * card.trainable_share:.2f}%), validation loss "
            f"{', '.join(f'{x:.3f}' for x in training.validation_losses)}"
        )
    click.echo(f"artifact: {result['artifact']}")
    if result["exported"]:
        click.echo(f"exported to {result['exported']}" + (" (merged model)" if merge else ""))


@main.command()
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False), default=".")
@click.option("--force", is_flag=True, help="Overwrite task.yaml and data.jsonl if they exist.")
@reports_errors
def init(folder: Path, force: bool) -> None:
    """Write a starter task.yaml and data.jsonl into FOLDER that `advisor assess` runs as is."""
    from advisor.starter import write_starter

    written = write_starter(folder, force=force)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"next: advisor assess {written[0]}")


@main.command()
@click.argument("task_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the audit as JSON on stdout instead of a table.")
@click.option(
    "--near-threshold",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.95,
    show_default=True,
    help="Cosine similarity (all-MiniLM-L6-v2) at or above which two inputs count as near-duplicates.",
)
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False), help="Also write the audit JSON here.")
@reports_errors
def audit(task_file: Path, as_json: bool, near_threshold: float, out: Path | None) -> None:
    """Audit the data of TASK_FILE before anyone trains: duplicates, leakage, label conflicts, balance, lengths.

    Exits 0 when the audit ran, whatever it found; 2 when the task or its data cannot be read.
    """
    import json

    from advisor.audit import AuditOptions, run_audit, to_json
    from advisor.report.audit import print_audit
    from advisor.report.terminal import output_console
    from harness.data.atomic import write_text_atomically

    report = run_audit(task_file, AuditOptions(near_threshold=near_threshold))
    data = json.dumps(to_json(report), indent=2, ensure_ascii=False)
    if out is not None:
        write_text_atomically(out, data + "\n")
    if as_json:
        click.echo(data)
    else:
        print_audit(report, output_console())
        if out is not None:
            click.echo(f"Audit written to {out}")


@main.command()
@click.option("--params", help="Model size: 7B, 70B, 135M or 1.5e9.")
@click.option("--model", help="A local model folder or config.json, or a Hugging Face id already in the local cache.")
@click.option("--seq-len", type=click.IntRange(1), default=512, show_default=True, help="Tokens per training sequence.")
@click.option("--batch-size", type=click.IntRange(1), default=1, show_default=True, help="Sequences per step.")
@click.option(
    "--tokens", type=click.IntRange(1), default=10_000_000, show_default=True, help="Training tokens, all epochs."
)
@click.option("--lora-r", type=click.IntRange(1), default=16, show_default=True, help="LoRA rank.")
@click.option("--gpus", multiple=True, help="Price-table GPUs to consider (repeat or comma-separate; default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print the estimate as JSON on stdout instead of tables.")
@reports_errors
def estimate(
    params: str | None,
    model: str | None,
    seq_len: int,
    batch_size: int,
    tokens: int,
    lora_r: int,
    gpus: tuple[str, ...],
    as_json: bool,
) -> None:
    """Memory, hours and dollars to fine-tune with full, LoRA and QLoRA on each GPU, and each rung's serving cost.

    Give a size (--params 7B) or a model whose config.json is on this machine (--model); nothing is downloaded.
    """
    from advisor.estimate import estimate_cli

    estimate_cli(params, model, seq_len, batch_size, tokens, lora_r, gpus, as_json)


@main.command()
@click.argument("task_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (beyond loopback: a key).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: any free one).")
@click.option(
    "--adapter",
    "adapters",
    multiple=True,
    metavar="NAME=PATH",
    help="Also serve this peft LoRA adapter folder as model NAME (repeatable).",
)
@click.option("--list", "list_only", is_flag=True, help="Print what would be served, under which names, then stop.")
@click.option(
    "--max-adapters",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Adapters kept in memory at once; the least recently used one is dropped and reloaded when asked for.",
)
@click.option(
    "--api-key-env",
    metavar="NAME",
    help="Require the API key held in this environment variable (Authorization: Bearer <key>).",
)
@click.option(
    "--max-tokens-limit",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="The most tokens one request may generate.",
)
@click.option(
    "--max-concurrency",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Requests in flight at once; more are answered 429.",
)
@click.option(
    "--no-batching",
    is_flag=True,
    help="Answer one request at a time, switching adapters per request (the naive way; a benchmark baseline).",
)
@click.option(
    "--engine",
    type=click.Choice(["builtin", "vllm"]),
    default="builtin",
    show_default=True,
    help="vllm: start vLLM's own OpenAI server with --enable-lora over the same adapters (needs vLLM and a GPU).",
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@reports_errors
def serve(
    task_file: Path,
    host: str,
    port: int,
    adapters: tuple[str, ...],
    list_only: bool,
    max_adapters: int,
    api_key_env: str | None,
    max_tokens_limit: int,
    max_concurrency: int,
    no_batching: bool,
    engine: str,
    device: str,
) -> None:
    """Serve the base model of TASK_FILE and every trained tuned rung behind one OpenAI-compatible endpoint.

    A request's `model` names what answers: `base`, a tuned rung (`lora`: in the rung's own prompt, the
    assessment's answer; `lora:raw`: the messages as sent), a prompting rung, or an --adapter NAME.
    Needs the serve extra: pip install 'ladder-advisor[serve]'.
    """
    from advisor.serving.launch import (
        ServeOptions,
        api_key,
        prepare,
        require_serve_extra,
        serve_until_stopped,
        serve_with_vllm,
        vllm_of,
    )
    from advisor.serving.vllm_launch import describe

    options = ServeOptions(
        host=host,
        port=port,
        adapters=adapters,
        max_adapters=max_adapters,
        api_key_env=api_key_env,
        max_tokens_limit=max_tokens_limit,
        max_concurrency=max_concurrency,
        no_batching=no_batching,
        engine=engine,
        device=device,
    )
    from advisor.report.progress import progress_hooks

    hooks = progress_hooks(err_console)
    if list_only:
        run, catalog = prepare(task_file, options, hooks)
        lines = catalog.describe() if engine == "builtin" else describe(vllm_of(run, catalog, options, None))
        for line in lines:
            click.echo(line)
        return
    if engine == "vllm":
        serve_with_vllm(task_file, options, hooks)
        return
    api_key(options)  # a refused address fails before anything loads
    require_serve_extra()
    serve_until_stopped(task_file, options, hooks)


def _slug(name: str) -> str:
    kept = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.strip().lower())
    return kept.strip("-") or "task"


if __name__ == "__main__":  # `python -m advisor.cli`, as `torchrun -m advisor.cli` starts each rank
    main()
