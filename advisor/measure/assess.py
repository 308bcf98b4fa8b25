"""`advisor assess`: every requested rung on the same test examples, measured the same way."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

from advisor.decision.assessment import (
    Assessment,
    DistillationSummary,
    Environment,
    Evidence,
    Recommendation,
    RungResult,
    SeedRun,
    TaskSummary,
)
from advisor.decision.compare import compare_rungs
from advisor.decision.costs import price_rungs
from advisor.decision.decide import DataFacts, decide
from advisor.decision.distillation import distillation_line, distillation_summaries
from advisor.decision.seeds import with_seed_runs
from advisor.measure.endpoints import EndpointBinding, check_endpoints, summary_of, training_tokens
from advisor.measure.forgetting import ProbeRun
from advisor.measure.plan_store import Plan, check_plan, load_plan, plan_key, plan_path
from advisor.measure.prepare import (
    AssessOptions,
    PreparedRun,
    ProgressHooks,
    QuietHooks,
    label_counts,
    prepare_run,
)
from advisor.measure.rung_builder import BoundRungs, bound_rungs
from advisor.measure.summarize import RungDetails, selection_summary, summarize_rung, training_summary
from advisor.task.audit import AuditOptions, run_audit, to_json
from advisor.task.audit_json import AuditSummary
from advisor.task.extra_metrics import extra_metrics
from advisor.task.rung_plan import PlannedRung
from harness.data.atomic import write_text_atomically
from harness.data.hashing import content_hash
from harness.data.loading import Splits
from harness.data.store import NotStored, Store
from harness.distributed import writes_files
from harness.environment import describe_hardware
from harness.memory import release_memory
from harness.metrics.scoring import scorer_for
from harness.pricing.prices import load_prices
from harness.probes.forgetting import probe_set
from harness.retrieval.embedding import embedding_similarities
from harness.rungs import RungContext
from harness.runner import run_predictor
from harness.task_types import get_task_type

AUDIT_VERSION = 1  # bump when the audit's findings change, so stored audits are redone


def assess(task_path: Path, options: AssessOptions, hooks: ProgressHooks) -> Assessment:
    """Run every rung on the same test examples and summarise."""
    return assess_prepared(prepare_run(task_path, options, hooks), options, hooks)


def assess_prepared(run: PreparedRun, options: AssessOptions, hooks: ProgressHooks) -> Assessment:
    """`assess` on a prepared run (the model already loaded), so a caller can use the run afterwards."""
    return summarize_assessment(run, options, hooks, measure_rungs(run, options, hooks))


def measure_rungs(
    run: PreparedRun,
    options: AssessOptions,
    hooks: ProgressHooks,
    before_computing: Callable[[], None] | None = None,
) -> list[RungResult]:
    """Every planned rung measured on the test split (under a launch, by every rank together).

    `before_computing` runs once, before the first answer, training or probe the store does not hold.
    """
    check_endpoints(run.endpoints, run.task.spec)  # an unset key or a host outside the house: before any request
    with bound_rungs(run, on_first_compute=before_computing, hooks=hooks) as rungs:
        # the probes compare weights, not shares of work: rank 0 runs them while the others go on
        probes = _probe_run(run, rungs.store, hooks) if writes_files() else None
        results = []
        for p in run.planned:
            result = _run_rung(rungs, p, hooks, probes)
            results.append(_with_endpoint(p, rungs.endpoints, result, rungs.context))
            release_memory()  # a tuned rung's model and the freed activations of its answers
        spec = run.task.spec
        return with_seed_runs(
            results,
            spec.decision,
            spec.seed,
            recommend=lambda measured: provisional_recommendation(run, options, measured),
            retrain=lambda result, seed: retrained_from_seed(run, rungs, result, seed, hooks),
        )


def summarize_assessment(
    run: PreparedRun,
    options: AssessOptions,
    hooks: ProgressHooks,
    results: list[RungResult],
    ray_parallel: int | None = None,
) -> Assessment:
    """The Assessment of measured rungs: the data audit, prices, comparisons and the recommendation.

    `ray_parallel`: Ray computed them, this many tasks at once (None: this process, or its launch).
    """
    hooks.stage("auditing the data")
    evidence = gather_evidence(run, options, results, cached_audit(run, run.store_path), ray_parallel)
    return Assessment.of(evidence, _naming_teachers(recommend(run, evidence), evidence.distillation))


def gather_evidence(
    run: PreparedRun,
    options: AssessOptions,
    results: list[RungResult],
    audit: AuditSummary | None,
    ray_parallel: int | None = None,
) -> Evidence:
    """What a recommendation is drawn from: the measured rungs priced on this machine, what was assessed and where.

    With the data audit (the final assessment), also the paired comparisons, the distilled students against their
    teachers and the stored plan against this run; without it (a provisional look, before any extra training seed),
    the rungs alone. `ray_parallel`: Ray computed them, this many tasks at once (None: this process, or its launch).
    """
    spec = run.task.spec
    environment = Environment(**describe_hardware(run.placement))
    if ray_parallel is not None:
        environment = environment.model_copy(update={"executor": "ray", "processes": ray_parallel})
    priced = price_rungs(results, spec.costs, load_prices(spec.pricing), environment.device)
    final = audit is not None
    stored_plan = _stored_plan(run, run.store_path) if final else None
    return Evidence(
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        task=task_summary(run, options),
        environment=environment,
        rungs=priced,
        comparisons=compare_rungs(priced, spec.type, run.context.labels, spec.measurement) if final else [],
        audit=audit,
        plan_checks=check_plan(stored_plan, priced) if stored_plan is not None else [],
        distillation=distillation_summaries(priced, spec.type, run.context.labels, spec.measurement) if final else [],
    )


def recommend(run: PreparedRun, evidence: Evidence) -> Recommendation:
    """The task's decision policy applied to the evidence (the audit's findings, when it holds them, included)."""
    spec = run.task.spec
    facts = data_facts(run.splits, run.context.labels, evidence.audit)
    return decide(evidence, spec.constraints, spec.facts, spec.decision, facts, spec.measurement)


def task_summary(run: PreparedRun, options: AssessOptions) -> TaskSummary:
    """What was assessed: the task, its data and model, the metric that ranks the rungs."""
    spec = run.task.spec
    return TaskSummary(
        name=spec.name,
        type=spec.type,
        file=str(run.task.path),
        model=run.source.name,
        model_fingerprint=run.source.fingerprint,
        labels=list(run.context.labels),
        prompt=asdict(run.prompt_format),
        seed=spec.seed,
        n_train=len(run.splits.train),
        n_validation=len(run.splits.validation),
        n_test=len(run.test),
        limit=options.limit,
        data_hashes=run.splits.file_hashes,
        primary_metric=run.primary.metric,
        primary_metric_reason=run.primary.reason,
        majority_label=majority_label(run.splits, run.context.labels) if get_task_type(spec.type).labelled else None,
    )


def provisional_recommendation(run: PreparedRun, options: AssessOptions, results: list[RungResult]) -> Recommendation:
    """What the recommendation would say on these results, before any extra training seed (no audit)."""
    return recommend(run, gather_evidence(run, options, results, audit=None))


def retrained_from_seed(
    run: PreparedRun, rungs: BoundRungs, result: RungResult, seed: int, hooks: ProgressHooks
) -> SeedRun | None:
    """A tuned rung's chosen configuration trained from another seed, answering the test split (stored)."""
    planned = next(p for p in run.planned if p.name == result.name)
    built = rungs.build(planned)
    context, config = built.context, built.config
    tuned = built.predictor.tuned()
    again = tuned.reseeded(seed) if tuned is not None else None
    if again is None:
        return None
    name = f"{result.name} (seed {seed})"
    hooks.stage(f"{result.name}: a close call; its chosen configuration trained again from seed {seed}")
    hooks.rung_started(name, len(run.test))
    answered = run_predictor(
        again,
        run.test,
        rungs.store,
        scorer_for(context.task_type, context.labels),
        latency_sample=0,
        seed=seed,
        progress=hooks.advance,
    )
    hooks.rung_finished(name)
    spec = run.task.spec
    summary = summarize_rung(
        name,
        planned.type.kind,
        config.model_dump(),
        spec.type,
        answered,
        labels=context.labels,
        measurement=replace(spec.measurement, resamples=1),
        ranked_on=context.primary_metric,
    )
    retrained = again.tuned()
    return SeedRun(
        seed=seed,
        metrics={key: value.value for key, value in summary.metrics.items()},
        predictions=[r.prediction for r in summary.records],
        scores=[r.scores for r in summary.records],
        training_seconds=answered.phases.get("prepare") if retrained is not None and retrained.trained_now else None,
    )


