"""`advisor serve` in parts: mixed-adapter batches against one adapter at a time, the adapter LRU, the batcher,
the catalog and the start-up checks. The real server is tested in tests/advisor/serving/test_serve_process.py."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from advisor.serving.batcher import Batcher, Job
from advisor.serving.catalog import ServedAdapter, build_catalog, extra_adapter, parse_adapter_option
from advisor.serving.launch import ServeOptions, api_key, is_loopback
from advisor.serving.pool import ModelPool
from advisor.task.rung_plan import PlannedRung, plan_rungs
from harness.errors import InputError, RunError
from harness.inference.adapter_routing import BASE_ADAPTER
from harness.inference.engine import ChoiceRequest, Engine
from harness.inference.prompts import PromptBuilder, PromptFormat
from harness.rungs import Predictor

ELSEWHERE = "ladder.invalid"  # a host beyond loopback for the refusal checks; .invalid never resolves
PROMPTS = ("I was charged twice", "How do I reset my password? Please help", "Ticket:", "The app crashes")


def lora_adapter(tiny_model: Any, folder: Path, seed: int) -> Path:
    """A LoRA adapter with random (non-zero) weights, saved as peft saves it."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(copy.deepcopy(tiny_model), config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def adapters(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("adapters")
    return {name: lora_adapter(tiny_model, folder / name, seed) for seed, name in enumerate(("a", "b", "c"), start=1)}


def served(adapters: dict[str, Path]) -> list[ServedAdapter]:
    return [ServedAdapter(name, path, "lora", "shared") for name, path in adapters.items()]


