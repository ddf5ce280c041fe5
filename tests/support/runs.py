"""Run directories and checkpoints for tests: untrained runs, a tiny model, and checks on
what a run folder holds. The trained run is the session fixture `trained_run` (conftest.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def untrained_run(path: Path, classes: list[str], **kwargs: Any) -> Path:
    """A run directory with random weights (tiny model), in the trainer's layout."""
    from fastfood.benchmark.untrained import write_untrained_run

    kwargs.setdefault("image_size", 32)
    kwargs.setdefault("width", 0.125)
    return write_untrained_run(path, classes, **kwargs)


def tiny_model_and_optimizer():
    """A width-0.125 VGG19 at 32 px (2 classes) and a built SGD optimizer, seeded."""
    import keras

    from fastfood.model import vgg19
    from fastfood.train.step import make_optimizer

    keras.utils.set_random_seed(0)
    model = vgg19(2, image_size=32, width=0.125)
    optimizer = make_optimizer(0.01, 0.9, loss_scale=False)
    optimizer.build(model.trainable_variables)
    return model, optimizer


def listed_checkpoints(run_dir: Path) -> list[str]:
    """Prefixes named by ckpt/checkpoint (oldest first): what a resume may pick up."""
    import tensorflow as tf

    state = tf.train.get_checkpoint_state(str(run_dir / "ckpt"))
    return list(state.all_model_checkpoint_paths) if state else []


def read_every_tensor(prefix: str) -> dict[str, Any]:
    """Read every tensor of a checkpoint (raises on a half-written or damaged one)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def checkpoint_step(prefix: str) -> int:
    """The global step a checkpoint holds (the loop's own `step` variable, not its name)."""
    values = read_every_tensor(prefix)
    return int(values["step/.ATTRIBUTES/VARIABLE_VALUE"])


def assert_same_top_k(indices_a: list[int], probs_a: list[float], indices_b: list[int],
                      probs_b: list[float], atol: float = 1e-4) -> None:
    """Two top-k answers agree up to float rounding.

    Probabilities position by position within `atol`; the same class at every position
    except where two neighbours are within `atol` of each other (rounding may swap those).
    """
    import numpy as np

    np.testing.assert_allclose(probs_a, probs_b, atol=atol)
    for i, (a, b) in enumerate(zip(indices_a, indices_b)):
        if a == b:
            continue
        near = [j for j in (i - 1, i + 1) if 0 <= j < len(probs_a)
                and abs(probs_a[j] - probs_a[i]) <= atol]
        assert near, f"position {i}: class {a} vs {b}, probs {probs_a} vs {probs_b}"
