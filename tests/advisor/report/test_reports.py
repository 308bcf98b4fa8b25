"""Reports from one Assessment: Markdown, HTML (escaped, self-contained), and the page in headless Chromium."""

from __future__ import annotations

import itertools
import json
import shutil
import struct
import subprocess
import zlib
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from advisor.cli.main import main
from advisor.decision.assessment import Assessment, Recommendation
from advisor.decision.decide import DataFacts, decide
from advisor.report.html import render_html
from advisor.report.markdown import render_markdown
from advisor.task.spec import ConstraintsSection, DecisionSection, FactsSection
from harness.metrics.measurement import Measurement
from tests.advisor.decision.test_decide import answers, assessment, rung

SCRIPT = "<script>document.title='PWNED'</script>"
IMAGE = "<img src=x onerror=\"document.title='PWNED'\">"
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "div", "ul", "li", "b", "em", "table",
    "thead", "tbody", "tr", "th", "td", "figure", "figcaption", "svg", "line", "circle", "text", "polyline", "rect",
    "g", "input", "label", "details", "summary", "span",
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
    assert "Every test example" in page and "Quality against cost" in page and "<svg" in page


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
    from tests.advisor.decision.test_decide import searched

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
    from tests.advisor.decision.test_decide import tied_prompt_and_adapter

    built = assessment(*tied_prompt_and_adapter())
    built.recommendation = recommend(built)
    saving = "it would save $1.13 a month ($13.56 a year)"
    for page in (render_markdown(built), render_html(built)):
        assert "Close call" in page and saving in page and "decision.prefer: cost" in page
        assert "its extra one-off cost of $0.02 is repaid within the first month" in page


