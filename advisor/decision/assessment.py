"""The Assessment: one run's results as versioned JSON, the input of `advisor report` and `gate`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from advisor.task.audit_json import AuditSummary
from harness.data.atomic import write_text_atomically
from harness.errors import InputError

SCHEMA_VERSION: Literal[1] = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricValue(_Model):
    """A metric's value with its 95% bootstrap interval."""

    value: float
    ci_low: float
    ci_high: float


class LatencySummary(_Model):
    """Single-request latency at batch size 1 on a sample, and batched throughput."""

    p50_s: float | None
    p95_s: float | None
    sample_size: int
    batched_examples_per_s: float | None
    samples_s: list[float] = []  # the single-request latencies themselves (for the distribution plot)


class TokenSummary(_Model):
    """Mean tokens per request, counted with the model's own tokenizer."""

    prompt_mean: float
    completion_mean: float


class RecordSummary(_Model):
    """One test example as a rung answered it."""

    id: str
    input: str | list[dict[str, str]]
    target: str
    output: str
    prediction: str | None
    correct: bool
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    scores: dict[str, float] = {}  # numeric score parts (correct, value, field counts, ...) for paired tests


class SearchTrial(_Model):
    """One trial of a tuned rung's search, judged on the validation split."""

    number: int
    params: dict[str, Any]
    state: str  # complete | pruned
    validation_metrics: list[float] = []  # per evaluation (a few per epoch)
    validation_losses: list[float] = []
    evaluation_epochs: list[float] = []  # where each evaluation was made, in epochs (1.5: halfway through the second)
    best_evaluation: int = 0  # the evaluation whose weights were kept, from 1
    best_epoch: float = 0  # its place, in epochs
    epochs_run: float = 0
    steps: int = 0
    seconds: float = 0.0
    score: float | None = None
    artifact: str = ""


class SearchSummary(_Model):
    """A tuned rung's hyperparameter search: the space, every trial, the choice and its warnings."""

    metric: str
    space: dict[str, Any]
    trials: list[SearchTrial]
    chosen: int
    chosen_params: dict[str, Any]
    max_epochs: int
    budget: str | None = None
    seconds: float
    warnings: list[str] = []
    validation_examples: int | None = None  # set for a prompting rung's choice (a tuned rung's is in its training)
    evaluations_per_epoch: int = 1
    warm_start: dict[str, Any] | None = None  # {method, params, search}: the sibling search this one started from


class TrainingSummary(_Model):
    """What training a tuned rung cost (measured when it was trained; cached runs report those figures)."""

    seconds: float  # every trial of the search included: that is what choosing the rung cost
    chosen_seconds: float | None = None  # the chosen configuration's own run
    selection_metric: str = "loss"
    validation_metrics: list[float] = []
    validation_examples: int = 0
    search: SearchSummary | None = None
    peak_rss_mb: float
    trainable_parameters: int
    trainable_share: float
    epochs_run: float
    best_epoch: float  # where the kept weights were judged, in epochs (1.5: halfway through the second)
    best_evaluation: int = 0
    evaluation_epochs: list[float] = []
    useful_tokens: int
    useful_tokens_per_s: float
    train_losses: list[float]
    learning_rates: list[float] = Field(default_factory=list)  # per step
    tokens_per_s: list[float] = Field(default_factory=list)  # per step: useful tokens so far / seconds so far
    validation_losses: list[float]
    artifact: str
    trained_now: bool
    preference: dict[str, Any] | None = None  # a dpo rung: pairs (how many, from where), rewards per epoch
    distillation: dict[str, Any] | None = None  # a distill rung: its teacher, the inputs labelled, agreement


