"""`advisor assess --executor ray`: the rungs the store cannot answer go to a Ray cluster as tasks.

A prompting rung is split into evaluation shards, then finished by one more task (its latency
sample) once they are in. A tuned rung whose search has not finished is searched by the driver, its
trials as tasks on the workers (advisor/fanout/ray_trials.py), then answered by one task that loads
the chosen adapter; any other rung (a training, a teacher's labels) is one task, which loads the
driver's adapter when the driver has it. Each task declares what it needs (CPUs, a GPU when the run
is on CUDA, its memory), works in a folder of its own with torch threads set to its CPU share, and is
retried by Ray when its worker dies, resuming from what it left in its work folder. Results come
back to the driver, which alone writes the store. Ray is imported here only.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from advisor.fanout.bundle import bundle_task, install_cache
from advisor.fanout.dispatch import Dispatch, carried, pending_search, tuned_predictor
from advisor.fanout.piece import Harvest
from advisor.fanout.scratch import scratch_root
from advisor.fanout.task_memory import check_fits, task_memory
from advisor.measure.prepare import AssessOptions, PreparedRun, ProgressHooks
from advisor.measure.rung_builder import bound_rungs
from advisor.task.rung_plan import PlannedRung
from harness.data.store import Store
from harness.errors import InputError, RunError
from harness.rungs import RungContext
from harness.selection import choice_space


@dataclass(frozen=True)
class RayTarget:
    """Where and how finely to fan out."""

    address: str | None = None  # None: a Ray instance started on this machine for this run
    cpus_per_task: int = 1
    shard_size: int = 64  # test examples per evaluation task (each task loads the model once)


@dataclass(frozen=True)
class FanOut:
    """What was sent: how many tasks, and how many could run at once."""

    tasks: int
    parallel: int


def shardable(planned: PlannedRung, context: RungContext) -> bool:
    """A prompting rung with nothing to choose or train first: its test examples split freely."""
    return not planned.type.changes_weights and not choice_space(planned.config, context)


def fan_out(run: PreparedRun, options: AssessOptions, hooks: ProgressHooks, target: RayTarget) -> FanOut:
    """Compute on Ray whatever the store lacks, and take the results into the store and the cache."""
    from advisor.measure.assess import rungs_needing_work

    needing = rungs_needing_work(run)
    if not needing:
        return FanOut(0, 0)
    ray, started_here = _connect(target)
    try:
        return _send(ray, run, options, hooks, target, needing)
    finally:
        if started_here:
            ray.shutdown()


def _send(
    ray: Any,
    run: PreparedRun,
    options: AssessOptions,
    hooks: ProgressHooks,
    target: RayTarget,
    needing: Sequence[PlannedRung],
) -> FanOut:
    store_path = run.store_path
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    node_memory = [float(node["Resources"].get("memory", 0.0)) for node in ray.nodes() if node["Alive"]]
    memory = {p.name: task_memory(run.context, p) for p in needing}
    for name, need in memory.items():
        check_fits(need, name, node_memory)
    with Store(store_path) as store:
        known = ray.put((store.output_rows(), store.response_rows()))
    send = Dispatch(
        ray,
        options,
        bundle=ray.put(bundle_task(run.task.path, store_path.parent)),
        known=known,
        scratch=scratch_root(store_path),
        cache_dir=store_path.parent,
        resources={"num_cpus": target.cpus_per_task, "num_gpus": 1 if run.placement.device == "cuda" else 0},
        memory=memory,
        parallel=max(1, cpus // target.cpus_per_task),
    )
    refs = []
    trials = 0
    with bound_rungs(run, stored_only=True) as bound:
        searching = []
        for planned in needing:
            predictor = tuned_predictor(bound, planned)
            searched = pending_search(predictor)
            if searched is not None:
                searching.append((planned, searched))
            elif shardable(planned, run.context) and len(run.test) > target.shard_size:
                count = math.ceil(len(run.test) / target.shard_size)
                shard_refs = [send.piece(planned, shard=tuple(range(len(run.test)))[i::count]) for i in range(count)]
                refs.extend([*shard_refs, send.piece(planned, *shard_refs)])
            else:
                refs.append(send.piece(planned, carried=carried(predictor, send.cache_dir)))
        try:
            for planned, searched in searching:  # one at a time: each fills the workers, and a sibling warm-starts
                hooks.stage(f"ray: the search of {planned.name}, up to {send.parallel} trials at once")
                trials += send.search(planned, searched)
                refs.append(send.piece(planned, carried=carried(searched, send.cache_dir)))
        except BaseException:
            for ref in refs:  # the run stops here; a shared cluster should not keep working on it
                ray.cancel(ref)
            raise
    hooks.rung_started(f"ray: {len(needing)} rungs as {len(refs)} tasks", len(refs))
    pending = list(refs)
    with Store(store_path) as store:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            harvest: Harvest = ray.get(done[0])
            if harvest.error is not None:
                for ref in pending:  # the run stops here; a shared cluster should not keep working on it
                    ray.cancel(ref)
                harvest.raise_error()
            store.put_rows(harvest.outputs, harvest.responses)
            install_cache(harvest.folders, store_path.parent)
            hooks.advance(1)
    hooks.rung_finished("ray")
    shutil.rmtree(send.scratch, ignore_errors=True)  # every task handed its work back: nothing is left to resume
    return FanOut(len(refs) + trials, send.parallel)


def _connect(target: RayTarget) -> tuple[Any, bool]:
    """Ray, connected to the target cluster (or to one started here); whether it was started here."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray reports usage to its vendor unless told not to
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray: Ray is not installed; pip install 'ladder-advisor[ray]'") from None
    if ray.is_initialized():
        return ray, False
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    try:
        if target.address is None:
            ray.init(include_dashboard=False, **quiet)
        else:
            ray.init(address=target.address, **quiet)
    except ConnectionError as error:
        raise RunError(f"--address {target.address}: no Ray cluster answered ({error})") from None
    return ray, True
