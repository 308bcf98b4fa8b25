"""Starting `advisor serve`: the task's catalog, the checks made before anything loads, the models, uvicorn.

The address is checked and bound before the model loads, so a refused address (beyond loopback with
no API key) or a taken port fails at once, as one line. uvicorn stops on SIGTERM or Ctrl-C after
finishing the requests in flight; the batcher then stops with the app.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advisor.measure.prepare import AssessOptions, PreparedRun, ProgressHooks, prepare_run
from advisor.measure.rung_builder import BoundRungs, ChoiceNotStored, bound_rungs
from advisor.serving.catalog import Catalog, build_catalog, parse_adapter_option
from advisor.task.rung_plan import PlannedRung
from harness.errors import InputError, RunError
from harness.inference.engine import Engine
from harness.inference.models import load_model
from harness.rungs import Predictor, PromptAnswering

_GRACE_S = 30  # how long requests in flight may take to finish after SIGTERM


@dataclass(frozen=True)
class ServeOptions:
    """What the command line sets for `advisor serve`."""

    host: str = "127.0.0.1"
    port: int = 8000
    adapters: tuple[str, ...] = ()  # NAME=PATH
    max_adapters: int = 8
    api_key_env: str | None = None
    max_tokens_limit: int = 1024
    max_concurrency: int = 64
    device: str = "auto"
    batch_window_ms: float = 10.0
    no_batching: bool = False  # one request at a time, adapters switched per request: the benchmark's baseline
    engine: str = "builtin"  # or "vllm": vLLM's own server (advisor/serving/vllm_launch.py)


def api_key(options: ServeOptions) -> str | None:
    """The key from the named environment variable; refuses a non-loopback address without one."""
    key = None
    if options.api_key_env is not None:
        key = os.environ.get(options.api_key_env, "")
        if not key:
            raise InputError(f"--api-key-env {options.api_key_env}: that environment variable is not set or empty")
    if key is None and not is_loopback(options.host):
        raise InputError(
            f"--host {options.host}: serving beyond this machine needs an API key (--api-key-env NAME); "
            "without one, bind to 127.0.0.1"
        )
    return key


def is_loopback(host: str) -> bool:
    """Whether the address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on the address, or a RunError naming it (port taken, address not local)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise RunError(f"--host {host} --port {port}: cannot listen there ({error.strerror or error})") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def catalog_of(run: PreparedRun, adapters: Sequence[str]) -> Catalog:
    """What a server of this task serves; reads the trained artifacts' cards and the result store, loads no
    model. A rung whose choice on validation (or whose teacher's) is not stored is left out, with the command
    that makes it: serving never chooses (it would answer otherwise than the assessment did)."""
    extra = [parse_adapter_option(text) for text in adapters]
    tuned: list[tuple[Any, str | None, Path | None]] = []
    answering: dict[str, PromptAnswering] = {}  # how each tuned rung's model answers, as it declares it
    prompting = []
    unchosen = []
    with bound_rungs(run, stored_only=True) as rungs:
        for planned in run.planned:
            if planned.endpoint is not None or planned.model is not None:  # it runs elsewhere: nothing to serve here
                continue
            try:
                model = rungs.tuned(planned)
                if model is None:
                    rungs.chosen(planned)
                    prompting.append(planned)
                    continue
                card = model.card()
            except ChoiceNotStored:
                unchosen.append(planned.name)
                continue
            tuned.append((planned, card.method, model.artifact_dir) if card is not None else (planned, None, None))
            if model.answering is not None:
                answering[planned.name] = model.answering
    return build_catalog(run.source.name, tuned, prompting, extra, str(run.task.path), unchosen, answering=answering)


def prepare(task_file: Path, options: ServeOptions, hooks: ProgressHooks) -> tuple[PreparedRun, Catalog]:
    """The task and its catalog: bad input fails here, before any model loads."""
    for text in options.adapters:
        parse_adapter_option(text)
    # a rung at an endpoint is not served here: no key is needed
    run = prepare_run(task_file, AssessOptions(device=options.device), hooks, sends=False)
    return run, catalog_of(run, options.adapters)


