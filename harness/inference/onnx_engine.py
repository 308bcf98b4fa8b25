"""An exported graph answering through onnxruntime: choice scoring and greedy generation, batched.

It offers what answering needs of an engine (`harness/inference/answering.py`), so a rung answers through
it exactly as through the PyTorch engine: the same prompts, the same choice tokens, the same rows. A prefix
every prompt shares is run once and its keys and values serve every row after it (the graph takes them as
`past`, batch 1). Scoring packs one example into one row, the context then every choice as a block that sees
the prefix, the context and itself (the engine's tree mask), and asks for logits only where a choice token is
predicted. Generation runs the prompts once, then one token per step over the keys and values the graph
returned, dropping rows that finished.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.inference.batching import token_budget_batches
from harness.inference.choice_rows import ChoiceRequest, ScoringRow, scoring_row, tree_mask
from harness.inference.engine import Generation, TokenCallback
from harness.inference.onnx_graph import INPUTS, PAST

_SLACK, _FILL_TOKENS = 0.25, 512  # as the PyTorch engine batches (harness/inference/engine.py)
_ERRORS_ONLY = 3  # onnxruntime's log severity: its advice on graph optimisations is not the user's to act on


@dataclass(frozen=True)
class TokenIds:
    """The ids the model's own engine used: padding, and the tokens that end a generation."""

    pad: int
    ends: frozenset[int]


Cache = list[Any]  # keys and values per layer, numpy arrays (batch, heads, length, head size)


class OnnxEngine:
    """Runs an exported graph over token ids on onnxruntime's CPU provider."""

    def __init__(
        self,
        graph: Path,
        tokenizer: Any,
        ids: TokenIds,
        *,
        threads: int,
        max_batch_tokens: int = 4096,
        max_batch_size: int = 32,
    ):
        """`threads`: onnxruntime's intra-op threads (the same count torch uses, so the two compare fairly)."""
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = _ERRORS_ONLY
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self._cache_inputs = [i for i in self.session.get_inputs() if i.name.startswith(f"{PAST}.")]
        self.tokenizer = tokenizer
        self.ids = ids
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_size = max_batch_size
        self._prefix: tuple[tuple[int, ...], Cache] | None = None  # the last prefix run, and its cache

    def warm_up(self) -> None:
        """One small request, so that no timed request pays for the session's first run."""
        ids = tuple(self.tokenizer("warm up the model", add_special_tokens=False)["input_ids"]) or (self.ids.pad,)
        self.score([ChoiceRequest(ids, (ids[:1], ids[:2]))] * 2)

    def run(self, input_ids: Any, mask: Any, positions: Any, keep: Any, past: Cache) -> tuple[Any, Cache]:
        """The graph on numpy inputs: logits at `keep` (batch x kept x vocabulary), and the cache it ends with."""
        feeds = dict(zip(INPUTS, (input_ids, mask, positions, keep), strict=True))
        feeds.update({spec.name: tensor for spec, tensor in zip(self._cache_inputs, past, strict=True)})
        logits, *present = self.session.run(None, feeds)
        return logits, present

    def sequence_logits(self, tokens: Sequence[int]) -> Any:
        """The logits at every position of one sequence (length x vocabulary), as a plain forward pass gives them."""
        input_ids, real, positions = _left_padded([list(tokens)], self.ids.pad, 0)
        keep = np.arange(len(tokens), dtype=np.int64)
        return self.run(input_ids, _causal_mask(real, 0), positions, keep, self._empty_cache())[0][0]

    def _empty_cache(self) -> Cache:
        # every cache input is (rows, heads, length, head size) with heads and head size fixed in the graph
        return [np.zeros((1, spec.shape[1], 0, spec.shape[3]), dtype=np.float32) for spec in self._cache_inputs]

    def _prefix_cache(self, prefix: Sequence[int]) -> Cache:
        """The shared prefix's keys and values (batch 1), run once and kept while the prefix stays the same."""
        if not prefix:
            return self._empty_cache()
        key = tuple(prefix)
        if self._prefix is None or self._prefix[0] != key:
            input_ids, real, positions = _left_padded([list(key)], self.ids.pad, 0)
            last = np.array([len(key) - 1], dtype=np.int64)
            self._prefix = (key, self.run(input_ids, _causal_mask(real, 0), positions, last, self._empty_cache())[1])
        return self._prefix[1]

    # ---- scoring -----------------------------------------------------------------------------

    def score(
        self, requests: Sequence[ChoiceRequest], prefix: Sequence[int] = (), adapters: Sequence[str] | None = None
    ) -> list[list[float]]:
        """Sum of log-probabilities of each choice given prefix + context, per request."""
        _no_adapters(adapters)
        rows = [scoring_row(request) for request in requests]
        results: list[list[float]] = [[] for _ in rows]
        past = self._prefix_cache(prefix)
        lengths = [len(r.tokens) for r in rows]
        for batch in self._batches(lengths):
            for index, scores in zip(batch, self._score_batch([rows[i] for i in batch], past), strict=True):
                results[index] = scores
        return results

    def _score_batch(self, rows: list[ScoringRow], past: Cache) -> list[list[float]]:
        import torch

        shift = past[0].shape[2] if past else 0
        width = max(len(r.tokens) for r in rows)
        input_ids = np.full((len(rows), width), self.ids.pad, dtype=np.int64)
        positions = np.zeros((len(rows), width), dtype=np.int64)
        segments = np.full((len(rows), width), -1, dtype=np.int64)
        offsets = [width - len(r.tokens) for r in rows]
        for b, (row, offset) in enumerate(zip(rows, offsets, strict=True)):  # left padding lines up the ends
            input_ids[b, offset:] = row.tokens
            positions[b, offset:] = np.array(row.positions) + shift
            segments[b, offset:] = row.segments
        kept = sorted({p + o for r, o in zip(rows, offsets, strict=True) for t in r.targets for p, _ in t})
        column = {position: i for i, position in enumerate(kept)}
        mask = _with_prefix(_tree_mask(segments), segments >= 0, shift)
        logits, _ = self.run(input_ids, mask, positions, np.array(kept, dtype=np.int64), past)
        logprobs = torch.log_softmax(torch.from_numpy(logits).float(), dim=-1)
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
        """Greedy completions of prefix + each prompt, stopping at an end token or a stop string."""
        _no_adapters(adapters)
        results: list[Generation | None] = [None] * len(prompts)
        past = self._prefix_cache(prefix)
        lengths = [len(p) + max_new_tokens for p in prompts]
        for batch in self._batches(lengths):
            rows = [list(prompts[i]) for i in batch]
            generated = self._generate_batch(rows, max_new_tokens, stop, past, batch, on_token)
            for index, tokens in zip(batch, generated, strict=True):
                results[index] = self._finish(tokens, stop)
        return [g for g in results if g is not None]

    def _generate_batch(
        self,
        prompts: list[list[int]],
        max_new_tokens: int,
        stop: Sequence[str],
        past: Cache,
        indices: list[int],
        on_token: TokenCallback | None,
    ) -> list[list[int]]:
        shift = past[0].shape[2] if past else 0
        input_ids, real, positions = _left_padded(prompts, self.ids.pad, shift)
        mask = _causal_mask(real, shift)
        seen = np.concatenate([np.ones((len(prompts), shift), dtype=bool), real], axis=1)  # what the next token sees
        generated: list[list[int]] = [[] for _ in prompts]
        active = list(range(len(prompts)))  # original row of each live batch row
        last = np.array([input_ids.shape[1] - 1], dtype=np.int64)
        for _ in range(max_new_tokens):
            logits, past = self.run(input_ids, mask, positions, last, past)
            next_ids = logits[:, -1, :].argmax(-1)
            still = []
            for live, (row, token) in enumerate(zip(active, next_ids.tolist(), strict=True)):
                generated[row].append(int(token))
                wanted = on_token is None or on_token(indices[row], int(token))
                if wanted and token not in self.ids.ends and not self._hits_stop(generated[row], stop):
                    still.append(live)
            if not still:
                break
            if len(still) < len(active):  # drop finished rows so they cost no more compute
                past = [tensor[still] for tensor in past]
                seen, positions, next_ids = seen[still], positions[still], next_ids[still]
                active = [active[i] for i in still]
            seen = np.concatenate([seen, np.ones((len(active), 1), dtype=bool)], axis=1)
            input_ids = next_ids[:, None].astype(np.int64)
            positions = positions[:, -1:] + 1
            mask = seen[:, None, None, :]
            last = np.array([0], dtype=np.int64)
        return generated

    def _hits_stop(self, tokens: list[int], stop: Sequence[str]) -> bool:
        if not stop:
            return False
        tail = self.tokenizer.decode(tokens[-16:], skip_special_tokens=True)
        return any(s and s in tail for s in stop)

    def _finish(self, tokens: list[int], stop: Sequence[str]) -> Generation:
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        cut = min((text.find(s) for s in stop if s and s in text), default=-1)
        return Generation(text=text[:cut] if cut >= 0 else text, completion_tokens=len(tokens), tokens=tuple(tokens))

    def _batches(self, lengths: Sequence[int]) -> list[list[int]]:
        return token_budget_batches(
            lengths, self.max_batch_tokens, self.max_batch_size, slack=_SLACK, fill=_FILL_TOKENS
        )


