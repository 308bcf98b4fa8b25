"""Contextual calibration of the prompting rungs: a prompt's label prior, measured and divided out."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from advisor.cli.main import main
from baselines.few_shot import FewShotConfig, FewShotPredictor
from baselines.zero_shot import ZeroShotConfig, ZeroShotPredictor
from harness.data.store import Store
from harness.inference.answerer import PromptParts
from harness.inference.answering import Mode
from harness.inference.content_free import CONTENT_FREE, calibrated_logprobs, content_free_prior
from harness.inference.engine import Engine
from harness.inference.prompts import PromptBuilder, PromptFormat
from harness.rungs import RungContext, get_rung
from harness.selection import chosen_config
from harness.types import Example, Output

LABELS = ("spam", "ham")
MESSAGES = [
    ("win a free prize now", "spam"),
    ("lunch at noon?", "ham"),
    ("see you at the meeting", "ham"),
    ("claim your free money", "spam"),
    ("the report is attached", "ham"),
    ("call me when you land", "ham"),
]


class BiasedModel:
    """A fake model: a message is spam when it says "free", but every prompt leans hard toward `lean`.

    The lean (log 20) outweighs the evidence (2 nats), so it always answers the leaned label unless
    the prior is divided out; a content-free input carries no evidence, so its scores are the lean.
    """

    def __init__(self, lean: str | None = "spam"):
        self.lean = lean
        self.asked: list[str] = []

    def fingerprint(self) -> str:
        return f"leans-{self.lean}"

    def prepare(self) -> None:
        pass

    def scoring(self, mode: Mode) -> str:
        return "likelihood" if mode == "score" else "generate"

    def answer(self, parts: Sequence[PromptParts], labels: Sequence[str], mode: Mode, n: int) -> list[Output]:
        outputs = []
        for part in parts:
            text = str(part.example.input)
            self.asked.append(text)
            evidence = "spam" if "free" in text else "ham" if text not in CONTENT_FREE else None
            scores = {
                label: (math.log(20) if label == self.lean else 0.0) + (2.0 if label == evidence else 0.0) - 5.0
                for label in labels
            }
            best = max(labels, key=scores.__getitem__)
            outputs.append(Output(best, 10, 1, 0.0, detail={"logprobs": scores}))
        return outputs


def context(model: BiasedModel, tiny_tokenizer: Any, validation: tuple[Example, ...] = ()) -> RungContext:
    prompts = PromptBuilder(tiny_tokenizer, PromptFormat(instruction="Spam or ham?", labels=LABELS))
    train = tuple(Example(f"t{i}", text, label) for i, (text, label) in enumerate(MESSAGES))
    return RungContext(
        Engine(None, tiny_tokenizer), prompts, "classification", LABELS, train, validation, "m", 0, remote=model
    )


TEST = [Example(f"x{i}", text, label) for i, (text, label) in enumerate(MESSAGES)]


def test_the_calibration_arithmetic_divides_the_prior_out() -> None:
    prior = content_free_prior([[math.log(0.8), math.log(0.2)], [math.log(0.6), math.log(0.4)]])
    assert prior == pytest.approx([0.7, 0.3])
    # p = (0.7, 0.3) is exactly the prior: calibrated, it says nothing (uniform)
    assert [math.exp(v) for v in calibrated_logprobs([math.log(0.7), math.log(0.3)], prior)] == pytest.approx(
        [0.5, 0.5]
    )
    # p = (0.6, 0.4) leans less toward the first label than the prior does: calibrated, the second wins
    q = [math.exp(v) for v in calibrated_logprobs([math.log(0.6), math.log(0.4)], prior)]
    assert q[1] > q[0] and sum(q) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "build",
    [
        lambda config, ctx: ZeroShotPredictor(ZeroShotConfig(calibrate=config), ctx),
        lambda config, ctx: FewShotPredictor(FewShotConfig(k=2, calibrate=config), ctx),
    ],
    ids=["zero_shot", "few_shot"],
)
def test_a_prompt_biased_to_one_label_answers_right_once_calibrated(build: Any, tiny_tokenizer: Any) -> None:
    plain = build("off", context(BiasedModel(), tiny_tokenizer)).predict(TEST)
    assert [o.text for o in plain] == ["spam"] * len(TEST)  # the prior wins every time
    model = BiasedModel()
    predictor = build("on", context(model, tiny_tokenizer))
    first, second = predictor.predict(TEST[:3]), predictor.predict(TEST[3:])
    assert [o.text for o in first + second] == [e.target for e in TEST]
    assert first[0].detail["content_free"] == pytest.approx({"spam": 20 / 21, "ham": 1 / 21}, abs=1e-5)
    assert first[0].detail["uncalibrated_logprobs"]["spam"] > first[0].detail["uncalibrated_logprobs"]["ham"]
    # one calibration context for the rung (the instruction, or the fixed demonstrations): scored once, in the
    # first batch, and charged to no request
    assert sum(text in CONTENT_FREE for text in model.asked) == len(CONTENT_FREE)
    assert all(o.detail["content_free_tokens"] == 0 and o.prompt_tokens == 10 for o in first + second)


def test_random_demonstrations_are_calibrated_per_prompt_and_each_pays_for_its_own(tiny_tokenizer: Any) -> None:
    model = BiasedModel()
    predictor = FewShotPredictor(FewShotConfig(k=2, selection="random", calibrate="on"), context(model, tiny_tokenizer))
    answered = predictor.predict(TEST)
    assert [o.text for o in answered] == [e.target for e in TEST]
    demos = [tuple(d.id for d in chosen) for chosen in predictor.selector.choose(TEST)]
    distinct = len(set(demos))
    assert distinct > 1  # per-example demonstrations (two examples may draw the same ones: one context)
    assert sum(text in CONTENT_FREE for text in model.asked) == len(CONTENT_FREE) * distinct
    # the request that needed a context pays for its content-free prompts: a deployed rung pays them each time
    paying = [o for o in answered if o.detail["content_free_tokens"]]
    assert len(paying) == distinct and all(o.prompt_tokens == 10 + 10 * len(CONTENT_FREE) for o in paying)


def test_auto_is_chosen_on_validation_asking_each_prompt_once_and_a_tie_stays_off(
    tiny_tokenizer: Any, tmp_path: Path
) -> None:
    validation = tuple(Example(f"v{i}", text, label) for i, (text, label) in enumerate(MESSAGES))
    zero_shot = get_rung("zero_shot")
    with Store(tmp_path / "store.sqlite") as store:
        model = BiasedModel()
        config, selection = chosen_config(
            zero_shot, ZeroShotConfig(), context(model, tiny_tokenizer, validation), store, "rungs.zero_shot"
        )
        assert selection is not None and [c.params for c in selection.choices] == [
            {"calibrate": "off"},
            {"calibrate": "on"},
        ]
        assert [c.value for c in selection.choices] == pytest.approx([2 / 6, 1.0])
        assert isinstance(config, ZeroShotConfig) and config.calibrate == "on"
        # the calibrated alternative asked the model only its content-free prompts
        assert sorted(model.asked) == sorted([text for text, _ in MESSAGES] + list(CONTENT_FREE))

        fair, _ = chosen_config(
            zero_shot, ZeroShotConfig(), context(BiasedModel(None), tiny_tokenizer, validation), store, "rungs.z"
        )
        assert isinstance(fair, ZeroShotConfig) and fair.calibrate == "off"  # both right on every example: off
        generating, nothing = chosen_config(
            zero_shot, ZeroShotConfig(mode="generate"), context(model, tiny_tokenizer, validation), store, "rungs.z"
        )
        assert nothing is None and generating == ZeroShotConfig(mode="generate")  # auto: nothing to choose


def test_the_fingerprint_tells_calibrated_answers_from_uncalibrated_ones(tiny_tokenizer: Any) -> None:
    ctx = context(BiasedModel(), tiny_tokenizer)
    prints = {c: ZeroShotPredictor(ZeroShotConfig(calibrate=c), ctx).fingerprint() for c in ("auto", "on", "off")}
    assert prints["on"] != prints["off"] and prints["auto"] == prints["off"]  # auto unchosen answers uncalibrated
    few = {c: FewShotPredictor(FewShotConfig(calibrate=c), ctx).fingerprint() for c in ("on", "off")}
    assert few["on"] != few["off"]


def test_calibrate_on_for_a_rung_that_generates_is_one_line_of_bad_input(ticket_task: Path) -> None:
    body = ticket_task.read_text().split("rungs:\n")[0]
    ticket_task.write_text(body + "rungs:\n  - {rung: zero_shot, mode: generate, calibrate: on}\n")
    for command in ("check", "assess"):
        result = CliRunner().invoke(main, [command, str(ticket_task)])
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "rungs.zero_shot.calibrate:" in lines[0] and "generates" in lines[0]


def test_the_assessment_and_reports_say_what_was_chosen_and_the_prior(ticket_task: Path, tmp_path: Path) -> None:
    body = ticket_task.read_text().split("rungs:\n")[0].replace("data: {", "data: {validation_size: 0.5, ")
    ticket_task.write_text(body + "rungs:\n  - zero_shot\n  - {rung: few_shot, k: 2, calibrate: on}\n")
    out = tmp_path / "run.json"
    result = CliRunner().invoke(main, ["assess", str(ticket_task), "-o", str(out)])
    assert result.exit_code == 0, result.output
    zero, few = json.loads(out.read_text())["rungs"]
    trials = {t["params"]["calibrate"]: t["validation_metrics"][0] for t in zero["selection"]["trials"]}
    chosen = zero["config"]["calibrate"]
    assert set(trials) == {"off", "on"} and trials[chosen] == max(trials.values())
    assert zero["calibration"]["setting"] == chosen and zero["calibration"]["validation"] == trials
    assert few["calibration"]["decided"] == "set in the task file" and few["selection"] is None
    assert set(few["calibration"]["prior"]) == set(json.loads(out.read_text())["task"]["labels"])
    assert few["calibration"]["contexts"] == 1
    line = "few_shot: calibrate on (set in the task file); content-free prior"
    assert line in out.with_suffix(".md").read_text() and line in " ".join(result.output.split())
