"""task.yaml: the user's task, validated at the boundary (unknown fields are errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.data.labels import label_text
from harness.data.loading import DataSpec, FieldMap
from harness.errors import InputError
from harness.inference.embedded import EMBEDDED_MODEL
from harness.inference.prompts import INPUT_SLOT
from harness.metrics.loading import check_metric_name
from harness.metrics.measurement import Measurement
from harness.metrics.task_metrics import metric_names
from harness.pricing.prices import PriceTable, load_prices
from harness.safe_yaml import load_yaml
from harness.schema import NumbersNotBooleans
from harness.schema import describe_validation_error as describe_error
from harness.task_types import get_task_type, task_type_names

# torch, numpy and random all take it, and retrained seeds (seed + 1, ...) must stay in numpy's 32-bit range
MAX_SEED = 2**31 - 1


class _Strict(NumbersNotBooleans, BaseModel):  # BaseModel named too, so linters know a pydantic model
    # an infinite count or price would only surface as a broken Assessment at the end of the run
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class FieldsSpec(_Strict):
    """Column names of the input, the target and the row id."""

    input: str | None = None
    target: str | None = None
    id: str | None = None
    context: str | None = None  # qa: a passage given with the question, for the {context} slot
    gold: str | None = None  # ids of the corpus passages that hold the answer (retrieval recall/MRR)


class DataSection(_Strict):
    """Either `train`/`validation`/`test` files, or one `path` split with the task's seed."""

    path: str | None = None
    train: str | None = None
    validation: str | None = None
    test: str | None = None
    unlabelled: str | None = None  # inputs without targets: `assess --suggest-labels N` picks which to label
    preferences: str | None = None  # {prompt, chosen, rejected} pairs (or OpenAI's format) for the dpo rung
    test_size: float = Field(default=0.2, gt=0, lt=1)
    validation_size: float = Field(default=0.1, ge=0, lt=1)
    fields: FieldsSpec = FieldsSpec()

    @model_validator(mode="after")
    def _one_layout(self) -> DataSection:
        named = [self.train, self.validation, self.test]
        if self.path is not None and any(named):
            raise ValueError("give either 'path' (one file to split) or 'train'/'validation'/'test' files, not both")
        if self.path is None and self.test is None:
            raise ValueError("expected 'path' (one file to split) or a 'test' file")
        if self.path is not None and self.test_size + self.validation_size >= 1:
            raise ValueError("test_size + validation_size must leave rows for training")
        return self


class PromptSection(_Strict):
    """How every rung puts the task to the model."""

    template: str = INPUT_SLOT
    chat: Literal["auto", "on", "off"] = "auto"
    list_labels: bool = True

    @field_validator("template")
    @classmethod
    def _has_input(cls, value: str) -> str:
        if INPUT_SLOT not in value:
            raise ValueError(f"the template must contain {INPUT_SLOT}")
        return value


class EvaluationSection(_Strict):
    """How results are measured."""

    latency_sample: int = Field(default=16, ge=0, le=10_000)
    bootstrap_resamples: int = Field(default=2000, ge=100, le=100_000)
    batch_tokens: int = Field(default=4096, ge=64, le=1_000_000)
    metrics: list[str] = []  # extra evaluate metrics: a shipped name or a path to your own .py (never the hub's)

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str]) -> list[str]:
        for name in value:
            try:
                check_metric_name(name)
            except InputError as error:
                raise ValueError(str(error)) from None
        return value


class CostSection(_Strict):
    """How requests are served and how many: what the $ figures assume (names are keys of the price table)."""

    hosting: Literal["self_hosted", "api"] = "self_hosted"
    requests_per_month: float = Field(default=100_000, ge=0)
    api_model: str | None = None  # None: the price table's default
    serving_hardware: str | None = None
    training_hardware: str | None = None  # None: the hardware the run trained on
    hosted_fine_tuning: str | None = None


class ForgettingSection(_Strict):
    """The general-skills probes every tuned rung is compared with its base model on."""

    enabled: bool = True
    probes: str = "shipped"  # or a probe file: ours, ARC or MMLU format
    max_items: int | None = Field(default=None, ge=10)  # a seeded sample, for quick runs