def ids(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def one_adapter_engine(tiny_model: Any, tokenizer: Any, folder: Path | None) -> Engine:
    """The reference: a model holding only this adapter (or none), answering without adapter names."""
    from peft import PeftModel

    model = copy.deepcopy(tiny_model)
    if folder is not None:
        model = PeftModel.from_pretrained(model, str(folder)).eval()
    return Engine(model, tokenizer)


def pool_of(tiny_model: Any, tokenizer: Any, adapters: dict[str, Path], max_adapters: int) -> ModelPool:
    base = Engine(copy.deepcopy(tiny_model), tokenizer)
    pool = ModelPool(base, no_own_models, max_adapters)
    pool.start(build_catalog("tiny", [], [], [(a.name, a.path) for a in served(adapters)], "task.yaml"))
    return pool


def no_own_models(rung: PlannedRung) -> Predictor:
    raise AssertionError(f"these pools serve shared LoRA adapters only, not {rung.name}")


# ---- the engine with per-row adapters ----------------------------------------------------------------


def test_a_mixed_adapter_batch_generates_what_each_adapter_generates_alone(
    tiny_model: Any, tiny_tokenizer: Any, adapters: dict[str, Path]
) -> None:
    pool = pool_of(tiny_model, tiny_tokenizer, adapters, max_adapters=3)
    prompts = ids(tiny_tokenizer, PROMPTS)
    rows = [served(adapters)[0], None, served(adapters)[1], served(adapters)[2]]
    names = pool.row_names(rows)
    assert names is not None and names[1] == BASE_ADAPTER and len(set(names)) == 4
    mixed = pool.shared.generate(prompts, max_new_tokens=6, adapters=names)
    for prompt, row, generation in zip(prompts, rows, mixed, strict=True):
        alone = one_adapter_engine(tiny_model, tiny_tokenizer, adapters[row.name] if row else None)
        assert generation == alone.generate([prompt], max_new_tokens=6)[0]
    assert len({g.text for g in mixed}) > 1, "the adapters must change the answers for this test to mean anything"


def test_a_mixed_adapter_batch_scores_what_each_adapter_scores_alone(
    tiny_model: Any, tiny_tokenizer: Any, adapters: dict[str, Path]
) -> None:
    pool = pool_of(tiny_model, tiny_tokenizer, adapters, max_adapters=3)
    choices = tuple(tuple(c) for c in ids(tiny_tokenizer, (" billing", " technical issue", " data privacy")))
    requests = [ChoiceRequest(tuple(p), choices) for p in ids(tiny_tokenizer, PROMPTS[:3])]
    rows = [served(adapters)[1], None, served(adapters)[0]]
    mixed = pool.shared.score(requests, adapters=pool.row_names(rows))
    for request, row, scores in zip(requests, rows, mixed, strict=True):
        alone = one_adapter_engine(tiny_model, tiny_tokenizer, adapters[row.name] if row else None)
        assert scores == pytest.approx(alone.score([request])[0], abs=1e-5)


def test_token_logprobs_equal_a_plain_forward(tiny_model: Any, tiny_tokenizer: Any) -> None:
    sequences = ids(tiny_tokenizer, PROMPTS[:2])
    scored = Engine(tiny_model, tiny_tokenizer).token_logprobs(sequences, top=3)
    for sequence, row in zip(sequences, scored, strict=True):
        with torch.no_grad():
            logprobs = torch.log_softmax(tiny_model(torch.tensor([sequence])).logits[0], -1)
        assert [t.token for t in row] == sequence[1:]
        for i, entry in enumerate(row):
            assert entry.logprob == pytest.approx(float(logprobs[i, sequence[i + 1]]), abs=1e-4)
            assert [t for t, _ in entry.top] == logprobs[i].topk(3).indices.tolist()


def test_a_token_callback_can_end_one_row_early(tiny_model: Any, tiny_tokenizer: Any) -> None:
    prompts = ids(tiny_tokenizer, PROMPTS[:2])
    heard: list[tuple[int, int]] = []

    def listener(index: int, token: int) -> bool:
        heard.append((index, token))
        return not (index == 0 and sum(1 for i, _ in heard if i == 0) >= 2)

    engine = Engine(tiny_model, tiny_tokenizer)
    cut, free = engine.generate(prompts, max_new_tokens=6, on_token=listener)
    whole = engine.generate(prompts, max_new_tokens=6)
    assert cut.completion_tokens == 2 and cut.tokens == whole[0].tokens[:2]
    assert free == whole[1]
    assert [t for i, t in heard if i == 1] == list(whole[1].tokens)


def test_rows_with_their_own_adapters_never_share_a_cached_prefix(tiny_model: Any, tiny_tokenizer: Any) -> None:
    with pytest.raises(ValueError, match="cached prefix"):
        Engine(tiny_model, tiny_tokenizer).generate([[5, 6]], max_new_tokens=2, prefix=[7], adapters=["x"])


# ---- the pool ----------------------------------------------------------------------------------------


def test_the_pool_keeps_at_most_max_adapters_and_reloads_the_dropped_one(
    tiny_model: Any, tiny_tokenizer: Any, adapters: dict[str, Path]
) -> None:
    from safetensors.torch import load_file

    pool = pool_of(tiny_model, tiny_tokenizer, adapters, max_adapters=2)
    a, b, c = served(adapters)
    prompt = ids(tiny_tokenizer, PROMPTS[:1])
    first = pool.shared.generate(prompt, max_new_tokens=6, adapters=pool.row_names([a]))
    assert pool.resident == ["b", "a"]  # a and b loaded at start, a used last
    pool.row_names([c])
    assert pool.resident == ["a", "c"] and pool.loads == 3  # b, the least recently used, was dropped
    weights = pool.weight_bytes
    assert set(weights["adapters"]) == {"a", "c"} and weights["own_models"] == {}
    saved = load_file(str(adapters["a"] / "adapter_model.safetensors"))
    assert weights["adapters"]["a"] == sum(t.numel() * t.element_size() for t in saved.values()) > 0
    assert weights["shared_base"] == sum(p.numel() * 4 for p in tiny_model.parameters())
    again = pool.shared.generate(prompt, max_new_tokens=6, adapters=pool.row_names([a]))
    assert again == first and pool.loads == 3
    with pytest.raises(ValueError, match="max_adapters"):
        pool.row_names([a, b, c])


def test_switching_adapters_per_request_answers_as_the_mixed_batch_and_counts_one_row_per_pass(
    tiny_model: Any, tiny_tokenizer: Any, adapters: dict[str, Path]
) -> None:
    from advisor.serving.execution import SHARED, Executor, Generate, TokensWork

    pool = pool_of(tiny_model, tiny_tokenizer, adapters, max_adapters=3)
    a, b, _ = served(adapters)
    rows = [a, None, b, a]
    jobs = [_job(TokensWork(tuple(p), row)) for p, row in zip(ids(tiny_tokenizer, PROMPTS), rows, strict=True)]
    prompts = PromptBuilder(tiny_tokenizer, PromptFormat(instruction="Route the ticket.", labels=("billing",)))
    mixed = Executor(pool, prompts, ("billing",), _no_prompting)
    switching = Executor(pool, prompts, ("billing",), _no_prompting, switching=True)
    key = Generate(SHARED, max_new_tokens=5)
    assert switching(key, jobs) == mixed(key, jobs)
    assert mixed.counter.as_dict() == {"passes": 1, "rows": 4, "widest": 4, "most_adapters": 3, "mixed": 1}
    assert switching.counter.as_dict() == {"passes": 4, "rows": 4, "widest": 1, "most_adapters": 1, "mixed": 0}


def test_an_adapter_switched_in_never_reads_a_prefix_cached_under_another(
    tiny_model: Any, tiny_tokenizer: Any, adapters: dict[str, Path]
) -> None:
    """One-adapter batches share a cached prompt prefix; its keys and values depend on the adapter that made
    them, so the next adapter (or the base) computes its own."""
    pool = pool_of(tiny_model, tiny_tokenizer, adapters, max_adapters=3)
    a, b, _ = served(adapters)
    prefix = ids(tiny_tokenizer, PROMPTS[:1])[0]
    queries = ids(tiny_tokenizer, PROMPTS[1:3])
    answers = {}
    for adapter in (a, b, None, a):
        with pool.switched_to(adapter):
            answers[adapter] = pool.shared.generate(queries, max_new_tokens=5, prefix=prefix)
    for adapter in (a, b):
        whole = [[*prefix, *query] for query in queries]
        alone = pool.shared.generate(whole, max_new_tokens=5, adapters=pool.row_names([adapter, adapter]))
        assert [g.tokens for g in answers[adapter]] == [g.tokens for g in alone]
    plain = Engine(tiny_model, tiny_tokenizer).generate(queries, max_new_tokens=5, prefix=prefix)
    assert [g.tokens for g in answers[None]] == [g.tokens for g in plain]
    assert [g.tokens for g in answers[a]] != [g.tokens for g in answers[b]]  # the adapters answer differently


def _job(payload: Any) -> Job:
    async def made() -> Job:
        return Job(key="k", payload=payload, cost=1)

    return asyncio.run(made())


def _no_prompting(name: str) -> Any:
    raise AssertionError(f"no prompting rung expected, got {name}")


def test_an_adapter_served_as_lora_loads_without_peft_mistaking_it_for_its_prefix(
    tiny_model: Any, tiny_tokenizer: Any, adapters: dict[str, Path]
) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=UserWarning)  # peft: an adapter named "lora" may be reinitialised
        pool = pool_of(tiny_model, tiny_tokenizer, {"lora": adapters["a"], "lora_": adapters["b"]}, max_adapters=2)
    prompt = ids(tiny_tokenizer, PROMPTS[:1])
    lora = ServedAdapter("lora", adapters["a"], "lora", "shared")
    served_as_lora = pool.shared.generate(prompt, max_new_tokens=6, adapters=pool.row_names([lora]))
    alone = one_adapter_engine(tiny_model, tiny_tokenizer, adapters["a"])
    assert served_as_lora == alone.generate(prompt, max_new_tokens=6) and pool.loads == 2


