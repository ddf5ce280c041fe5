"""Training: the step, the loop and everything a run leaves behind in its run directory.

    summary = fastfood.train.train_and_evaluate(run_config)
    model, info = fastfood.inference.runs.load_run("runs/quickstart")

The loop (loop.py) is the only place with side effects; the step, the schedule, the
precision choice and the checkpoint helpers are small pieces that are tested alone.
TensorFlow is imported only inside the functions that need it.
"""

from __future__ import annotations

from typing import Any


def train_and_evaluate(config: Any, **kwargs: Any) -> dict:
    """Train and validate per `config` (a RunConfig); see fastfood.train.loop."""
    from fastfood.train.loop import train_and_evaluate as run

    return run(config, **kwargs)


__all__ = ["train_and_evaluate"]