class CostSummary(_Model):
    """What a rung costs in dollars, and the prices that assumes."""

    hosting: str  # self_hosted | api | endpoint (a remote rung, at its endpoint's token price)
    per_1k: float | None  # USD per 1000 requests, served as `hosting` says
    monthly: float | None
    requests_per_month: float
    self_hosted_per_1k: float | None  # measured throughput x hardware price
    api_per_1k: float | None  # measured tokens x API price (a tuned rung: the hosted fine-tuned model's price)
    training: float | None = None  # measured training time x training hardware price
    hosted_training: float | None = None  # the same training tokens on a hosted fine-tuning service
    break_even_months: float | None = None
    break_even_against: str | None = None
    assumptions: dict[str, str] = {}

    def one_off_training(self) -> float | None:
        """What training costs as the hosting assumes: on the hosted service for API and endpoint serving, here
        otherwise."""
        return self.hosted_training if self.hosting in ("api", "endpoint") else self.training


class ProbeDelta(_Model):
    """Probe accuracy of a tuned model against its base model, on the same probe items."""

    area: str
    n: int
    base: float
    tuned: float
    delta: float
    ci_low: float
    ci_high: float


class ForgettingSummary(_Model):
    """What a rung lost of the base model's general skills (prompting rungs change no weights)."""

    weights_changed: bool
    probes: str
    n_items: int = 0
    base_accuracy: float | None = None
    tuned_accuracy: float | None = None
    delta: float | None = None  # tuned - base; negative is forgetting
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    by_area: list[ProbeDelta] = []
    exceeds_max: bool = False


class EndpointSummary(_Model):
    """Where a remote rung ran, how its answers were read, and what the endpoint charges."""

    name: str
    base_url: str
    model: str
    in_house: bool  # loopback or a host the task lists as in-house
    scoring: str  # harness.inference.scoring_modes.SCORING_MODES
    scoring_text: str
    max_concurrency: int  # latency is per request at this concurrency, the network included
    requests_sent: int  # in this run (0: every answer came from the store)
    input_per_million: float | None = None
    output_per_million: float | None = None
    price_source: str | None = None
    fine_tuning_service: str | None = None  # a hosted fine-tune: the service it was trained on
    fine_tuning_epochs: int | None = None
    fine_tuning_tokens: int | None = None  # the train split's tokens, counted with the task's tokenizer


class CalibrationSummary(_Model):
    """A prompting rung's contextual calibration: on or off, how that was decided, and the prior divided out."""

    setting: str  # "on" or "off": how the test split was answered
    decided: str  # "chosen on validation", "set in the task file", or why `auto` had nothing to choose
    metric: str = ""  # the validation metric, when chosen
    validation: dict[str, float] = {}  # that metric with calibration "off" and "on", when chosen
    prior: dict[str, float] = {}  # p_cf per label (the mean over calibration contexts when there are several)
    contexts: int = 0  # distinct calibration contexts among the test answers (1: one prior for the whole rung)
    content_free_tokens: float = 0.0  # content-free prompt tokens per request, paid on every request


class SeedRun(_Model):
    """A tuned rung's chosen configuration trained again from another seed, answering the same test examples."""

    seed: int
    metrics: dict[str, float]  # its own value of each metric on the test split
    predictions: list[str | None]  # per test example, in the order of the rung's records
    scores: list[dict[str, float]]  # per test example: the numeric score parts, as RecordSummary.scores
    training_seconds: float | None = None  # None when it was read back from the store


class RungResult(_Model):
    """Everything measured for one rung."""

    name: str
    kind: str
    step: int = 0  # place on the ladder (harness.ladder.LADDER_STEPS)
    tuned: bool = False  # the rung trains weights (its predictor declares a TunedModel)
    config: dict[str, Any]
    primary_metric: str
    metrics: dict[str, MetricValue]
    latency: LatencySummary
    tokens: TokenSummary
    no_label_outputs: int
    computed: int
    reused: int
    training: TrainingSummary | None = None
    selection: SearchSummary | None = None  # a prompting rung's choice among its alternatives, on validation
    calibration: CalibrationSummary | None = None  # a prompting rung that can score labels: its calibration
    cost: CostSummary | None = None
    forgetting: ForgettingSummary | None = None
    seconds: float | None = None  # wall time of this rung in this run: training, evaluation, latency sample, probes
    # where that time went, for the phases that computed something in this run: choosing (a prompting rung's
    # alternatives on validation), training (a tuned rung's search and training) or prepare (an index, a pool
    # of demonstrations), test, latency (the single-request sample), probes (forgetting)
    phases: dict[str, float] = {}
    scoring: str = ""  # how its answers were read (harness.inference.scoring_modes.SCORING_MODES)
    endpoint: EndpointSummary | None = None  # set when an endpoint answered its prompts
    model: str | None = None  # set when a local model other than the task's answered its prompts
    # a tuned rung in a close call, retrained from other seeds (decision.seeds): the decision uses the mean
    seed_runs: list[SeedRun] = []
    records: list[RecordSummary]