# ---- the batcher -------------------------------------------------------------------------------------


class Recorder:
    """A runner that records each call's key and jobs, and answers each job with its payload."""

    def __init__(self, fail_on: Hashable | None = None):
        self.calls: list[tuple[Hashable, list[Any]]] = []
        self.fail_on = fail_on

    def __call__(self, key: Hashable, jobs: Sequence[Job]) -> list[Any]:
        self.calls.append((key, [job.payload for job in jobs]))
        if key == self.fail_on:
            raise RuntimeError("boom")
        return [job.payload for job in jobs]


def run_jobs(batcher: Batcher, specs: Sequence[tuple[Hashable, Any, int]], cancel: Sequence[int] = ()) -> list[Any]:
    async def main() -> list[Any]:
        batcher.start()
        jobs = [Job(key, payload, cost) for key, payload, cost in specs]
        for index in cancel:
            jobs[index].cancel()
        waits = [asyncio.ensure_future(batcher.submit(job)) for job in jobs]
        results = await asyncio.gather(*waits, return_exceptions=True)
        await batcher.stop()
        return list(results)

    return asyncio.run(main())


def test_concurrent_requests_share_one_batch_grouped_by_what_can_run_together() -> None:
    runner = Recorder()
    results = run_jobs(Batcher(runner, window_s=0.05), [("gen", 1, 10), ("score", 2, 10), ("gen", 3, 10)])
    assert results == [1, 2, 3]
    assert runner.calls == [("gen", [1, 3]), ("score", [2])]


