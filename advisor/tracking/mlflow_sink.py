"""The MLflow sink: an embedded SQLite tracking store beside the task's results, or any tracking URI.

Embedded by default (`.advisor/mlflow.db`, artifacts in `.advisor/mlflow-artifacts/`), so tracking
works with nothing running; `tracking.uri` or MLFLOW_TRACKING_URI sends the runs to a team's server.
A server that cannot be reached is found by one short health request before anything is written.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from advisor.tracking.record import TrackedRun
from advisor.tracking.sinks import TrackingTarget, TrackingUnavailable, register_sink
from harness.remote.endpoint import is_loopback

EMBEDDED_DB = "mlflow.db"
EMBEDDED_ARTIFACTS = "mlflow-artifacts"
HEALTH_TIMEOUT_S = 3.0
# a server that dies mid-write must fail within seconds, not after MLflow's default minutes of retries
REQUEST_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
MAX_METRICS_PER_BATCH = 1000  # MLflow's log_batch limits
MAX_PARAMS_PER_BATCH = 100

T = TypeVar("T")


@register_sink("mlflow", library="mlflow")
class MlflowSink:
    """Writes the run tree with MlflowClient: parent, nested rungs, nested trials."""

    def __init__(self, target: TrackingTarget):
        self.target = target
        self.embedded = target.uri is None
        self.uri = target.uri or f"sqlite:///{(target.folder / EMBEDDED_DB).resolve()}"

    def write(self, run: TrackedRun) -> str:
        """Send the runs; the line says which command (or address) shows them."""
        remote = urlsplit(self.uri).scheme in ("http", "https")
        if remote:
            self._check_reachable()
        for name, value in REQUEST_LIMITS.items():
            os.environ.setdefault(name, value)
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        _quiet_store_creation()  # after the import: mlflow sets its loggers' levels when imported

        try:
            with warnings.catch_warnings():
                # mlflow's SQLAlchemy store still uses the `noload` loader that SQLAlchemy 2.1 deprecates;
                # the warning is about mlflow's code, not ours, and changes nothing the user can act on.
                warnings.filterwarnings("ignore", message=r"The ``noload`` loader strategy is deprecated")
                client = MlflowClient(tracking_uri=self.uri)
                experiment_id = self._experiment(client)
                parent = self._write(client, experiment_id, run, None, send_examples=self._may_see_examples())
        except (MlflowException, OSError) as error:
            reason = _first_line(error)
            raise TrackingUnavailable(f"MLflow at {redacted(self.uri)} refused the runs: {reason}") from None
        if self.embedded:
            return (
                f"MLflow: run {parent} in experiment '{self.target.experiment}'; "
                f"open it with: mlflow ui --backend-store-uri {self.uri}"
            )
        if remote:
            return f"MLflow: {redacted(self.uri).rstrip('/')}/#/experiments/{experiment_id}/runs/{parent}"
        return f"MLflow: run {parent} in experiment '{self.target.experiment}' at {redacted(self.uri)}"

    def _check_reachable(self) -> None:
        import requests  # mlflow's own HTTP client

        url = self.uri.rstrip("/") + "/health"
        try:
            requests.get(url, timeout=HEALTH_TIMEOUT_S).raise_for_status()
        except requests.RequestException as error:
            raise TrackingUnavailable(
                f"MLflow tracking server {redacted(self.uri)} is not reachable ({type(error).__name__})"
            ) from None

    def _may_see_examples(self) -> bool:
        """Reports and the Assessment quote the task's examples: only an in-house store may get them."""
        if not self.target.in_house_only:
            return True
        host = urlsplit(self.uri).hostname
        if host is None:  # a local database or folder
            return True
        return is_loopback(host) or host.lower() in {h.lower() for h in self.target.in_house_hosts}

    def _experiment(self, client: Any) -> str:
        found = client.get_experiment_by_name(self.target.experiment)
        if found is not None:
            return str(found.experiment_id)
        location = (self.target.folder / EMBEDDED_ARTIFACTS).resolve().as_uri() if self.embedded else None
        return str(client.create_experiment(self.target.experiment, artifact_location=location))

    def _write(self, client: Any, experiment_id: str, run: TrackedRun, parent: str | None, send_examples: bool) -> str:
        from mlflow.entities import Metric, Param

        tags = dict(run.tags)
        if parent is not None:
            tags["mlflow.parentRunId"] = parent
        withheld = [p for p in run.examples_inside if not send_examples]
        if withheld:
            tags["ladder.artifacts_withheld"] = "facts.data_must_stay_in_house: reports and Assessment not sent"
        created = client.create_run(experiment_id, run_name=run.name, tags=tags)
        run_id = str(created.info.run_id)
        now = int(time.time() * 1000)
        params = [Param(k, v) for k, v in run.params.items()]
        metrics = [Metric(k, v, now, 0) for k, v in run.metrics.items()]
        for key, values in run.histories.items():
            metrics += [Metric(key, value, now, step) for step, value in enumerate(values, start=1)]
        for chunk in _chunks(params, MAX_PARAMS_PER_BATCH):
            client.log_batch(run_id, params=chunk)
        for metric_chunk in _chunks(metrics, MAX_METRICS_PER_BATCH):
            client.log_batch(run_id, metrics=metric_chunk)
        for path in run.artifacts:
            if path not in withheld and path.is_file():
                client.log_artifact(run_id, str(path))
        for child in run.children:
            self._write(client, experiment_id, child, run_id, send_examples)
        client.set_terminated(run_id, "FINISHED")
        return run_id


def redacted(uri: str) -> str:
    """The URI without any user name or password in it (they may be credentials)."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return redacted_text(text.splitlines()[0] if text else type(error).__name__)


def redacted_text(text: str) -> str:
    """Error text with any URI credentials removed."""
    return " ".join(redacted(word) if "://" in word else word for word in text.split(" "))


def _quiet_store_creation() -> None:
    # Creating the embedded store logs its table creation and alembic migrations at INFO to stderr;
    # they say nothing a user of the advisor needs, and mlflow gives no switch for them.
    for name in ("alembic", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)