class ConstraintsSection(_Strict):
    """Hard limits: a rung that breaks one is not recommended, whatever its quality."""

    min_quality: float | None = None  # on the primary metric's scale (0-1)
    max_p95_latency_s: float | None = Field(default=None, gt=0)
    max_cost_per_1k: float | None = Field(default=None, ge=0)
    max_forgetting: float | None = Field(default=None, ge=0, le=1)  # largest allowed drop in probe accuracy
    max_training_cost: float | None = Field(default=None, ge=0)


class FactsSection(_Strict):
    """What the task declares about itself; the recommendation takes it into account."""

    knowledge_changes_often: bool = False  # facts the model must know change: retrieval beats weights
    data_must_stay_in_house: bool = False  # no third-party API or hosted fine-tuning
    in_house_hosts: list[str] = []  # endpoint hosts inside the organisation (loopback always is)
    min_examples_per_class_for_tuning: int = Field(default=20, ge=1)


class DecisionSection(_Strict):
    """How sure "clearly better" must be, and how many points of quality are not worth a step up."""

    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    tolerance: float = Field(default=0.01, ge=0.0, le=1.0)
    # the smallest quality difference worth seeing: a comparison whose minimum detectable difference is
    # larger says "underpowered" rather than "not clearly beaten"
    margin: float = Field(default=0.03, gt=0.0, le=1.0)
    # training seeds of a tuned rung in a close call (its chosen configuration retrained from seeds+1, ...);
    # "off": one seed, the test interval alone
    seeds: int | Literal["off"] = Field(default=3, description="2 to 10 training seeds, or off")
    seed_rungs: int = Field(default=1, ge=1, le=10)  # at most this many tuned rungs are retrained so

    # among the rungs not clearly worse than the best: the lowest on the ladder, the lowest total cost
    # (one-off + monthly x horizon_months), or the lowest p95 latency
    prefer: Literal["ladder", "cost", "latency"] = "ladder"
    horizon_months: float = Field(default=12.0, gt=0, le=120)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_count(cls, value: Any) -> Any:
        if value is False or value == "off":  # YAML reads a bare off as false
            return "off"
        if isinstance(value, bool) or (isinstance(value, int) and not 2 <= value <= 10):
            raise ValueError("2 to 10 training seeds, or off")
        return value


class GatesSection(_Strict):
    """Limits of the gate (task.yaml `gates:` or command-line flags); None switches a check off."""

    max_drop: float | None = Field(default=0.02, ge=0, le=1)  # absolute, on the metric's 0-1 scale
    max_relative_drop: float | None = Field(default=None, ge=0, le=1)
    max_p95_latency_rise: float | None = Field(default=0.5, ge=0)  # relative: 0.5 = 50% slower (16 samples: noisy)
    max_cost_rise: float | None = Field(default=0.5, ge=0)  # self-hosted $ follows throughput, as noisy
    max_forgetting: float | None = Field(default=None, ge=0, le=1)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    metrics: list[str] | None = None  # None: every quality metric both runs report
    rungs: list[str] | None = None  # None: every rung of the baseline
    strict: bool = False  # fail on any drop past a limit, significant or not


class TokenPriceSpec(_Strict):
    """An endpoint's own price, USD per 1M tokens."""

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)


class FineTuningSpec(_Strict):
    """The hosted fine-tuning service the endpoint's model was tuned on, for its training $."""

    service: str  # a key of the price table's hosted_fine_tuning section
    epochs: int = Field(default=3, ge=1, le=100)


class EndpointSection(_Strict):
    """An OpenAI-compatible endpoint a prompting rung can run against (`endpoint: <name>` on the rung)."""

    base_url: str = Field(pattern=r"^https?://[^\s/]+")
    model: str = Field(min_length=1)
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")  # the key's variable
    price: str | TokenPriceSpec | None = Field(  # an api_models entry of the price table, or the figures
        default=None,
        description="an api_models name of the price table, or {input_per_million, output_per_million}",
    )
    tokenizer: Literal["own", "task"] = "own"  # task: it serves the task's model (exact likelihoods via echo)
    max_concurrency: int = Field(default=4, ge=1, le=256)
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    max_retries: int = Field(default=6, ge=0, le=20)
    max_requests: int = Field(default=20_000, ge=1)  # every HTTP attempt of one run counts
    fine_tuning: FineTuningSpec | None = None  # a hosted fine-tune: what its training cost


