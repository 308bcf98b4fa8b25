"""The hot path: batched log-likelihood scoring of choices, and batched greedy generation.

Scoring packs one example into one row: the shared context, then every multi-token choice as its
own block that sees the context and itself but no other block (a tree-shaped 4D mask with
per-block position ids). The context is computed once for all choices, and logits are projected
only at the positions that predict a choice token, never `batch x length x vocab`.

A peft model that holds several LoRA adapters can answer rows for different adapters in one
forward pass: `adapters` names each row's adapter (peft's `adapter_names`, "__base__" for the base
weights). Such rows never share a cached prefix, because a prefix's keys and values depend on the
adapter that computed them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch

from harness.errors import InputError
from harness.estimates.model_shapes import shape_from_config
from harness.inference.adapter_routing import AdapterRouting, PeftRouting
from harness.inference.batching import token_budget_batches
from harness.inference.choice_rows import ChoiceRequest, ScoringRow, scoring_row, tree_mask
from harness.inference.prefix_cache import KeyValues, PrefixCache
from harness.inference.sizing import device_batch_tokens, token_bytes

_PREFIX_KV_BUDGET = 16384  # prefix tokens held in KV across one batch's rows
# A batch of at least this many real tokens runs near full speed on a CPU (forward tokens/s of the 135M
# model: ~500 at 256 tokens, ~650 at 512, ~700 from 1024), so past it a batch ends rather than pad rows
# to a longest one that is more than a quarter longer than them.
_FILL_TOKENS = 512
_SLACK = 0.25
TokenCallback = Callable[[int, int], bool]
"""Called with (prompt index, token id) after each generated token; returning False ends that row now."""


@dataclass(frozen=True)
class Generation:
    """A greedy completion: its text (cut at the first stop string), its token count and token ids."""

    text: str
    completion_tokens: int
    tokens: tuple[int, ...] = ()  # every generated id, up to and including the one that ended it


@dataclass(frozen=True)
class TokenLogprob:
    """A token's log-probability given the tokens before it, and the likeliest tokens at its position."""

    token: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


