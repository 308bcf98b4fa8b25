"""Trained artifacts: the adapter (or model) in safetensors beside its card, cached by content hash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.cards import AdapterCard
from harness.data.atomic import staged_folder, write_text_atomically
from harness.distributed import writes_files

CARD_JSON = "card.json"
CARD_MD = "card.md"


def is_complete(folder: Path) -> bool:
    """A whole artifact: renamed into place last, with its card and safetensors weights.

    Weights in any other format (pickle can run code when loaded) never count: the rung retrains.
    """
    return (folder / CARD_JSON).is_file() and any(folder.glob("*.safetensors"))


def save_artifact(folder: Path, model: Any, card: AdapterCard, weights: dict[str, Any] | None = None) -> None:
    """Save weights (safetensors) and the card into a temporary folder, then rename it into place (rank 0 only).

    `weights`: the model's whole state, gathered from a sharded model's ranks (its own tensors are shards)."""
    if not writes_files():
        return
    with staged_folder(folder) as staging:
        model.save_pretrained(staging, safe_serialization=True, state_dict=weights)
        write_card(staging, card)


def read_card(folder: Path) -> AdapterCard:
    """The artifact's card."""
    return AdapterCard.model_validate_json((folder / CARD_JSON).read_text(encoding="utf-8"))


def write_card(folder: Path, card: AdapterCard) -> None:
    """card.json and a readable card.md, each written atomically (rank 0 only)."""
    if not writes_files():
        return
    write_text_atomically(folder / CARD_JSON, card.model_dump_json(indent=2))
    write_text_atomically(folder / CARD_MD, card_markdown(card))


def card_markdown(card: AdapterCard) -> str:
    """The card as Markdown: what was trained, on what, how, and how well."""
    training = card.training
    share = 100 * card.trainable_share
    data = f"{card.train_examples} train, {card.validation_examples} validation examples"
    lines = [
        f"# {card.method} adapter for {card.base_model}" + (f" ({card.objective})" if card.objective != "sft" else ""),
        "",
        f"- base model fingerprint: `{card.base_fingerprint}`",
        f"- training data hash: `{card.data_hash}` ({data})",
        f"- trainable parameters: {card.trainable_parameters:,} of {card.total_parameters:,} ({share:.2f}%)",
        f"- training time: {training.seconds:.1f} s; peak memory (RSS): {training.peak_rss_mb:.0f} MB",
        f"- epochs run: {training.epochs_run}, best epoch: {training.best_epoch}, steps: {training.steps}",
        "",
        "## Hyperparameters",
        "",
        *(f"- {key}: {value}" for key, value in sorted(card.hyperparameters.items())),
        "",
        "## Loss",
        "",
        f"- train loss (per step): {', '.join(f'{x:.3f}' for x in training.train_losses[:50])}",
        f"- validation loss (per epoch): {', '.join(f'{x:.3f}' for x in training.validation_losses)}",
    ]
    if card.preference:
        lines += ["", *preference_lines(card.preference)]
    if card.distillation:
        lines += ["", *distillation_lines(card.distillation)]
    if card.metrics:
        lines += ["", "## Metrics", "", *(f"- {k}: {v}" for k, v in card.metrics.items())]
    return "\n".join(lines) + "\n"


def preference_lines(preference: dict[str, Any]) -> list[str]:
    """The preference stage of a card: where its pairs came from, and rewards per epoch."""

    def series(name: str) -> str:
        return ", ".join(f"{x:.3f}" for x in preference.get(name, []))

    pairs = preference.get("pairs", {})
    sources = ", ".join(f"{count} {source}" for source, count in pairs.get("from", {}).items())
    best = preference.get("best_epoch", 0)
    return [
        "## Preference tuning",
        "",
        f"- {preference.get('loss_type')} loss, beta {preference.get('beta')}, on the SFT adapter "
        f"`{preference.get('sft_artifact')}` (the reference)",
        f"- pairs: {pairs.get('train', 0)} train, {pairs.get('validation', 0)} validation ({sources})",
        f"- reward accuracy per epoch (train): {series('train_reward_accuracy')}",
        f"- reward margin per epoch (train): {series('train_reward_margin')}",
        f"- reward accuracy per epoch (validation): {series('validation_reward_accuracy')}",
        f"- chosen / rejected log-prob per epoch: {series('chosen_logps')} / {series('rejected_logps')}",
        f"- validation metric, SFT then each epoch: {series('validation_metrics')}",
        f"- kept: epoch {best}"
        + (" (the SFT adapter: preference tuning did not help on validation)" if best == 0 else ""),
    ]


def distillation_lines(distillation: dict[str, Any]) -> list[str]:
    """The teacher of a distilled student, what it labelled, and how closely the student follows it."""
    agreement = ", ".join(f"{x:.3f}" for x in distillation.get("teacher_agreement", []))
    metrics = ", ".join(f"{x:.3f}" for x in distillation.get("validation_metrics", []))
    return [
        "## Distillation",
        "",
        f"- teacher: the rung `{distillation.get('teacher')}` (`{distillation.get('teacher_fingerprint')}`)",
        f"- inputs the teacher labelled: {distillation.get('inputs')} ({distillation.get('unlabelled')} unlabelled), "
        f"{distillation.get('skipped')} skipped (no label named)",
        f"- targets: {distillation.get('targets')}"
        + (f" at temperature {distillation['temperature']}" if distillation.get("temperature") else ""),
        *([f"- agreement with the teacher's top label per epoch (train): {agreement}"] if agreement else []),
        *([f"- validation metric, untrained student then each epoch: {metrics}"] if metrics else []),
    ]