class TaskSummary(_Model):
    """What was assessed."""

    name: str
    type: str
    file: str
    model: str
    model_fingerprint: str
    labels: list[str]
    prompt: dict[str, Any]
    seed: int
    n_train: int
    n_validation: int
    n_test: int
    limit: int | None
    data_hashes: dict[str, str]
    primary_metric: str = ""  # what ranks the rungs, and why (harness.metrics.task_metrics.choose_primary_metric)
    primary_metric_reason: str = ""
    majority_label: str | None = None  # classification: the commonest label in train + validation


class Environment(_Model):
    """Where it ran: results are only comparable on like hardware."""

    device: str
    precision: str
    cpu: str
    threads: int
    python: str
    torch: str
    transformers: str
    ladder: str
    executor: Literal["local", "torchrun", "ray"] = "local"  # what ran the rungs: one process, a launch, Ray
    processes: int = 1  # the launch's ranks, or the Ray workers the rungs were spread over


Measure = Literal["quality", "ladder", "cost", "latency", "total_cost", "p95_latency"]
Direction = Literal["higher", "lower", "same"]


class Claim(_Model):
    """One comparison a reason makes: `rung`'s `measure` is higher, lower or the same as `other`'s.

    Reasons are rendered from claims (advisor/decision/claims.py), so every comparative word in them stands
    on numbers stored beside it: quality is the primary metric, ladder the step, cost $ per 1k
    requests, latency the p50 in seconds, p95_latency the p95, total_cost one-off + monthly x horizon.
    """

    rung: str
    other: str
    measure: Measure
    direction: Direction
    value: float
    other_value: float


class CloseCall(_Model):
    """A rung that was not chosen, is not clearly worse, and is cheaper or faster to run: what the tie costs."""

    rung: str
    chosen: str
    metric: str
    difference: float  # rung - chosen on the primary metric, paired
    ci_low: float
    ci_high: float
    requests_per_month: float
    monthly: float | None  # the rung's serving $ per month at the declared volume
    chosen_monthly: float | None
    p50_s: float | None
    chosen_p50_s: float | None
    p95_s: float | None
    chosen_p95_s: float | None
    one_off: float | None  # the rung's one-off cost (training, every search trial included)
    chosen_one_off: float | None
    repaid_month: float | None  # when the rung's lower serving cost has repaid its extra one-off cost
    forgetting: float | None  # the rung's probe accuracy against the base model (negative: forgetting)
    claims: list[Claim] = []

    def monthly_saving(self) -> float | None:
        """$ a month the rung would save against the chosen one (negative: it costs more)."""
        if self.monthly is None or self.chosen_monthly is None:
            return None
        return self.chosen_monthly - self.monthly