def _no_adapters(adapters: Sequence[str] | None) -> None:
    if adapters is not None:
        raise ValueError("an exported graph holds one set of weights: rows cannot name adapters")


def _tree_mask(segments: Any) -> Any:
    """The scoring rows' tree mask (harness/inference/choice_rows.py) as the numpy array the graph takes."""
    import torch

    return tree_mask(torch.from_numpy(segments)).numpy()


def _with_prefix(mask: Any, real: Any, shift: int) -> Any:
    """The mask with the prefix's columns in front: every real token sees the whole prefix, a pad none of it."""
    if not shift:
        return mask
    rows, _, width, _ = mask.shape
    sees_prefix = np.broadcast_to(real[:, None, :, None], (rows, 1, width, shift))
    return np.concatenate([sees_prefix, mask], axis=-1)


def _left_padded(rows: list[list[int]], pad: int, shift: int) -> tuple[Any, Any, Any]:
    """Left-padded ids, which of them are real, and position ids that count real tokens only, from `shift` on."""
    width = max(len(r) for r in rows)
    input_ids = np.full((len(rows), width), pad, dtype=np.int64)
    real = np.zeros((len(rows), width), dtype=bool)
    for b, row in enumerate(rows):
        input_ids[b, width - len(row) :] = row
        real[b, width - len(row) :] = True
    positions = np.clip(np.cumsum(real, axis=1) - 1, 0, None).astype(np.int64) + shift
    return input_ids, real, positions


def _causal_mask(real: Any, shift: int) -> Any:
    """Causal over the real tokens, after a prefix of `shift` they all see."""
    return _with_prefix(_tree_mask(np.where(real, 0, -1)), real, shift)
