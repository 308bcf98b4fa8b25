"""`advisor serve --engine vllm`: vLLM's own OpenAI server over the task's base and its LoRA adapters.

A thin launcher, not a re-implementation: the command line vLLM needs (`--enable-lora`, one
`--lora-modules NAME=PATH` per LoRA adapter under the names the built-in server uses), then this
process becomes vLLM's (exec), so SIGTERM and Ctrl-C reach vLLM directly. The API key goes to vLLM
through its VLLM_API_KEY environment variable, never on a command line that `ps` would show.

What vLLM serves differs from the built-in engine: every name answers the messages as sent (vLLM
knows nothing of a rung's own prompt, so `lora` behaves as the built-in `lora:raw`), and only LoRA
adapters over the full-precision base are served; the others are named as left out.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from advisor.serving.catalog import Catalog
from harness.errors import RunError

_MODULE = "vllm.entrypoints.openai.api_server"
_RANKS = (8, 16, 32, 64, 128, 256, 512)  # the --max-lora-rank values vLLM accepts


@dataclass(frozen=True)
class VllmLaunch:
    """vLLM's command line, the environment it adds, and what it leaves out of the catalog."""

    command: list[str]
    environment: dict[str, str]
    left_out: list[str]


def vllm_launch(
    model_path: str,
    catalog: Catalog,
    host: str,
    port: int,
    max_adapters: int,
    key: str | None,
    python: str = sys.executable,
) -> VllmLaunch:
    """The launch of vLLM's server for this catalog: the base under the name `base`, each LoRA adapter by its name."""
    served = [a for a in catalog.adapters if a.group == "shared"]
    own = [a for a in catalog.adapters if a.group != "shared"]
    left_out = [f"{a.name} ({a.method}: vLLM serves LoRA adapters only)" for a in own]
    left_out += [f"{r.name} (a prompting rung: only the built-in engine builds its prompt)" for r in catalog.prompting]
    command = [python, "-m", _MODULE, "--model", model_path, "--served-model-name", "base"]
    command += ["--host", host, "--port", str(port)]
    if served:
        command += ["--enable-lora", "--max-loras", str(min(max_adapters, len(served)))]
        rank = max(_rank(a.path) for a in served)
        command += ["--max-lora-rank", str(next((r for r in _RANKS if r >= rank), rank))]
        command += ["--lora-modules", *(f"{a.name}={a.path}" for a in served)]
    return VllmLaunch(command, {"VLLM_API_KEY": key} if key is not None else {}, left_out)


def require_vllm(cuda_available: Callable[[], bool]) -> None:
    """vLLM installed and a CUDA GPU present, or one line saying which is missing."""
    if importlib.util.find_spec("vllm") is None:
        raise RunError(
            "--engine vllm needs vLLM (pip install vllm, on a machine with a CUDA GPU); drop --engine to serve here"
        )
    if not cuda_available():
        raise RunError(
            "--engine vllm needs a CUDA GPU and this machine has none; drop --engine to serve with the built-in engine"
        )


def exec_vllm(launch: VllmLaunch, say: Callable[[str], None]) -> None:
    """Say what is left out, then become vLLM's server process (this call does not return)."""
    for line in launch.left_out:
        say(f"not served by vLLM: {line}")
    say("starting vLLM: " + " ".join(launch.command[2:]))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(launch.command[0], launch.command, {**os.environ, **launch.environment})


def _rank(folder: Path) -> int:
    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    rank = config.get("r", 16)
    return int(rank) if isinstance(rank, int) else 16


def describe(launch: VllmLaunch) -> Sequence[str]:
    """The command and what is left out, for `--list` with `--engine vllm`."""
    return ["vLLM command: " + " ".join(launch.command[2:]), *(f"not served by vLLM: {x}" for x in launch.left_out)]
