"""`advisor estimate` in the terminal: every method, GPU and rung appears in the tables."""

from __future__ import annotations

from rich.console import Console

from advisor.measure.estimate import make_request, run_estimate
from advisor.report.estimate import print_estimate


def test_rich_output_shows_every_method_and_gpu() -> None:
    console = Console(record=True, width=200)
    print_estimate(run_estimate(make_request(params="7B")), console)
    text = console.export_text()
    assert all(word in text for word in ("full", "lora", "qlora", "H100", "RTX-4090", "few_shot", "total"))
    assert "Launch (from the task's folder):" in text and "Serving cost per 1k requests" in text
    assert "[1] one GPU: advisor assess task.yaml" in text
