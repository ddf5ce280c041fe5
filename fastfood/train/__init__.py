"""Training: the step, the loop and the checkpoints a run leaves in its run directory.

    summary = fastfood.train.train_and_evaluate(run_config)

To follow one step from flag to update: the config (fastfood/config.py) becomes a `Plan`
(setup.py: batches, pipelines, length), the loop (loop.py `train_loop`, one function)
asks the feeds (feeds.py) for the batch of its `Position` and calls the pure step
(step.py), then maybe logs, validates, saves or stops. The step, the schedule, the
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