def test_the_token_budget_splits_a_batch_in_arrival_order() -> None:
    runner = Recorder()
    run_jobs(Batcher(runner, window_s=0.05, max_batch_tokens=25), [("gen", 1, 10), ("gen", 2, 10), ("gen", 3, 10)])
    assert runner.calls == [("gen", [1, 2]), ("gen", [3])]


def test_a_cancelled_job_is_never_run() -> None:
    runner = Recorder()
    results = run_jobs(Batcher(runner, window_s=0.05), [("gen", 1, 10), ("gen", 2, 10)], cancel=[0])
    assert runner.calls == [("gen", [2])] and results[1] == 2


def test_a_failing_group_fails_only_its_own_requests() -> None:
    results = run_jobs(Batcher(Recorder(fail_on="bad"), window_s=0.05), [("bad", 1, 10), ("gen", 2, 10)])
    assert isinstance(results[0], RuntimeError) and results[1] == 2


# ---- what is served, and the checks before anything loads --------------------------------------------


def test_routes_name_the_base_adapters_raw_adapters_and_prompting_rungs(adapters: dict[str, Path]) -> None:
    planned = plan_rungs(["zero_shot", {"rung": "lora", "r": 4}, {"rung": "lora", "name": "big", "r": 64}], "t")
    zero, lora, big = planned
    catalog = build_catalog(
        "tiny", [(lora, "lora", adapters["a"]), (big, None, None)], [zero], [("extra", adapters["b"])], "t.yaml"
    )
    assert catalog.model_ids() == ["base", "lora", "lora:raw", "extra", "zero_shot"]
    assert catalog.route("lora").rung == lora and catalog.route("lora").adapter is not None
    assert catalog.route("lora:raw").raw and catalog.route("lora:raw").adapter == catalog.route("lora").adapter
    assert catalog.route("extra").raw and catalog.route("zero_shot").adapter is None
    assert catalog.route("base").raw and catalog.route("base").adapter is None
    with pytest.raises(InputError, match="did you mean lora"):
        catalog.route("lorra")
    with pytest.raises(InputError, match="not trained yet"):
        catalog.route("big")
    assert any("not served: big" in line for line in catalog.describe())


