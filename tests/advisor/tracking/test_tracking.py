"""Tracking read back with the libraries' own readers: MlflowClient on the embedded store and on a real
`mlflow server`, TensorBoard's EventAccumulator on the event files; a server that is down is one line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from advisor.cli.main import main
from advisor.decision.assessment import read_assessment
from advisor.task.spec import load_task
from advisor.tracking.mlflow_sink import MlflowSink, redacted
from advisor.tracking.sinks import TrackingTarget
from advisor.tracking.track import track_assessment

pytest.importorskip("mlflow", reason="tracking tests need the [tracking] extra (make setup installs it)")

SEARCH = "{trials: 2, space: {learning_rate: {low: 0.001, high: 0.05}}}"
LORA = f"{{rung: lora, r: 2, epochs: 2, batch_tokens: 256, max_batch_size: 4, search: {SEARCH}}}"


def tracked_task(task: Path, tracking: str = "") -> Path:
    text = task.read_text().replace("test: test.jsonl}", "test: test.jsonl, validation_size: 0.34}")
    rungs = f"rungs:\n  - zero_shot\n  - {LORA}\n"
    task.write_text(text[: text.index("rungs:")] + rungs + text[text.index("evaluation:") :] + tracking)
    return task


def assess(task: Path, out: Path, *extra: str) -> Any:
    result = CliRunner().invoke(main, ["assess", str(task), "-o", str(out), *extra])
    assert result.exit_code == 0, result.output + result.stderr
    return result


def runs_of(client: Any, experiment: str) -> list[Any]:
    found = client.get_experiment_by_name(experiment)
    return list(client.search_runs([found.experiment_id], order_by=["attributes.start_time ASC"]))


@pytest.mark.slow  # trains a LoRA rung's two-trial search, then assesses again: `make test` runs it
def test_an_assessment_is_one_parent_run_with_a_run_per_rung_and_its_trials(ticket_task: Path) -> None:
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    task = tracked_task(ticket_task)
    folder = task.parent / ".advisor"
    first = assess(task, task.parent / "run.json", "--track", "mlflow,tensorboard")
    uri = f"sqlite:///{(folder / 'mlflow.db').resolve()}"
    assert f"mlflow ui --backend-store-uri {uri}" in first.stdout
    assert f"tensorboard --logdir {(folder / 'tensorboard').resolve()}" in first.stdout
    assert "alembic" not in first.stderr.lower() and "warning" not in first.stderr.lower()

    client = MlflowClient(tracking_uri=uri)
    runs = runs_of(client, "tickets")
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(children) == {"zero_shot", "lora"}
    assessment = read_assessment(task.parent / "run.json")
    lora = next(r for r in assessment.rungs if r.name == "lora")
    assert lora.training is not None and lora.training.search is not None
    assert parent.data.tags["ladder.recommendation"] == (assessment.recommendation.rung or "none")  # type: ignore[union-attr]
    assert parent.data.tags["ladder.from_cache"] == "false"
    assert children["lora"].data.params["r"] == "2"
    assert children["lora"].data.metrics["accuracy"] == pytest.approx(lora.metrics["accuracy"].value)
    assert children["lora"].data.metrics["accuracy.ci_high"] == pytest.approx(lora.metrics["accuracy"].ci_high)
    history = client.get_metric_history(children["lora"].info.run_id, "train.loss")
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(lora.training.train_losses)
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == children["lora"].info.run_id]
    assert len(trials) == len(lora.training.search.trials) == 2
    assert {p.path for p in client.list_artifacts(parent.info.run_id)} >= {"run.json", "run.md", "run.html"}
    assert {p.path for p in client.list_artifacts(children["lora"].info.run_id)} >= {"card.md", "card.json"}

    events = next((folder / "tensorboard" / "lora").iterdir())
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    losses = [event.value for event in accumulator.Scalars("train/loss")]
    assert losses == pytest.approx(lora.training.train_losses, rel=1e-5)  # stored as float32
    assert len(accumulator.Scalars("train/learning_rate")) == len(losses)

    assess(task, task.parent / "again.json", "--track", "mlflow")  # warm: a new parent run, from the store
    runs = runs_of(client, "tickets")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 2 and parents[1].data.tags["ladder.from_cache"] == "true"
    again = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[1].info.run_id]
    assert {r.info.run_name: r.data.metrics["accuracy"] for r in again} == {
        name: run.data.metrics["accuracy"] for name, run in children.items()
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1, its store and artifacts in tmp_path; stopped after the test."""
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}"]
    command += ["--artifacts-destination", str(tmp_path / "server-artifacts"), "--workers", "1"]
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert process.poll() is None, (tmp_path / "server.log").read_text()
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start in 90 s")
        yield url
    finally:  # the server and its workers are one process group: stop them all
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        log.close()


@pytest.mark.slow  # starts a real `mlflow server` process: `make test` runs it
def test_runs_reach_a_real_mlflow_server_through_its_uri(ticket_task: Path, mlflow_server: str) -> None:
    from mlflow.tracking import MlflowClient

    text = ticket_task.read_text()
    ticket_task.write_text(text + f"tracking: {{to: [mlflow], uri: '{mlflow_server}', experiment: shared}}\n")
    result = assess(ticket_task, ticket_task.parent / "run.json")
    assert f"{mlflow_server}/#/experiments/" in result.stdout
    client = MlflowClient(tracking_uri=mlflow_server)
    runs = runs_of(client, "shared")
    assert {r.info.run_name for r in runs if "mlflow.parentRunId" in r.data.tags} == {"zero_shot", "gen"}
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert {p.path for p in client.list_artifacts(parent.info.run_id)} >= {"run.json", "run.md"}
    assert not (ticket_task.parent / ".advisor" / "mlflow.db").exists()  # nothing embedded when a server is named


def test_a_server_that_does_not_answer_is_one_warning_within_seconds(warm_ticket_task: Path) -> None:
    ticket_task, out = warm_ticket_task, warm_ticket_task.parent / "run.json"  # assessed once for the session
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        uri = f"http://user:secret-token@127.0.0.1:{silent.getsockname()[1]}"
        ticket_task.write_text(ticket_task.read_text() + f"tracking: {{uri: '{uri}'}}\n")
        task = load_task(ticket_task)
        started = time.monotonic()
        lines = track_assessment(read_assessment(out), task, ["mlflow"], [out], ticket_task.parent / ".advisor")
        elapsed = time.monotonic() - started
    assert elapsed < 10, elapsed  # the bound on how long a dead server may hold the user
    (line,) = lines
    assert line.startswith("warning: not tracked in mlflow:") and "not reachable" in line
    assert "secret-token" not in line and redacted(uri) in line


def test_examples_stay_home_when_the_data_must(tmp_path: Path) -> None:
    def target(uri: str, in_house: bool) -> MlflowSink:
        return MlflowSink(TrackingTarget(tmp_path, "x", uri, in_house_only=in_house, in_house_hosts=("mlflow.corp",)))

    assert not target("https://tracking.example.com", True)._may_see_examples()
    assert target("https://mlflow.corp", True)._may_see_examples()
    assert target("http://127.0.0.1:5000", True)._may_see_examples()
    assert target("https://tracking.example.com", False)._may_see_examples()


def test_an_unknown_backend_is_one_line_before_any_work(ticket_task: Path) -> None:
    result = CliRunner().invoke(main, ["assess", str(ticket_task), "--track", "mlflow,wandb"])
    assert result.exit_code == 2 and "--track: unknown tracking backend 'wandb'" in result.output
    assert not (ticket_task.parent / ".advisor").exists()
