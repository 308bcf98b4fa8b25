"""The card written beside an exported model: what was exported, from which trained weights, how it was
checked against PyTorch, its files and the library versions that made it (card.json and card.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from harness.data.atomic import write_text_atomically

CARD_JSON = "card.json"
CARD_MD = "card.md"


class Verification(BaseModel):
    """The exported graph's logits against the merged PyTorch model's, on a few of the task's own prompts."""

    examples: int  # prompts checked, each with its gold answer's tokens after it
    positions: int  # token positions compared (every vocabulary entry at each)
    max_abs_logit_delta: float
    top1_agreement: float  # share of positions whose likeliest token is the same
    tolerance: float | None  # the largest delta accepted (an unquantized export); None: reported only


class ExportCard(BaseModel):
    """The card of one exported model."""

    format: Literal["onnx"]
    quantize: Literal["int8"] | None
    rung: str  # the task's rung whose weights these are
    method: str  # its tuning method (what its artifact card says)
    objective: str = "sft"
    exported_as: Literal["merged", "whole"]  # an adapter merged into its base, or a whole fine-tuned model
    base_model: str
    base_fingerprint: str
    artifact: str  # the trained artifact's folder
    artifact_key: str  # the content hash that names it
    source_fingerprint: str  # what determines the weights and the rung's answers
    graph: str  # the graph's file name in this folder
    files: dict[str, int]  # every file of the export, in bytes
    verification: Verification
    quantized_layers: int = 0  # linear layers with int8 weights (0: none quantized)
    float_layers: int = 0  # linear layers an int8 export keeps in float32 (the MLP down projections, the output head)
    pad_id: int
    end_ids: list[int]
    seconds: float  # merging, exporting, quantizing and verifying
    versions: dict[str, str]
    metrics: dict[str, float] = Field(default_factory=dict)  # the evaluated metrics, once an assessment answered


def read_export_card(folder: Path) -> ExportCard | None:
    """The card of the export in `folder`; None when there is no whole export there."""
    path = folder / CARD_JSON
    if not path.is_file():
        return None
    return ExportCard.model_validate_json(path.read_text(encoding="utf-8"))


def write_export_card(folder: Path, card: ExportCard) -> None:
    """card.json and card.md, each written atomically."""
    write_text_atomically(folder / CARD_JSON, card.model_dump_json(indent=2))
    write_text_atomically(folder / CARD_MD, export_markdown(card))


def export_markdown(card: ExportCard) -> str:
    """The card as Markdown."""
    check = card.verification
    precision = "int8 (dynamic quantization)" if card.quantize == "int8" else "float32"
    bound = f" (accepted up to {check.tolerance:g})" if check.tolerance is not None else " (reported, not bounded)"
    lines = [
        f"# {card.rung} as {card.format.upper()}, {precision}",
        "",
        f"- from: the `{card.rung}` rung's {card.method} artifact `{card.artifact_key}` ({card.artifact}), "
        + ("merged into its base" if card.exported_as == "merged" else "the whole fine-tuned model"),
        f"- base model: {card.base_model} (`{card.base_fingerprint}`)",
        f"- graph: `{card.graph}`: token ids, a 4D attention mask, position ids, the positions to keep and the "
        "keys and values before them, in; logits at those positions and the keys and values after them, out",
        f"- checked against PyTorch on {check.examples} of the task's prompts ({check.positions} positions): "
        f"max |Δlogit| {check.max_abs_logit_delta:.3g}{bound}, same top token at {100 * check.top1_agreement:.1f}%",
        *(
            [
                f"- int8 weights in {card.quantized_layers} linear layers; {card.float_layers} kept in float32 "
                "(the MLP down projections, whose inputs carry the largest outliers, and the output head)"
            ]
            if card.quantize
            else []
        ),
        f"- made in {card.seconds:.1f} s",
        "",
        "## Files",
        "",
        *(f"- {name}: {size / 1e6:.1f} MB" for name, size in sorted(card.files.items())),
        "",
        "## Versions",
        "",
        *(f"- {name} {number}" for name, number in sorted(card.versions.items())),
    ]
    if card.metrics:
        lines += ["", "## Metrics (the assessment's test split)", "", *(f"- {k}: {v}" for k, v in card.metrics.items())]
    return "\n".join(lines) + "\n"