class Recommendation(_Model):
    """The rung to ship and why (advisor/decision/decide.py; the policy is in docs/decision.md)."""

    rung: str | None  # None: no rung meets the task's constraints, or none beats the floor
    summary: str
    reasons: list[str]
    rejected: dict[str, str]  # every other rung: why it was not chosen
    best: str | None = None  # the best eligible rung on the primary metric
    warnings: list[str] = []
    evidence_thin: bool = False
    more_examples_needed: int | None = None  # roughly, to settle the closest undecided comparison
    confidence: float = 0.95
    tolerance: float = 0.01
    prefer: str = "ladder"  # the tie-break among rungs not clearly worse than the best: ladder, cost, latency
    horizon_months: float = 12.0
    claims: dict[str, list[Claim]] = {}  # per reason (the chosen rung's name, or a rejected rung's): what it says
    close_calls: list[CloseCall] = []
    undecided: list[str] = []  # rungs ahead of the chosen one by more than the tolerance, but not clearly
    margin: float = 0.03  # the smallest difference worth seeing (decision.margin)
    underpowered: list[str] = []  # contenders whose comparison with the chosen rung could not see the margin
    mde: dict[str, float] = {}  # per other eligible rung: the smallest difference from the chosen one it could see
    examples_for_margin: int | None = None  # roughly, for every contender's MDE to come down to the margin
    floor: str | None = None  # the baseline every pick must beat (the majority-class answer), when there is one


class PairedComparison(_Model):
    """metric(a) - metric(b) on the same test examples: paired bootstrap interval, and McNemar for 0/1 metrics."""

    a: str
    b: str
    metric: str
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    mcnemar_p_value: float | None
    n: int
    note: str = ""  # e.g. the two rungs' answers were read in different scoring modes


class DistillationSummary(_Model):
    """A distilled student against its teacher (paired), the plain LoRA and zero_shot; what it saves per request."""

    rung: str
    teacher: str
    metric: str
    student: float
    teacher_value: float
    difference: float  # student - teacher on the same test examples
    ci_low: float
    ci_high: float
    lora: str | None = None
    lora_difference: float | None = None  # student - the task's lora rung
    lora_ci_low: float | None = None
    lora_ci_high: float | None = None
    zero_shot: str | None = None
    share_of_teacher_gain: float | None = None  # (student - zero_shot) / (teacher - zero_shot)
    prompt_tokens_saved: float = 0.0
    p50_saved_s: float | None = None
    per_1k_saved: float | None = None


class PlanCheck(_Model):
    """The plan's estimate (`advisor assess --plan`) against what this run measured."""

    rung: str
    planned_s: float
    measured_s: float
    planned_per_1k: float | None
    measured_per_1k: float | None
    time_ratio: float | None  # measured / planned
    phases: list[str] = []  # the phases both count: what this run computed (choosing, training, test, latency, probes)


class Evidence(_Model):
    """What a recommendation is drawn from (advisor/decision/decide.py): the measured rungs, what was assessed and
    where, and what was found about them. The body of the Assessment file (its fields come first, in this order)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    created_at: str
    task: TaskSummary
    environment: Environment
    rungs: list[RungResult]
    comparisons: list[PairedComparison] = []
    audit: AuditSummary | None = None
    plan_checks: list[PlanCheck] = []
    distillation: list[DistillationSummary] = []


class Assessment(Evidence):
    """One run of `advisor assess`: the evidence and the recommendation drawn from it."""

    recommendation: Recommendation | None = None

    @classmethod
    def of(cls, evidence: Evidence, recommendation: Recommendation | None) -> Assessment:
        """The evidence with its recommendation (the evidence's parts are kept as they are, not rebuilt)."""
        return cls(**dict(evidence), recommendation=recommendation)


def write_assessment(assessment: Assessment, path: Path) -> None:
    """Write the JSON atomically: a temporary file beside it, then a rename."""
    write_text_atomically(path, assessment.model_dump_json(indent=2))


def read_assessment(path: Path) -> Assessment:
    """An Assessment JSON file, validated against the schema; a bad file is one line naming it."""
    if not path.is_file():
        raise InputError(f"{path}: file not found (expected an Assessment JSON written by `advisor assess`)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text; expected an Assessment JSON") from None
    try:
        return Assessment.model_validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "file"
        raise InputError(
            f"{path}: not an Assessment (schema_version {SCHEMA_VERSION}): {where}: {first['msg']}"
        ) from None
