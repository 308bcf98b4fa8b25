"""The test examples where rungs disagree: the failure cases worth reading."""

from __future__ import annotations

from dataclasses import dataclass

from advisor.assessment import Assessment


@dataclass(frozen=True)
class Disagreement:
    """One test example with every rung's answer and whether it was right."""

    id: str
    input: str
    target: str
    answers: list[tuple[str, str, bool]]  # (rung, output, correct)


def disagreements(assessment: Assessment, limit: int = 40) -> list[Disagreement]:
    """Examples some rungs got right and others wrong; those the recommended rung missed come first."""
    rungs = assessment.rungs
    if not rungs:
        return []
    chosen = assessment.recommendation.rung if assessment.recommendation else None
    by_id = [{r.id: r for r in rung.records} for rung in rungs]
    found = []
    for record in rungs[0].records:
        answers = [(r.name, index[record.id]) for r, index in zip(rungs, by_id, strict=True) if record.id in index]
        verdicts = {answer.correct for _, answer in answers}
        if len(verdicts) < 2:
            continue
        text = record.input if isinstance(record.input, str) else "\n".join(t["content"] for t in record.input)
        found.append(Disagreement(record.id, text, record.target, [(name, a.output, a.correct) for name, a in answers]))
    found.sort(key=lambda d: next((0 if not ok else 1 for name, _, ok in d.answers if name == chosen), 1))
    return found[:limit]
