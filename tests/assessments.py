"""Comparing two Assessments of the same task made by different executors (one process, a launch, Ray)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest


def assert_same_measurements(
    assessment: dict[str, Any], expected: dict[str, Any], store_folder: Path, expected_store_folder: Path
) -> None:
    """Same answers, scores (1e-5), metrics with CIs, stored log-likelihoods and choice; timings aside.

    Log-likelihoods are stored rounded to 4 decimals, so a difference in the low bits (padding, thread
    counts) can move one by a unit of that rounding: they must agree within it.
    """
    for mine, theirs in zip(_measured(assessment), _measured(expected), strict=True):
        assert mine["name"] == theirs["name"]
        for (*answer, scores), (*expected_answer, expected_scores) in zip(
            mine["records"], theirs["records"], strict=True
        ):
            assert answer == expected_answer
            assert scores == pytest.approx(expected_scores, abs=1e-5)
        assert mine["metrics"] == theirs["metrics"]  # CIs included: the same scores resampled the same way
    details = _stored_details(store_folder / "store.sqlite")
    expected_details = _stored_details(expected_store_folder / "store.sqlite")
    assert details.keys() == expected_details.keys()  # a tuned rung's fingerprint too: the same search choice
    for key, detail in details.items():
        assert _numbers(detail) == pytest.approx(_numbers(expected_details[key]), abs=1.01e-4)
    chosen, expected_choice = assessment["recommendation"], expected["recommendation"]
    assert {chosen["rung"], *chosen["rejected"]} == {expected_choice["rung"], *expected_choice["rejected"]}
    if chosen["rung"] != expected_choice["rung"]:
        # Two rungs on one step of the ladder that neither clearly beats: the cheaper ships, and $ per request
        # come from timings, which differ between executors (a rank's share of two cores, its first request).
        steps = {rung["name"]: rung["step"] for rung in assessment["rungs"]}
        assert steps[chosen["rung"]] == steps[expected_choice["rung"]]
        for choice in (chosen, expected_choice):
            measures = {claim["measure"] for claims in choice["claims"].values() for claim in claims}
            assert "cost" in measures, choice["reasons"]


def _measured(assessment: dict[str, Any]) -> list[dict[str, Any]]:
    """What must not depend on how many processes measured it: answers, scores, metrics with CIs."""
    rungs = []
    for rung in assessment["rungs"]:
        records = [(r["id"], r["output"], r["prediction"], r["correct"], r["scores"]) for r in rung["records"]]
        rungs.append({"name": rung["name"], "records": records, "metrics": rung["metrics"]})
    return rungs


def _stored_details(store: Path) -> dict[str, dict[str, Any]]:
    """Every batched output's detail (the answers' log-likelihoods among them), by key."""
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT key, payload FROM outputs WHERE mode = 'batched'").fetchall()
    return {key: json.loads(payload)["detail"] for key, payload in rows}


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, dict):
        return [x for key in sorted(value) for x in _numbers(value[key])]
    if isinstance(value, list):
        return [x for item in value for x in _numbers(item)]
    return []
