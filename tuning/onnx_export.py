"""ONNX exports of a tuned rung's weights, kept under the task's .advisor folder by content hash.

An export is keyed by what determines it: the tuned model's fingerprint (its artifact and how it answers),
the format and the quantization, so `advisor export`, the onnx rung and a re-run all find the same one.
Exporting merges the adapter into a copy of its base (a whole fine-tuned model goes as it is), writes the
graph, checks its logits against the merged PyTorch model on a few of the task's prompts, and writes a card
beside it; an int8 export is quantized from the float32 one, which is kept too. Every export is written to a
temporary folder and renamed into place, under a lock, so a killed run leaves none half-written.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from harness.data.atomic import staged_folder
from harness.data.hashing import content_hash
from harness.distributed import group_lock, writes_files
from harness.errors import RunError
from harness.inference.onnx_engine import OnnxEngine, TokenIds
from harness.inference.onnx_graph import export_logits_graph, library_versions, require_onnx
from harness.inference.onnx_quantize import Int8Layers, quantize_int8
from harness.rungs import RungContext, TunedModel
from tuning.export_card import ExportCard, Verification, read_export_card, write_export_card
from tuning.export_check import check_rows, reference_logits, verify
from tuning.rows import tuned_prompts

EXPORT_VERSION = 1  # bump when an export of the same weights would come out differently
FLOAT32_TOLERANCE = 1e-3  # the largest |Δlogit| an unquantized export may show against PyTorch

Quantize = Literal["int8"] | None


@dataclass(frozen=True)
class ExportRequest:
    """What to export to: the format and the quantization of the weights."""

    quantize: Quantize = None
    format: Literal["onnx"] = "onnx"

    @property
    def graph(self) -> str:
        """The graph's file name."""
        return "model.onnx" if self.quantize is None else f"model.{self.quantize}.onnx"

    def describe(self) -> str:
        """'ONNX float32' or 'ONNX int8'."""
        return f"{self.format.upper()} {self.quantize or 'float32'}"


class OnnxExports:
    """The exports of one tuned rung's trained weights."""

    def __init__(self, rung: str, tuned: TunedModel, context: RungContext):
        self.rung = rung
        self.tuned = tuned
        self.context = context

    def key(self, request: ExportRequest) -> str:
        """The weights' identity, the format and the quantization."""
        return content_hash(EXPORT_VERSION, self.tuned.fingerprint(), request.format, request.quantize)

    def folder(self, request: ExportRequest) -> Path:
        """Where this export is kept."""
        return self.context.cache_dir / "exports" / self.key(request)

    def stored(self, request: ExportRequest) -> ExportCard | None:
        """The stored export's card; None when it has not been made."""
        folder = self.folder(request)
        card = read_export_card(folder)
        return card if card is not None and (folder / card.graph).is_file() else None

    def obtain(self, request: ExportRequest) -> ExportCard:
        """The stored export, made first when there is none (training the rung first when it is not trained)."""
        folder = self.folder(request)
        folder.parent.mkdir(parents=True, exist_ok=True)
        with group_lock(folder):  # a second run on this store waits, then reads it
            card = self.stored(request)
            if card is None and writes_files():
                card = self._export(request, folder)
        card = card or self.stored(request)
        assert card is not None, "rank 0 made the export under the lock"
        return card

    def engine(self, request: ExportRequest, card: ExportCard) -> OnnxEngine:
        """An onnxruntime engine over the stored export, with the threads torch has."""
        ids = TokenIds(card.pad_id, frozenset(card.end_ids))
        base = self.context.engine
        return OnnxEngine(
            self.folder(request) / card.graph,
            base.tokenizer,
            ids,
            threads=torch.get_num_threads(),
            max_batch_tokens=base.max_batch_tokens,
            max_batch_size=base.max_batch_size,
        )

    def _export(self, request: ExportRequest, folder: Path) -> ExportCard:
        require_onnx(f"rung '{self.rung}' as {request.format}")
        started = time.perf_counter()
        unquantized = self.obtain(ExportRequest(format=request.format)) if request.quantize else None
        exported_as = self.tuned.exports_as
        if exported_as is None:
            raise ValueError(f"rung '{self.rung}': its method does not merge into one model (refused before export)")
        model = _cpu_float32(self.tuned.standalone())
        rows = check_rows(tuned_prompts(self.context.prompts), self.context.train)
        reference = reference_logits(model, rows)
        base = self.context.engine
        ids = TokenIds(base.pad_id, frozenset(base.end_ids))
        layers = Int8Layers((), ())
        with staged_folder(folder) as staging:
            if unquantized is None:
                export_logits_graph(model, staging / request.graph)
            else:
                source = self.folder(ExportRequest(format=request.format)) / unquantized.graph
                layers = quantize_int8(source, staging / request.graph)
            del model
            base.tokenizer.save_pretrained(staging)  # the export answers on its own: its tokenizer beside it
            graph = OnnxEngine(staging / request.graph, base.tokenizer, ids, threads=torch.get_num_threads())
            check = verify(graph, rows, reference, None if request.quantize else FLOAT32_TOLERANCE)
            del graph
            if check.tolerance is not None and check.max_abs_logit_delta > check.tolerance:
                raise RunError(
                    f"rung '{self.rung}': the {request.describe()} export does not reproduce its PyTorch logits "
                    f"(max |Δlogit| {check.max_abs_logit_delta:.2e} > {check.tolerance:g}); nothing was kept"
                )
            card = self._card(request, exported_as, check, layers, staging, time.perf_counter() - started, ids)
            write_export_card(staging, card)
        return card

    def _card(
        self,
        request: ExportRequest,
        exported_as: Literal["merged", "whole"],
        check: Verification,
        layers: Int8Layers,
        staging: Path,
        seconds: float,
        ids: TokenIds,
    ) -> ExportCard:
        trained = self.tuned.card()
        artifact = self.tuned.artifact_dir
        return ExportCard(
            format=request.format,
            quantize=request.quantize,
            rung=self.rung,
            method=trained.method if trained is not None else self.rung,
            objective=trained.objective if trained is not None else "sft",
            exported_as=exported_as,
            base_model=self.context.model_name,
            base_fingerprint=self.context.model_fingerprint,
            artifact=str(artifact),
            artifact_key=artifact.name,
            source_fingerprint=self.tuned.fingerprint(),
            graph=request.graph,
            files={p.name: p.stat().st_size for p in sorted(staging.iterdir()) if p.is_file()},
            verification=check,
            quantized_layers=len(layers.quantized),
            float_layers=len(layers.kept_float),
            pad_id=ids.pad,
            end_ids=sorted(ids.ends),
            seconds=round(seconds, 2),
            versions=library_versions(),
        )


def _cpu_float32(model: Any) -> Any:
    """The model on the CPU in float32, as the graph is exported (a copy when it is elsewhere: the engine's own
    model must stay where it is)."""
    parameter = next(model.parameters())
    if parameter.device.type != "cpu" or parameter.dtype != torch.float32:
        model = copy.deepcopy(model).to("cpu", torch.float32)
    return model.eval()
