"""Loading a metric as an `evaluate` module: ours from the package, a user's from a path, or the hub's.

`evaluate.load("accuracy")` fetches from the Hugging Face hub, so it fails offline; our metrics are
scripts in harness/metrics/modules loaded by file path, which never touches the network.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import InputError

if TYPE_CHECKING:
    import evaluate

_MODULES_DIR = Path(__file__).resolve().parent / "modules"

SHIPPED_METRICS: dict[str, Path] = {
    name: _MODULES_DIR / f"{name}.py"
    for name in ("accuracy", "macro_f1", "exact_match", "token_f1", "json_fields", "rouge_l", "chrf")
}
"""Ladder's own metrics by name, each an `evaluate` metric script."""


def load_metric(name_or_path: str, *, task_dir: Path | None = None) -> evaluate.EvaluationModule:
    """A fresh `evaluate` module: a shipped name, a `.py` file (relative to `task_dir`), or a hub metric.

    Modules compute in memory (keep_in_memory), so no Arrow files or locks are left in the HF cache.
    """
    if name_or_path in SHIPPED_METRICS:
        return _load_script(SHIPPED_METRICS[name_or_path])
    if name_or_path.endswith(".py"):
        return _load_user_script(name_or_path, task_dir)
    return _load_from_hub(name_or_path)


def _load_script(path: Path) -> evaluate.EvaluationModule:
    # imported here: `import evaluate` costs seconds (datasets, pandas) and most commands never load a metric
    import evaluate

    return evaluate.load(str(path), keep_in_memory=True)


def _load_user_script(name: str, task_dir: Path | None) -> evaluate.EvaluationModule:
    """The user's own metric script; only ever the file the user named."""
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = (task_dir or Path.cwd()) / path
    if not path.is_file():
        raise InputError(f"metric: no metric module file at {path}")
    try:
        return _load_script(path.resolve())
    except ImportError as error:
        # evaluate's message names the missing packages and the pip command
        raise InputError(f"metric: {path}: {_one_line(error)}") from None


def _load_from_hub(name: str) -> evaluate.EvaluationModule:
    """A metric named on the Hugging Face hub ("bleu", "user/metric"); offline this fails fast."""
    import evaluate

    # evaluate.load would first run ./<name>/<name>.py from the working directory: code the user never named
    shadow = Path(name) / f"{Path(name).name}.py"
    if shadow.is_file():
        raise InputError(f"metric {name!r} is read as a hub metric, but {shadow} exists; name the file to use it")
    try:
        return evaluate.load(name, keep_in_memory=True)
    except Exception as error:  # evaluate raises FileNotFoundError, ConnectionError, ValueError... for one cause
        close = difflib.get_close_matches(name, SHIPPED_METRICS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise InputError(
            f"metric {name!r} was not found locally and could not be fetched from the Hugging Face hub "
            f"({type(error).__name__}); {hint}shipped metrics: {', '.join(SHIPPED_METRICS)}, "
            "or a path to your own .py module"
        ) from error


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
