"""GPU acceptance: issue 34's checks over the measured rows, and the summary table printed at the end."""

from __future__ import annotations

from typing import Any

MICRO_BATCH_SWEEP = [256, 1024, 2048]  # besides the default 512 (batch_tokens is 2048: more is one micro-batch)


def _find(rows: list[dict[str, Any]], shape: str, method: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["shape"] == shape and r["method"] == method), None)


def acceptance(rows: list[dict[str, Any]], smoke: bool) -> list[dict[str, Any]]:
    """The issue's checks: each with its value, threshold and verdict (None when a row is missing)."""
    small = "tiny" if smoke else "135m"

    def tps(shape: str, method: str) -> float | None:
        row = _find(rows, shape, method)
        return row.get("tokens_per_s") if row else None

    checks: list[dict[str, Any]] = []

    def check(name: str, value: float | None, threshold: float, at_most: bool = False) -> None:
        passed = None if value is None else (value <= threshold if at_most else value >= threshold)
        checks.append({"check": name, "value": None if value is None else round(value, 3), "threshold": threshold,
                       "comparison": "<=" if at_most else ">=", "passed": passed})  # fmt: skip

    default = tps(small, "ours-lora")
    sweep = [t for m in ["ours-lora", *[f"ours-lora-mbt-{n}" for n in [*MICRO_BATCH_SWEEP, 1024]]]
             if (t := tps(small, m)) is not None]  # fmt: skip
    check(f"{small} LoRA defaults / hand-best micro-batch", default / max(sweep) if default and sweep else None, 0.8)
    check(f"{small} LoRA defaults tokens/s (20 x 900)", default, 18000.0)
    one, four = _find(rows, small, "search-1-trial"), _find(rows, small, "search-4-trials-together")
    ratio = None
    if one and four and one.get("wall_seconds") and four.get("wall_seconds"):
        ratio = four["wall_seconds"] / one["wall_seconds"]
    check(f"{small} search: 4 trials / 1 trial wall time", ratio, 1.5, at_most=True)
    for shape in ("1b", "8b"):
        ours_tps, hf = tps(shape, "ours-lora"), tps(shape, "hf-trainer-lora")
        check(f"{shape} LoRA defaults / HF Trainer + peft", ours_tps / hf if ours_tps and hf else None, 1.3)
    return checks


def first_line(note: Any) -> str:
    return (str(note).splitlines() or [""])[0][:90]


def summary(rows: list[dict[str, Any]], checks: list[dict[str, Any]], smoke: bool) -> str:
    lines = [f"{'shape':6} {'method':22} {'tok/s':>10} {'mfu_6n':>7} {'mfu_lora':>8} {'mem MiB':>8}  note"]
    for r in rows:
        note = r.get("error") or r.get("skipped") or ""
        if "wall_seconds" in r:
            note = f"search wall {r['wall_seconds']} s, {len(r.get('trials', []))} trials"
        tps = r.get("tokens_per_s")
        lines.append(
            f"{r['shape']:6} {r['method']:22} {tps if tps is not None else '-':>10} {r.get('mfu_6n', '-'):>7} "
            f"{r.get('mfu_lora', '-'):>8} {r.get('peak_gpu_mem_mib', '-'):>8}  {first_line(note)}"
        )
    lines.append("acceptance (issue 34)" + (" -- SMOKE RUN on CPU, not an acceptance result" if smoke else "") + ":")
    for c in checks:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[c["passed"]]
        lines.append(f"  {verdict:4} {c['check']}: {c['value']} {c['comparison']} {c['threshold']}")
    return "\n".join(lines)
