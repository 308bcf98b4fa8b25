"""The one registry of rungs, tuning methods, task types and tracking sinks: names are taken once, lookups
suggest, entry point groups load on the first lookup."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import tomllib

from advisor.tracking.sinks import register_sink, sink_names
from harness.errors import InputError, RunError
from harness.registry import Registry
from harness.rungs import RUNGS, Predictor, RungConfig, RungContext, get_rung, rung
from harness.task_types import TaskType, get_task_type, register_task_type
from tuning.options import TuneConfig
from tuning.registry import TuningMethod, get_method, method_names
from tuning.tuned import tuned_rung

WIDGETS: Registry[int] = Registry("widget", "ladder.test_widgets")  # what the plug-in below registers into
PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.fixture
def widget_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real installed distribution (a .dist-info on sys.path) whose `ladder.test_widgets` entry point
    registers the widget 'spoke'; WIDGETS is fresh, and the plug-in module is forgotten afterwards."""
    module = f"widget_plugin_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{module}.py").write_text(
        "import tests.harness.test_registry as home\n\nhome.WIDGETS.add('spoke', 1)\n", encoding="utf-8"
    )
    info = tmp_path / "widget_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: widget-plugin\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[ladder.test_widgets]\nspoke = {module}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys.modules[__name__], "WIDGETS", Registry("widget", "ladder.test_widgets"))
    yield module
    sys.modules.pop(module, None)


def test_a_taken_name_is_refused_naming_both_modules() -> None:
    registry: Registry[int] = Registry("widget")
    registry.add("gear", 1, "ladder_gears")
    with pytest.raises(RunError, match=r"widget 'gear' is registered twice: by ladder_gears and by other_plugin"):
        registry.add("gear", 2, "other_plugin")
    with pytest.raises(RunError, match=rf"by ladder_gears and by {__name__}"):
        registry.add("gear", 3)  # the registering module is the caller's by default
    assert registry.get("gear") == 1


def test_the_same_module_registering_again_replaces_its_own_item() -> None:
    registry: Registry[int] = Registry("widget")
    registry.add("gear", 1)
    registry.add("gear", 2)  # importlib.reload runs the module again
    assert registry.get("gear") == 2


def test_an_unknown_name_suggests_the_close_match_and_lists_the_known_sorted() -> None:
    registry: Registry[int] = Registry("widget")
    for name in ("sprocket", "gear", "cog"):
        registry.add(name, 0)
    assert registry.names() == ["cog", "gear", "sprocket"]
    assert "gear" in registry and "gearr" not in registry
    with pytest.raises(InputError) as error:
        registry.get("gearr", "parts[0]")
    assert str(error.value) == "parts[0]: unknown widget 'gearr'; did you mean gear? (known: cog, gear, sprocket)"
    with pytest.raises(InputError, match=r"^unknown widget 'zzz' \(known: cog, gear, sprocket\)$"):
        registry.get("zzz")


def test_the_entry_point_group_is_loaded_on_the_first_lookup_only(widget_plugin: str) -> None:
    WIDGETS.add("axle", 2)
    assert widget_plugin not in sys.modules  # registering does not load plug-ins
    assert WIDGETS.get("spoke") == 1 and WIDGETS.names() == ["axle", "spoke"]
    assert widget_plugin in sys.modules
    importlib.reload(sys.modules[widget_plugin])  # the plug-in registering again is no conflict
    assert WIDGETS.names() == ["axle", "spoke"]


def test_a_plugin_that_reuses_a_taken_name_fails_on_lookup(widget_plugin: str) -> None:
    WIDGETS.add("spoke", 2)
    with pytest.raises(RunError, match=rf"widget 'spoke' is registered twice: by {__name__} and by {widget_plugin}"):
        WIDGETS.names()


def test_the_built_in_groups_register_every_entry_point() -> None:
    points = PYPROJECT["project"]["entry-points"]
    assert set(RUNGS.names()) >= set(points["ladder.rungs"])
    assert {"classification", "qa", "extraction", "generation"} <= set(points["ladder.task_types"])
    assert all(get_task_type(name).name == name for name in points["ladder.task_types"])
    assert set(sink_names()) >= set(points["ladder.trackers"])
    # a tuned rung registers its method with it, under the same name, in one call
    assert set(method_names()) == {"lora", "qlora", "ia3", "full", "prompt_tuning", "prefix_tuning"}
    assert all(get_rung(name).changes_weights for name in method_names())
    assert get_method("qlora").base == "quantized" and get_rung("full").step == 4


def _build(config: RungConfig, context: RungContext) -> Predictor:
    raise AssertionError("never built")


def _wrap(model: Any, options: TuneConfig, init_tokens: Sequence[int]) -> Any:
    return model


def test_a_plugin_cannot_take_a_built_in_name() -> None:
    get_rung("zero_shot")  # the built-ins are registered
    with pytest.raises(RunError, match=rf"rung 'lora' is registered twice: by tuning.lora and by {__name__}"):
        rung("lora", config=RungConfig, step=0)(_build)
    with pytest.raises(RunError, match=rf"rung 'qlora' is registered twice: by tuning.qlora and by {__name__}"):
        tuned_rung(TuningMethod("qlora", _wrap, learning_rate=1e-3), config=TuneConfig, step=3)
    with pytest.raises(RunError, match=rf"task type 'qa' is registered twice: by .*qa and by {__name__}"):
        register_task_type(TaskType("qa", lambda labels: None, (), "f1"))  # type: ignore[arg-type,return-value]
    with pytest.raises(RunError, match=rf"tracking backend 'mlflow' is registered twice: .* and by {__name__}"):
        register_sink("mlflow")(lambda target: None)  # type: ignore[arg-type,return-value]
    assert get_method("qlora").base == "quantized" and get_rung("lora").step == 3


def test_the_plugin_api_exports_every_name_it_lists() -> None:
    import advisor.plugin_api as api

    assert sorted(api.__all__) == sorted(api._HOME)
    assert all(getattr(api, name) is not None for name in api.__all__)
    assert api.tuned_rung is tuned_rung and api.rung is rung and api.register_task_type is register_task_type
