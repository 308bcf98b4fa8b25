"""An answerer that wraps another: it answers differently, and is the inner one in everything else."""

from __future__ import annotations

from harness.inference.answerer import Answerer
from harness.inference.answering import Mode


class WrappedAnswerer:
    """Identity, preparation and scoring mode are the inner answerer's; a subclass defines `answer`."""

    def __init__(self, inner: Answerer):
        self.inner = inner

    def fingerprint(self) -> str:
        """The inner answerer's (the rung's own fingerprint says how it wraps it)."""
        return self.inner.fingerprint()

    def prepare(self) -> None:
        """Whatever the inner answerer prepares."""
        self.inner.prepare()

    def scoring(self, mode: Mode) -> str:
        """The inner answerer's scoring mode."""
        return self.inner.scoring(mode)