class Engine:
    """Runs a causal LM over token ids: scoring choices and greedy generation, both batched."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_batch_tokens: int = 4096,
        max_batch_size: int = 32,
        soft_prefix: KeyValues | None = None,
        routing: AdapterRouting | None = None,
    ):
        """`soft_prefix`: learned virtual tokens as keys and values per layer, put in front of every request;
        `routing`: how rows for different adapters share a pass (peft's `adapter_names` unless given)."""
        self._model = model
        self.routing: AdapterRouting = routing or PeftRouting()
        self._loader: Callable[[], Any] | None = None
        self.tokenizer = tokenizer
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_size = max_batch_size
        self.device: Any = next(model.parameters()).device if model is not None else torch.device("cpu")
        self._pad_id: int | None = None
        self._soft_prefix = soft_prefix
        self._end_ids: set[int] | None = None
        self._prefixes: PrefixCache | None = None
        self._warm = False
        self._size_to_device = False

    @classmethod
    def deferred(
        cls,
        loader: Callable[[], Any],
        tokenizer: Any,
        device: str,
        *,
        max_batch_tokens: int = 4096,
        size_to_device: bool = False,
    ) -> Engine:
        """An engine whose model is loaded on first use: a run that finds every answer stored never loads it.

        `size_to_device`: once loaded on CUDA, `max_batch_tokens` grows to what the free memory holds
        (harness/inference/sizing.py); on the CPU it stays as given."""
        engine = cls(None, tokenizer, max_batch_tokens=max_batch_tokens)
        engine._loader = loader
        engine._size_to_device = size_to_device
        engine.device = torch.device(device)
        return engine

    @property
    def model(self) -> Any:
        """The model (loaded now, if this engine was deferred)."""
        if self._model is None:
            assert self._loader is not None, "an engine needs a model or a loader"
            self._model = self._loader()
            if self._size_to_device and self.device.type == "cuda":
                free, _ = torch.cuda.mem_get_info(self.device)
                dtype_bytes = next(self._model.parameters()).element_size()
                try:
                    shape = shape_from_config(self._model.config.to_dict())
                except InputError:  # a shape the estimate does not know (mixture of experts): the default stays
                    return self._model
                cost = token_bytes(shape, dtype_bytes)
                self.max_batch_tokens = device_batch_tokens(self.max_batch_tokens, "cuda", free, cost)
        return self._model

    def warm_up(self) -> None:
        """Load the model and tokenizer and run one small request, so that no timed request pays for it.

        A process's first forward pass also sets up thread pools and allocator arenas: measured as part
        of the first rung's answers, it made that rung look slower, and costlier, than the same rung
        measured second.
        """
        if self._warm:
            return
        ids = tuple(self.tokenizer("warm up the model", add_special_tokens=False)["input_ids"]) or (self.pad_id,)
        self.score([ChoiceRequest(ids, (ids[:1], ids[:2]))] * 2)  # two rows, multi-token choices: the full path
        self._warm = True

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._model is not None

    @property
    def pad_id(self) -> int:
        """The token id that pads a batch's rows (asked of the tokenizer on first use, so it may stay unloaded)."""
        if self._pad_id is None:
            self._pad_id = _pad_id(self.tokenizer)
        return self._pad_id

    @property
    def end_ids(self) -> set[int]:
        """Token ids that end a generation."""
        if self._end_ids is None:
            self._end_ids = _end_ids(self.model, self.tokenizer)
        return self._end_ids

    @property
    def prefixes(self) -> PrefixCache:
        """The KV cache of the current shared prefix (and the soft prefix of virtual tokens)."""
        if self._prefixes is None:
            self._prefixes = PrefixCache(self.model, self._soft_prefix)
        return self._prefixes

    # ---- scoring -----------------------------------------------------------------------------

    @torch.inference_mode()
    def score(
        self, requests: Sequence[ChoiceRequest], prefix: Sequence[int] = (), adapters: Sequence[str] | None = None
    ) -> list[list[float]]:
        """Sum of log-probabilities of each choice given prefix + context, per request.

        A non-empty `prefix` (shared by every request) is run once and its KV cache reused.
        `adapters` names each request's adapter (see the module docstring).
        """
        self._check_adapters(len(requests), prefix, adapters)
        rows = [scoring_row(request) for request in requests]
        results: list[list[float]] = [[] for _ in rows]
        lengths = [len(r.tokens) for r in rows]
        for batch in self._batches(lengths, self._batch_size(prefix)):
            names = _adapter_names(adapters, batch)
            for index, scores in zip(batch, self._score_batch([rows[i] for i in batch], prefix, names), strict=True):
                results[index] = scores
        return results

    def _forward(self, names: list[str] | None, **inputs: Any) -> Any:
        """The model's output; with `names`, row i answered by adapter names[i] through the engine's routing."""
        if names is None:
            return self.model(**inputs)
        return self.routing.forward(self.model, names, **inputs)

    def forget_prefix(self) -> None:
        """Drop the cached prefix (the weights that computed it changed: another adapter switched in)."""
        self._prefixes = None

    def _check_adapters(self, count: int, prefix: Sequence[int], adapters: Sequence[str] | None) -> None:
        if adapters is None:
            return
        if len(adapters) != count:
            raise ValueError(f"{len(adapters)} adapter names for {count} rows")
        if prefix or self._soft_prefix:
            raise ValueError("rows with their own adapters cannot share a cached prefix")

    def _batches(self, lengths: Sequence[int], max_size: int) -> list[list[int]]:
        """Rows grouped by length within the token budget, padding kept small once a batch runs efficiently."""
        return token_budget_batches(lengths, self.max_batch_tokens, max_size, slack=_SLACK, fill=_FILL_TOKENS)

    def _batch_size(self, prefix: Sequence[int]) -> int:
        """Fewer rows when each carries a long prefix: every row holds its own copy of the prefix KV."""
        return max(1, min(self.max_batch_size, _PREFIX_KV_BUDGET // max(1, self.prefixes.length(prefix))))

    def _score_batch(self, rows: list[ScoringRow], prefix: Sequence[int], names: list[str] | None) -> list[list[float]]:
        # Left padding lines up the ends of the rows: when every row has the same choice blocks
        # (a classification task), the positions to keep are the same in every row, and a 1D
        # `logits_to_keep` (supported by every transformers 5 release) keeps exactly those.
        width = max(len(r.tokens) for r in rows)
        batch = len(rows)
        input_ids = torch.full((batch, width), self.pad_id, dtype=torch.long)
        position_ids = torch.zeros((batch, width), dtype=torch.long)
        segments = torch.full((batch, width), -1, dtype=torch.long)
        offsets = [width - len(r.tokens) for r in rows]
        shift = self.prefixes.length(prefix)
        for b, (row, offset) in enumerate(zip(rows, offsets, strict=True)):
            input_ids[b, offset:] = torch.tensor(row.tokens)
            position_ids[b, offset:] = torch.tensor(row.positions) + shift
            segments[b, offset:] = torch.tensor(row.segments)
        kept = sorted({p + o for r, o in zip(rows, offsets, strict=True) for t in r.targets for p, _ in t})
        column = {position: i for i, position in enumerate(kept)}
        has_blocks = bool((segments > 0).any())
        mask = tree_mask(segments) if has_blocks else (segments >= 0).long()
        if shift:  # every real token also sees the whole prefix
            if has_blocks:
                sees_prefix = (segments >= 0)[:, None, :, None].expand(batch, 1, width, shift)
                mask = torch.cat([sees_prefix, mask], dim=-1)
            else:
                mask = torch.cat([torch.ones((batch, shift), dtype=mask.dtype), mask], dim=-1)
        cache = self.prefixes.for_batch(prefix, batch) if shift else None
        logits = self._forward(
            names,
            input_ids=input_ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=position_ids.to(self.device),
            cache=cache,
            logits_to_keep=torch.tensor(kept, device=self.device),
            use_cache=cache is not None,
        ).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
        results = []
        for b, (row, offset) in enumerate(zip(rows, offsets, strict=True)):
            scores = []
            for choice_targets in row.targets:
                columns = torch.tensor([column[p + offset] for p, _ in choice_targets])
                tokens = torch.tensor([t for _, t in choice_targets])
                scores.append(float(logprobs[b, columns, tokens].sum()))
            results.append(scores)
        return results

    # ---- generation --------------------------------------------------------------------------

    @torch.inference_mode()
    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        max_new_tokens: int,
        stop: Sequence[str] = (),
        prefix: Sequence[int] = (),
        adapters: Sequence[str] | None = None,
        on_token: TokenCallback | None = None,
    ) -> list[Generation]:
        """Greedy completions of prefix + each prompt, stopping at an end-of-turn token or a stop string.

        `adapters` names each prompt's adapter (see the module docstring); `on_token` hears every token
        as it is chosen and can end a row early (a client that went away).
        """
        self._check_adapters(len(prompts), prefix, adapters)
        results: list[Generation | None] = [None] * len(prompts)
        lengths = [len(p) + max_new_tokens for p in prompts]
        for batch in self._batches(lengths, self._batch_size(prefix)):
            rows = _Rows(batch, [adapters[i] for i in batch] if adapters is not None else None, on_token)
            generations = self._generate_batch([prompts[i] for i in batch], max_new_tokens, stop, prefix, rows)
            for index, generation in zip(batch, generations, strict=True):
                results[index] = generation
        return [g for g in results if g is not None]

    def _generate_batch(
        self,
        prompts: list[Sequence[int]],
        max_new_tokens: int,
        stop: Sequence[str],
        prefix: Sequence[int],
        rows: _Rows,
    ) -> list[Generation]:
        from transformers import DynamicCache

        width = max(len(p) for p in prompts)
        batch = len(prompts)
        input_ids = torch.full((batch, width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((batch, width), dtype=torch.long)
        for b, prompt in enumerate(prompts):  # left padding: every row's next token is at the end
            input_ids[b, width - len(prompt) :] = torch.tensor(list(prompt))
            attention[b, width - len(prompt) :] = 1
        shift = self.prefixes.length(prefix)
        if shift:
            attention = torch.cat([torch.ones((batch, shift), dtype=attention.dtype), attention], dim=-1)
        input_ids, attention = input_ids.to(self.device), attention.to(self.device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)[:, shift:]
        cache = self.prefixes.for_batch(prefix, batch) if shift else DynamicCache()
        generated: list[list[int]] = [[] for _ in prompts]
        active = list(range(batch))  # original row of each live batch row
        end_ids = torch.tensor(sorted(self.end_ids), device=self.device)
        step_ids, step_positions = input_ids, positions
        for _ in range(max_new_tokens):
            logits = self._forward(
                rows.names(active),
                input_ids=step_ids,
                attention_mask=attention,
                position_ids=step_positions,
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
            ).logits[:, -1, :]
            next_ids = logits.argmax(-1)
            finished_now = torch.isin(next_ids, end_ids).tolist()
            still: list[int] = []
            for live, (row, token) in enumerate(zip(active, next_ids.tolist(), strict=True)):
                generated[row].append(token)
                wanted = rows.heard(row, token)
                if wanted and not finished_now[live] and not _hits_stop(self.tokenizer, generated[row], stop):
                    still.append(live)
            if not still:
                break
            keep_rows = torch.tensor(still, device=self.device)
            if len(still) < len(active):  # drop finished rows so they cost no more compute
                cache.reorder_cache(cast(torch.LongTensor, keep_rows))
                attention = attention.index_select(0, keep_rows)
                step_positions = step_positions.index_select(0, keep_rows)
                next_ids = next_ids.index_select(0, keep_rows)
                active = [active[i] for i in still]
            attention = torch.cat([attention, attention.new_ones((len(active), 1))], dim=-1)
            step_positions = step_positions[:, -1:] + 1
            step_ids = next_ids[:, None]
        return [self._finish(tokens, stop) for tokens in generated]

    def _finish(self, tokens: list[int], stop: Sequence[str]) -> Generation:
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        cut = min((text.find(s) for s in stop if s and s in text), default=-1)
        return Generation(text=text[:cut] if cut >= 0 else text, completion_tokens=len(tokens), tokens=tuple(tokens))

    # ---- per-token log-probabilities ---------------------------------------------------------

    @torch.inference_mode()
    def token_logprobs(
        self, sequences: Sequence[Sequence[int]], top: int = 0, adapters: Sequence[str] | None = None
    ) -> list[list[TokenLogprob]]:
        """For every token after the first of each sequence: its log-probability and the `top` likeliest tokens.

        This is what an OpenAI-style `echo` with `logprobs` asks for, so it needs logits at every
        position of these rows; the choice scoring above stays on its narrow path.
        """
        self._check_adapters(len(sequences), (), adapters)
        results: list[list[TokenLogprob]] = [[] for _ in sequences]
        lengths = [len(s) for s in sequences]
        for batch in self._batches(lengths, self.max_batch_size):
            names = _adapter_names(adapters, batch)
            for index, row in zip(batch, self._logprob_batch([sequences[i] for i in batch], top, names), strict=True):
                results[index] = row
        return results

    def _logprob_batch(
        self, sequences: list[Sequence[int]], top: int, names: list[str] | None
    ) -> list[list[TokenLogprob]]:
        width = max(len(s) for s in sequences)
        batch = len(sequences)
        input_ids = torch.full((batch, width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((batch, width), dtype=torch.long)
        for b, sequence in enumerate(sequences):  # left padding, as in generation
            input_ids[b, width - len(sequence) :] = torch.tensor(list(sequence))
            attention[b, width - len(sequence) :] = 1
        shift = self.prefixes.length(())  # learned virtual tokens, when the model has them
        if shift:
            attention = torch.cat([torch.ones((batch, shift), dtype=attention.dtype), attention], dim=-1)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)[:, shift:]
        cache = self.prefixes.for_batch((), batch) if shift else None
        logits = self._forward(
            names,
            input_ids=input_ids.to(self.device),
            attention_mask=attention.to(self.device),
            position_ids=positions.to(self.device),
            cache=cache,
            use_cache=cache is not None,
        ).logits
        rows: list[list[TokenLogprob]] = []
        for b, sequence in enumerate(sequences):  # one row at a time: never a second batch x length x vocab copy
            offset = width - len(sequence)
            scores = torch.log_softmax(logits[b, offset : width - 1].float(), dim=-1)  # predicting tokens 1..n-1
            targets = torch.tensor(list(sequence[1:]), dtype=torch.long, device=scores.device)
            chosen = scores.gather(-1, targets[:, None])[:, 0].tolist()
            best = scores.topk(top, dim=-1) if top else None
            ids = best.indices.tolist() if best is not None else [[] for _ in chosen]
            values = best.values.tolist() if best is not None else [[] for _ in chosen]
            rows.append(
                [
                    TokenLogprob(int(token), value, tuple(zip(i, v, strict=True)))
                    for token, value, i, v in zip(sequence[1:], chosen, ids, values, strict=True)
                ]
            )
        return rows


@dataclass(frozen=True)
class _Rows:
    """One generation batch's bookkeeping: its prompts' indices, their adapters, the token callback."""

    indices: list[int]
    adapters: list[str] | None
    on_token: TokenCallback | None

    def names(self, active: list[int]) -> list[str] | None:
        """The adapters of the rows still generating (None: the model as it is)."""
        return None if self.adapters is None else [self.adapters[r] for r in active]

    def heard(self, row: int, token: int) -> bool:
        """Tell the callback about a row's new token; False when the row should stop."""
        return True if self.on_token is None else self.on_token(self.indices[row], token)


def _adapter_names(adapters: Sequence[str] | None, batch: list[int]) -> list[str] | None:
    return None if adapters is None else [adapters[i] for i in batch]


def _hits_stop(tokenizer: Any, tokens: list[int], stop: Sequence[str]) -> bool:
    if not stop:
        return False
    tail = tokenizer.decode(tokens[-16:], skip_special_tokens=True)
    return any(s and s in tail for s in stop)


def _pad_id(tokenizer: Any) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return int(candidate)
    return 0


def _end_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    generation = model.generation_config
    configured = generation.eos_token_id if generation is not None else None
    for value in (configured, tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids
