"""`advisor serve`: the base model and every trained adapter behind one OpenAI-compatible endpoint."""

from __future__ import annotations

from pathlib import Path

import click

from advisor.cli.support import err_console, reports_errors, task_argument


@click.command()
@task_argument
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (beyond loopback: a key).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: any free one).")
@click.option(
    "--adapter",
    "adapters",
    multiple=True,
    metavar="NAME=PATH",
    help="Also serve this peft LoRA adapter folder as model NAME (repeatable).",
)
@click.option("--list", "list_only", is_flag=True, help="Print what would be served, under which names, then stop.")
@click.option(
    "--max-adapters",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Adapters kept in memory at once; the least recently used one is dropped and reloaded when asked for.",
)
@click.option(
    "--api-key-env",
    metavar="NAME",
    help="Require the API key held in this environment variable (Authorization: Bearer <key>).",
)
@click.option(
    "--max-tokens-limit",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="The most tokens one request may generate.",
)
@click.option(
    "--max-concurrency",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Requests in flight at once; more are answered 429.",
)
@click.option(
    "--batch-window-ms",
    type=click.FloatRange(min=0, max=10_000),
    default=10.0,
    show_default=True,
    help="How long a batch waits after its first request for others to join it (more: fuller batches, more latency).",
)
@click.option(
    "--no-batching",
    is_flag=True,
    help="Answer one request at a time, switching adapters per request (the naive way; a benchmark baseline).",
)
@click.option(
    "--engine",
    type=click.Choice(["builtin", "vllm"]),
    default="builtin",
    show_default=True,
    help="vllm: start vLLM's own OpenAI server with --enable-lora over the same adapters (needs vLLM and a GPU).",
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@reports_errors
def serve(
    task_file: Path,
    host: str,
    port: int,
    adapters: tuple[str, ...],
    list_only: bool,
    max_adapters: int,
    api_key_env: str | None,
    max_tokens_limit: int,
    max_concurrency: int,
    batch_window_ms: float,
    no_batching: bool,
    engine: str,
    device: str,
) -> None:
    """Serve the base model of TASK_FILE and every trained tuned rung behind one OpenAI-compatible endpoint.

    A request's `model` names what answers: `base`, a tuned rung (`lora`: in the rung's own prompt, the
    assessment's answer; `lora:raw`: the messages as sent), a prompting rung, or an --adapter NAME.
    Needs the serve extra: pip install 'ladder-advisor[serve]'.
    """
    from advisor.serving.launch import (
        ServeOptions,
        api_key,
        prepare,
        require_serve_extra,
        serve_until_stopped,
        serve_with_vllm,
        vllm_of,
    )
    from advisor.serving.vllm_launch import describe

    options = ServeOptions(
        host=host,
        port=port,
        adapters=adapters,
        max_adapters=max_adapters,
        api_key_env=api_key_env,
        max_tokens_limit=max_tokens_limit,
        max_concurrency=max_concurrency,
        batch_window_ms=batch_window_ms,
        no_batching=no_batching,
        engine=engine,
        device=device,
    )
    from advisor.report.progress import progress_hooks

    hooks = progress_hooks(err_console)
    if list_only:
        run, catalog = prepare(task_file, options, hooks)
        lines = catalog.describe() if engine == "builtin" else describe(vllm_of(run, catalog, options, None))
        for line in lines:
            click.echo(line)
        return
    if engine == "vllm":
        serve_with_vllm(task_file, options, hooks)
        return
    api_key(options)  # a refused address fails before anything loads
    require_serve_extra()
    serve_until_stopped(task_file, options, hooks)
