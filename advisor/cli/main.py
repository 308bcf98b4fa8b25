"""The `advisor` command line: the only place errors become exit codes and one-line messages."""

from __future__ import annotations

import datetime
import functools
from pathlib import Path
from typing import Any

import click
from rich.text import Text

from advisor.cli.export import export
from advisor.cli.gate import gate, gate_and_exit
from advisor.cli.prompt import prompt
from advisor.cli.serve import serve
from advisor.cli.support import (
    err_console,
    existing_folder,
    quiet_libraries,
    reports_errors,
    rung_list,
    task_argument,
)
from advisor.cli.tools import audit, check, estimate, init, report, train
from harness.data.file_names import file_slug
from harness.distributed import current_ranks


@click.group(name="advisor", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ladder-advisor", prog_name="advisor")
def main() -> None:
    """Ladder: should you fine-tune? Measure every rung of the adaptation ladder on your own data.

    Rungs, cheapest first: zero_shot, few_shot, rag, lora/qlora, full. Start with `advisor init`,
    then `advisor assess task.yaml`.
    """
    quiet_libraries()


@main.command()
@task_argument
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the Assessment JSON. Default: .advisor/<task name>.assessment.json beside the task file.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the Assessment JSON (with --plan: the plan's) on stdout instead of the tables (progress and notes "
    "go to stderr).",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="Compute everything again into a new store (.advisor/fresh-<time>/); the usual store is not read or changed.",
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
    as_json: bool,
    fresh: bool,
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
    from advisor.decision.assessment import read_assessment, write_assessment
    from advisor.measure.assess import measure_rungs, summarize_assessment
    from advisor.measure.prepare import AssessOptions, QuietHooks, prepare_run
    from advisor.report.files import write_reports
    from advisor.report.terminal import output_console, print_results

    only = rung_list("--rungs", rung_names)
    if out is not None:
        existing_folder("-o", out)
    if fresh:
        store = fresh_store(task_file, store)
    options = AssessOptions(rungs=only, limit=limit, store_path=store, device=device, allow_pickle=allow_pickle)
    before = read_assessment(baseline) if baseline is not None else None  # a bad baseline fails before any work
    from advisor.report.progress import BarHooks, LineHooks, progress_hooks, stop

    main_rank = current_ranks().is_main  # under torchrun / accelerate launch, rank 0 alone draws and writes
    hooks = progress_hooks(err_console) if main_rank else QuietHooks()
    if plan_only:
        _plan(task_file, options, hooks, as_json)
        return
    from advisor.task.spec import load_task
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
    target = out or task_file.parent / ".advisor" / f"{file_slug(assessment.task.name)}.assessment.json"
    write_assessment(assessment, target)  # before anything is drawn: nothing computed is lost to a drawing error
    reports = write_reports(assessment, target)
    console = err_console if as_json else output_console()
    if as_json:
        click.echo(assessment.model_dump_json(indent=2))
    else:
        print_results(assessment, console)
    written = f"Assessment written to {target}; reports: {', '.join(str(p) for p in reports)}"
    console.print(Text(written), soft_wrap=True)
    if fresh:
        console.print(Text(f"--fresh: everything was computed again into {options.store_path}"), soft_wrap=True)
    if backends:
        from advisor.tracking.track import track_assessment

        folder = run.store_path.parent
        for line in track_assessment(assessment, run.task, backends, [target, *reports], folder):
            (err_console if line.startswith("warning:") else console).print(Text(line), soft_wrap=True)
    from advisor.report.plan import plan_check_table

    checked = plan_check_table(assessment)
    if checked is not None:
        console.print(checked)
    if suggest is not None:
        from advisor.measure.label_suggestions import suggest_labels

        made = suggest_labels(run, assessment, suggest)
        console.print(Text(made.describe(suggest)), soft_wrap=True)
    if before is not None:
        gate_and_exit(assessment, before, task.spec.gates, None, None, console)  # stderr under --json


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
    from advisor.measure.plan import make_plan
    from advisor.measure.plan_store import load_plan, plan_key, plan_path, save_plan

    path = plan_path(run.store_path, run.task.spec.name)
    plan = load_plan(path, plan_key(run.task.spec, run.splits.file_hashes, run.context.device))
    if plan is None:
        hooks.stage("calibrating this machine for the plan")
        plan = make_plan(run)
        save_plan(plan, path)
    hooks.plan({rung.name: rung.total_s for rung in plan.rungs})


def _plan(task_file: Path, options: Any, hooks: Any, as_json: bool) -> None:
    from advisor.measure.plan import make_plan
    from advisor.measure.plan_store import plan_json, plan_path, save_plan
    from advisor.measure.prepare import prepare_run
    from advisor.report.plan import plan_table
    from advisor.report.terminal import output_console

    run = prepare_run(task_file, options, hooks, sends=False)  # a plan sends nothing: no key needed
    hooks.stage("calibrating this machine")
    plan = make_plan(run)
    path = plan_path(run.store_path, run.task.spec.name)
    save_plan(plan, path)
    console = err_console if as_json else output_console()
    if as_json:
        click.echo(plan_json(plan))  # what the plan file holds
    else:
        console.print(plan_table(plan))
    console.print(Text(f"Plan written to {path}; the next `advisor assess` compares it with what it measures."))


def fresh_store(task_file: Path, store: Path | None) -> Path:
    """A new, empty store beside the usual one, named by the time: `--fresh` computes everything into it."""
    usual = store or task_file.parent / ".advisor" / "store.sqlite"
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S-%f")
    return usual.parent / f"fresh-{stamp}" / "store.sqlite"


for command in (gate, check, report, train, init, audit, estimate, serve, prompt, export):
    main.add_command(command)


if __name__ == "__main__":  # `python -m advisor.cli.main`, as `torchrun -m advisor.cli.main` starts each rank
    main()
