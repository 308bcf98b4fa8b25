"""The onnx rung: a tuned rung of the task answered by its ONNX export, measured beside the PyTorch rung.

`{rung: onnx, name: lora_onnx_int8, of: lora, quantize: int8}` answers the test split with the `lora` rung's
trained weights, merged and exported (tuning/onnx_export.py), through onnxruntime: the same tuned prompt and
the same answering (scoring the labels, or generating) as the rung it exports, so its quality, latency,
tokens and $ stand beside that rung's in the Assessment. The export is made once and kept by content hash;
the PyTorch rung is untouched. It is a way of deploying that rung's weights, not a new way of adapting the
model, so it sits on that rung's step of the ladder (`variant_of`).

Its training facts and forgetting are those of the weights it exports (their card; probed in PyTorch: for an
int8 export the probes do not see the quantization).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from harness.cards import AdapterCard
from harness.data.hashing import content_hash
from harness.errors import InputError
from harness.inference.answering import answer
from harness.inference.engine import Engine
from harness.inference.onnx_engine import OnnxEngine
from harness.inference.onnx_graph import require_onnx
from harness.ladder import ADAPTER_STEP
from harness.rungs import (
    Predictor,
    PromptAnswering,
    PromptSizes,
    RequestShape,
    RungConfig,
    RungContext,
    TunedModel,
    rung,
)
from harness.types import Example, Output
from tuning.export_card import write_export_card
from tuning.onnx_export import ExportRequest, OnnxExports
from tuning.rows import tuned_prompts


class OnnxConfig(RungConfig):
    """The tuned rung of the task (`of`) to answer with its ONNX export, and the export's quantization."""

    of: str = Field(min_length=1)
    quantize: Literal["int8"] | None = None

    def variant_of(self) -> str | None:
        """The rung whose weights it runs: trained when this one runs, and its step on the ladder is this one's."""
        return self.of

    def request_shape(self, sizes: PromptSizes, has_labels: bool) -> RequestShape:
        """The tuned prompt, as the rung it exports answers it."""
        return RequestShape(sizes.tuned)


class OnnxPredictor:
    """Exports the rung's weights on first use (or reads the stored export) and answers through onnxruntime."""

    def __init__(self, config: OnnxConfig, context: RungContext):
        self.config = config
        self.context = context
        self.request = ExportRequest(quantize=config.quantize)
        self.source = _exportable(config.of, context)
        answering = self.source.answering
        if answering is None:
            raise InputError(
                f"rungs: onnx of '{config.of}': that rung answers through its own code, not the tuned prompt, "
                "so an export cannot answer as it does"
            )
        self.answering: PromptAnswering = answering
        self.exports = OnnxExports(config.of, self.source, context)
        self.prompts = tuned_prompts(context.prompts)
        self._engine: OnnxEngine | None = None

    def fingerprint(self) -> str:
        """The export (the weights, format and quantization) and how it answers."""
        return content_hash("onnx", self.exports.key(self.request), self.answering.mode, self.answering.max_new_tokens)

    def prepare(self) -> None:
        """Export (training the rung first when nothing is stored) and load the graph before any request is timed."""
        self.engine().warm_up()

    def predict(self, examples: Sequence[Example]) -> list[Output]:
        """Answer in the tuned prompt, as the exported rung answers, with the graph."""
        encoded = [self.prompts.split(example) for example in examples]
        labels = self.context.labels
        return answer(self.engine(), self.prompts, encoded, labels, self.answering.mode, self.answering.max_new_tokens)

    def engine(self) -> OnnxEngine:
        """The onnxruntime engine over the stored export (made first when there is none)."""
        if self._engine is None:
            self._engine = self.exports.engine(self.request, self.exports.obtain(self.request))
        return self._engine

    def tuned(self) -> TunedModel | None:
        """The exported weights, described as the rung's trained model."""
        return ExportedModel(self)


class ExportedModel:
    """What callers need of a tuned rung, for an export of one: the source's training facts and weights, the
    export's folder and card."""

    def __init__(self, predictor: OnnxPredictor):
        self.predictor = predictor
        self.source = predictor.source

    @property
    def artifact_dir(self) -> Path:
        """The export's folder."""
        return self.predictor.exports.folder(self.predictor.request)

    @property
    def trained_now(self) -> bool:
        """Whether this process trained the weights it exports."""
        return self.source.trained_now

    @property
    def mergeable(self) -> bool:
        """An export is no adapter."""
        return False

    @property
    def answering(self) -> PromptAnswering | None:
        """Only its own `predict` answers with the graph (a server runs it as a model of its own)."""
        return None

    @property
    def exports_as(self) -> Literal["merged", "whole"] | None:
        """It is an export already."""
        return None

    def standalone(self) -> Any:
        """An export has no PyTorch model of its own to export."""
        raise ValueError("an ONNX rung is an export already; export the rung it names")

    def engine(self) -> Engine:
        """The PyTorch engine over the weights it exports (the export made first): what the probes read."""
        self.predictor.engine()
        return self.source.engine()

    def fingerprint(self) -> str:
        """The weights' identity: the probes' answers are those of the rung it exports."""
        return self.source.fingerprint()

    def card(self) -> AdapterCard | None:
        """The training card of the weights it exports."""
        return self.source.card()

    def record_metrics(self, metrics: dict[str, float]) -> None:
        """Write the evaluated metrics into the export's card (the rung's own card keeps the rung's)."""
        exports, request = self.predictor.exports, self.predictor.request
        card = exports.stored(request)
        if card is not None:
            write_export_card(exports.folder(request), card.model_copy(update={"metrics": metrics}))

    def planned_epochs(self, searched: frozenset[str] = frozenset()) -> float:
        """Nothing trains for it: the rung it exports trains (and is planned) as itself."""
        return 0.0

    def search_family(self) -> str | None:
        """It searches nothing."""
        return None

    def epoch_work(self) -> tuple[int, int]:
        """The exported rung's (for `--plan`; no epoch of its own is planned)."""
        return self.source.epoch_work()

    def training_rate(self, rows: int) -> float:
        """The exported rung's."""
        return self.source.training_rate(rows)

    def reseeded(self, seed: int) -> Predictor | None:
        """Not retrained from other seeds: the rung it exports is."""
        return None


def _exportable(of: str, context: RungContext) -> TunedModel:
    """The named rung's tuned model; a prompting rung, or one whose method does not merge, is bad input."""
    if context.other_rungs is None:
        raise InputError(f"rungs: onnx of '{of}': it exports another rung of the task; run it with `advisor assess`")
    source = context.other_rungs.tuned_model(of)
    if source is None:
        raise InputError(f"rungs: onnx of '{of}': '{of}' is a prompting rung; it has no trained weights to export")
    if source.exports_as is None:
        raise InputError(
            f"rungs: onnx of '{of}': its method does not merge into one model (a 4-bit base, virtual tokens or an "
            "export), so there is nothing to export; export a lora (or dpo, distill) or full rung"
        )
    return source


@rung("onnx", config=OnnxConfig, step=ADAPTER_STEP)
def build_onnx(config: OnnxConfig, context: RungContext) -> Predictor:
    """Build the onnx predictor (the export is made, or read, on first use)."""
    require_onnx(f"rungs: onnx of '{config.of}'")
    return OnnxPredictor(config, context)