class TrackingSection(_Strict):
    """Where `advisor assess` also logs its runs (`--track` on the command line overrides `to`)."""

    to: list[str] = []  # tracking backends: mlflow, tensorboard (or a plug-in's)
    uri: str | None = None  # an MLflow tracking URI; else MLFLOW_TRACKING_URI; else the embedded store
    experiment: str | None = None  # the MLflow experiment; default: the task's name


RungEntry = str | dict[str, Any]


def _default_rungs() -> list[RungEntry]:
    return ["zero_shot"]


class TaskSpec(_Strict):
    """The whole task file."""

    name: str = Field(min_length=1, max_length=200)
    type: str = "classification"  # a registered task type (harness/task_kinds/, or a plug-in's)
    model: str = EMBEDDED_MODEL
    instruction: str | None = None
    prompt: PromptSection = PromptSection()
    data: DataSection
    labels: list[str] | dict[str, str] | None = Field(
        default=None, description="a list of label names, or a mapping of data value to label name"
    )
    # the metric that ranks the rungs; by default the type's (accuracy, f1, field_f1, rouge_l), and
    # macro_f1 for a classification task whose labels are imbalanced in train + validation
    primary_metric: str | None = None
    rungs: list[RungEntry] = Field(
        default_factory=_default_rungs,
        min_length=1,
        description="a rung name, or a mapping with 'rung: <name>' and its options",
    )
    endpoints: dict[str, EndpointSection] = {}
    seed: int = 0
    evaluation: EvaluationSection = EvaluationSection()
    costs: CostSection = CostSection()
    pricing: dict[str, Any] | None = None  # overrides of the shipped price table, same layout
    forgetting: ForgettingSection = ForgettingSection()
    constraints: ConstraintsSection = ConstraintsSection()
    facts: FactsSection = FactsSection()
    decision: DecisionSection = DecisionSection()
    gates: GatesSection = GatesSection()
    tracking: TrackingSection = TrackingSection()

    @field_validator("type")
    @classmethod
    def _supported(cls, value: str) -> str:
        supported = task_type_names()
        if value not in supported:
            raise ValueError(f"task type '{value}' is not supported yet; supported: {', '.join(supported)}")
        return value

    @model_validator(mode="after")
    def _known_primary_metric(self) -> TaskSpec:
        known = metric_names(self.type)
        if self.primary_metric is not None and self.primary_metric not in known:
            choices = ", ".join(known)
            raise ValueError(f"primary_metric '{self.primary_metric}' is not a {self.type} metric (one of: {choices})")
        return self

    @property
    def measurement(self) -> Measurement:
        """The seed, resamples, confidence and tolerance every number of this task is measured with."""
        return Measurement(
            seed=self.seed,
            resamples=self.evaluation.bootstrap_resamples,
            confidence=self.decision.confidence,
            tolerance=self.decision.tolerance,
        )

    @field_validator("seed")
    @classmethod
    def _seed_in_range(cls, value: int) -> int:
        if not 0 <= value <= MAX_SEED:
            raise ValueError(f"expected a seed from 0 to {MAX_SEED} (2**31 - 1)")
        return value

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_data_reads_them(cls, value: Any) -> Any:
        # YAML reads `{0: negative}` with an integer key; the data's 0 is read as the label "0"
        if isinstance(value, dict):
            return {label_text(raw): label_text(name) for raw, name in value.items()}
        if isinstance(value, list):
            return [label_text(name) for name in value]
        return value

    @field_validator("labels")
    @classmethod
    def _distinct_labels(cls, value: list[str] | dict[str, str] | None) -> list[str] | dict[str, str] | None:
        names = list(value.values()) if isinstance(value, dict) else value
        if names is not None:
            if not names:
                raise ValueError("labels must not be empty (leave it out to infer them from the train split)")
            if len(set(names)) != len(names) or any(not str(n).strip() for n in names):
                raise ValueError("labels must be distinct, non-empty names")
        return value


