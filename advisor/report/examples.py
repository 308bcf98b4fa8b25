"""Every test example as each rung answered it: the rows of the report's per-example table."""

from __future__ import annotations

from dataclasses import dataclass

from advisor.decision.assessment import Assessment, RecordSummary


@dataclass(frozen=True)
class Answer:
    """One rung's answer to one example: what it said, how it was read, and the verdict."""

    text: str  # the label read from the output where there is one, the output otherwise
    output: str  # the raw output
    correct: bool


@dataclass(frozen=True)
class ExampleRow:
    """One test example across the rungs; a rung with no record for it is absent from `answers`."""

    id: str
    input: str
    target: str
    answers: dict[str, Answer]

    @property
    def disagree(self) -> bool:
        """Some rungs got it right and others wrong."""
        return len({a.correct for a in self.answers.values()}) > 1

    def missed_by(self, rung: str | None) -> bool:
        """`rung` answered it and got it wrong."""
        answer = self.answers.get(rung) if rung else None
        return answer is not None and not answer.correct


def input_text(value: str | list[dict[str, str]]) -> str:
    """An example's input as text: a chat is one `role: content` line per message."""
    if isinstance(value, str):
        return value
    return "\n".join(f"{m.get('role', '?')}: {m.get('content', '')}" for m in value)


def example_rows(assessment: Assessment) -> list[ExampleRow]:
    """One row per test example, in the order the rungs answered them (first seen first)."""
    first: dict[str, RecordSummary] = {}
    answers: dict[str, dict[str, Answer]] = {}
    for rung in assessment.rungs:
        for record in rung.records:
            first.setdefault(record.id, record)
            text = record.prediction if record.prediction is not None else record.output
            answers.setdefault(record.id, {})[rung.name] = Answer(text, record.output, record.correct)
    return [ExampleRow(i, input_text(r.input), r.target, answers[i]) for i, r in first.items()]


def by_interest(rows: list[ExampleRow], chosen: str | None) -> list[ExampleRow]:
    """The rows most worth a look first: disagreements the recommended rung lost, other disagreements, the rest.

    A stable sort, so each group keeps the test order; a report that must leave rows out keeps the first.
    """
    return sorted(rows, key=lambda row: (not row.disagree, not row.missed_by(chosen)))