class ExampleRows(HTMLParser):
    """The per-example table's body rows: each row's class and its cells' text (unescaped) and titles."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self.headers: list[str] = []
        self.inside = False
        self.part = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table":
            self.inside = found.get("id") == "examples"
        elif self.inside and tag in ("thead", "tbody"):
            self.part = tag
        elif self.inside and self.part == "tbody" and tag == "tr":
            self.rows.append({"classes": (found.get("class") or "").split(), "cells": [], "titles": []})
        elif self.inside and tag in ("td", "th"):
            if self.part == "tbody":
                self.rows[-1]["cells"].append("")
                self.rows[-1]["titles"].append(found.get("title"))
            else:
                self.headers.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if not self.inside:
            return
        if self.part == "tbody" and self.rows and self.rows[-1]["cells"]:
            self.rows[-1]["cells"][-1] += data
        elif self.part == "thead" and self.headers:
            self.headers[-1] += data


def example_table(page: str) -> ExampleRows:
    parsed = ExampleRows()
    parsed.feed(page)
    return parsed


def three_rungs() -> Assessment:
    """Three rungs on 200 examples, recommended by the default policy."""
    built = assessment(
        rung("zero_shot", 0, answers(0.5, 1)), rung("few_shot", 1, answers(0.7, 2)), rung("lora", 3, answers(0.9, 3))
    )
    built.recommendation = recommend(built)
    return built


def test_the_example_table_has_one_row_per_example_and_marks_exactly_the_disagreements() -> None:
    built = three_rungs()
    chosen = built.recommendation.rung if built.recommendation else None
    assert chosen is not None
    table = example_table(render_html(built))
    assert [row["cells"][0] for row in table.rows] == [r.id for r in built.rungs[0].records]
    assert table.headers[:3] == ["id", "input", "expected"] and f"{chosen} (recommended)" in table.headers
    verdicts = [[r.records[i].correct for r in built.rungs] for i in range(len(built.rungs[0].records))]
    missed = [not r.correct for r in next(r for r in built.rungs if r.name == chosen).records]
    for row, seen, wrong in zip(table.rows, verdicts, missed, strict=True):
        assert ("disagree" in row["classes"]) == (len(set(seen)) == 2)
        assert ("missed" in row["classes"]) == wrong
        assert [cell[0] for cell in row["cells"][3:]] == ["✓" if ok else "✗" for ok in seen]
    assert 0 < sum("disagree" in row["classes"] for row in table.rows) < len(table.rows)


def test_the_filters_are_radio_buttons_and_css_so_the_page_needs_no_script() -> None:
    page = render_html(three_rungs())
    assert '<input type="radio" name="examples-filter" id="examples-disagree" checked>' in page
    assert 'id="examples-all"' in page and 'id="examples-missed"' in page
    assert "#examples-disagree:checked ~ .scroll tbody tr:not(.disagree) { display: none; }" in page
    assert "#examples-missed:checked ~ .scroll tbody tr:not(.missed) { display: none; }" in page
    assert "<script" not in page and "script-src" not in page  # the CSP's default-src 'none' still forbids one


def test_every_user_given_text_in_the_example_table_is_escaped_and_survives_whole() -> None:
    hostile = f"{SCRIPT} \"quoted\" 'single' & {IMAGE}"
    zero, lora = rung("zero_shot", 0, answers(0.4, 1)), rung(f"lora{SCRIPT}", 3, answers(0.8, 2))
    for r in (zero, lora):
        for record in r.records[:3]:
            record.id = f"{record.id}{hostile}"
            record.input = f"input {hostile}"
            record.target = hostile
            record.prediction = f"label {hostile}"
            record.output = f"raw {hostile}"
    built = assessment(zero, lora)
    built.recommendation = recommend(built)
    page = render_html(built)
    parsed = TagCollector()
    parsed.feed(page)
    assert parsed.tags <= ALLOWED_TAGS and not parsed.handlers and not parsed.sources
    table = example_table(page)
    assert f"lora{SCRIPT}" in table.headers[4]
    first = table.rows[0]
    assert first["cells"][:3] == [f"e0{hostile}", f"input {hostile}", hostile]
    assert first["cells"][3].endswith(f"label {hostile}") and first["titles"][3] == f"raw {hostile}"
    assert SCRIPT not in page and IMAGE not in page


def test_a_long_input_folds_and_a_huge_one_is_cut_with_a_pointer_to_the_json() -> None:
    built = three_rungs()
    built.rungs[0].records[0].input = "word " * 5000  # 25,000 characters
    for r in built.rungs:
        r.records[1].input = "a short ticket"
    page = render_html(built)
    table = example_table(page)
    assert table.rows[1]["cells"][1] == "a short ticket"
    folded = table.rows[0]["cells"][1]
    assert "more characters in the Assessment JSON" in folded and len(folded) < 2500
    assert "<details><summary>word word" in page


def test_the_rows_drawn_are_capped_and_the_page_says_what_was_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    from advisor.report import examples_table

    built = three_rungs()
    disagreeing = [
        i for i in range(200) if len({r.records[i].correct for r in built.rungs}) == 2
    ]  # the cap is above their count, so every one must be kept
    monkeypatch.setattr(examples_table, "ROW_CAP", len(disagreeing) + 5)
    page = render_html(built)
    table = example_table(page)
    ids = [row["cells"][0] for row in table.rows]
    assert len(ids) == len(disagreeing) + 5
    assert {f"e{i}" for i in disagreeing} <= set(ids)
    assert ids == sorted(ids, key=lambda i: int(i[1:]))  # still in test order
    assert f"Showing {len(ids)} of 200 test examples (every example where the rungs disagree" in page
    assert "Assessment JSON" in page and "rungs[].records" in page


def test_the_default_cap_keeps_a_large_test_set_to_a_page_a_browser_opens() -> None:
    from advisor.report.examples import example_rows
    from advisor.report.examples_table import ROW_CAP, examples_section

    zero, lora = rung("zero_shot", 0, answers(0.5, 1)), rung("lora", 3, answers(0.8, 2))
    for r in (zero, lora):
        r.records = [rec.model_copy(update={"id": f"{rec.id}-{k}"}) for k in range(15) for rec in r.records]
    built = assessment(zero, lora)  # 3,000 examples, no recommendation
    assert len(example_rows(built)) == 3000
    section = examples_section(built)
    assert section.count("<tr") == ROW_CAP + 1 and "Showing 2,000 of 3,000" in section
    assert len(section) < 1_000_000


@pytest.mark.parametrize(
    ("low", "high"),
    [(0.31, 0.92), (0.0, 0.0034), (0.0003, 0.05), (12, 13), (0.5, 0.5), (0, 1234), (-0.02, 0.07), (0.81, 0.83)],
)
def test_ticks_are_round_numbers_on_a_1_2_5_step_that_cover_the_range(low: float, high: float) -> None:
    from advisor.report.ticks import nice_ticks, tick_labels

    ticks = nice_ticks(low, high)
    assert 3 <= len(ticks) <= 10 and ticks[0] <= low and ticks[-1] >= high
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** np.floor(np.log10(step))
    assert min(abs(mantissa - m) for m in (1, 2, 5, 10)) < 1e-6
    assert all(abs((b - a) - step) < step * 1e-6 for a, b in itertools.pairwise(ticks))
    assert all(abs(t / step - round(t / step)) < 1e-6 for t in ticks)  # multiples of the step: 0.3, not 0.31
    labels = tick_labels(ticks)
    assert len(set(labels)) == len(labels)  # no two ticks read the same
    assert all(
        float(label.replace(",", "")) == pytest.approx(t, abs=step * 1e-6)
        for label, t in zip(labels, ticks, strict=True)
    )
    assert not all(label.endswith("0") and "." in label for label in labels)  # no digit every label wastes


def test_tick_labels_need_only_the_digits_of_their_step() -> None:
    from advisor.report.ticks import decade_ticks, log_tick_labels, tick_labels

    assert tick_labels([0.3, 0.4, 0.5]) == ["0.3", "0.4", "0.5"]
    assert tick_labels([0, 500, 1000, 1500]) == ["0", "500", "1,000", "1,500"]
    assert tick_labels([0.0, 0.05, 0.1], "$") == ["$0.00", "$0.05", "$0.10"]
    assert decade_ticks(0.0003, 0.05) == [0.0001, 0.001, 0.01, 0.1]
    assert log_tick_labels([0.0001, 0.01, 1, 10], "$") == ["$0.0001", "$0.01", "$1", "$10"]


class SvgTexts(HTMLParser):
    """Each SVG <text> that is not rotated: its x, y, anchor, font size and content; and the hover titles."""

    def __init__(self) -> None:
        super().__init__()
        self.size = (0.0, 0.0)
        self.texts: list[dict[str, Any]] = []
        self.titles: list[str] = []
        self.current: dict[str, Any] | None = None
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "svg":
            self.size = tuple(float(v) for v in (found["viewbox"] or "").split()[2:])  # type: ignore[assignment]
        elif tag == "title":
            self.in_title = True
            self.titles.append("")
        elif tag == "text" and "transform" not in found:
            self.current = {**found, "text": ""}

    def handle_endtag(self, tag: str) -> None:
        if tag == "text" and self.current is not None:
            self.texts.append(self.current)
            self.current = None
        elif tag == "title":
            self.in_title = False

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.titles[-1] += data
        elif self.current is not None:
            self.current["text"] += data


def svg_texts(svg: str) -> SvgTexts:
    parsed = SvgTexts()
    parsed.feed(svg)
    return parsed


def text_span(text: dict[str, Any]) -> tuple[float, float]:
    from advisor.report.svg_text import text_width

    x, width = float(text["x"]), text_width(text["text"], float(text["font-size"]))
    anchor = text.get("text-anchor", "start")
    left = x - width if anchor == "end" else x - width / 2 if anchor == "middle" else x
    return left, left + width


def long_named_rungs() -> list[Any]:
    """Six rungs, two with names far too long for a label, close together in cost and quality."""
    names = ["zero_shot", "few_shot_nearest_k8_with_a_very_long_descriptive_name_indeed", "rag", "lora",
             "qlora_r16_alpha32_lr3e-4_epochs3_and_then_some_more", "distill"]  # fmt: skip
    built = []
    for index, name in enumerate(names):
        r = rung(name, index, answers(0.6 + 0.05 * index, index + 1), per_1k=0.0004 + 0.0002 * index)
        samples = [0.01 * (index + 1) + 0.001 * k for k in range(8)]
        r.latency = r.latency.model_copy(update={"samples_s": samples, "p50_s": samples[4], "p95_s": samples[7]})
        built.append(r)
    return built


def test_plot_labels_fit_inside_the_plot_and_a_shortened_name_keeps_its_full_title() -> None:
    from advisor.report.plots import latency_svg, quality_cost_svg

    rungs = long_named_rungs()
    for svg in (quality_cost_svg(rungs), latency_svg(rungs)):
        parsed = svg_texts(svg)
        width, height = parsed.size
        for text in parsed.texts:
            left, right = text_span(text)
            assert left >= 0 and right <= width, text
            assert 0 < float(text["y"]) <= height, text
        assert rungs[1].name in parsed.titles and rungs[4].name in parsed.titles
        assert not any(rungs[1].name in t["text"] for t in parsed.texts)  # shortened where drawn


def test_axis_tick_labels_are_round_and_never_overlap() -> None:
    from advisor.report.plots import latency_svg, quality_cost_svg

    rungs = long_named_rungs()
    quality = svg_texts(quality_cost_svg(rungs))
    bottom = max(float(t["y"]) for t in quality.texts if t["text"].startswith("$0"))
    x_ticks = sorted((t for t in quality.texts if float(t["y"]) == bottom), key=lambda t: float(t["x"]))
    assert [t["text"] for t in x_ticks] == [f"${v / 10000:.4f}" for v in range(2, 17, 2)]  # costs 0.0004-0.0014
    spans = [text_span(t) for t in x_ticks]
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))
    latency = svg_texts(latency_svg(rungs))  # samples of 10 to 67 ms: a millisecond axis, not 0.00 s
    ticks = [t["text"] for t in latency.texts if t.get("text-anchor") == "middle" and t["text"].isdigit()]
    assert ticks == ["0", "10", "20", "30", "40", "50", "60", "70"]
    assert any(t["text"] == "single-request latency (ms)" for t in latency.texts)


def test_a_confusion_matrix_grows_to_hold_long_labels() -> None:
    from advisor.report.plots import confusion_svg

    labels = ["billing", "a label far too long to fit beside the matrix as it is written", "<b>&"]
    built = rung("zero_shot", 0, answers(0.5, 1))
    for record in built.records:
        record.target = labels[1]
    svg = confusion_svg(built, labels)
    parsed = svg_texts(svg)
    for text in parsed.texts:
        left, right = text_span(text)
        assert left >= 0 and right <= parsed.size[0], text
    assert labels[1] in parsed.titles and "&lt;b&gt;&amp;" in svg