def _naming_teachers(recommendation: Recommendation, distilled: Sequence[DistillationSummary]) -> Recommendation:
    """A recommended student's reasons name its teacher and what distilling it kept."""
    summary = next((d for d in distilled if d.rung == recommendation.rung), None)
    if summary is None:
        return recommendation
    return recommendation.model_copy(update={"reasons": [*recommendation.reasons, distillation_line(summary)]})


def _stored_plan(run: PreparedRun, store_path: Path) -> Plan | None:
    """The plan made for this very task, data and device by `advisor assess --plan`, if there is one."""
    key = plan_key(run.task.spec, run.splits.file_hashes, run.context.device)
    return load_plan(plan_path(store_path, run.task.spec.name), key)


def majority_label(splits: Splits, labels: Sequence[str]) -> str | None:
    """The commonest target in train + validation (the first listed label wins a tie)."""
    counts = label_counts(splits, labels)
    return max(labels, key=lambda label: counts[label]) if labels else None


def data_facts(splits: Splits, labels: Sequence[str], audit: AuditSummary | None = None) -> DataFacts:
    """Train size, the smallest class's count and the audit's findings, for the recommendation."""
    counts = Counter(example.target for example in splits.train)
    smallest = min((counts.get(label, 0) for label in labels), default=None) if labels else None
    findings = audit.findings if audit else []
    codes = tuple(f.code for f in findings if f.severity in ("error", "warning"))
    ceilings = [f.detail.get("test_accuracy_ceiling") for f in findings if f.code == "conflicting_labels"]
    cap = min((float(c) for c in ceilings if isinstance(c, (int, float))), default=None)
    return DataFacts(n_train=len(splits.train), smallest_class=smallest, audit_codes=codes, quality_cap=cap)