def build_app(run: PreparedRun, catalog: Catalog, options: ServeOptions, key: str | None) -> Any:
    """Load the models (the base and the first adapters) and assemble the app around them."""
    from advisor.serving.app import AppSettings, create_app
    from advisor.serving.batcher import Batcher
    from advisor.serving.execution import Executor
    from advisor.serving.pool import ModelPool
    from advisor.serving.requests import Limits, Requests
    from tuning.rows import tuned_prompts

    context = run.context
    base = context.engine
    placement = run.placement
    rungs = served_rungs(run, catalog)

    def fresh_base() -> Any:  # own-model rungs copy the base; the shared one has LoRA layers injected
        return load_model(run.source, placement.device, placement.dtype)

    own = Engine.deferred(fresh_base, base.tokenizer, placement.device, max_batch_tokens=base.max_batch_tokens)

    def nf4_base() -> Engine:  # the QLoRA adapters' shared base: the run's one nf4 load, as training used it
        from tuning.methods import quantized_base

        model = quantized_base(context.model_path, placement.device)
        return Engine(model, base.tokenizer, max_batch_tokens=base.max_batch_tokens)

    pool = ModelPool(base, lambda rung: rungs.build(rung, engine=own).predictor, options.max_adapters, nf4_base)
    pool.start(catalog)
    built: dict[str, Predictor] = {}

    def prompting(name: str) -> Predictor:
        if name not in built:
            planned = next(p for p in catalog.prompting if p.name == name)
            built[name] = rungs.build(planned, engine=pool.shared).predictor
            built[name].prepare()
        return built[name]

    tuned = tuned_prompts(context.prompts)
    executor = Executor(pool, tuned, context.labels, prompting, switching=options.no_batching)
    batcher = Batcher(
        executor,
        window_s=0.0 if options.no_batching else options.batch_window_ms / 1000,
        max_batch_tokens=base.max_batch_tokens,
        max_batch_jobs=1 if options.no_batching else None,
    )
    limits = Limits(max_tokens=options.max_tokens_limit, default_max_tokens=min(256, options.max_tokens_limit))
    requests = Requests(catalog, batcher, context.prompts, tuned, context.labels, pool.shared.end_ids, limits)
    settings = AppSettings(api_key=key, max_concurrency=options.max_concurrency)

    def details() -> dict[str, Any]:
        return {"shared_passes": executor.counter.as_dict(), "weight_bytes": pool.weight_bytes}

    return create_app(requests, batcher, settings, details)


def served_rungs(run: PreparedRun, catalog: Catalog) -> BoundRungs:
    """The task's rungs as the server builds them: each with the choice the assessment made on validation.

    Everything a served rung needs of the result store (its choice, its teacher's) is read here, at
    start-up, from a store opened for stored answers only; the store is then closed, so the serving
    worker never touches it (and never computes a choice: the catalog left out rungs without one).
    """
    rungs = BoundRungs.open(run, stored_only=True)
    try:
        for planned in catalog.prompting:
            rungs.chosen(planned)
        for rung in _own_model_rungs(catalog):
            tuned = rungs.tuned(rung)
            if tuned is not None:
                _ = tuned.artifact_dir  # its key: a student's teacher is built (and its choice read) now
    finally:
        rungs.close()
    return rungs


def _own_model_rungs(catalog: Catalog) -> list[PlannedRung]:
    return [a.rung for a in catalog.adapters if a.group == "own" and a.rung is not None]


def require_serve_extra() -> None:
    """fastapi and uvicorn are an extra: without them, one line saying how to install them."""
    missing = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise RunError(f"advisor serve needs {' and '.join(missing)}: pip install 'ladder-advisor[serve]'")


def serve_until_stopped(task_file: Path, options: ServeOptions, hooks: ProgressHooks) -> None:
    """Check, bind, load, then serve until SIGTERM or Ctrl-C (requests in flight finish first)."""
    import uvicorn

    key = api_key(options)
    run, catalog = prepare(task_file, options, hooks)
    sock = bind(options.host, options.port)
    hooks.stage(f"loading {run.source.name} and its adapters")
    app = build_app(run, catalog, options, key)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    line = f"serving {len(catalog.model_ids())} models on http://{shown}:{port}/v1 (GET /v1/models lists them)"
    print(line, file=sys.stderr, flush=True)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, timeout_graceful_shutdown=_GRACE_S, lifespan="on"
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    print("stopped", file=sys.stderr, flush=True)


def vllm_of(run: PreparedRun, catalog: Catalog, options: ServeOptions, key: str | None) -> Any:
    """vLLM's launch for this task: its base model folder, the catalog's LoRA adapters, the address and key."""
    from advisor.serving.vllm_launch import vllm_launch

    return vllm_launch(run.source.path, catalog, options.host, options.port, options.max_adapters, key)


def serve_with_vllm(task_file: Path, options: ServeOptions, hooks: ProgressHooks) -> None:
    """Check vLLM and the GPU, then become vLLM's OpenAI server over the task's base and LoRA adapters."""
    import torch

    from advisor.serving.vllm_launch import exec_vllm, require_vllm

    key = api_key(options)
    run, catalog = prepare(task_file, options, hooks)
    require_vllm(torch.cuda.is_available)
    exec_vllm(vllm_of(run, catalog, options, key), lambda line: print(line, file=sys.stderr, flush=True))
