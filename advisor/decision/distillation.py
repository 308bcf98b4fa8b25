"""What distillation bought: each student against its teacher, the plain LoRA and zero_shot, on the same tests."""

from __future__ import annotations

from collections.abc import Sequence

from advisor.decision.assessment import DistillationSummary, RungResult
from advisor.decision.compare import compare_pair, same_examples
from harness.metrics.measurement import Measurement


def distillation_summaries(
    results: Sequence[RungResult], task_type: str, labels: Sequence[str], measurement: Measurement
) -> list[DistillationSummary]:
    """One summary per distill rung whose teacher was assessed in the same run."""
    by_name = {r.name: r for r in results}
    summaries = []
    for student in results:
        teacher = by_name.get(str(student.config.get("teacher", ""))) if student.kind == "distill" else None
        if teacher is None or not same_examples(student, teacher):
            continue
        metric = student.primary_metric
        gap = compare_pair(student, teacher, task_type, labels, metric, measurement).paired
        lora = next((r for r in results if r.kind == "lora" and same_examples(student, r)), None)
        zero = next((r for r in results if r.kind == "zero_shot" and r.endpoint is None), None)
        lora_gap = compare_pair(student, lora, task_type, labels, metric, measurement).paired if lora else None
        value, teacher_value = student.metrics[metric].value, teacher.metrics[metric].value
        share = None
        if zero is not None and teacher_value > zero.metrics[metric].value:
            share = (value - zero.metrics[metric].value) / (teacher_value - zero.metrics[metric].value)
        summaries.append(
            DistillationSummary(
                rung=student.name,
                teacher=teacher.name,
                metric=metric,
                student=value,
                teacher_value=teacher_value,
                difference=gap.difference,
                ci_low=gap.ci_low,
                ci_high=gap.ci_high,
                lora=lora.name if lora else None,
                lora_difference=lora_gap.difference if lora_gap else None,
                lora_ci_low=lora_gap.ci_low if lora_gap else None,
                lora_ci_high=lora_gap.ci_high if lora_gap else None,
                zero_shot=zero.name if zero else None,
                share_of_teacher_gain=share,
                prompt_tokens_saved=teacher.tokens.prompt_mean - student.tokens.prompt_mean,
                p50_saved_s=_saved(teacher.latency.p50_s, student.latency.p50_s),
                per_1k_saved=_saved(
                    teacher.cost.per_1k if teacher.cost else None, student.cost.per_1k if student.cost else None
                ),
            )
        )
    return summaries


def distillation_line(summary: DistillationSummary) -> str:
    """One sentence for the reports."""
    s = summary
    parts = [
        f"{s.rung} (student of {s.teacher}): {s.metric} {s.student:.3f} against the teacher's {s.teacher_value:.3f}, "
        f"difference {s.difference:+.3f} [{s.ci_low:+.3f}, {s.ci_high:+.3f}]"
    ]
    if s.share_of_teacher_gain is not None:
        parts.append(f"keeps {100 * s.share_of_teacher_gain:.0f}% of the teacher's gain over {s.zero_shot}")
    if s.lora_difference is not None and s.lora_ci_low is not None and s.lora_ci_high is not None:
        parts.append(f"against {s.lora} {s.lora_difference:+.3f} [{s.lora_ci_low:+.3f}, {s.lora_ci_high:+.3f}]")
    saved = [f"{s.prompt_tokens_saved:.0f} fewer prompt tokens per request"]
    if s.p50_saved_s is not None:
        saved.append(f"{1000 * s.p50_saved_s:+.0f} ms p50 saved")
    if s.per_1k_saved is not None:
        saved.append(f"${s.per_1k_saved:+.4f} per 1k requests saved")
    return "; ".join(parts) + "; " + ", ".join(saved) + "."


def _saved(teacher: float | None, student: float | None) -> float | None:
    return None if teacher is None or student is None else teacher - student