def cached_audit(run: PreparedRun, store_path: Path) -> AuditSummary:
    """The data audit, stored beside the result store under a hash of the data and the task: a re-run reads it."""
    task = run.task
    key = content_hash(AUDIT_VERSION, run.splits.file_hashes, task.spec.model_dump(mode="json"), run.source.fingerprint)
    path = store_path.parent / "audits" / f"{key}.json"
    if path.is_file():
        return AuditSummary.model_validate_json(path.read_text(encoding="utf-8"))
    summary = to_json(run_audit(task.path, AuditOptions(), embedder=run.context.embedder)).summary()
    write_text_atomically(path, summary.model_dump_json())
    return summary


def _probe_run(run: PreparedRun, store: Store, hooks: ProgressHooks) -> Callable[[], ProbeRun] | None:
    """The forgetting probes, loaded on first use (only a tuned rung needs them)."""
    section = run.task.spec.forgetting
    if not section.enabled:
        return None
    loaded: list[ProbeRun] = []

    def get() -> ProbeRun:
        if not loaded:
            fingerprint, items = probe_set(section.probes, run.task.folder, section.max_items, run.task.spec.seed)
            context = run.context
            loaded.append(ProbeRun(section, fingerprint, items, context.engine, context.model_fingerprint, store))
        return loaded[0]

    return get


def _with_endpoint(
    planned: PlannedRung, endpoints: EndpointBinding, result: RungResult, context: RungContext
) -> RungResult:
    """A remote rung's result with where it ran, how its answers were read and what the endpoint charges
    (or, for a rung on another local model, that model)."""
    answerer = endpoints.answerer(planned, context)
    if answerer is None:
        return result if planned.model is None else result.model_copy(update={"model": planned.model})
    endpoint = answerer.endpoint
    tokens = training_tokens(context) if endpoint.hosted_fine_tuning else 0
    return result.model_copy(update={"endpoint": summary_of(endpoint, answerer, result.scoring, tokens)})