@pytest.mark.parametrize(
    ("text", "expected"),
    [("noequals", "expected NAME=PATH"), ("=x", "expected NAME=PATH"), ("base=x", "NAME must be"), ("a:b=x", "NAME")],
)
def test_a_bad_adapter_option_is_bad_input(text: str, expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        parse_adapter_option(text)


def test_an_adapter_folder_must_hold_a_lora_adapter(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="expected a peft adapter folder"):
        extra_adapter("x", tmp_path)
    (tmp_path / "adapter_config.json").write_text('{"peft_type": "IA3"}')
    (tmp_path / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(InputError, match="only plain LoRA adapters"):
        extra_adapter("x", tmp_path)


def test_a_served_name_is_used_once(adapters: dict[str, Path]) -> None:
    zero = plan_rungs(["zero_shot"], "t")[0]
    with pytest.raises(InputError, match="the name is taken"):
        build_catalog("tiny", [], [zero], [("zero_shot", adapters["a"])], "t.yaml")


def test_an_address_beyond_loopback_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    # a reserved name that never resolves: nothing here binds or calls beyond 127.0.0.1
    assert not is_loopback(ELSEWHERE)
    with pytest.raises(InputError, match="needs an API key"):
        api_key(ServeOptions(host=ELSEWHERE))
    monkeypatch.delenv("LADDER_TEST_KEY", raising=False)
    with pytest.raises(InputError, match="LADDER_TEST_KEY: that environment variable is not set"):
        api_key(ServeOptions(api_key_env="LADDER_TEST_KEY"))
    monkeypatch.setenv("LADDER_TEST_KEY", "sekrit")
    assert api_key(ServeOptions(host=ELSEWHERE, api_key_env="LADDER_TEST_KEY")) == "sekrit"
    assert api_key(ServeOptions()) is None


def test_serve_list_names_what_would_be_served_and_bad_input_is_one_line(ticket_task: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from advisor.cli.main import main

    def serve(*args: str) -> Any:
        return CliRunner().invoke(main, ["serve", str(ticket_task), *args], catch_exceptions=False)

    listed = serve("--list")
    assert listed.exit_code == 0, listed.output
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["base", "zero_shot", "gen"]
    for args, expected in [
        (("--host", ELSEWHERE), "needs an API key"),
        (("--adapter", "nope"), "expected NAME=PATH"),
        (("--adapter", f"x={tmp_path / 'missing'}", "--list"), "expected a peft adapter folder"),
    ]:
        result = serve(*args)
        assert result.exit_code == 2, result.output
        assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    vllm = serve("--engine", "vllm")
    assert vllm.exit_code != 0 and len(vllm.stderr.strip().splitlines()) == 1, vllm.stderr
    assert "--engine vllm needs" in vllm.stderr
    listed = serve("--engine", "vllm", "--list")
    assert listed.exit_code == 0 and "--served-model-name base" in listed.stdout, listed.output
    assert "not served by vLLM: zero_shot (a prompting rung" in listed.stdout


def test_the_vllm_launch_serves_every_lora_adapter_and_passes_the_key_in_the_environment(
    adapters: dict[str, Path],
) -> None:
    from advisor.serving.vllm_launch import require_vllm, vllm_launch

    zero = plan_rungs(["zero_shot"], "t")[0]
    catalog = build_catalog("tiny", [], [zero], [(a.name, a.path) for a in served(adapters)], "t.yaml")
    launch = vllm_launch("/models/base", catalog, "127.0.0.1", 8001, 2, "sekrit", python="py")
    command = launch.command
    assert command[:3] == ["py", "-m", "vllm.entrypoints.openai.api_server"]
    assert command[command.index("--model") + 1] == "/models/base" and "--enable-lora" in command
    assert command[command.index("--max-lora-rank") + 1] == "8"  # r=4 rounds up to the smallest rank vLLM takes
    assert command[command.index("--max-loras") + 1] == "2"
    assert command[command.index("--lora-modules") + 1 :] == [f"{name}={path}" for name, path in adapters.items()]
    assert launch.environment == {"VLLM_API_KEY": "sekrit"} and "sekrit" not in " ".join(command)
    assert launch.left_out == ["zero_shot (a prompting rung: only the built-in engine builds its prompt)"]
    with pytest.raises(RunError, match=r"needs (a CUDA GPU|vLLM)"):
        require_vllm(lambda: False)


def test_served_qlora_rungs_share_one_nf4_base_stacked_in_one_pass_or_as_models_of_their_own(
    tiny_model: Any, tiny_tokenizer: Any, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from dataclasses import replace

    from harness.rungs import RUNGS
    from harness.types import Example
    from tests.tuning.test_tuning import context
    from tuning.methods import quantized_base
    from tuning.options import LoraOptions
    from tuning.tuned import TunedPredictor

    whole = context(tiny_model, tiny_tokenizer, tmp_path, tiny_model_dir)
    ctx = replace(whole, train=whole.train[:4])  # a step or two: what is tested is what the pool holds
    configs = {"q4": LoraOptions(r=4, epochs=1, batch_tokens=256, max_batch_size=4, search=False),
               "q2": LoraOptions(r=2, epochs=1, batch_tokens=256, max_batch_size=4, search=False)}  # fmt: skip
    predictors = {name: TunedPredictor("qlora", config, ctx) for name, config in configs.items()}
    rungs = {name: PlannedRung(name, RUNGS.get("qlora"), config) for name, config in configs.items()}

    # as models of their own (what a QLoRA rung that cannot be stacked, DoRA say, gets): one nf4 base under both
    pool = ModelPool(Engine(copy.deepcopy(tiny_model), tiny_tokenizer), lambda r: predictors[r.name], 2)
    pool.start(build_catalog("tiny", [], [], [], "task.yaml"))
    for name in configs:
        served_rung = ServedAdapter(name, tmp_path, "qlora", "own", rungs[name])
        outputs = pool.own(served_rung).predict([Example("q", "charged twice", "billing")])
        assert outputs[0].text
    models = [p.engine().model for p in predictors.values()]
    quantized = [
        {id(t) for t in m.parameters() if t.dtype == torch.uint8} for m in models
    ]  # the 4-bit weights of each rung's model
    assert quantized[0] and quantized[0] == quantized[1]  # one nf4 base under both adapters
    weights = pool.weight_bytes
    shared = weights["shared_by_own_models"]
    assert shared >= sum(t.numel() for t in models[0].parameters() if t.dtype == torch.uint8)
    assert all(0 < weights["own_models"][name] < shared / 4 for name in configs)  # each one's adapter only

    # as the catalog serves them: stacked on the one nf4 base, rows for both in one pass. A step or two of training
    # barely moves B, so each rung's B is drawn at random (in its model and its saved adapter) to make it count.
    trained = []
    for index, (name, predictor) in enumerate(predictors.items()):
        model = predictor.engine().model
        torch.manual_seed(index)
        for parameter_name, parameter in model.named_parameters():
            if "lora_B" in parameter_name:
                parameter.data.uniform_(-0.5, 0.5)
        model.save_pretrained(str(tmp_path / "drawn" / name))
        trained.append((rungs[name], "qlora", tmp_path / "drawn" / name))
    catalog = build_catalog("tiny", trained, [], [], "task.yaml")
    assert {(a.group, a.base) for a in catalog.adapters} == {("shared", "quantized")}
    nf4 = Engine(quantized_base(str(tiny_model_dir), "cpu"), tiny_tokenizer)
    stacked = ModelPool(Engine(copy.deepcopy(tiny_model), tiny_tokenizer), no_own_models, 2, lambda: nf4)
    stacked.start(catalog)
    q4, q2 = catalog.adapters
    prompts = ids(tiny_tokenizer, PROMPTS[:3])
    mixed = stacked.shared_on("quantized").generate(prompts, max_new_tokens=6, adapters=stacked.row_names([q4, q2, q4]))
    for prompt, name, generation in zip(prompts, ["q4", "q2", "q4"], mixed, strict=True):
        assert generation == predictors[name].engine().generate([prompt], max_new_tokens=6)[0]
    assert mixed != nf4.generate(prompts, max_new_tokens=6)  # the adapters change the answers
    with pytest.raises(ValueError, match="different shared bases"):
        stacked.row_names([q4, ServedAdapter("full", tmp_path, "lora", "shared")])
    held = stacked.weight_bytes
    assert held["shared_nf4_base"] == sum(t.numel() * t.element_size() for t in nf4.model.parameters())
    assert set(held["adapters"]) == {"q4", "q2"} and held["own_models"] == {}
    assert {id(t) for t in nf4.model.parameters() if t.dtype == torch.uint8} == quantized[0]  # the same nf4 base
