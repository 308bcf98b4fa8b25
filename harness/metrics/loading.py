"""Loading a metric as an `evaluate` module: ours from the package, or a user's from the path they name.

`evaluate.load("bleu")` would fetch a script from the Hugging Face hub and run it: code nobody named,
so any other name is refused. Our metrics are scripts in harness/metrics/modules loaded by file path,
which never touches the network.
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


def check_metric_name(name: str) -> None:
    """A shipped metric's name or a path to a `.py` module; any other name is one line (nothing is fetched)."""
    if name in SHIPPED_METRICS or name.endswith(".py"):
        return
    close = difflib.get_close_matches(name, SHIPPED_METRICS, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    shadow = Path(name) / f"{Path(name).name}.py"
    named = f"to use {shadow}, name the file; " if shadow.is_file() else ""
    raise InputError(
        f"metric {name!r} is not a shipped metric; {hint}{named}expected one of {', '.join(SHIPPED_METRICS)}, "
        "or a path to your own .py module (hub metrics are not loaded: their scripts would run as code)"
    )


def load_metric(name_or_path: str, *, task_dir: Path | None = None) -> evaluate.EvaluationModule:
    """A fresh `evaluate` module: a shipped name or a `.py` file (relative to `task_dir`); never the hub's.

    Modules compute in memory (keep_in_memory), so no Arrow files or locks are left in the HF cache.
    """
    check_metric_name(name_or_path)
    if name_or_path in SHIPPED_METRICS:
        return _load_script(SHIPPED_METRICS[name_or_path])
    return _load_user_script(name_or_path, task_dir)


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
    except Exception as error:  # the user's own module failing to load is a problem of their input
        message = _one_line(error) or type(error).__name__
        raise InputError(f"metric: {path}: the module does not load ({type(error).__name__}: {message})") from None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
