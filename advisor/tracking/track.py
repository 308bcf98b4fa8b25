"""`--track`: after an assessment is measured and saved, send it to the chosen tracking backends.

Tracking never changes a result: it runs after the measurement, and a backend that cannot be reached
is one warning line while the Assessment stays saved.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from advisor.decision.assessment import Assessment
from advisor.task.spec import LoadedTask
from advisor.tracking.record import assessment_run
from advisor.tracking.sinks import TrackingTarget, TrackingUnavailable, get_sink, required_library, sink_names
from harness.data.hashing import content_hash
from harness.errors import InputError

INSTALL_HINT = "pip install 'ladder-advisor[tracking]'"


def chosen_backends(task: LoadedTask, option: str | None) -> list[str]:
    """The backends to log to (`--track` wins over `tracking.to`), checked before any work."""
    where = "--track" if option is not None else f"{task.path}: tracking.to"
    names = [n.strip() for n in option.split(",") if n.strip()] if option is not None else list(task.spec.tracking.to)
    known = sink_names()
    for name in names:
        if name not in known:
            raise InputError(f"{where}: unknown tracking backend '{name}' (known: {', '.join(known)})")
        library = required_library(name)
        if library is not None and importlib.util.find_spec(library) is None:
            raise InputError(f"{where}: tracking with {name} needs the {library} package: {INSTALL_HINT}")
    return list(dict.fromkeys(names))


def track_assessment(
    assessment: Assessment, task: LoadedTask, backends: Sequence[str], files: Sequence[Path], folder: Path
) -> list[str]:
    """Send the assessment to each backend; one line each: where to look, or why it was not tracked."""
    spec = task.spec
    target = TrackingTarget(
        folder=folder,
        experiment=spec.tracking.experiment or spec.name,
        uri=spec.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI") or None,
        in_house_only=spec.facts.data_must_stay_in_house,
        in_house_hosts=tuple(spec.facts.in_house_hosts),
    )
    run = assessment_run(assessment, list(files), git_commit(task.folder), content_hash(task.path.read_text()))
    lines = []
    for name in backends:
        try:
            lines.append(get_sink(name, target, "--track").write(run))
        except TrackingUnavailable as error:
            lines.append(f"warning: not tracked in {name}: {error}; the assessment itself is saved")
    return lines


def git_commit(folder: Path) -> str | None:
    """The commit checked out where the task file is, when it is in a git repository."""
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None