class LoadedTask:
    """A validated task and the folder its relative paths start from."""

    def __init__(self, spec: TaskSpec, path: Path):
        self.spec = spec
        self.path = path
        self.folder = path.parent

    def data_spec(self) -> DataSpec:
        """The harness's view of where the data is."""
        kind = get_task_type(self.spec.type)
        data = self.spec.data
        names = (
            {"all": data.path} if data.path else {"train": data.train, "validation": data.validation, "test": data.test}
        )
        files = {split: self.resolve(name) for split, name in names.items() if name}
        fields = FieldMap(
            input=data.fields.input,
            target=data.fields.target,
            id=data.fields.id,
            context=data.fields.context,
            gold=data.fields.gold,
        )
        return DataSpec(
            files=files,
            fields=fields,
            test_size=data.test_size,
            validation_size=data.validation_size,
            seed=self.spec.seed,
            stratify=kind.labelled,
            multi_answer=kind.multi_answer,
            json_target=kind.json_target,
        )

    def data_files(self) -> dict[str, Path]:
        """The task's data beside its splits (preference pairs, unlabelled inputs), resolved."""
        data = self.spec.data
        named = {"preferences": data.preferences, "unlabelled": data.unlabelled}
        return {kind: self.resolve(name) for kind, name in named.items() if name}

    def model_name(self) -> str:
        """The model as written, with a relative local folder resolved against the task file."""
        candidate = self.folder / self.spec.model
        return str(candidate) if self.spec.model.startswith(".") or candidate.is_dir() else self.spec.model

    def resolve(self, name: str) -> Path:
        """A path from the task file, relative to the task's folder."""
        path = Path(name).expanduser()
        return path if path.is_absolute() else self.folder / path


def load_task(path: Path) -> LoadedTask:
    """Read and validate task.yaml; every problem is one line naming the file and the field."""
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if not path.is_file():
        raise InputError(f"{path}: expected a task file, found a folder")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text (byte {error.start}); save the file as UTF-8") from None
    raw = load_yaml(text, str(path))
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a mapping of task fields (name, data, ...), found {type(raw).__name__}")
    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as error:
        raise InputError(f"{path}: {describe_validation_error(error)}") from None
    try:
        prices = load_prices(spec.pricing)
        check_cost_names(spec.costs, prices)
        check_endpoint_prices(spec.endpoints, prices)
    except InputError as error:
        raise InputError(f"{path}: {error}") from None
    return LoadedTask(spec, path)


def describe_validation_error(error: ValidationError, model: type[BaseModel] = TaskSpec) -> str:
    """The first problem as 'field.path: what was expected (got …)', with no pydantic union branch named."""
    return describe_error(error, model)


def check_cost_names(costs: CostSection, prices: PriceTable) -> None:
    """Every price-table name the task names exists (one line with close matches otherwise)."""
    for field, lookup in (
        ("api_model", prices.api_price),
        ("serving_hardware", prices.gpu_price),
        ("training_hardware", prices.gpu_price),
        ("hosted_fine_tuning", prices.hosted_tuning_price),
    ):
        name = getattr(costs, field)
        if name is not None:
            try:
                lookup(name)
            except InputError as error:
                raise InputError(f"costs.{field}: {error}") from None


def check_endpoint_prices(endpoints: dict[str, EndpointSection], prices: PriceTable) -> None:
    """Every price-table name an endpoint names exists."""
    for name, endpoint in endpoints.items():
        lookups: list[tuple[str, str | None, Any]] = [
            ("price", endpoint.price if isinstance(endpoint.price, str) else None, prices.api_price),
            (
                "fine_tuning.service",
                endpoint.fine_tuning.service if endpoint.fine_tuning else None,
                prices.hosted_tuning_price,
            ),
        ]
        for field, value, lookup in lookups:
            if value is not None:
                try:
                    lookup(value)
                except InputError as error:
                    raise InputError(f"endpoints.{name}.{field}: {error}") from None