def _run_rung(
    rungs: BoundRungs, planned: PlannedRung, hooks: ProgressHooks, probes: Callable[[], ProbeRun] | None
) -> RungResult:
    task, test, store = rungs.run.task, rungs.run.test, rungs.store
    started = time.perf_counter()
    hooked = store.first_compute_s
    built = rungs.build(planned)
    context, config, selection, predictor = built.context, built.config, built.selection, built.predictor
    choosing = time.perf_counter() - started - (store.first_compute_s - hooked)
    hooks.rung_started(planned.name, len(test))
    run = run_predictor(
        predictor,
        test,
        store,
        scorer_for(context.task_type, context.labels),
        latency_sample=task.spec.evaluation.latency_sample,
        seed=task.spec.seed,
        progress=hooks.advance,
    )
    hooks.rung_finished(planned.name)
    similarities = None
    if get_task_type(task.spec.type).output_similarity and context.embedder is not None:
        similarities = embedding_similarities(
            context.embedder(), [r.output.text for r in run.records], [r.example.target for r in run.records]
        )
    extra = extra_metrics(task.spec.evaluation.metrics, run.records, task.folder, task.spec.measurement)
    seconds = time.perf_counter() - started - (store.first_compute_s - hooked)  # the plan's calibration aside
    tuned = predictor.tuned()
    card = tuned.card() if tuned is not None else None
    training = training_summary(card, str(tuned.artifact_dir), tuned.trained_now) if tuned and card else None
    forgetting = None
    probing = time.perf_counter()
    if probes is not None:
        if tuned is None:
            forgetting = probes().unchanged()
        else:
            hooks.stage(f"{planned.name}: general-skills probes against the base model")
            forgetting = probes().compare(
                tuned.engine,
                tuned.fingerprint(),
                max_forgetting=task.spec.constraints.max_forgetting,
                measurement=task.spec.measurement,
            )
    phases = _phases(choosing, run.phases, time.perf_counter() - probing, tuned is not None)
    seconds += phases.get("probes", 0.0)
    result = summarize_rung(
        planned.name,
        planned.type.kind,
        config.model_dump(),
        task.spec.type,
        run,
        labels=context.labels,
        measurement=task.spec.measurement,
        similarities=similarities,
        ranked_on=context.primary_metric,
        extra_metrics=extra,
        details=RungDetails(
            step=rungs.step_of(planned),
            selection=selection_summary(selection) if selection else None,
            seconds=seconds,
            phases=phases,
            tuned=tuned is not None,
            training=training,
            forgetting=forgetting,
        ),
    )
    if tuned is not None and card is not None:  # the evaluated metrics written into its card
        tuned.record_metrics({name: metric.value for name, metric in result.metrics.items()})
    return result


def _phases(choosing: float, answering: dict[str, float], probing: float, tuned: bool) -> dict[str, float]:
    """Where a rung's time went in this run (only the phases that computed something): seconds per phase."""
    phases = {"choosing": choosing} if choosing > 0.5 else {}  # reading a stored choice is no phase
    for name, seconds in answering.items():
        phases["training" if name == "prepare" and tuned else name] = seconds
    if probing > 0.5:
        phases["probes"] = probing
    return {name: round(seconds, 2) for name, seconds in phases.items()}


def rungs_needing_work(run: PreparedRun) -> list[PlannedRung]:
    """The planned rungs on local models that the store cannot answer without computing something.

    Each is measured as `assess` would measure it, from a store opened for stored answers only: the
    first answer, training or probe it would have to compute stops it. Rungs at an endpoint are left
    out (the driver asks endpoints itself).
    """
    hooks = QuietHooks()
    needing = []
    with bound_rungs(run, stored_only=True) as rungs:
        probes = _probe_run(run, rungs.store, hooks)
        for planned in run.planned:
            if planned.endpoint is not None:
                continue
            try:
                _run_rung(rungs, planned, hooks, probes)
            except NotStored:
                needing.append(planned)
    return needing
