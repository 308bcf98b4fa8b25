"""The import contracts of pyproject.toml ([tool.importlinter]) hold, and docs/architecture.md draws the real imports.

`make lint` runs the same contracts (`lint-imports`); this test keeps them in the suite CI runs.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from importlinter.cli import lint_imports

from tests.layers import DOC, ROOT, build_graph, circles, documented, drawings, package_edges


def test_the_import_contracts_hold(capsys: pytest.CaptureFixture[str]) -> None:
    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    assert code == 0, capsys.readouterr().out


def test_no_package_imports_another_that_imports_it_back() -> None:
    graph = build_graph()
    for harness_inside in (False, True):
        assert circles(package_edges(graph, harness_inside=harness_inside)) == []


def test_the_architecture_doc_draws_the_real_imports() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name, drawing in drawings().items():
        assert documented(text, name) == drawing, f"run `.venv/bin/python -m tests.layers --write` ({name})"


def test_the_deciding_layer_loads_no_model_library() -> None:
    """What the forbidden contract says of the import graph, checked at run time too: every module of
    advisor.decision imports without torch or transformers (what `advisor gate` and `report` stand on)."""
    probe = (
        "import pkgutil, importlib, sys, advisor.decision as d\n"
        "for m in pkgutil.iter_modules(d.__path__): importlib.import_module(f'advisor.decision.{m.name}')\n"
        "print(sorted(n for n in ('torch', 'transformers', 'peft', 'trl') if n in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
