"""Reports from one Assessment: Markdown, HTML (escaped, self-contained), and the page in headless Chromium."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from advisor.assessment import Assessment, Recommendation
from advisor.cli import main
from advisor.decide import DataFacts, decide
from advisor.report.html import render_html
from advisor.report.markdown import render_markdown
from advisor.task import ConstraintsSection, DecisionSection, FactsSection
from harness.metrics.measurement import Measurement
from tests.test_decide import answers, assessment, rung

SCRIPT = "<script>document.title='PWNED'</script>"
IMAGE = "<img src=x onerror=\"document.title='PWNED'\">"
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "div", "ul", "li", "b", "em", "table",
    "thead", "tbody", "tr", "th", "td", "figure", "figcaption", "svg", "line", "circle", "text", "polyline", "rect",
}  # fmt: skip


def recommend(built: Assessment) -> Recommendation:
    """The default policy's recommendation, with a quick bootstrap."""
    return decide(
        built,
        ConstraintsSection(),
        FactsSection(),
        DecisionSection(),
        DataFacts(n_train=500),
        Measurement(resamples=200),
    )


def hostile_assessment():
    """Two rungs whose inputs, targets and outputs carry script payloads."""
    zero, lora = answers(0.4, 1), answers(0.8, 2)
    built = assessment(rung("zero_shot", 0, zero), rung("lora", 3, lora, forgetting=-0.01))
    for r in built.rungs:
        for record in r.records[:5]:
            record.input = f"ticket {SCRIPT} | pipe"
            record.output = IMAGE
            record.target = SCRIPT
    built.recommendation = recommend(built)
    return built


class TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.handlers: list[str] = []
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(name)
            if name in ("src", "href") and value:
                self.sources.append(value)


def test_html_escapes_every_data_text_and_loads_nothing() -> None:
    page = render_html(hostile_assessment())
    parsed = TagCollector()
    parsed.feed(page)
    assert parsed.tags <= ALLOWED_TAGS, parsed.tags - ALLOWED_TAGS
    assert not parsed.handlers and not parsed.sources
    assert "&lt;script&gt;" in page and "&lt;img src=x onerror=" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "Where the rungs disagree" in page and "Quality against cost" in page and "<svg" in page


def test_markdown_has_the_recommendation_and_a_table_that_cannot_break() -> None:
    built = hostile_assessment()
    text = render_markdown(built)
    assert built.recommendation is not None and built.recommendation.summary in text
    header = next(line for line in text.splitlines() if line.startswith("| Rung"))
    rows = [line for line in text.splitlines() if line.startswith("| zero_shot") or line.startswith("| lora")]
    assert len(rows) == 2 and all(r.count(" | ") == header.count(" | ") for r in rows)
    assert "<script>" not in text


def test_report_command_renders_each_format_and_refuses_a_bad_file(tmp_path: Path) -> None:
    run = tmp_path / "run.json"
    run.write_text(hostile_assessment().model_dump_json())
    for fmt in ("html", "md", "json"):
        out = tmp_path / f"report.{fmt}"
        result = CliRunner().invoke(main, ["report", str(run), "--format", fmt, "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 500
    assert json.loads((tmp_path / "report.json").read_text())["schema_version"] == 1
    (tmp_path / "bad.json").write_text('{"schema_version": 1}')
    bad = CliRunner().invoke(main, ["report", str(tmp_path / "bad.json")])
    assert bad.exit_code == 2 and "not an Assessment" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    missing = CliRunner().invoke(main, ["report", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "file not found" in missing.stderr


def test_assess_writes_html_and_markdown_beside_the_json(ticket_task: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.assessment.json"
    result = CliRunner().invoke(main, ["assess", str(ticket_task), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Recommendation" in result.stdout
    page = (tmp_path / "r.assessment.html").read_text()
    summary = json.loads(out.read_text())["recommendation"]["summary"]
    assert "<table>" in page and "Side by side" in page and escape(summary) in page
    assert (tmp_path / "r.assessment.md").read_text().startswith("## Ladder: tickets")


@pytest.fixture(scope="module")
def chromium() -> str:
    """Headless Chromium, which `.ci/run` installs; a developer's machine without it skips the test."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("headless Chromium is not installed (.ci/run installs Debian's `chromium` with apt-get)")
    return found


def browser(chromium: str, *args: str) -> subprocess.CompletedProcess[str]:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]
    return subprocess.run([chromium, *flags, *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow  # seconds, not milliseconds: `make test-fast` leaves it to `make test`
def test_no_script_runs_in_chromium_and_the_page_renders(chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(hostile_assessment()), encoding="utf-8")
    dom = browser(chromium, "--dump-dom", page.as_uri()).stdout
    assert "<title>Ladder: t</title>" in dom and "PWNED" not in dom.split("</title>")[0]
    assert "<script" not in dom and "<img" not in dom
    shot = tmp_path / "shot.png"
    browser(chromium, f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri())
    assert shot.is_file(), "Chromium wrote no screenshot"
    assert distinct_pixel_bytes(shot) > 20  # a blank page has a handful of values; a rendered report many


def distinct_pixel_bytes(path: Path) -> int:
    """How many distinct byte values the PNG's decompressed scanlines hold (no imaging library needed)."""
    data = path.read_bytes()
    position, chunks = 8, []
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        if kind == b"IDAT":
            chunks.append(data[position + 8 : position + 8 + length])
        position += 12 + length
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), dtype=np.uint8)
    return len(np.unique(raw))


def test_a_search_shows_as_one_sentence_its_warnings_and_a_trial_table_in_html_and_markdown() -> None:
    from tests.test_decide import searched

    note = "the chosen learning_rate (0.003) sits at the high edge of the searched range [0.0001, 0.003]"
    tuned = searched(rung("lora", 3, answers(0.8, 2)), [note], validation_examples=38)
    built = assessment(rung("zero_shot", 0, answers(0.4, 1)), tuned)
    built.recommendation = recommend(built)
    page, text = render_html(built), render_markdown(built)
    sentence = "lora: 1 trials (0 pruned) over learning_rate [0.0001, 0.003] (log), up to 2 epochs"
    assert "How the tuned rungs were chosen" in page and sentence in page and note in page
    assert "<th>validation accuracy by epoch</th>" in page and "0.500 → 0.600" in page
    assert f"<summary>{sentence}" in text and "| 0 (chosen) | 0.001 | complete | 0.500 → 0.600 | 2 |" in text


def test_a_close_call_shows_what_the_tie_costs_a_month_in_every_report() -> None:
    from tests.test_decide import tied_prompt_and_adapter

    built = assessment(*tied_prompt_and_adapter())
    built.recommendation = recommend(built)
    saving = "it would save $1.13 a month ($13.56 a year)"
    for page in (render_markdown(built), render_html(built)):
        assert "Close call" in page and saving in page and "decision.prefer: cost" in page
        assert "its extra one-off cost of $0.02 is repaid within the first month" in page
