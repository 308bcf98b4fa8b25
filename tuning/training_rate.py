"""A tuned rung's training speed on this machine, measured on a few of its own rows: `--plan`'s calibration."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tuning.loop import LoopSettings, Validation, train
from tuning.tuning_task import PreparedTraining


def training_rate(trainer: PreparedTraining, rows: int) -> float:
    """Useful tokens per second of this method, from a step on `rows` train rows (after the same step untimed).

    The warm-up is the whole step, not a smaller one: the first training step of a process sets up
    thread pools and allocator arenas for its shapes, and a step on two rows left the first method
    calibrated at half its real rate (the example's lora: 114 tokens/s planned, 213 measured).
    """
    model = trainer.fresh_model()
    prefix, encoded, _ = trainer.encoded_rows()
    sample = encoded[:rows]
    settings = LoopSettings(epochs=1, batch_tokens=10**6, max_batch_size=len(sample), checkpoint_every=10**6)
    pad = trainer.task.context.engine.pad_id
    with tempfile.TemporaryDirectory() as folder:
        train(model, sample, Validation(), settings, Path(folder) / "warm", pad, prefix=prefix)
        started = time.perf_counter()
        report = train(model, sample, Validation(), settings, Path(folder) / "timed", pad, prefix=prefix)
    return report.useful_tokens / max(time.perf_counter() - started, 1e-9)
